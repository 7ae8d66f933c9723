"""Fidelity: a table of tricky values moved through every source/sink pair, value for value.

Every backend holds the same logical table (``ROWS``) with its native column types (``NATIVE``):
MariaDB ``DECIMAL(38,10)``/``DATETIME(6)``/``TINYINT(1)``/``LONGBLOB``/``VARBINARY``/utf8mb4
``LONGTEXT``; PostgreSQL ``numeric``/``timestamp``/``boolean``/``bytea``/``text``; SQLite with the
declared types and storage forms ``sqlite/`` documents; CSV and JSON Lines files written by hand
in the representation ``files.py`` documents (also compressed: ``csv.gz``, ``jsonl.zst``); a
Parquet file written by ``pyarrow.parquet`` with the Arrow types. Each pair moves it the way the
runner does (registry source → ``open`` → ``ColumnMapping`` → ``sink.open(schema)`` → ``write`` per
batch → ``commit``) and the sink is read back with a native reader: pymysql, psycopg, sqlite3 (raw
storage), ``json``, ``pyarrow.csv`` with the CSV rules (an unquoted empty field is NULL, ``""`` the
empty string) and ``pyarrow.parquet``; compressed files through ``gzip`` and pyarrow's zstd stream.

What equality means, per pair (:func:`expected_value` spells it out; comparisons are strict:
type and ``repr``, so ``-0.0 != 0.0``, ``True != 1`` and a decimal's scale counts):

* typed source (MariaDB, PostgreSQL, SQLite) → MariaDB/PostgreSQL: the same typed value
  (MariaDB reads booleans back as the 0/1 of ``TINYINT(1)``).
* → SQLite: SQLite's storage form: decimals as plain fixed-point text at the column's scale
  (never ``1E-10``), dates ``YYYY-MM-DD``, timestamps ``YYYY-MM-DD HH:MM:SS.ffffff``, booleans 0/1.
* → CSV: text: decimals fixed-point, booleans ``true``/``false``, timestamps with a space, bytes
  base64, floats pyarrow's shortest round-trip text (``-0``, ``1e+308``); NULL an empty field.
* → JSONL: JSON numbers, booleans and strings; decimals and temporals as exact strings
  (timestamps with ``T``), bytes base64.
* CSV source: every column is text. Into a NEW SQL table the columns are text and hold exactly
  the file's strings. Into a PRE-EXISTING typed table the database converts the text and the typed
  value comes back — except bytes (nothing says the text was base64: MariaDB and PostgreSQL store
  the base64 text's ASCII bytes) and SQLite, which keeps text as text (INTEGER/REAL affinity
  aside; the SQLite source parses it by declared type).
* JSONL source: numbers, booleans and text are typed; decimals, temporals and bytes are text,
  with the CSV rules.
* Parquet keeps the Arrow types: as a source it is a typed source (``-0.0`` included); as a sink
  it holds exactly what the source yielded (a CSV source's text stays text).
* ``csv.gz`` and ``jsonl.zst`` are CSV and JSONL once decompressed.
* Negative zero: MariaDB ``DOUBLE`` and SQLite ``REAL`` cannot hold ``-0.0``: it is ``0.0`` there
  (a backend limit, asserted as such).

* MariaDB zero dates have no date value: the read fails naming the column and the row (the bulk
  reader hands over to the driver reader, which names them).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import importlib.util
import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pymysql
import pymysql.cursors
import pytest
from psycopg.rows import dict_row

from exchangis.connectors.base import Endpoint
from exchangis.connectors.registry import Registry, default_registry
from exchangis.engine.transform import ColumnMapping
from exchangis.errors import BulkRowRefusedError, TerminalConnectorError
from tests import data
from tests.services import mysql_params, postgres_params

SQL_KINDS = ("mysql", "postgres", "sqlite")
FILE_KINDS = ("csv", "jsonl", "parquet", "csv.gz", "jsonl.zst")
"""FILE kinds, each also the suffix of its files (``.csv.gz``: gzip by suffix)."""
KINDS = SQL_KINDS + FILE_KINDS
TYPES = {
    "mysql": "MYSQL",
    "postgres": "POSTGRESQL",
    "sqlite": "SQLITE",
    **dict.fromkeys(FILE_KINDS, "FILE"),
}
CODECS = {"gz": "gzip", "zst": "zstd"}
"""The compression suffixes of ``FILE_KINDS`` and their codecs."""
BATCH_SIZES = (1, 4, 1000)
"""Runner batch sizes: one row, a boundary inside the table (15 rows), everything at once."""

COLUMNS = ("id", "txt", "big", "amount", "money", "day", "ts", "flag", "bin", "vbin", "flt")
BINARY = frozenset({"bin", "vbin"})
JSON_TEXT = frozenset({"amount", "money", "day", "ts", "bin", "vbin"})
"""Columns a JSONL file holds as strings (the others are JSON numbers, booleans and text)."""
GROUPS: dict[str, tuple[str, ...]] = {
    "read": ("id", "txt", "big", "money", "day", "ts", "flt"),
    "tsv": ("id", "txt", "big", "amount", "money", "day", "ts", "flag"),
}
"""Column subsets that take the bulk paths: ``read``, the connectorx reads of MariaDB and
PostgreSQL (no binary, no TINYINT(1), decimals within 28 digits; these tables have a one-column
numeric primary key, so the keyset reads run); ``tsv``, MariaDB's tab-separated LOAD DATA (no
binary). PostgreSQL sinks take every group through ADBC binary COPY. The whole table mostly
takes the per-row read paths."""
NATIVE: dict[str, dict[str, str]] = {
    "mysql": {
        "id": "BIGINT PRIMARY KEY",
        "txt": "LONGTEXT",
        "big": "BIGINT",
        "amount": "DECIMAL(38,10)",
        "money": "DECIMAL(18,4)",
        "day": "DATE",
        "ts": "DATETIME(6)",
        "flag": "TINYINT(1)",
        "bin": "LONGBLOB",
        "vbin": "VARBINARY(400)",
        "flt": "DOUBLE",
    },
    "postgres": {
        "id": "bigint PRIMARY KEY",
        "txt": "text",
        "big": "bigint",
        "amount": "numeric(38,10)",
        "money": "numeric(18,4)",
        "day": "date",
        "ts": "timestamp",
        "flag": "boolean",
        "bin": "bytea",
        "vbin": "bytea",
        "flt": "double precision",
    },
    "sqlite": {
        "id": "INTEGER PRIMARY KEY",
        "txt": "TEXT",
        "big": "INTEGER",
        "amount": "DECIMAL TEXT(38,10)",
        "money": "DECIMAL TEXT(18,4)",
        "day": "DATE",
        "ts": "TIMESTAMP",
        "flag": "BOOLEAN",
        "bin": "BLOB",
        "vbin": "BLOB",
        "flt": "REAL",
    },
}
"""Native column types of the source tables and of the pre-existing sink tables."""

HAS_CONNECTORX = importlib.util.find_spec("connectorx") is not None

LONG_TEXT = ("long ✓ 😀 text " * 8000)[:100_000]
"""100,000 characters, with 3- and 4-byte UTF-8 ones."""
MAX_AMOUNT = Decimal("9999999999999999999999999999.9999999999")
MAX_MONEY = Decimal("99999999999999.9999")


def at_scale(text: str, scale: int) -> Decimal:
    """Return ``text`` as a decimal with ``scale`` digits after the point."""
    return Decimal(text).quantize(Decimal(1).scaleb(-scale), context=Context(prec=40))


def row(row_id: int, **values: Any) -> dict[str, Any]:
    """Return a logical row: ``values`` by column name, NULL elsewhere."""
    assert set(values) <= set(COLUMNS[1:]), set(values) - set(COLUMNS)
    return {"id": row_id} | {c: values.get(c) for c in COLUMNS[1:]}


ROWS: list[dict[str, Any]] = [
    row(1),
    row(
        2,
        txt="",
        big=0,
        amount=at_scale("0", 10),
        money=at_scale("0", 4),
        day=dt.date(1970, 1, 1),
        ts=dt.datetime(1970, 1, 1),
        flag=False,
        bin=b"",
        vbin=b"",
        flt=0.0,
    ),
    row(
        3,
        txt="tab\there\t",
        big=-1,
        amount=at_scale("0.0000000001", 10),
        money=at_scale("0.0001", 4),
        day=dt.date(1969, 12, 31),
        ts=dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        flag=True,
        bin=b"\x00",
        vbin=b"\x00",
        flt=-0.0,
    ),
    row(
        4,
        txt="line\nbreak\n",
        big=2**63 - 1,
        amount=at_scale("12345678901234567890.1234567890", 10),
        money=MAX_MONEY,
        day=dt.date(9999, 12, 31),
        ts=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        flag=True,
        bin=b"\xff",
        vbin=b"\xff\xfe",
        flt=1.7976931348623157e308,
    ),
    row(
        5,
        txt="crlf\r\nline\r\n",
        big=-(2**63),
        amount=at_scale("-12345678901234567890.1234567890", 10),
        money=MAX_MONEY.copy_negate(),
        day=dt.date(1, 1, 1),
        ts=dt.datetime(1, 1, 1),
        flag=False,
        bin=b"\x00\xff\x00",
        vbin=b"\x00\xff\x00",
        flt=-2.2250738585072014e-308,
    ),
    row(
        6,
        txt="back\\slash \\\\ \\t \\n C:\\dir\\",
        big=-2147483649,
        amount=at_scale("-0.0000000001", 10),
        money=at_scale("-0.0001", 4),
        day=dt.date(1900, 2, 28),
        ts=dt.datetime(1900, 1, 1, 0, 0, 0, 1),
        flag=True,
        bin=b"\xc3\x28\xa0\xa1 not utf-8 \xe2\x82",
        vbin=b"\x80\x81\xfe",
        flt=0.1,
    ),
    row(
        7,
        txt='it\'s "quoted" \'\' "" "',
        big=2**32,
        amount=MAX_AMOUNT,
        money=at_scale("12345678901234.5678", 4),
        day=dt.date(2000, 2, 29),
        ts=dt.datetime(2000, 2, 29, 12, 30, 45, 123456),
        flag=False,
        bin=bytes(range(256)),
        vbin=bytes(range(256)),
        flt=-1.5e-300,
    ),
    row(
        8,
        txt="NULL",
        big=-42,
        amount=MAX_AMOUNT.copy_negate(),
        money=at_scale("-1.5", 4),
        day=dt.date(1582, 10, 4),
        ts=dt.datetime(1582, 10, 15, 0, 0, 0, 500000),
        flag=True,
        bin=b"NULL",
        vbin=b"NULL",
        flt=5e-324,
    ),
    row(
        9,
        txt="\\N",
        big=2**53 + 1,
        amount=at_scale("0.5", 10),
        money=at_scale("0.5", 4),
        day=dt.date(1000, 1, 1),
        ts=dt.datetime(1000, 1, 1, 0, 0, 1),
        flag=False,
        bin=b"\\N",
        vbin=b"\\N",
        flt=123456789.125,
    ),
    row(
        10,
        txt="emoji 😀👩‍👩‍👧 𝄞 中文 é ñ",
        big=-(2**53) - 1,
        amount=at_scale("1.5", 10),
        money=at_scale("1", 4),
        day=dt.date(2038, 1, 19),
        ts=dt.datetime(2038, 1, 19, 3, 14, 8, 1),
        flag=True,
        bin="😀".encode(),
        vbin="é".encode("latin-1"),
        flt=-1e16,
    ),
    row(
        11,
        txt=LONG_TEXT,
        big=1,
        amount=at_scale("-1", 10),
        money=at_scale("-0.0001", 4),
        day=dt.date(1969, 7, 20),
        ts=dt.datetime(1969, 7, 20, 20, 17, 40),
        flag=False,
        bin=b"\r\n\t\"',",
        vbin=b"\r\n",
        flt=2.5e-7,
    ),
    row(12, txt='  padded, "comma"; | pipe  ', big=2, amount=at_scale("3", 10), bin=b" ", flt=1e22),
    row(13, txt="cr\ronly", big=3, flt=float(2**53 + 1)),
    row(14, txt=" "),
    row(15, txt="null"),
]


# --- representations ----------------------------------------------------------------------


def form(kind: str) -> str:
    """Return the format of backend ``kind`` (``csv.gz`` is CSV once decompressed)."""
    return kind.partition(".")[0]


def text_form(value: Any) -> Any:
    """Return the CSV text of a typed value (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(" ", "microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float):  # pyarrow's shortest text that reads back the same double
        text: str = pc.cast(pa.array([value], pa.float64()), pa.string())[0].as_py()
        assert float(text) == value
        return text
    raise TypeError(f"no text form for {value!r}")


def json_form(value: Any) -> Any:
    """Return the JSON Lines value of a typed value: exact strings where JSON has no type."""
    if isinstance(value, dt.datetime):
        return value.isoformat("T", "microseconds")
    if isinstance(value, Decimal | dt.date | bytes):
        return text_form(value)
    return value


def no_negative_zero(value: Any) -> Any:
    """Return ``value`` with ``-0.0`` as ``0.0`` (MariaDB DOUBLE, SQLite REAL)."""
    return 0.0 if isinstance(value, float) and value == 0 else value


def sqlite_storage(value: Any) -> Any:
    """Return how SQLite stores a typed value (the SQLite sink's and the fixture's form)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal | dt.date):  # dt.datetime is a dt.date
        return text_form(value)
    return no_negative_zero(value)


def typed_storage(kind: str, value: Any) -> Any:
    """Return what the native reader of SQL backend ``kind`` gets for a stored typed value."""
    if kind == "mysql":
        return int(value) if isinstance(value, bool) else no_negative_zero(value)
    if kind == "sqlite":
        return sqlite_storage(value)
    return value


def source_value(kind: str, value: Any) -> Any:
    """Return what source ``kind`` yields for a logical value (text for CSV, JSON's for JSONL)."""
    if value is None:
        return None
    if form(kind) == "csv":
        return text_form(value)
    if form(kind) == "jsonl":
        return json_form(value)
    if kind in ("mysql", "sqlite"):
        return no_negative_zero(value)  # the source table itself cannot hold -0.0
    return value


def converted_text(sink: str, column: str, text: str, value: Any) -> Any:
    """Return what a pre-existing typed column of ``sink`` holds once the database takes text.

    MariaDB and PostgreSQL parse the text into the column's type, except binary columns, which
    store the base64 text's ASCII bytes. SQLite keeps text as text (INTEGER and REAL affinity
    turn numeric text into numbers).
    """
    if sink == "sqlite":
        if column in ("id", "big"):
            return int(text)
        if column == "flt":
            return no_negative_zero(float(text))
        return text
    if column in BINARY:
        return text.encode("ascii")
    return typed_storage(sink, value)


def expected_value(source: str, sink: str, column: str, value: Any, typed_table: bool) -> Any:
    """Return what the native reader of ``sink`` must get for a logical value of ``column``.

    ``typed_table``: the sink table pre-exists with the native column types (else the sink
    creates it from the source's Arrow schema).
    """
    moved = source_value(source, value)
    if moved is None:
        return None
    if form(sink) == "csv":
        return text_form(moved)
    if form(sink) == "jsonl":
        return json_form(moved)
    if sink == "parquet":
        return moved
    if isinstance(moved, str) and column != "txt":  # a file's text for a typed column
        return converted_text(sink, column, moved, value) if typed_table else moved
    return typed_storage(sink, moved)


def key(value: Any) -> tuple[str, str]:
    """Return a strict comparison key: type and repr (``-0.0`` != ``0.0``, scale counts)."""
    return type(value).__name__, repr(value)


def preview(value: Any) -> str:
    """Return a short repr for failure messages."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} chars)"


def differences(
    got: Sequence[dict[str, Any]], expected: Sequence[dict[str, Any]], columns: Sequence[str]
) -> list[str]:
    """Return one line per value that differs (rows in id order)."""
    if len(got) != len(expected):
        return [f"{len(got)} rows read back, {len(expected)} expected"]
    out = []
    for have, want in zip(got, expected, strict=True):
        if list(have) != list(columns):
            return [f"columns {list(have)} read back, {list(columns)} expected"]
        out += [
            f"id={want['id']} {c}: expected {preview(want[c])}, got {preview(have[c])}"
            for c in columns
            if key(have[c]) != key(want[c])
        ]
    return out


# --- native fixtures and readers ------------------------------------------------------------


def unique(prefix: str) -> str:
    """Return a table name no other test run uses."""
    return f"exg_fid_{prefix}_{uuid.uuid4().hex[:10]}"


def mysql_connect(**extra: Any) -> Any:
    """Return an autocommit pymysql connection to the test database (TLS off: faster)."""
    p = mysql_params()
    return pymysql.connect(
        host=p["host"],
        port=p["port"],
        user=p["username"],
        password=p["password"],
        database=p["database"],
        autocommit=True,
        charset="utf8mb4",
        ssl_disabled=True,
        **extra,
    )


def mysql_connect_params() -> dict[str, Any]:
    """Return MYSQL connect params with TLS off: pymysql's default (TLS preferred) builds an
    SSL context per connection, about 0.1 s; values do not depend on it."""
    return mysql_params() | {"params": {"ssl_disabled": True}}


def ddl(kind: str, columns: Sequence[str], types: Mapping[str, str]) -> str:
    """Return the column list of a native table of SQL backend ``kind`` (``types`` override)."""
    q = "`" if kind == "mysql" else '"'
    return ", ".join(f"{q}{c}{q} {types.get(c) or NATIVE[kind][c]}" for c in columns)


def create_native(
    kind: str,
    sqlite_path: str,
    table: str,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    types: Mapping[str, str] = MappingProxyType({}),
) -> None:
    """Create ``table`` with native column types in SQL backend ``kind`` and insert ``rows``."""
    values = [tuple(r[c] for c in columns) for r in rows]
    marks = ", ".join(["?" if kind == "sqlite" else "%s"] * len(columns))
    cols = ddl(kind, columns, types)
    if kind == "mysql":
        conn = mysql_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE TABLE `{table}` ({cols}) CHARSET=utf8mb4")
                if values:
                    cur.executemany(f"INSERT INTO `{table}` VALUES ({marks})", values)
        finally:
            conn.close()
    elif kind == "postgres":
        with data.postgres() as conn, conn.cursor() as cur:
            cur.execute(f'CREATE TABLE "{table}" ({cols})')
            if values:
                cur.executemany(f'INSERT INTO "{table}" VALUES ({marks})', values)
    else:
        conn = sqlite3.connect(sqlite_path)
        try:
            conn.execute(f'CREATE TABLE "{table}" ({cols})')
            stored = [tuple(sqlite_storage(v) for v in r) for r in values]
            conn.executemany(f'INSERT INTO "{table}" VALUES ({marks})', stored)
            conn.commit()
        finally:
            conn.close()


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write the CSV fixture by hand: every value quoted, NULL an unquoted empty field."""

    def quoted(value: Any) -> str:
        text = text_form(value)
        return "" if text is None else '"' + text.replace('"', '""') + '"'

    lines = [",".join(COLUMNS)] + [",".join(quoted(r[c]) for c in COLUMNS) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write the JSON Lines fixture by hand, one object per line."""
    lines = [json.dumps({c: json_form(r[c]) for c in COLUMNS}, ensure_ascii=False) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("txt", pa.string()),
        ("big", pa.int64()),
        ("amount", pa.decimal128(38, 10)),
        ("money", pa.decimal128(18, 4)),
        ("day", pa.date32()),
        ("ts", pa.timestamp("us")),
        ("flag", pa.bool_()),
        ("bin", pa.binary()),
        ("vbin", pa.binary()),
        ("flt", pa.float64()),
    ]
)
"""The Arrow types of the Parquet fixture (PostgreSQL's, as Arrow names them)."""


def write_file(kind: str, path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write the fixture of FILE backend ``kind``: by hand, then compressed by its suffix."""
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(list(rows), schema=PARQUET_SCHEMA), path)
        return
    (write_csv if form(kind) == "csv" else write_jsonl)(path, rows)
    codec = CODECS.get(kind.rpartition(".")[2])
    if codec == "gzip":
        path.write_bytes(gzip.compress(path.read_bytes()))
    elif codec is not None:
        raw = path.read_bytes()
        with pa.output_stream(str(path), compression=codec) as out:
            out.write(raw)


def read_bytes(kind: str, path: Path) -> bytes:
    """Return a text file's content, decompressed (gzip with the standard library)."""
    codec = CODECS.get(kind.rpartition(".")[2])
    if codec == "gzip":
        return gzip.decompress(path.read_bytes())
    if codec is not None:
        with pa.input_stream(str(path), compression=codec) as stream:
            return bytes(stream.read())
    return path.read_bytes()


@dataclass
class World:
    """Source endpoints over the fixture in every backend, and sink tables to drop at the end."""

    root: Path
    sources: dict[str, Endpoint] = field(default_factory=dict)
    made: dict[str, list[str]] = field(default_factory=lambda: {"mysql": [], "postgres": []})

    @property
    def sqlite_sinks(self) -> str:
        """Return the path of the SQLite database the sink tables go to."""
        return str(self.root / "sinks.db")

    def connect(self, kind: str) -> dict[str, Any]:
        """Return the connect params of sink backend ``kind``."""
        if kind == "mysql":
            return mysql_connect_params()
        if kind == "postgres":
            return postgres_params()
        if kind == "sqlite":
            return {"path": self.sqlite_sinks}
        return {"root": str(self.root / "sinks")}

    def sink(self, kind: str, prefix: str) -> tuple[Endpoint, str]:
        """Return the endpoint of a fresh sink table (or file) and its name."""
        table = unique(prefix) + (f".{kind}" if kind in FILE_KINDS else "")
        if kind in self.made:
            self.made[kind].append(table)
        return Endpoint(TYPES[kind], self.connect(kind), table), table

    def read(self, kind: str, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        """Read a sink table back with the backend's native reader, in id order."""
        rows: list[dict[str, Any]]
        if kind == "mysql":
            conn = mysql_connect(cursorclass=pymysql.cursors.DictCursor)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SELECT * FROM `{table}`")
                    rows = list(cur.fetchall())
            finally:
                conn.close()
        elif kind == "postgres":
            with data.postgres() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(f'SELECT * FROM "{table}"')
                rows = list(cur.fetchall())
        elif kind == "sqlite":
            conn = sqlite3.connect(self.sqlite_sinks)
            conn.row_factory = sqlite3.Row
            try:
                rows = [dict(r) for r in conn.execute(f'SELECT * FROM "{table}"')]
            finally:
                conn.close()
        elif kind == "parquet":
            rows = pq.read_table(self.root / "sinks" / table).to_pylist()
        elif form(kind) == "jsonl":
            text = read_bytes(kind, self.root / "sinks" / table).decode("utf-8")
            rows = [json.loads(line) for line in text.splitlines()]
        else:
            rows = pacsv.read_csv(
                pa.py_buffer(read_bytes(kind, self.root / "sinks" / table)),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in columns},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            ).to_pylist()
        return sorted(rows, key=lambda r: int(r["id"]))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Build the fixture table natively in every backend; drop every table at the end."""
    w = World(tmp_path_factory.mktemp("fidelity"))
    (w.root / "sinks").mkdir()
    my, pg, lite = unique("src"), unique("src"), str(w.root / "source.db")
    w.made["mysql"].append(my)
    w.made["postgres"].append(pg)
    try:
        create_native("mysql", "", my, COLUMNS, ROWS)
        create_native("postgres", "", pg, COLUMNS, ROWS)
        create_native("sqlite", lite, "fidelity", COLUMNS, ROWS)
        for kind in FILE_KINDS:
            write_file(kind, w.root / f"fidelity.{kind}", ROWS)
        w.sources = {
            "mysql": Endpoint("MYSQL", w.connect("mysql"), my),
            "postgres": Endpoint("POSTGRESQL", postgres_params(), pg),
            "sqlite": Endpoint("SQLITE", {"path": lite}, "fidelity"),
            **{
                kind: Endpoint("FILE", {"root": str(w.root)}, f"fidelity.{kind}")
                for kind in FILE_KINDS
            },
        }
        yield w
    finally:
        data.drop(w.made["mysql"], w.made["postgres"])


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Return the default registry (module scope: shared by every transfer)."""
    return default_registry()


@dataclass
class Moved:
    """What a transfer did: rows written, and the sink's reasons for the rows it refused."""

    written: int
    refused: list[str]


def transfer(
    registry: Registry,
    source_endpoint: Endpoint,
    sink_endpoint: Endpoint,
    batch_size: int,
    columns: Sequence[str] = COLUMNS,
) -> Moved:
    """Move ``columns`` of the source to the sink the way the runner does.

    SQL sources select ``columns`` themselves (option ``columns``, as a job would), so the read
    path is chosen for those columns; files are narrowed by the column mapping. Rows the sink
    refuses (error records) are collected like the runner does. The runner's restart with
    row-level writes after ``BulkRowRefusedError`` is not mimicked: valid values must not be
    refused by any path.
    """
    if source_endpoint.type != "FILE" and tuple(columns) != COLUMNS:
        options = dict(source_endpoint.options) | {"columns": list(columns)}
        source_endpoint = Endpoint(
            source_endpoint.type, source_endpoint.connect, source_endpoint.table, options=options
        )
    source = registry.source(source_endpoint)
    sink = registry.sink(sink_endpoint)
    try:
        schema = source.open()
        mapping = ColumnMapping(schema, [(c, c) for c in columns])
        sink.open(mapping.schema)
        moved = Moved(0, [])
        for batch in source.batches(batch_size):
            assert batch.num_rows <= batch_size
            moved.written += sink.write(mapping.apply(batch))
            moved.refused += [f"id={r.row.get('id')}: {r.reason}" for r in sink.take_rejects()]
        sink.commit()
        return moved
    except BaseException:
        sink.rollback()
        raise
    finally:
        source.close()
        sink.close()


def expected_rows(
    source: str, sink: str, columns: Sequence[str], typed_table: bool
) -> list[dict[str, Any]]:
    """Return the rows the native reader of ``sink`` must get."""
    return [{c: expected_value(source, sink, c, r[c], typed_table) for c in columns} for r in ROWS]


# --- every pair into a table (or file) the sink creates -------------------------------------


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("sink_kind", KINDS)
@pytest.mark.parametrize("source_kind", KINDS)
def test_every_value_survives_every_pair(
    world: World, registry: Registry, source_kind: str, sink_kind: str, batch_size: int
) -> None:
    """The whole table, into a table (or file) the sink creates from the source's schema."""
    sink, table = world.sink(sink_kind, "new")

    moved = transfer(registry, world.sources[source_kind], sink, batch_size)

    assert moved == Moved(len(ROWS), [])
    expected = expected_rows(source_kind, sink_kind, COLUMNS, typed_table=False)
    assert differences(world.read(sink_kind, table, COLUMNS), expected, COLUMNS) == []


def bulk_cases() -> list[Any]:
    """Return (group, source, sink) cases: bulk reads into every sink, every source into the
    tab-separated writers."""
    cases = [("read", source, sink) for source in ("mysql", "postgres") for sink in KINDS]
    cases += [("tsv", source, sink) for source in KINDS for sink in ("mysql", "postgres")]
    return [pytest.param(*case, id="-".join(case)) for case in cases]


@pytest.mark.parametrize(("group", "source_kind", "sink_kind"), bulk_cases())
def test_bulk_path_columns_survive(
    world: World, registry: Registry, group: str, source_kind: str, sink_kind: str
) -> None:
    """Columns every bulk path takes move exactly too (the whole table mostly goes per row)."""
    columns = GROUPS[group]
    sink, table = world.sink(sink_kind, group)

    moved = transfer(registry, world.sources[source_kind], sink, 4, columns)

    assert moved == Moved(len(ROWS), [])
    expected = expected_rows(source_kind, sink_kind, columns, typed_table=False)
    assert differences(world.read(sink_kind, table, columns), expected, columns) == []


# --- every source into pre-existing typed tables ---------------------------------------------


@pytest.mark.parametrize("sink_kind", SQL_KINDS)
@pytest.mark.parametrize("source_kind", KINDS)
def test_typed_sink_tables_receive_typed_values(
    world: World, registry: Registry, source_kind: str, sink_kind: str
) -> None:
    """Into a table with native types, the database converts files' text (bytes aside).

    SQLite keeps a file's text as text: there its source must read the typed values back.
    """
    columns = list(COLUMNS)
    sink, table = world.sink(sink_kind, "typed")
    create_native(sink_kind, world.sqlite_sinks, table, COLUMNS, [])

    moved = transfer(registry, world.sources[source_kind], sink, 4, columns)

    assert moved == Moved(len(ROWS), [])
    expected = expected_rows(source_kind, sink_kind, COLUMNS, typed_table=True)
    for r in expected:
        r.update((c, None) for c in COLUMNS if c not in columns)  # not written: NULL
    assert differences(world.read(sink_kind, table, COLUMNS), expected, COLUMNS) == []
    if sink_kind == "sqlite":
        with registry.source(sink) as source:
            schema = source.open()
            batches = list(source.batches(1000))
        typed = pa.Table.from_batches(batches, schema=schema).to_pylist()
        # PostgreSQL's typed values, as SQLite REAL holds them (no -0.0).
        want = [
            {c: no_negative_zero(v) for c, v in r.items()}
            for r in expected_rows(source_kind, "postgres", COLUMNS, typed_table=True)
        ]
        assert differences(typed, want, COLUMNS) == []


TEXT_TYPES = {"mysql": "LONGTEXT", "postgres": "text", "sqlite": "TEXT"}


@pytest.mark.parametrize("sink_kind", SQL_KINDS)
@pytest.mark.parametrize("source_kind", SQL_KINDS)
def test_decimals_into_text_columns_keep_plain_digits(
    world: World, registry: Registry, source_kind: str, sink_kind: str
) -> None:
    """A decimal written into an existing text column reads as its digits at its scale."""
    columns = ("id", "amount")
    sink, table = world.sink(sink_kind, "dectext")
    types = {"amount": TEXT_TYPES[sink_kind]}
    create_native(sink_kind, world.sqlite_sinks, table, columns, [], types)

    moved = transfer(registry, world.sources[source_kind], sink, 1000, columns)

    assert moved == Moved(len(ROWS), [])
    expected = [
        {"id": typed_storage(sink_kind, r["id"]), "amount": text_form(r["amount"])} for r in ROWS
    ]
    assert differences(world.read(sink_kind, table, columns), expected, columns) == []


# --- MariaDB zero dates ---------------------------------------------------------------------

ZERO_DATES = {"day": "0000-00-00", "ts": "0000-00-00 00:00:00", "month": "2024-00-15"}


@pytest.fixture(scope="module")
def zero_dates() -> Iterator[str]:
    """Return a MariaDB table whose row 3 holds a zero date in each of ``ZERO_DATES``' columns."""
    table = unique("zero")
    conn = mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")  # no NO_ZERO_DATE / NO_ZERO_IN_DATE
            cur.execute(
                f"CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, day DATE, ts DATETIME(6),"
                " month DATE)"
            )
            cur.executemany(
                f"INSERT INTO `{table}` VALUES (%s, %s, %s, %s)",
                [
                    (1, "2024-01-01", "2024-01-01 00:00:00", "2024-01-01"),
                    (2, None, None, None),
                    (3, *ZERO_DATES.values()),
                    (4, "2024-01-02", "2024-01-02 00:00:00", "2024-01-02"),
                ],
            )
        yield table
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{table}`")
        conn.close()


@pytest.mark.parametrize("bulk", [False, True])
@pytest.mark.parametrize("batch_size", [1, 1000])
@pytest.mark.parametrize("column", list(ZERO_DATES))
def test_mysql_zero_dates_fail_naming_column_and_row(
    registry: Registry, zero_dates: str, column: str, batch_size: int, bulk: bool
) -> None:
    """A MariaDB zero date has no Arrow value: the read fails naming the column and the row."""
    options = {"columns": ["id", column], "bulk": bulk}
    endpoint = Endpoint("MYSQL", mysql_connect_params(), zero_dates, options=options)

    with registry.source(endpoint) as source, pytest.raises(TerminalConnectorError) as failure:
        source.open()
        for _ in source.batches(batch_size):
            pass

    message = str(failure.value)
    if bulk and HAS_CONNECTORX and isinstance(failure.value, BulkRowRefusedError):
        # connectorx stops at the value without naming it: the runner reads again with the
        # driver (bulk false), which fails as below (tests/test_e2e_error_records.py).
        assert "0000-00-00" in message or "00-15" in message
        return
    assert f"column {column!r}, row 3" in message
    assert ZERO_DATES[column] in message


def test_the_fixture_holds_every_tricky_value() -> None:
    """The table really holds what the module docstring promises."""
    texts = [r["txt"] for r in ROWS]
    assert {"", "NULL", "\\N", " ", "null", None} <= set(texts)
    present = [t for t in texts if t]
    for needle in ("\t", "\n", "\r\n", "\r", "\\", "'", '"', "😀"):
        assert any(needle in t for t in present), needle
    assert any(len(t) >= 100_000 for t in present)
    amounts = {r["amount"] for r in ROWS}
    assert {at_scale("0.0000000001", 10), MAX_AMOUNT, MAX_AMOUNT.copy_negate()} <= amounts
    assert {-(2**63), 2**63 - 1} <= {r["big"] for r in ROWS}
    assert {dt.date(1, 1, 1), dt.date(9999, 12, 31)} <= {r["day"] for r in ROWS}
    assert any(r["ts"] and r["ts"].year < 1970 and r["ts"].microsecond for r in ROWS)
    assert {True, False, None} <= {r["flag"] for r in ROWS}
    blobs = [r["bin"] for r in ROWS if r["bin"]]
    assert any(b"\x00" in b for b in blobs) and any(b"\xff" in b for b in blobs)
    assert any(not _is_utf8(b) for b in blobs)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
