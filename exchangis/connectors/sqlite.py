"""SQLite (stdlib ``sqlite3``): typed by declared column types, one ``BEGIN IMMEDIATE`` per sink.

SQLite stores dates and timestamps as ISO text and decimals as the exact text of the value; the
sink declares column types (``DECIMAL TEXT(p,s)``, ``TIMESTAMP``, ``BOOLEAN``...) that the
source maps back to the same Arrow types.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.base import DataSourceType, Endpoint, ParamSpec
from exchangis.connectors.bulk import decimal_text
from exchangis.connectors.dialect import KEYS_NOT_NULL, Dialect, Staging
from exchangis.connectors.driver import ErrorClass, translate_errors
from exchangis.connectors.naming import sql_literal, validate_table
from exchangis.connectors.sql_sink import SqlSink
from exchangis.connectors.sql_source import SqlSource
from exchangis.connectors.types import Family, Rule, same_decimal
from exchangis.connectors.values import (
    ColumnConverter,
    batch_to_rows,
    chunks,
    default_converter,
    per_value,
)
from exchangis.errors import (
    ConnectorError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
)

log = logging.getLogger(__name__)

NAME = "SQLITE"
PARAMS = (ParamSpec("path", local_path=True),)
_DECIMAL_RE = re.compile(r"\b(?:DECIMAL|NUMERIC)\b[^(]*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})
_BUSY_TIMEOUT = 30.0


def classify(exc: BaseException) -> type[ConnectorError] | None:
    """Return the connector error class for a sqlite3 exception (None: not a driver error)."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return TransientConnectorError
        return TerminalConnectorError
    if isinstance(exc, sqlite3.IntegrityError | OverflowError):
        return RecordError
    if isinstance(exc, sqlite3.Error):
        return TerminalConnectorError
    return None


def _path(connect: Mapping[str, Any]) -> Path:
    value = connect.get("path")
    if not value or not isinstance(value, str):
        raise TerminalConnectorError("sqlite data source has no path")
    return Path(value).expanduser()


def open_connection(connect: Mapping[str, Any], *, read_only: bool) -> Any:
    """Return a sqlite3 connection in autocommit mode (transactions are explicit)."""
    import sqlite3

    path = _path(connect)
    if read_only:
        if not path.is_file():
            raise TerminalConnectorError(f"sqlite database {path} does not exist")
        target, uri = f"{path.resolve().as_uri()}?mode=ro", True
    else:
        target, uri = str(path), False
    return sqlite3.connect(
        target, uri=uri, isolation_level=None, timeout=_BUSY_TIMEOUT, check_same_thread=False
    )


def test_connection(connect: Mapping[str, Any]) -> None:
    """Open the database file read-only, or check its directory when it does not exist yet.

    Raises:
        ConnectorError: the file is not a SQLite database or the directory is missing.
    """
    path = _path(connect)
    if not path.exists():
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
            raise TerminalConnectorError(f"directory of sqlite database {path} is not writable")
        return
    with translate_errors(classify, connect, f"open sqlite {path}"):
        conn = open_connection(connect, read_only=True)
        try:
            conn.execute("PRAGMA schema_version").fetchall()
        finally:
            conn.close()


