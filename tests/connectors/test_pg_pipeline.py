"""The PostgreSQL sink's binary ``COPY`` written behind the reads (``connectors/behind.py``): a
thread streams the cast batches to the server while the writer reads the next ones; rows land
once, a refused value, a failing source and a cancel leave the sink unchanged and no thread
behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from exchangis.connectors.base import Endpoint
from exchangis.connectors.memory import MemorySource
from exchangis.connectors.postgres import PostgresSink
from exchangis.engine.runner import WritesBehind
from exchangis.errors import BulkRowRefusedError, TerminalConnectorError
from tests.connectors.conftest import Backend, loader_threads, move, small_statements

Factory = Callable[[str], Backend]

SCHEMA = pa.schema([("id", pa.int64()), ("code", pa.string()), ("ratio", pa.float64())])
DDL = 'CREATE TABLE "{t}" (id bigint, code varchar(12), ratio double precision)'  # no key


SmallCopies = small_statements(PostgresSink)


def loaders() -> list[threading.Thread]:
    """Return the live threads that run a sink's ``COPY``."""
    return loader_threads(PostgresSink)


def batch(first: int, size: int, code: str = "c") -> pa.RecordBatch:
    """Return ``size`` rows from id ``first`` (``code`` then the id)."""
    ids = list(range(first, first + size))
    return pa.RecordBatch.from_pydict(
        {"id": ids, "code": [f"{code}{i}"[:40] for i in ids], "ratio": [i / 3 for i in ids]},
        schema=SCHEMA,
    )


def connect(backend: Backend) -> psycopg.Connection[Any]:
    """Return a psycopg connection to the backend's database (autocommit)."""
    c = backend.connect
    return psycopg.connect(
        host=c["host"], port=c["port"], user=c["username"], dbname=c["database"], autocommit=True
    )


def create(backend: Backend, seed: int = 0) -> str:
    """Return a new keyless table holding the committed rows 1..``seed``."""
    table = backend.new_table("pgpipe")
    with connect(backend) as conn:
        conn.execute(DDL.format(t=table))
        if seed:
            conn.execute(
                f"INSERT INTO \"{table}\" SELECT g, 's' || g, g / 3.0"
                f" FROM generate_series(1, {seed}) g"
            )
    return table


def content(backend: Backend, table: str) -> tuple[int, int, int]:
    """Return the table's rows, distinct ids and sum of ids (duplicates show: no key)."""
    with connect(backend) as conn:
        row = conn.execute(
            f'SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0) FROM "{table}"'
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def deferred(backend: Backend, table: str) -> PostgresSink:
    """Return an open sink of ``table`` that writes behind (as the runner has it)."""
    sink = SmallCopies(backend.endpoint(table, ledger=False))
    sink.open(SCHEMA)
    sink.defer_writes()
    return sink


def test_the_postgres_sink_writes_behind_for_the_runner() -> None:
    sink = PostgresSink(Endpoint("POSTGRESQL", {"host": "h", "username": "u"}, "t"))
    assert isinstance(sink, WritesBehind)


def test_deferred_copies_land_once(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = create(backend)
    sink = deferred(backend, table)
    written = 0
    try:
        for n in range(40):
            written += sink.write(batch(1 + n * 50, 50))
        written += sink.flush()
        sink.commit()
    finally:
        sink.close()
    assert written == 2000
    assert content(backend, table) == (2000, 2000, sum(range(1, 2001)))
    assert loaders() == []


def test_a_refused_value_fails_the_write_and_leaves_the_sink_unchanged(
    make_backend: Factory,
) -> None:
    backend = make_backend("postgres")
    table = create(backend, seed=5)
    before = content(backend, table)
    sink = deferred(backend, table)
    with pytest.raises(BulkRowRefusedError, match="too long"):
        try:
            for n in range(30):
                code = "far-too-long-for-twelve-" if n == 20 else "c"
                sink.write(batch(100 + n * 50, 50, code))
            sink.flush()
        except BaseException:
            sink.rollback()
            raise
        finally:
            sink.close()
    assert content(backend, table) == before
    assert loaders() == []


def test_a_cancel_mid_copy_stops_the_loader_and_leaves_the_sink_unchanged(
    make_backend: Factory,
) -> None:
    backend = make_backend("postgres")
    table = create(backend, seed=3)
    before = content(backend, table)
    sink = PostgresSink(backend.endpoint(table, ledger=False))  # one long COPY: data stays open
    sink.open(SCHEMA)
    sink.defer_writes()
    try:
        for n in range(10):
            sink.write(batch(100 + n * 50, 50))
        assert loaders()  # a statement is in flight, its data still open
        sink.rollback()
        assert loaders() == []
    finally:
        sink.close()
    assert content(backend, table) == before
    assert loaders() == []


def test_a_source_failing_mid_copy_leaves_the_sink_unchanged(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = backend.new_table("pgpipe")
    with connect(backend) as conn:
        conn.execute(f'CREATE TABLE "{table}" (id bigint, name text, amount numeric(12,2))')
        conn.execute(f"INSERT INTO \"{table}\" VALUES (-1, 'seed', 1.00)")
    source = MemorySource(Endpoint("MEMORY", {}, "m", options={"rows": 5000, "failAtRow": 4321}))
    schema = source.open()
    sink = SmallCopies(backend.endpoint(table, ledger=False))
    sink.open(schema)
    sink.defer_writes()
    with pytest.raises(TerminalConnectorError, match="injected failure at row 4321"):
        move(source, sink)
    assert loaders() == []
    with connect(backend) as conn:
        assert conn.execute(f'SELECT id, name FROM "{table}"').fetchall() == [(-1, "seed")]


def test_an_abort_cancels_a_copy_the_server_does_not_end(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = create(backend)
    with connect(backend) as blocker:
        blocker.autocommit = False
        blocker.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')  # the COPY waits
        sink = deferred(backend, table)
        try:
            sink.write(batch(1, 5))
            deadline = time.monotonic() + 10
            while not _waiting_for_lock(backend):
                assert time.monotonic() < deadline, "the COPY never waited for the lock"
                time.sleep(0.05)
            started = time.monotonic()
            sink.rollback()  # the server does not end the statement: it is cancelled
            assert time.monotonic() - started < SmallCopies.abort_seconds + 5
            assert loaders() == []
        finally:
            sink.close()
            blocker.rollback()
    assert content(backend, table) == (0, 0, 0)


def _waiting_for_lock(backend: Backend) -> bool:
    with connect(backend) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])
