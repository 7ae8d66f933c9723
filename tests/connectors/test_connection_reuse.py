"""PostgreSQL connections: one ADBC database object per connection per process, reused by the
next task, whose sink also takes over a session whose last transaction committed (never
another: a task's transaction is never handed on) for ``idle_seconds``; replaced when the data
source's password or host changes; libpq never reads a password file nor warns about one.

The local PostgreSQL trusts every login, so a password would go unchecked: :class:`PasswordGate`
stands in front of it and asks each client for a clear-text password first (as a server with
``password`` authentication does), then hands the session over to the real server.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from exchangis.connectors import postgres
from exchangis.connectors.base import Endpoint
from exchangis.connectors.postgres import AdbcDatabases, adbc_uri, open_connection
from exchangis.connectors.registry import Registry
from exchangis.errors import ConnectorError, TransientConnectorError
from tests.connectors.conftest import Backend
from tests.services import postgres_params

pytest.importorskip("adbc_driver_postgresql")

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", "b", "c"])})


class PasswordGate:
    """A loopback front of a PostgreSQL server that asks each client for ``password`` (in
    clear) before it replays the client's startup to the server and relays the session."""

    def __init__(self, target: tuple[str, int], password: str, host: str = "127.0.0.1") -> None:
        self.target = target
        self.password = password
        """The password the next login must give (a test changes it as a server's would)."""
        self.logins = 0
        """Logins let through: one per new server session."""
        self.refused = 0
        self.server = socket.create_server((host, 0))
        self.host = host
        self.port: int = self.server.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(client,), daemon=True).start()

    @staticmethod
    def _exactly(conn: socket.socket, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _session(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError, ConnectionError), client:
            while True:  # refuse TLS and GSS encryption; a cancel goes straight through
                head = self._exactly(client, 4)
                body = self._exactly(client, struct.unpack("!i", head)[0] - 4)
                code = struct.unpack("!i", body[:4])[0]
                if code in (SSL_REQUEST, GSS_REQUEST):
                    client.sendall(b"N")
                    continue
                if code == CANCEL_REQUEST:
                    with socket.create_connection(self.target) as server:
                        server.sendall(head + body)
                    return
                startup = head + body
                break
            client.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            tag = self._exactly(client, 1)
            size = struct.unpack("!i", self._exactly(client, 4))[0]
            given = self._exactly(client, size - 4).rstrip(b"\0").decode()
            if tag != b"p" or given != self.password:
                self.refused += 1
                fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0"
                client.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                return
            self.logins += 1
            with socket.create_connection(self.target) as server:
                server.sendall(startup)
                self._relay(client, server)

    @staticmethod
    def _relay(client: socket.socket, server: socket.socket) -> None:
        def pump(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(server, client), daemon=True)
        back.start()
        pump(client, server)
        back.join()

    def close(self) -> None:
        """Stop taking connections."""
        self._closed.set()
        self.server.close()


@pytest.fixture
def gate() -> Iterator[Callable[..., PasswordGate]]:
    """Return a factory of gates in front of the local PostgreSQL; closes them at the end."""
    params = postgres_params()
    made: list[PasswordGate] = []

    def make(password: str, host: str = "127.0.0.1") -> PasswordGate:
        made.append(PasswordGate((params["host"], int(params["port"])), password, host))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def postgres_backend(registry: Registry) -> Iterator[Backend]:
    """The local PostgreSQL, straight (to create and drop tables)."""
    backend = Backend("postgres", registry, postgres_params(), "POSTGRESQL")
    yield backend
    backend.drop()


def run_task(registry: Registry, connect: dict[str, Any], table: str) -> None:
    """Do what one task does to a sink: fence, open, write, commit, close."""
    with registry.sink(Endpoint("POSTGRESQL", connect, table)) as sink:
        sink.open(ROWS.schema)
        sink.write(ROWS.to_batches()[0])
        sink.commit()


def count_rows(backend: Backend, table: str) -> int:
    """Return the rows of ``table``."""
    return backend.read(table).num_rows


def test_the_next_task_reuses_the_database_object_and_the_committed_session(
    registry: Registry, postgres_backend: Backend, gate: Callable[..., PasswordGate]
) -> None:
    front = gate("first-secret")
    connect = {**postgres_backend.connect, "port": front.port, "password": "first-secret"}
    table = postgres_backend.new_table("reuse")
    made, reused = postgres.ADBC_DATABASES.made, postgres.ADBC_DATABASES.reused

    run_task(registry, connect, table)
    assert postgres.ADBC_DATABASES.made == made + 1
    first_logins = front.logins  # the database object's catalog read, and the session

    run_task(registry, connect, table)  # within idle_seconds: the committed session goes on
    assert postgres.ADBC_DATABASES.made == made + 1, "the second task made a database object"
    assert front.logins == first_logins, "the second task logged in again"
    assert postgres.ADBC_DATABASES.reused == reused + 1
    assert count_rows(postgres_backend, table) == 2 * ROWS.num_rows


def test_a_session_whose_transaction_did_not_commit_is_never_handed_on(
    registry: Registry, postgres_backend: Backend, gate: Callable[..., PasswordGate]
) -> None:
    front = gate("secret")
    connect = {**postgres_backend.connect, "port": front.port, "password": "secret"}
    table = postgres_backend.new_table("unclean")
    run_task(registry, connect, table)
    with registry.sink(Endpoint("POSTGRESQL", connect, table)) as sink:  # takes that session
        sink.open(ROWS.schema)
        sink.write(ROWS.to_batches()[0])
        sink.rollback()
    logins = front.logins
    run_task(registry, connect, table)  # the rolled-back session was closed: a new login
    assert front.logins == logins + 1
    assert count_rows(postgres_backend, table) == 2 * ROWS.num_rows


def test_an_idle_session_is_closed_after_idle_seconds() -> None:
    params = postgres_params()
    name = f"exg-idle-{uuid.uuid4().hex[:8]}"
    uri = adbc_uri({**params, "params": {"application_name": name}}, None)
    databases = AdbcDatabases(idle_seconds=0.3)
    try:
        first = databases.connect(uri)
        first.commit()
        databases.give_back(uri, first)
        assert databases.connect(uri) is first  # handed on within idle_seconds
        first.commit()
        databases.give_back(uri, first)
        assert sessions(params, name) == 1
        deadline = time.monotonic() + 5
        while sessions(params, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sessions(params, name) == 0, "the idle session was not closed"
        fresh = databases.connect(uri)
        assert fresh is not first
        fresh.close()
    finally:
        databases.close()


def sessions(params: dict[str, Any], application: str) -> int:
    """Return the server's sessions of ``application``."""
    with psycopg.connect(
        host=params["host"],
        port=params["port"],
        user=params["username"],
        dbname=params["database"],
        autocommit=True,
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_changed_password_takes_effect_on_the_next_task(
    registry: Registry,
    postgres_backend: Backend,
    gate: Callable[..., PasswordGate],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres.ADBC_DATABASES, "idle_seconds", 0.0)  # a later task: no session
    front = gate("first-secret")
    connect = {**postgres_backend.connect, "port": front.port, "password": "first-secret"}
    table = postgres_backend.new_table("password")
    run_task(registry, connect, table)
    made = postgres.ADBC_DATABASES.made

    front.password = "second-secret"  # the server's password changed...
    with pytest.raises(ConnectorError) as refused:  # ...and the kept object lets nobody in
        run_task(registry, connect, table)
    assert "first-secret" not in str(refused.value)
    assert front.refused >= 1

    run_task(registry, {**connect, "password": "second-secret"}, table)  # the data source too
    assert postgres.ADBC_DATABASES.made == made + 1
    assert count_rows(postgres_backend, table) == 2 * ROWS.num_rows


def test_a_changed_host_takes_effect_on_the_next_task(
    registry: Registry, postgres_backend: Backend, gate: Callable[..., PasswordGate]
) -> None:
    first = gate("secret")
    try:
        second = gate("secret", host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound on this host")
    connect = {**postgres_backend.connect, "port": first.port, "password": "secret"}
    table = postgres_backend.new_table("host")
    run_task(registry, connect, table)
    made = postgres.ADBC_DATABASES.made

    run_task(registry, {**connect, "host": second.host, "port": second.port}, table)
    assert second.logins >= 1, "the task went to the old host"
    assert postgres.ADBC_DATABASES.made == made + 1
    assert count_rows(postgres_backend, table) == 2 * ROWS.num_rows


def test_an_evicted_database_object_closes_after_its_last_connection() -> None:
    params = postgres_params()
    databases = AdbcDatabases(size=1)
    first = databases.connect(adbc_uri(params, None))
    with contextlib.closing(first):
        second = databases.connect(adbc_uri({**params, "params": {"application_name": "b"}}, None))
        second.close()
        assert databases.made == 2
        with first.cursor() as cursor:  # the evicted object still serves its open connection
            cursor.execute("SELECT 1")
            assert cursor.fetchall() == [(1,)]
    again = databases.connect(adbc_uri(params, None))  # evicted: made again
    again.close()
    assert databases.made == 3
    databases.close()


def test_no_password_file_is_read_nor_warned_about(
    registry: Registry,
    postgres_backend: Backend,
    gate: Callable[..., PasswordGate],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    front = gate("from-a-password-file")
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:from-a-password-file\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".pgpass").write_text("*:*:*:*:from-a-password-file\n")
    (tmp_path / ".pgpass").chmod(0o600)
    table = postgres_backend.new_table("passfile")
    gated = {**postgres_backend.connect, "port": front.port, "password": ""}

    with pytest.raises(ConnectorError):  # no password given, none looked up on the worker
        run_task(registry, gated, table)
    with pytest.raises(psycopg.OperationalError):
        open_connection(gated).close()
    assert front.logins == 0

    run_task(registry, postgres_backend.connect, table)  # trusted, no password: both drivers
    open_connection(postgres_backend.connect).close()
    run_task(registry, {**postgres_backend.connect, "params": {"sslmode": "disable"}}, table)
    assert "password file" not in capfd.readouterr().err


def test_a_waiting_session_the_server_ended_fails_one_task_as_transient_then_is_gone(
    registry: Registry, postgres_backend: Backend
) -> None:
    """A server restart (here: the waiting session terminated) between two tasks: the next
    task's first statement fails as a lost connection, which the runner retries; that session
    is closed, not handed on, so the retry logs in afresh and lands its rows once."""
    name = f"exg-ended-{uuid.uuid4().hex[:8]}"
    connect = {**postgres_backend.connect, "params": {"application_name": name}}
    table = postgres_backend.new_table("ended")
    run_task(registry, connect, table)
    with psycopg.connect(
        host=connect["host"],
        port=connect["port"],
        user=connect["username"],
        dbname=connect["database"],
        autocommit=True,
    ) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (name,),
        ).fetchone()
    assert ended == (1,)  # the one session waiting for the next task
    with pytest.raises(TransientConnectorError):
        run_task(registry, connect, table)
    run_task(registry, connect, table)
    assert count_rows(postgres_backend, table) == 2 * ROWS.num_rows
