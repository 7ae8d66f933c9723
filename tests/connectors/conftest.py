"""Backends for the connector contract tests: real MariaDB, PostgreSQL, SQLite files, CSV, JSONL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from exchangis.connectors.base import Endpoint, Sink, Source
from exchangis.connectors.behind import WriteBehindSink
from exchangis.connectors.registry import Registry, default_registry
from exchangis.engine.runner import WritesBehind
from tests.services import mysql_params, postgres_params

SQL_BACKENDS = ("mysql", "postgres", "sqlite")
FILE_BACKENDS = ("csv", "jsonl")
ALL_BACKENDS = SQL_BACKENDS + FILE_BACKENDS

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("amount", pa.decimal128(12, 2)),
        ("day", pa.date32()),
        ("ts", pa.timestamp("us")),
        ("name", pa.string()),
        ("flag", pa.bool_()),
    ]
)
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "amount": Decimal("12345678.90"),
        "day": dt.date(2024, 2, 29),
        "ts": dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
        "name": "héllo wörld",
        "flag": True,
    },
    {
        "id": 9007199254740993,  # 2**53 + 1: not a float
        "amount": Decimal("-0.01"),
        "day": dt.date(1970, 1, 1),
        "ts": dt.datetime(1999, 12, 31, 0, 0, 0, 1),
        "name": "emoji 😀 and CJK 中文字符",
        "flag": False,
    },
    {
        "id": 9223372036854775807,
        "amount": Decimal("-9999999999.99"),
        "day": dt.date(2038, 1, 19),
        "ts": dt.datetime(2038, 1, 19, 3, 14, 8, 999999),
        "name": 'comma, "quote"\nand newline',
        "flag": True,
    },
    {
        "id": -9223372036854775808,
        "amount": Decimal("0.00"),
        "day": None,
        "ts": None,
        "name": "",
        "flag": None,
    },
    {"id": None, "amount": None, "day": None, "ts": None, "name": None, "flag": None},
]
DATA = pa.Table.from_pylist(ROWS, schema=SCHEMA)
SEED = pa.Table.from_pylist(
    [
        {
            "id": 100,
            "amount": Decimal("1.50"),
            "day": dt.date(2020, 1, 1),
            "ts": dt.datetime(2020, 1, 1, 12, 0),
            "name": "seed",
            "flag": False,
        },
        {"id": 101, "amount": None, "day": None, "ts": None, "name": "seed 2", "flag": True},
    ],
    schema=SCHEMA,
)


def unique(prefix: str) -> str:
    """Return a table name no other test run uses."""
    return f"exg_{prefix}_{uuid.uuid4().hex[:12]}"


def csv_view(table: pa.Table) -> pa.Table:
    """Return ``table`` as a CSV source reads it back: every column as text."""
    return pa.table({n: pc.cast(table[n], pa.string()) for n in table.column_names})


def jsonl_view(table: pa.Table) -> pa.Table:
    """Return ``table`` as a JSONL source reads it back: decimals and temporals as text."""
    columns = {}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_timestamp(col.type):
            col = pc.replace_substring(pc.cast(col, pa.string()), " ", "T", max_replacements=1)
        elif pa.types.is_decimal(col.type) or pa.types.is_temporal(col.type):
            col = pc.cast(col, pa.string())
        columns[name] = col
    return pa.table(columns)


def view(kind: str, table: pa.Table) -> pa.Table:
    """Return what reading ``table`` back from backend ``kind`` yields."""
    if kind == "csv":
        return csv_view(table)
    if kind == "jsonl":
        return jsonl_view(table)
    return table


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """Return the rows of ``table`` in a stable order."""
    return sorted(table.to_pylist(), key=repr)


W = TypeVar("W", bound=WriteBehindSink)


def small_statements(sink: type[W]) -> type[W]:
    """Return ``sink`` with statements of about 4 KB and 2 KB waiting (many statements a
    test) and a 2 s abort."""
    small = {"load_bytes": 4096, "queue_bytes": 2048, "abort_seconds": 2.0}
    return type(f"Small{sink.__name__}", (sink,), small)


def loader_threads(sink: type[WriteBehindSink]) -> list[threading.Thread]:
    """Return the live threads that run ``sink``'s bulk statements."""
    name = sink.loader_thread
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def move(source: Source, sink: Sink) -> tuple[int, list[Any]]:
    """Move every batch of ``source`` into ``sink`` as the runner's loop does (flush after the
    last batch, roll back on any error); return the rows written and the refused rows."""
    written, rejects = 0, []
    try:
        for batch in source.batches(1000):
            written += sink.write(batch)
            rejects += sink.take_rejects()
        if isinstance(sink, WritesBehind):
            written += sink.flush()
            rejects += sink.take_rejects()
        sink.commit()
    except BaseException:
        sink.rollback()
        raise
    finally:
        sink.close()
        source.close()
    return written, rejects


