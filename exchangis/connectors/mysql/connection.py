"""MySQL and MariaDB sessions: pymysql connections (one shared TLS context, local files only
through :func:`load_local` and :func:`stream_local`), the session settings of sources and sinks,
and the classification of the driver's errors."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from exchangis.connectors.base import check_host, connect_timeout
from exchangis.connectors.driver import probe_server
from exchangis.errors import (
    ConnectorError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
)

log = logging.getLogger(__name__)

NAME = "MYSQL"

# Server error codes worth a retry: connection lost/refused, deadlock, lock wait, shutdown.
_TRANSIENT_CODES = frozenset(
    {1040, 1053, 1205, 1213, 1317, 2002, 2003, 2005, 2006, 2012, 2013, 2055}
)
# Server error codes of a row's own fault: NULL in NOT NULL, duplicate key, out of range,
# truncated, bad date or number, too long, foreign key, CHECK constraint.
_RECORD_CODES = frozenset(
    {1048, 1062, 1138, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1451, 1452, 1690, 3819, 4025}
)
# Extra connect params passed through to pymysql; others (JDBC-style useSSL..., and on purpose
# local_infile and the client certificate files ssl_cert/ssl_key, which would let a data source
# read a worker's files or borrow its identity) are ignored.
_PASSTHROUGH = frozenset(
    {"connect_timeout", "read_timeout", "write_timeout", "ssl_ca"}
    | {"ssl_verify_cert", "ssl_verify_identity", "ssl_disabled"}
)
_SESSION = "SET time_zone = '+00:00', net_write_timeout = 3600, net_read_timeout = 3600"
IDLE_SECONDS = 1800
"""A sink's session idle this long (``wait_timeout``), or silent this long in the middle of a
statement (``net_read_timeout``), is closed by the server and its transaction rolled back, so
that a worker host that vanished or stopped mid-task does not hold a table's rows against a
retry (as PostgreSQL's ``idle_in_transaction_session_timeout``). A sink goes that idle only
while its source reads one batch, which takes far less."""
LOCK_WAIT_MARGIN = 60
"""A sink waits for a row lock ``IDLE_SECONDS`` and this much more (``innodb_lock_wait_timeout``,
50 s by default): a retry outwaits the session of a vanished attempt rather than failing."""


def sink_session(idle_seconds: int = IDLE_SECONDS) -> str | None:
    """Return the ``SET SESSION`` of a sink's timeouts (see ``IDLE_SECONDS``; 0: None, the
    server's own)."""
    if idle_seconds <= 0:
        return None
    return (
        f"SET SESSION wait_timeout = {int(idle_seconds)}, net_read_timeout = {int(idle_seconds)},"
        f" innodb_lock_wait_timeout = {int(idle_seconds) + LOCK_WAIT_MARGIN}"
    )


def classify(exc: BaseException) -> type[ConnectorError] | None:
    """Return the connector error class for a pymysql exception (None: not a driver error)."""
    import pymysql

    if not isinstance(exc, pymysql.err.MySQLError):
        return None
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in _TRANSIENT_CODES:
        return TransientConnectorError
    if code in _RECORD_CODES:
        return RecordError
    if isinstance(exc, pymysql.err.InterfaceError) or (
        isinstance(exc, pymysql.err.OperationalError) and code is None
    ):
        return TransientConnectorError
    return TerminalConnectorError


@functools.cache
def _connection_class() -> type:
    """Return pymysql's connection class, sharing one TLS context among all connections and
    sending the server no local file but the one of our own ``LOAD DATA LOCAL``.

    Without TLS options pymysql tries TLS (and falls back to plain) with a fresh default
    context each time, and loading the CA store costs about 50 ms a connection. The shared
    context is made the same way, once; explicit ``ssl_*`` params still get their own.

    A MySQL server may answer any statement with "send me local file X", and pymysql sends X
    when local files are on: a hostile server named by a data source would read the worker's
    files (its keys). Local files are off but during :func:`load_local` (see ``allow_file``),
    and then only the file that statement names may be asked for. :func:`stream_local` sends
    bytes it is handed instead of a file (``stream``): no file is opened at all.
    """
    import pymysql.connections
    from pymysql.err import OperationalError

    shared: dict[str, Any] = {}

    class StreamResult(pymysql.connections.MySQLResult):
        """The result of a ``LOAD DATA LOCAL`` whose file's content is ``connection.stream``."""

        def _read_load_local_packet(self, first_packet: Any) -> None:
            _load_stream(self, self.connection)

    class Connection(pymysql.connections.Connection):
        allowed_file: str | None = None
        """The only file the server may ask for (while a ``LOAD DATA LOCAL`` runs)."""
        stream: Iterator[bytes | memoryview] | None = None
        """What a ``LOAD DATA LOCAL`` sends as its file's content (:func:`stream_local`)."""

        def _read_query_result(self, unbuffered: bool = False) -> Any:
            if self.stream is None:
                return super()._read_query_result(unbuffered)
            self._result = None
            result = StreamResult(self)
            result.read()
            self._result = result
            if result.server_status is not None:
                self.server_status = result.server_status
            return result.affected_rows

        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if sslp != {}:
                return super()._create_ssl_ctx(sslp)
            if "ctx" not in shared:
                shared["ctx"] = super()._create_ssl_ctx({})
            return shared["ctx"]

        def _read_packet(self, *args: Any, **kwargs: Any) -> Any:
            packet = super()._read_packet(*args, **kwargs)
            if self.allowed_file is not None and packet.is_load_local_packet():
                asked = packet.get_all_data()[1:]
                if asked != self.allowed_file.encode():
                    self._local_infile = False
                    raise OperationalError(
                        2027, f"refused the server's request for local file {asked[:200]!r}"
                    )
            return packet

    return Connection


def _load_stream(result: Any, conn: Any) -> None:
    """Answer the server's request for the file of a ``LOAD DATA LOCAL`` with ``conn.stream``
    and read the statement's outcome into ``result`` (pymysql's ``MySQLResult``)."""
    from pymysql.err import OperationalError

    if not conn._local_infile:
        raise OperationalError(2068, "local files are off")
    _send_stream(conn)
    conn.write_packet(b"")  # the end of the file: the server ends the statement
    ok_packet = conn._read_packet()
    if not ok_packet.is_ok_packet():
        raise OperationalError(2014, "Commands out of sync")
    result._read_ok_packet(ok_packet)


def _send_stream(conn: Any) -> None:
    """Send the pieces of ``conn.stream`` as the file a ``LOAD DATA LOCAL`` asked for, in
    packets of ``STREAM_PACKET_BYTES``; when that fails, end the file (the server then ends the
    statement) unless the connection is gone, and raise."""
    try:
        for piece in conn.stream:
            view = memoryview(piece)
            for start in range(0, len(view), STREAM_PACKET_BYTES):
                conn.write_packet(view[start : start + STREAM_PACKET_BYTES])
    except BaseException:
        if conn._sock is not None:
            conn.write_packet(b"")
            conn._read_packet()
        raise


def load_local(conn: Any, cursor: Any, statement: str, path: str) -> int:
    """Run a ``LOAD DATA LOCAL INFILE %s`` ``statement`` of file ``path`` on ``conn`` (opened
    with ``local_files=True``); the server may ask for that file only, and only meanwhile."""
    conn.allowed_file, conn._local_infile = path, True
    try:
        return int(cursor.execute(statement, (path,)))
    finally:
        conn.allowed_file, conn._local_infile = None, False


STREAM_PACKET_BYTES = 16 * 2**10
"""Bytes of a packet of :func:`stream_local` (as pymysql sends a file: within any server's
``max_allowed_packet``)."""


def stream_local(
    conn: Any, cursor: Any, statement: str, pieces: Iterable[bytes | memoryview]
) -> int:
    """Run a ``LOAD DATA LOCAL INFILE %s`` ``statement`` on ``conn`` (opened with
    ``local_files=True``) whose file's content is ``pieces``, in order, as they come; no file is
    opened. The server may ask for the statement's own (made-up) file name only, and only
    meanwhile. Returns the rows the server took."""
    name = f"exchangis-stream-{uuid.uuid4().hex}"
    conn.allowed_file, conn._local_infile, conn.stream = name, True, iter(pieces)
    try:
        return int(cursor.execute(statement, (name,)))
    finally:
        conn.allowed_file, conn._local_infile, conn.stream = None, False, None


def open_connection(
    connect: Mapping[str, Any], database: str | None = None, local_files: bool = False
) -> Any:
    """Return a pymysql connection (autocommit off, utf8mb4, UTC session time zone).

    ``local_files``: the server may take ``LOAD DATA LOCAL`` from this connection, through
    :func:`load_local` and :func:`stream_local` only (local files stay off otherwise).
    """

    extra = dict(connect.get("params") or {})
    kwargs: dict[str, Any] = {k: v for k, v in extra.items() if k in _PASSTHROUGH}
    ignored = sorted(set(extra) - _PASSTHROUGH)
    if ignored:
        log.info("mysql connect params ignored names=%s", ",".join(ignored))
    kwargs["connect_timeout"] = connect_timeout(kwargs.get("connect_timeout"))
    conn = _connection_class()(
        host=check_host(str(connect.get("host") or "localhost")),
        port=int(connect.get("port") or 3306),
        user=connect.get("username"),
        password=str(connect.get("password") or ""),
        database=database or connect.get("database") or None,
        charset="utf8mb4",
        autocommit=False,
        init_command=_SESSION,
        local_infile=local_files,  # the capability; pymysql's own switch stays off (below)
        defer_connect=True,
        **kwargs,
    )
    conn._local_infile = False  # before any statement: the handshake's init_command included
    conn.connect()
    return conn


def test_connection(connect: Mapping[str, Any]) -> None:
    """Connect and run ``SELECT 1``; raise ConnectorError (no password) when that fails."""
    probe_server(connect, "mysql", 3306, open_connection, classify)