class SqliteDialect(Dialect):
    """Double-quoted names; declared types that round-trip through :class:`SqliteSource`."""

    name = "sqlite"
    quote_char = '"'

    def primary_key(self, table: str) -> str:
        """Return the primary key's columns of ``table`` in key order."""
        parts = validate_table(table)
        args = ", ".join(sql_literal(p) for p in reversed(parts))
        return f"SELECT name FROM pragma_table_info({args}) WHERE pk > 0 ORDER BY pk"

    def create_like(self, table: str, model: str) -> str:
        """Return CREATE TABLE ... AS SELECT of no row (the columns and their declared types)."""
        return (
            f"CREATE TABLE {self.quote_table(table)} AS "
            f"SELECT * FROM {self.quote_table(model)} WHERE 0"
        )

    # Declared types whose affinity keeps values exact, read back by ``arrow_type``.
    column_types = {
        Family.BOOLEAN: Rule("BOOLEAN", pa.bool_()),
        Family.INTEGER: Rule("INTEGER", pa.int64()),
        Family.UINT64: Rule(
            "INTEGER",
            pa.int64(),
            loss="INTEGER holds up to 2**63-1: the sink refuses larger values (error records)",
        ),
        Family.FLOAT32: Rule("REAL", pa.float64()),
        Family.FLOAT64: Rule("REAL", pa.float64()),
        # TEXT affinity: NUMERIC affinity would round to a 15-digit REAL.
        Family.DECIMAL: Rule("DECIMAL TEXT({precision},{scale})", same_decimal),
        Family.STRING: Rule("TEXT", pa.string()),
        Family.BINARY: Rule("BLOB", pa.binary()),
        Family.FIXED_BINARY: Rule("BLOB", pa.binary()),
        Family.DATE: Rule("DATE", pa.date32()),
        Family.TIMESTAMP: Rule("TIMESTAMP", pa.timestamp("us")),
        Family.TIMESTAMP_TZ: Rule("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
        Family.TIME: Rule("TIME", pa.time64("us")),
        Family.NULL: Rule("TEXT", pa.string()),
    }

    def unique_keys(self, table: str) -> str:
        """Return the columns of the unique, non-partial indexes of ``table`` and of its
        PRIMARY KEY (an INTEGER PRIMARY KEY is the rowid: it has no index)."""
        parts = validate_table(table)
        schema = sql_literal(parts[0] if len(parts) == 2 else "main")
        name = sql_literal(parts[-1])
        return (
            f"SELECT il.name, ii.name FROM pragma_index_list({name}, {schema}) AS il"
            f" JOIN pragma_index_info(il.name, {schema}) AS ii"
            ' WHERE il."unique" AND NOT il.partial'
            f" UNION ALL SELECT 'PRIMARY KEY', name FROM pragma_table_info({name}, {schema})"
            " WHERE pk > 0"
        )

    def stage_table(self, target: str, name: str) -> str:
        """Return ``temp.name``: the connection's temporary database."""
        return f"temp.{name}"

    def create_stage(self, st: Staging) -> list[str]:
        """Return ``CREATE TEMP TABLE ... AS SELECT`` of the written columns (same affinities,
        no constraint: CTAS copies none) and a trigger that refuses a NULL key; rowids number
        the rows in write order (nothing is deleted there)."""
        cols = ", ".join(self.quote(c) for c in st.columns)
        null = " OR ".join(f"NEW.{self.quote(k)} IS NULL" for k in st.keys)
        bare = self.quote(validate_table(st.stage)[-1])  # a trigger's table name is unqualified
        return [
            f"CREATE TEMP TABLE {self.quote_table(st.stage)} AS SELECT {cols}"
            f" FROM {self.quote_table(st.target)} WHERE 0",
            f"CREATE TEMP TRIGGER {self.quote(st.ordinal)} BEFORE INSERT ON {bare} WHEN {null}"
            f" BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {KEYS_NOT_NULL}'); END",
        ]

    def merge(self, st: Staging) -> str:
        """Return ``INSERT ... SELECT ... ORDER BY rowid ON CONFLICT (keys) DO UPDATE``.

        SQLite applies the rows one by one in rowid (write) order, so a later row with the same
        key updates the one before it: the last wins.
        """
        taken = {c.casefold() for c in st.columns}
        rowid = next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)
        if rowid is None:
            raise TerminalConnectorError(
                "upsert cannot order rows: rowid, _rowid_ and oid are columns"
            )
        cols = ", ".join(self.quote(c) for c in st.columns)
        # "WHERE true": without a WHERE, SQLite would read ON CONFLICT as a join constraint.
        return (
            f"INSERT INTO {self.quote_table(st.target)} ({cols}) SELECT {cols}"
            f" FROM {self.quote_table(st.stage)} WHERE true ORDER BY {rowid}"
            f" {self.on_conflict(st, 'excluded')}"
        )

    def drop_stage(self, stage: str) -> str | None:
        """Return ``DROP TABLE`` of the staging table (inside the transaction)."""
        return f"DROP TABLE {self.quote_table(stage)}"


DIALECT = SqliteDialect()


def arrow_type(declared: str) -> pa.DataType:
    """Return the Arrow type for a declared SQLite column type."""
    decl = (declared or "").upper()
    if "INT" in decl:
        return pa.int64()
    if "BOOL" in decl:
        return pa.bool_()
    match = _DECIMAL_RE.search(decl)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if 0 < precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
        if 0 < precision <= 76 and scale <= precision:
            return pa.decimal256(precision, scale)
        return pa.string()
    if any(word in decl for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "DATETIME" in decl or "TIMESTAMP" in decl:
        aware = "TZ" in decl.replace("TIMESTAMP", "") or "WITH TIME ZONE" in decl
        return pa.timestamp("us", tz="UTC" if aware else None)
    if "DATE" in decl:
        return pa.date32()
    if "TIME" in decl:
        return pa.time64("us")
    if "BLOB" in decl:
        return pa.binary()
    return pa.string()


# --- value converters (SQLite values are loosely typed) ------------------------------------------


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | bytes):
        raise TypeError(f"{type(value).__name__} is not a number")
    if isinstance(value, str):
        return Decimal(value.strip())
    return Decimal(str(value))


def _to_bool(value: Any) -> bool:
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean (0/1/true/false)")


def _to_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not an ISO date")
    return dt.date.fromisoformat(value.strip())


def _to_time(value: Any) -> dt.time:
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not an ISO time")
    return dt.time.fromisoformat(value.strip())


