"""A hostile database named by a data source cannot make a worker send its local files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymysql.err import OperationalError

from exchangis.connectors import mysql
from tests.rogue import RogueMySql

SECRET = b"worker-secret-key-material"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file the worker holds (think: its secret key)."""
    path = tmp_path / "secret.key"
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def asks_always(secret_file: Path) -> Iterator[RogueMySql]:
    """A server that asks for the secret file in answer to every statement (but the handshake's
    SET NAMES, whose answer pymysql reads as a plain OK)."""
    rogue = RogueMySql(str(secret_file), lambda statement: not statement.startswith(b"SET NAMES"))
    yield rogue
    rogue.close()


def _connect(port: int, params: dict | None = None) -> dict:
    return {"host": "127.0.0.1", "port": port, "username": "u", "password": "p", "params": params}


def test_the_connection_test_sends_no_file_even_when_a_param_asks_for_local_files(
    asks_always: RogueMySql,
) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever pymysql raises, nothing is sent
        mysql.test_connection(_connect(asks_always.port, {"local_infile": True}))
    assert asks_always.statements  # the server was asked something, and asked back
    assert SECRET not in b"".join(asks_always.received)


def test_a_bulk_sink_connection_sends_no_file_outside_its_own_load(
    asks_always: RogueMySql,
) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the session's first statement is refused
        mysql.open_connection(_connect(asks_always.port), local_files=True)
    assert asks_always.statements
    assert SECRET not in b"".join(asks_always.received)


def test_during_a_load_the_server_gets_that_file_and_no_other(
    secret_file: Path, tmp_path: Path
) -> None:
    ours = tmp_path / "batch.tsv"
    ours.write_text("1\tok\n")
    statement = "LOAD DATA LOCAL INFILE %s INTO TABLE t"
    for wanted, expect_refusal in ((str(secret_file), True), (str(ours), False)):
        rogue = RogueMySql(wanted, lambda s: s.startswith(b"LOAD DATA"))
        try:
            conn = mysql.open_connection(_connect(rogue.port), local_files=True)
            with conn.cursor() as cursor:
                if expect_refusal:
                    with pytest.raises(OperationalError, match="refused the server's request"):
                        mysql.load_local(conn, cursor, statement, str(ours))
                    assert SECRET not in b"".join(rogue.received)
                else:  # the file of the statement itself is sent: the bulk path works
                    mysql.load_local(conn, cursor, statement, str(ours))
                    assert b"".join(rogue.received) == b"1\tok\n"
        finally:
            rogue.close()
