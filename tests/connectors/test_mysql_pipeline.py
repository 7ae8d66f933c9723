"""The MySQL sink's pipelined ``LOAD DATA``: a thread streams batches to the server while the
writer encodes the next ones; rows land once, failures and cancels leave the sink unchanged and
no thread behind; batches and buffers are bounded in bytes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from exchangis.connectors import bulk, mysql
from exchangis.connectors.base import Endpoint
from exchangis.connectors.memory import MemorySource
from exchangis.connectors.mysql import MySqlSink
from exchangis.connectors.postgres import PostgresSource
from exchangis.engine.runner import WritesBehind, within_bytes
from exchangis.errors import ExchangisError, TerminalConnectorError, TransientConnectorError
from tests.connectors.conftest import Backend, loader_threads, move, small_statements
from tests.rogue import RogueMySql

Factory = Callable[[str], Backend]

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("code", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("at", pa.timestamp("us")),
        ("day", pa.date32()),
        ("flag", pa.bool_()),
        ("ratio", pa.float64()),
    ]
)
DDL = (
    "CREATE TABLE `{t}` (id BIGINT PRIMARY KEY, code VARCHAR(40), amount DECIMAL(12,2),"
    " at DATETIME(6), day DATE, flag TINYINT(1), ratio DOUBLE) ENGINE=InnoDB"
)
TEXTS = ("plain", "tab\there", "new\nline", "back\\slash", "cr\rlf", "nul\x00byte", "😀 中文", "")


SmallLoads = small_statements(MySqlSink)


def loaders() -> list[threading.Thread]:
    """Return the live threads that run a sink's ``LOAD DATA``."""
    return loader_threads(MySqlSink)


def rows(first: int, count: int) -> list[dict[str, Any]]:
    """Return ``count`` rows from id ``first``: every type the bulk path encodes, NULLs too."""
    out = []
    for i in range(first, first + count):
        out.append(
            {
                "id": i,
                "code": None if i % 11 == 0 else f"{TEXTS[i % len(TEXTS)]} {i}",
                "amount": None if i % 13 == 0 else Decimal(i * 7 - 5000).scaleb(-2),
                "at": dt.datetime(2024, 2, 29, 23, 59, 59, 123456) + dt.timedelta(seconds=i),
                "day": None if i % 17 == 0 else dt.date(1970, 1, 1) + dt.timedelta(days=i),
                "flag": None if i % 19 == 0 else i % 2 == 0,
                "ratio": i / 3,
            }
        )
    return out


def batches(count: int, size: int, first: int = 1) -> list[pa.RecordBatch]:
    """Return ``count`` batches of ``size`` rows, ids from ``first`` on."""
    return [
        pa.RecordBatch.from_pylist(rows(first + n * size, size), schema=SCHEMA)
        for n in range(count)
    ]


def create(backend: Backend, seed: int = 0) -> str:
    """Return a new table of ``DDL`` holding the committed rows 1..``seed``."""
    table = backend.new_table("pipe")
    conn = mysql.open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(DDL.format(t=table))
        conn.commit()
    finally:
        conn.close()
    if seed:
        with MySqlSink(backend.endpoint(table, ledger=False)) as sink:
            sink.open(SCHEMA)
            sink.write(pa.RecordBatch.from_pylist(rows(1, seed), schema=SCHEMA))
            sink.commit()
    return table