def _datetime_parser(aware: bool) -> Callable[[Any], dt.datetime]:
    def parse(value: Any) -> dt.datetime:
        if not isinstance(value, str):
            raise TypeError(f"{type(value).__name__} is not an ISO timestamp")
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC) if aware else parsed
        utc = parsed.astimezone(dt.UTC)
        return utc if aware else utc.replace(tzinfo=None)

    return parse


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not text")


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{type(value).__name__} is not a blob")


def _fast_then(fast: ColumnConverter, slow: ColumnConverter) -> ColumnConverter:
    def convert(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
        try:
            return fast(values, data_type)
        except (pa.ArrowException, ValueError, TypeError):
            return slow(values, data_type)

    return convert


def _cast_text(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    return pa.array(values, type=pa.string()).cast(data_type)


def converter(data_type: pa.DataType) -> ColumnConverter | None:
    """Return the column converter from SQLite values to ``data_type``."""
    t = data_type
    if pa.types.is_decimal(t):
        return per_value(_to_decimal)
    if pa.types.is_boolean(t):
        return per_value(_to_bool)
    if pa.types.is_date(t):
        return _fast_then(_cast_text, per_value(_to_date))
    if pa.types.is_timestamp(t):
        return _fast_then(_cast_text, per_value(_datetime_parser(t.tz is not None)))
    if pa.types.is_time(t):
        return per_value(_to_time)
    if pa.types.is_string(t):
        return _fast_then(default_converter, per_value(_to_text))
    if pa.types.is_binary(t):
        return _fast_then(default_converter, per_value(_to_bytes))
    return None


def _qualified(table: str, suffix: str) -> tuple[str, str]:
    """Return (``"schema".suffix`` or ``suffix``, bare table name)."""
    parts = validate_table(table)
    if len(parts) == 2:
        return f'"{parts[0]}".{suffix}', parts[1]
    return suffix, parts[0]


class SqliteSource(SqlSource):
    """Stream a SQLite table with ``fetchmany`` on a read-only connection."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._cursor: Any = None

    def _connect(self) -> Any:
        return open_connection(self.endpoint.connect, read_only=True)

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _query_estimate(self) -> int | None:
        # max(rowid) is a b-tree lookup; count(*) would scan the table.
        row = self._conn.execute(
            f"SELECT max(rowid) FROM {self.dialect.quote_table(self.endpoint.table)}"
        ).fetchone()
        return int(row[0]) if row and isinstance(row[0], int) else 0

    def _declared_types(self) -> dict[str, str]:
        pragma, table = _qualified(self.endpoint.table, "table_info")
        rows = self._conn.execute(f'PRAGMA {pragma}("{table}")').fetchall()
        if not rows:
            raise TerminalConnectorError(f"sqlite table {self.endpoint.table} does not exist")
        return {str(r[1]).lower(): str(r[2] or "") for r in rows}

    def _start(self, sql: str) -> tuple[pa.Schema, list[ColumnConverter | None]]:
        declared = self._declared_types()
        self._cursor = self._conn.execute(sql)
        fields, converters = [], []
        for column in self._cursor.description:
            t = arrow_type(declared.get(column[0].lower(), ""))
            fields.append(pa.field(column[0], t))
            converters.append(converter(t))
        return pa.schema(fields), converters

    def _fetch(self, size: int) -> Sequence[Sequence[Any]]:
        return self._cursor.fetchmany(size)

    def _release(self) -> None:
        try:
            self._conn.close()
        except Exception:
            log.debug("sqlite close failed", exc_info=True)
        self._cursor = None


def _prepare(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_boolean(t):
        return pc.cast(column, pa.int64())
    if pa.types.is_decimal(t):
        return decimal_text(column)  # plain digits: never 1E-10
    if pa.types.is_temporal(t):
        return pc.cast(column, pa.string())
    return column


class SqliteSink(SqlSink):
    """Insert with ``executemany`` inside one ``BEGIN IMMEDIATE`` transaction."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._insert: str | None = None

    def _connect(self) -> Any:
        path = _path(self.endpoint.connect)
        if not path.parent.is_dir():
            raise TerminalConnectorError(f"directory of sqlite database {path} does not exist")
        return open_connection(self.endpoint.connect, read_only=False)

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _exists(self, name: str) -> bool:
        master, table = _qualified(name, "sqlite_master")
        row = self._conn.execute(
            f"SELECT 1 FROM {master} WHERE type IN ('table', 'view') AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def _execute(self, sql: str) -> None:
        self._conn.execute(sql)

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        if self._insert is None:
            self._insert = self.dialect.insert(self.write_table, batch.schema.names, "?")
        rows = batch_to_rows(batch, _prepare)
        for part in chunks(rows, self.chunk_size):
            self._conn.executemany(self._insert, part)


TYPE = DataSourceType(
    NAME,
    PARAMS,
    "SQLite database file",
    tester=test_connection,
    source=SqliteSource,
    sink=SqliteSink,
)
"""The sqlite connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
