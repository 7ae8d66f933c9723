"""A sink whose worker stops talking mid-transaction is ended by the server, so a retry goes on.

Each test starts a real worker-like process that opens a sink in overwrite mode (its ``DELETE``
locks every row), writes a row and stops itself with SIGSTOP: its socket stays open and its host
answers TCP, as when a worker is frozen or its host half-gone. Another session's ``DELETE`` is
first blocked by it, then proceeds once the server has ended the stalled session after the
(short, for the test) idle timeout; the stalled sink, resumed, cannot commit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exchangis.connectors import mysql, postgres
from exchangis.connectors.base import Endpoint
from tests.connectors.conftest import Backend

Factory = Callable[[str], Backend]

ROOT = Path(__file__).resolve().parents[2]
IDLE = 3
"""Seconds the stalled sink's session may idle in its transaction (the test's timeout)."""

CHILD = """
import json, os, signal, sys
import pyarrow as pa
from exchangis.connectors.base import Endpoint
from exchangis.connectors.mysql import MySqlSink
from exchangis.connectors.postgres import PostgresSink

spec = json.loads(sys.argv[1])
base = PostgresSink if spec["type"] == "POSTGRESQL" else MySqlSink
sink_class = type("Stalling", (base,), {"idle_seconds": spec["idle"]} if spec["own_idle"] else {})
options = {"writeMode": "overwrite", "bulk": spec["bulk"], "ledger": False}
sink = sink_class(Endpoint(spec["type"], spec["connect"], spec["table"], options=options))
batch = pa.record_batch({"id": [99], "v": ["from the stalled sink"]})
sink.open(batch.schema)
sink.write(batch)
print("written", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
try:
    sink.commit()
    print(json.dumps({"committed": True}), flush=True)
except Exception as exc:
    print(json.dumps({"committed": False, "error": type(exc).__name__, "message": str(exc)}),
          flush=True)
finally:
    sink.close()
"""


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; each is killed (and reaped) at teardown."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def stalled_sink(
    procs: list[subprocess.Popen[str]], backend: Backend, table: str, *, bulk: bool, own_idle: bool
) -> subprocess.Popen[str]:
    """Start a process that writes a row to ``table`` in overwrite mode, then stops itself."""
    spec = {
        "type": backend.type,
        "connect": backend.connect,
        "table": table,
        "bulk": bulk,
        "idle": IDLE,
        "own_idle": own_idle,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written"
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "T":  # stopped: its socket open, its host alive
        assert time.monotonic() < deadline, "the sink process did not stop"
        time.sleep(0.02)
    return proc


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def resumed(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Let the stopped sink go on and return what its commit did."""
    os.kill(proc.pid, signal.SIGCONT)
    assert proc.stdout is not None
    outcome: dict[str, Any] = json.loads(proc.stdout.readline())
    assert proc.wait(timeout=30) == 0
    return outcome


def seeded(backend: Backend) -> str:
    """Return a new table of three committed rows."""
    table = backend.new_table("stall")
    quoted = f'"{table}"' if backend.kind == "postgres" else f"`{table}`"
    statements = [
        f"CREATE TABLE {quoted} (id BIGINT, v TEXT)",
        f"INSERT INTO {quoted} VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    ]
    if backend.kind == "postgres":
        with postgres.open_connection(backend.connect) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
    else:
        conn = mysql.open_connection(backend.connect)
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.commit()
        conn.close()
    return table


@pytest.mark.parametrize("bulk", [True, False], ids=["adbc", "psycopg"])
def test_postgres_ends_a_stalled_sinks_transaction_and_a_delete_proceeds(
    make_backend: Factory, started: list[subprocess.Popen[str]], bulk: bool
) -> None:
    import psycopg

    backend = make_backend("postgres")
    table = seeded(backend)
    name = f"exg-stalled-{uuid.uuid4().hex[:8]}"
    # the data source's own options win over the connector's 10 minutes
    backend.connect = {
        **backend.connect,
        "params": {
            "application_name": name,
            "options": f"-c idle_in_transaction_session_timeout={IDLE}s",
        },
    }
    stalled = stalled_sink(started, backend, table, bulk=bulk, own_idle=False)

    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True
    ) as other:
        assert _sessions(other, name) == 1
        other.execute("SET lock_timeout = '500ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute(f'DELETE FROM "{table}"')  # the stalled sink holds every row
        other.execute("SET lock_timeout = '30s'")
        start = time.monotonic()
        deleted = other.execute(f'DELETE FROM "{table}"').rowcount
        waited = time.monotonic() - start
        assert deleted == 3  # the stalled sink's DELETE and its row were rolled back
        assert waited < IDLE + 5
        assert _sessions(other, name) == 0
        outcome = resumed(stalled)
        assert outcome["committed"] is False and outcome["error"] == "TransientConnectorError"
        assert "terminating connection due to idle-in-transaction timeout" in outcome["message"]
        assert other.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,)


def _sessions(conn: Any, application_name: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
    ).fetchone()
    return int(row[0])


def test_mysql_closes_a_stalled_sinks_session_and_a_delete_proceeds(
    make_backend: Factory, started: list[subprocess.Popen[str]]
) -> None:
    import pymysql

    backend = make_backend("mysql")
    table = seeded(backend)
    stalled = stalled_sink(started, backend, table, bulk=True, own_idle=True)

    other = mysql.open_connection(backend.connect)
    try:
        with other.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            with pytest.raises(pymysql.err.OperationalError) as blocked:
                cur.execute(f"DELETE FROM `{table}`")  # the stalled sink holds every row
            assert blocked.value.args[0] == 1205  # lock wait timeout
            other.rollback()
            cur.execute("SET SESSION innodb_lock_wait_timeout = 30")
            start = time.monotonic()
            deleted = cur.execute(f"DELETE FROM `{table}`")
            waited = time.monotonic() - start
            other.commit()
        assert deleted == 3  # the stalled sink's DELETE and its row were rolled back
        assert waited < IDLE + 5
        outcome = resumed(stalled)
        assert outcome["committed"] is False and outcome["error"] == "TransientConnectorError"
        with other.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM `{table}`")
            assert cur.fetchone() == (0,)
    finally:
        other.close()


def test_sessions_start_with_keepalives_and_the_idle_timeouts(make_backend: Factory) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    connect = make_backend("postgres").connect
    settings = {
        "idle_in_transaction_session_timeout": "30min",
        "tcp_keepalives_idle": "60",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "6",
        "TimeZone": "UTC",
    }
    with postgres.open_connection(connect) as conn:
        assert {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in settings} == settings
        libpq = conn.info.get_parameters()
        assert (libpq["keepalives"], libpq["keepalives_idle"]) == ("1", "60")
        assert (libpq["keepalives_interval"], libpq["keepalives_count"]) == ("10", "6")
    with adbc.connect(postgres.adbc_uri(connect, None)) as conn, conn.cursor() as cur:
        for key, value in settings.items():
            cur.execute(f"SELECT current_setting('{key}')")
            assert cur.fetchone() == (value,)
    assert "keepalives_idle=60" in postgres.adbc_uri(connect, None)

    sink = mysql.MySqlSink(Endpoint("MYSQL", make_backend("mysql").connect, "unused"))
    conn = sink._connect()  # the session a sink writes in
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT @@SESSION.wait_timeout, @@SESSION.net_read_timeout,"
                " @@SESSION.innodb_lock_wait_timeout"
            )
            assert cur.fetchone() == (1800, 1800, 1860)
    finally:
        conn.close()