def content(backend: Backend, table: str) -> list[dict[str, Any]]:
    """Return the committed rows of ``table`` by id (booleans as MySQL keeps them: 0/1)."""
    conn = mysql.open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(SCHEMA.names)} FROM `{table}` ORDER BY id")
            return [dict(zip(SCHEMA.names, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


def stored(expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return rows as ``content`` reads them back (TINYINT(1) flags as 0/1)."""
    return [
        {**row, "flag": None if row["flag"] is None else int(row["flag"])}
        for row in sorted(expected, key=lambda r: r["id"])
    ]


def deferred(backend: Backend, table: str, **options: Any) -> MySqlSink:
    """Return an open sink of ``table`` that writes behind (as the runner has it)."""
    sink = SmallLoads(backend.endpoint(table, ledger=False, **options))
    sink.open(SCHEMA)
    sink.defer_writes()
    return sink


def test_the_sink_writes_behind_for_the_runner() -> None:
    sink = MySqlSink(Endpoint("MYSQL", {"host": "h", "username": "u", "database": "d"}, "t"))
    assert isinstance(sink, WritesBehind)


def test_deferred_writes_land_once_value_for_value(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = create(backend)
    data = batches(40, 25)
    sink = deferred(backend, table)
    try:
        written = sum(sink.write(batch) for batch in data)
        assert written < 1000  # the rows of the statements in flight count later
        written += sink.flush()
        assert sink.take_rejects() == []
        sink.commit()
    finally:
        sink.close()
    assert written == 1000
    assert content(backend, table) == stored(rows(1, 1000))
    assert loaders() == []


def test_commit_without_flush_writes_what_is_in_flight(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = create(backend)
    sink = deferred(backend, table)
    try:
        for batch in batches(6, 50):
            sink.write(batch)
        sink.commit()
    finally:
        sink.close()
    assert content(backend, table) == stored(rows(1, 300))
    assert loaders() == []


def test_bad_rows_in_a_deferred_load_are_refused_and_the_rest_land_once(
    make_backend: Factory,
) -> None:
    backend = make_backend("mysql")
    table = create(backend)
    good = rows(1, 600)
    data = [dict(r) for r in good]
    data[123]["code"] = "x" * 41  # too long for VARCHAR(40): a warning in LOAD DATA LOCAL
    data[400]["id"] = 7  # a duplicate key: LOAD DATA LOCAL skips it with a warning
    parts = [pa.RecordBatch.from_pylist(data[i : i + 30], schema=SCHEMA) for i in range(0, 600, 30)]
    sink = deferred(backend, table)
    try:
        written = sum(sink.write(batch) for batch in parts) + sink.flush()
        rejects = sink.take_rejects()
        sink.commit()
    finally:
        sink.close()
    assert written == 598
    assert sorted(r.row["id"] for r in rejects) == [7, 124]
    assert content(backend, table) == stored([r for r in good if r["id"] not in (124, 401)])
    assert loaders() == []


def test_a_source_failing_mid_load_leaves_the_sink_unchanged(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = backend.new_table("pipe")
    conn = mysql.open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2))"
            )
            cur.execute(f"INSERT INTO `{table}` VALUES (-1, 'seed', 1.00)")
        conn.commit()
    finally:
        conn.close()
    source = MemorySource(Endpoint("MEMORY", {}, "m", options={"rows": 5000, "failAtRow": 4321}))
    source.open()
    sink = SmallLoads(backend.endpoint(table, ledger=False))
    sink.open(
        pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(12, 2))])
    )
    sink.defer_writes()
    with pytest.raises(TerminalConnectorError, match="injected failure at row 4321"):
        move(source, sink)
    assert loaders() == []
    conn = mysql.open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, name FROM `{table}`")
            assert cur.fetchall() == ((-1, "seed"),)
    finally:
        conn.close()


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_a_cancel_mid_write_stops_the_loader_and_leaves_the_sink_unchanged(
    make_backend: Factory, end: str
) -> None:
    backend = make_backend("mysql")
    table = create(backend, seed=5)
    sink = deferred(backend, table, writeMode="overwrite")
    try:
        for batch in batches(10, 40, first=100):
            sink.write(batch)
        assert loaders()  # a statement is in flight, its data still open
        getattr(sink, end)()  # the runner rolls back on a cancel (then closes)
        assert loaders() == []
    finally:
        sink.close()
    assert loaders() == []
    assert content(backend, table) == stored(rows(1, 5))


def test_an_abort_cuts_a_load_the_server_does_not_end(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = create(backend)
    blocker = mysql.open_connection(backend.connect)
    try:
        with blocker.cursor() as cur:  # holds the key the load wants, uncommitted
            cur.execute(f"INSERT INTO `{table}` (id, code) VALUES (3, 'other session')")
        sink = deferred(backend, table)
        try:
            sink.write(pa.RecordBatch.from_pylist(rows(1, 5), schema=SCHEMA))
            deadline = time.monotonic() + 10
            while not _waiting_for_lock(backend):
                assert time.monotonic() < deadline, "the load never waited for the lock"
                time.sleep(0.05)
            started = time.monotonic()
            sink.rollback()  # the server cannot end the statement: the session is cut
            assert time.monotonic() - started < SmallLoads.abort_seconds + 5
            assert loaders() == []
        finally:
            sink.close()
    finally:
        blocker.rollback()
        blocker.close()
    assert content(backend, table) == []


def _waiting_for_lock(backend: Backend) -> bool:
    conn = mysql.open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.innodb_trx"
                " WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE 'LOAD DATA%%'"
            )
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def test_a_lost_connection_mid_load_is_a_transient_error(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = create(backend, seed=3)
    sink = deferred(backend, table)
    try:
        sink.write(batches(1, 20, first=10)[0])
        killer = mysql.open_connection(backend.connect)
        try:
            with killer.cursor() as cur:
                cur.execute(
                    "SELECT id FROM information_schema.processlist"
                    " WHERE info LIKE 'LOAD DATA LOCAL INFILE %%exchangis-stream-%%'"
                    f" AND info LIKE '%%{table}%%'"
                )
                (victim,) = cur.fetchone()
                cur.execute(f"KILL CONNECTION {int(victim)}")
        finally:
            killer.close()
        with pytest.raises(TransientConnectorError, match="write mysql"):
            for batch in batches(20, 20, first=100):
                sink.write(batch)
            sink.flush()
        assert loaders() == []
        sink.rollback()
    finally:
        sink.close()
    assert loaders() == []
    assert content(backend, table) == stored(rows(1, 3))


def test_errors_of_the_statement_keep_their_class(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = create(backend)
    sink = deferred(backend, table)
    try:
        with pytest.raises(ExchangisError) as caught:  # the column is gone under the load
            drop = mysql.open_connection(backend.connect)
            try:
                with drop.cursor() as cur:
                    cur.execute(f"ALTER TABLE `{table}` DROP COLUMN ratio")
            finally:
                drop.close()
            sink.write(batches(1, 10)[0])
            sink.flush()
        assert type(caught.value) is TerminalConnectorError
        assert "write mysql" in caught.value.message
    finally:
        sink.close()
    assert loaders() == []


STALLING = """
import json, os, signal, sys
import pyarrow as pa
from exchangis.connectors.base import Endpoint
from exchangis.connectors.mysql import MySqlSink

spec = json.loads(sys.argv[1])
sink_class = type("Stalling", (MySqlSink,), {"idle_seconds": spec["idle"]})
options = {"writeMode": "overwrite", "ledger": False}
sink = sink_class(Endpoint("MYSQL", spec["connect"], spec["table"], options=options))
batch = pa.record_batch({"id": [99], "v": ["from the stalled sink"]})
sink.open(batch.schema)
sink.defer_writes()
sink.write(batch)  # its LOAD DATA is in flight, the statement's data still open
print("written", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
try:
    sink.commit()
    print(json.dumps({"committed": True}), flush=True)
except Exception as exc:
    print(json.dumps({"committed": False, "error": type(exc).__name__}), flush=True)
finally:
    sink.close()
"""


def test_a_sink_stalled_mid_load_is_ended_by_the_server(make_backend: Factory) -> None:
    import pymysql

    idle = 3
    backend = make_backend("mysql")
    table = backend.new_table("stall")
    conn = mysql.open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{table}` (id BIGINT, v TEXT)")
            cur.execute(f"INSERT INTO `{table}` VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        conn.commit()
    finally:
        conn.close()
    spec = {"connect": backend.connect, "table": table, "idle": idle}
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", STALLING, json.dumps(spec)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    other = mysql.open_connection(backend.connect)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, "the sink process did not stop"
            time.sleep(0.02)
        with other.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute(f"DELETE FROM `{table}`")  # the stalled sink holds every row
            other.rollback()
            cur.execute("SET SESSION innodb_lock_wait_timeout = 30")
            start = time.monotonic()
            deleted = cur.execute(f"DELETE FROM `{table}`")
            waited = time.monotonic() - start
            other.commit()
        assert deleted == 3  # the stalled sink's DELETE and its load were rolled back
        assert waited < idle + 5
        os.kill(child.pid, signal.SIGCONT)
        outcome = json.loads(child.stdout.readline())
        assert child.wait(timeout=30) == 0
        assert outcome == {"committed": False, "error": "TransientConnectorError"}
    finally:
        other.close()
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


# --- bounded in bytes ---------------------------------------------------------------------------


def wide_batch(rows_: int, width: int) -> pa.RecordBatch:
    """Return ``rows_`` rows of an id and ``width`` characters of text."""
    return pa.record_batch(
        {"id": list(range(rows_)), "body": [f"{i:08d}" + "x" * (width - 8) for i in range(rows_)]}
    )


def test_runner_batches_of_wide_rows_are_cut_to_the_byte_budget() -> None:
    source = [wide_batch(2000, 4096), wide_batch(10, 100), wide_batch(1, 3 * 2**20)]
    limit = 2**20
    out = list(within_bytes(iter(source), limit))
    wide, narrow, huge = out[:-2], out[-2], out[-1]
    assert len(wide) == 8 and sum(b.num_rows for b in wide) == 2000  # 8 MB of rows, cut
    assert all(0.8 * limit < b.nbytes <= limit for b in wide[:-1])
    assert wide[-1].nbytes <= limit
    assert narrow.num_rows == 10  # small: left whole
    assert huge.num_rows == 1 and huge.nbytes > limit  # a row is never cut
    ids = pa.Table.from_batches(out).column("id").to_pylist()
    assert ids == [*range(2000), *range(10), 0]  # every row once, in order


def test_bulk_reads_ask_for_batches_of_a_few_mib_whatever_the_rows_width() -> None:
    keyed = pa.schema([("id", pa.int64()), ("body", pa.string()), ("exg_bulk_key", pa.int64())])
    chunks = bulk.Chunks(keyed)
    # before any row is read, a text value counts FIRST_VALUE_BYTES: a few rows a batch
    assert chunks.batch_rows() * chunks.row_bytes <= bulk.READ_BATCH_BYTES
    assert chunks.batch_rows() >= 1
    for width in (100, 4096, 2**20, 64 * 2**20):
        chunks.row_bytes = float(width + chunks.fixed_bytes)  # the widest rows read so far
        rows_ = chunks.batch_rows()
        assert rows_ == 1 or rows_ * chunks.row_bytes <= bulk.READ_BATCH_BYTES
        assert rows_ == bulk.READ_BATCH_ROWS or (rows_ + 1) * chunks.row_bytes > (
            bulk.READ_BATCH_BYTES
        )
    chunks.row_bytes = 100.0
    assert chunks.batch_rows() == bulk.READ_BATCH_ROWS  # narrow rows: the row cap


def test_bulk_reads_of_wide_rows_yield_batches_within_the_budget(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = backend.new_table("wide")
    with postgres_connection(backend) as conn:
        conn.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, body text)')
        conn.execute(
            f'INSERT INTO "{table}" SELECT g, repeat(md5(g::text), 64)'
            " FROM generate_series(1, 6000) AS g"
        )
    source = PostgresSource(backend.endpoint(table))
    try:
        source.open()
        assert source.bulk
        got = list(source.batches(100_000))
    finally:
        source.close()
    assert sum(b.num_rows for b in got) == 6000
    assert max(b.nbytes for b in got) <= bulk.READ_BATCH_BYTES
    assert any(b.num_rows > 500 for b in got)  # sized by the rows read, not the first guess


def postgres_connection(backend: Backend) -> Any:
    """Return an autocommit psycopg connection of ``backend``."""
    from exchangis.connectors import postgres

    conn = postgres.open_connection(backend.connect)
    conn.autocommit = True
    return conn


def test_a_feed_holds_at_most_its_limit_and_a_stopped_consumer_frees_the_producer() -> None:
    feed: bulk.Feed[bytes] = bulk.Feed(10)
    queued: list[int] = []
    taken: list[bytes] = []

    def consume() -> None:
        while (item := feed.get()) is not None:
            taken.append(item)
            time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for n in range(50):
        assert feed.put(bytes([n]) * 4, 4)
        queued.append(feed._queued)
    assert feed.put(b"x" * 25, 25)  # larger than the limit: it waits alone, then goes
    feed.close()
    consumer.join(5)
    assert not consumer.is_alive()
    assert max(queued) <= 10
    assert b"".join(taken) == b"".join(bytes([n]) * 4 for n in range(50)) + b"x" * 25

    stopped: bulk.Feed[bytes] = bulk.Feed(4)
    assert stopped.put(b"1234", 4)
    waiting = threading.Thread(target=lambda: queued.append(int(stopped.put(b"5678", 4))))
    waiting.start()
    time.sleep(0.05)
    assert waiting.is_alive()  # full: the producer waits
    stopped.stop()  # the consumer failed: the producer is let go, its data dropped
    waiting.join(5)
    assert queued[-1] == 0


def test_an_aborted_feed_stops_its_consumer() -> None:
    feed: bulk.Feed[bytes] = bulk.Feed(10)
    feed.put(b"ab", 2)
    feed.abort()
    with pytest.raises(bulk.FeedAborted):
        feed.get()


# --- a hostile server gets no file -------------------------------------------------------------


class AskingForTheStream(RogueMySql):
    """A server that asks for the made-up file name of the ``LOAD DATA`` it got."""

    @property
    def wanted(self) -> str:
        found = re.search(rb"INFILE '([^']*)'", self.statements[-1])
        return found.group(1).decode() if found else ""

    @wanted.setter
    def wanted(self, value: str) -> None:
        del value


def _rogue_connect(port: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "username": "u", "password": "p"}


def test_a_stream_sends_its_pieces_and_no_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.key"
    secret.write_bytes(b"worker-secret")
    statement = "LOAD DATA LOCAL INFILE %s INTO TABLE t"
    for rogue, refused in (
        (RogueMySql(str(secret), lambda s: s.startswith(b"LOAD DATA")), True),
        (AskingForTheStream("", lambda s: s.startswith(b"LOAD DATA")), False),
    ):
        try:
            conn = mysql.open_connection(_rogue_connect(rogue.port), local_files=True)
            pieces: list[bytes | memoryview] = [memoryview(b"1\tone\n"), b"2\ttwo\n"]
            with conn.cursor() as cursor:
                if refused:
                    with pytest.raises(Exception, match="refused the server's request"):
                        mysql.stream_local(conn, cursor, statement, iter(pieces))
                    assert b"worker-secret" not in b"".join(rogue.received)
                else:
                    mysql.stream_local(conn, cursor, statement, iter(pieces))
                    assert b"".join(rogue.received) == b"1\tone\n2\ttwo\n"
            assert conn.stream is None and conn._local_infile is False
        finally:
            rogue.close()