@dataclass
class Backend:
    """One real backend: builds endpoints, writes and reads through the registry, cleans up."""

    kind: str
    registry: Registry
    connect: dict[str, Any]
    type: str
    tables: list[str] = field(default_factory=list)

    def new_table(self, prefix: str = "t") -> str:
        """Return a fresh table (or file) name, dropped at teardown."""
        name = unique(prefix)
        if self.kind in FILE_BACKENDS:
            name = f"{name}.{self.kind}"
        self.tables.append(name)
        return name

    def endpoint(self, table: str, **options: Any) -> Endpoint:
        """Return an endpoint for ``table`` with ``options``."""
        return Endpoint(self.type, self.connect, table, options=options)

    def write(self, table: str, data: pa.Table, **options: Any) -> None:
        """Write ``data`` to ``table`` in one committed transaction."""
        with self.registry.sink(self.endpoint(table, **options)) as sink:
            sink.open(data.schema)
            for batch in data.to_batches(max_chunksize=2):
                sink.write(batch)
            sink.commit()

    def read(self, table: str, batch_size: int = 1000, **options: Any) -> pa.Table:
        """Read ``table`` back whole (tests only)."""
        with self.registry.source(self.endpoint(table, **options)) as source:
            schema = source.open()
            return pa.Table.from_batches(list(source.batches(batch_size)), schema=schema)

    def drop(self) -> None:
        """Drop every table this backend created (files live in tmp_path)."""
        if self.kind == "mysql":
            import pymysql

            conn = pymysql.connect(
                host=self.connect["host"],
                port=int(self.connect["port"]),
                user=self.connect["username"],
                password=self.connect["password"],
                database=self.connect["database"],
            )
            with conn.cursor() as cur:
                for table in self.tables:
                    cur.execute(f"DROP TABLE IF EXISTS `{table}`")
            conn.close()
        elif self.kind == "postgres":
            import psycopg

            with psycopg.connect(
                host=self.connect["host"],
                port=self.connect["port"],
                user=self.connect["username"],
                dbname=self.connect["database"],
                autocommit=True,
            ) as conn:
                for table in self.tables:
                    quoted = ".".join(f'"{p}"' for p in table.split("."))
                    conn.execute(f"DROP TABLE IF EXISTS {quoted}")


@pytest.fixture
def registry() -> Registry:
    """Return the default registry with the MEMORY test double."""
    return default_registry(with_memory=True)


@pytest.fixture
def make_backend(registry: Registry, tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    """Return a factory of backends by kind; drops their tables at teardown."""
    made: list[Backend] = []

    def make(kind: str) -> Backend:
        if kind == "mysql":
            backend = Backend(kind, registry, mysql_params(), "MYSQL")
        elif kind == "postgres":
            backend = Backend(kind, registry, postgres_params(), "POSTGRESQL")
        elif kind == "sqlite":
            backend = Backend(kind, registry, {"path": str(tmp_path / "test.db")}, "SQLITE")
        else:
            root = tmp_path / "files"
            root.mkdir(exist_ok=True)
            backend = Backend(kind, registry, {"root": str(root)}, "FILE")
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.drop()


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest, make_backend: Callable[[str], Backend]) -> Backend:
    """Every real backend in turn."""
    return make_backend(request.param)


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request: pytest.FixtureRequest, make_backend: Callable[[str], Backend]) -> Backend:
    """Every SQL backend in turn."""
    return make_backend(request.param)
