"""MySQL and MariaDB: streaming SELECT with pymysql's SSCursor, multi-row INSERT sink."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import socket
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors import bulk
from exchangis.connectors.base import (
    DataSourceType,
    Endpoint,
    ParamSpec,
    check_host,
    connect_timeout,
)
from exchangis.connectors.dialect import KEYS_NOT_NULL, Dialect, Staging
from exchangis.connectors.driver import ErrorClass, probe_server
from exchangis.connectors.naming import split_table, sql_literal, validate_table
from exchangis.connectors.options import BULK
from exchangis.connectors.sql_sink import SqlSink
from exchangis.connectors.sql_source import SqlSource
from exchangis.connectors.types import Family, Rule, same_decimal
from exchangis.connectors.values import ColumnConverter, batch_to_rows, chunks, per_value
from exchangis.errors import (
    ConnectorError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
)

log = logging.getLogger(__name__)

NAME = "MYSQL"

# pymysql.constants.FIELD_TYPE, spelled out so nothing imports the driver at module load.
_DECIMAL, _TINY, _SHORT, _LONG, _FLOAT, _DOUBLE, _NULL, _TIMESTAMP = 0, 1, 2, 3, 4, 5, 6, 7
_LONGLONG, _INT24, _DATE, _TIME, _DATETIME, _YEAR, _NEWDATE, _VARCHAR, _BIT = range(8, 17)
_JSON, _NEWDECIMAL, _ENUM, _SET = 245, 246, 247, 248
_BLOBS = frozenset({249, 250, 251, 252})
_STRINGS = frozenset({_VARCHAR, 253, 254})
_GEOMETRY = 255
_INTS = frozenset({_TINY, _SHORT, _LONG, _INT24, _LONGLONG, _YEAR})
_UNSIGNED_FLAG = 32
_BINARY_CHARSET = 63

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


PARAMS = (
    ParamSpec("host", check=check_host),
    ParamSpec("port", int, required=False, default=3306),
    ParamSpec("username"),
    ParamSpec("password", secret=True, required=False, default=""),
    ParamSpec("database"),
    ParamSpec("params", dict, required=False, default=None),
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


class MySqlDialect(Dialect):
    """Backquoted names; InnoDB utf8mb4 tables."""

    name = "mysql"
    quote_char = "`"

    column_types = {
        Family.BOOLEAN: Rule("TINYINT(1)", pa.bool_()),
        Family.INTEGER: Rule("BIGINT", pa.int64()),
        Family.UINT64: Rule("BIGINT UNSIGNED", pa.uint64()),
        Family.FLOAT32: Rule(
            "FLOAT",
            pa.float64(),
            loss="MariaDB sends FLOAT as text of 6 significant digits: 16777215 reads as 16777200",
        ),
        Family.FLOAT64: Rule("DOUBLE", pa.float64()),
        Family.DECIMAL: Rule(
            "DECIMAL({precision},{scale})", same_decimal, limits={"precision": 65, "scale": 30}
        ),
        Family.STRING: Rule("LONGTEXT", pa.string()),
        Family.BINARY: Rule("LONGBLOB", pa.binary()),
        Family.FIXED_BINARY: Rule("BINARY({byte_width})", pa.binary()),
        Family.DATE: Rule("DATE", pa.date32()),
        Family.TIMESTAMP: Rule("DATETIME(6)", pa.timestamp("us")),
        # The UTC wall time, read back without a zone.
        Family.TIMESTAMP_TZ: Rule("DATETIME(6)", pa.timestamp("us")),
        Family.TIME: Rule("TIME(6)", pa.time64("us")),
        Family.NULL: Rule("LONGTEXT", pa.string()),
    }
    # Text and blobs cannot be keys: VARCHAR(255) (binary collation: keys compare exactly, as
    # in PostgreSQL and SQLite) and VARBINARY(255).
    key_column_types = {
        Family.STRING: Rule("VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", pa.string()),
        Family.NULL: Rule("VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", pa.string()),
        Family.BINARY: Rule("VARBINARY(255)", pa.binary()),
    }

    def table_suffix(self) -> str:
        """Return the table options: InnoDB (transactional) and utf8mb4 (emoji)."""
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    def primary_key(self, table: str) -> str:
        """Return the primary key's columns of ``table`` in key order."""
        schema, name = split_table(table)
        database = sql_literal(schema) if schema else "DATABASE()"
        return (
            "SELECT column_name FROM information_schema.key_column_usage"
            f" WHERE table_schema = {database} AND table_name = {sql_literal(name)}"
            " AND constraint_name = 'PRIMARY' ORDER BY ordinal_position"
        )

    def create_like(self, table: str, model: str) -> str:
        """Return CREATE TABLE ... LIKE (columns, keys and table options of ``model``)."""
        return f"CREATE TABLE {self.quote_table(table)} LIKE {self.quote_table(model)}"

    def rename(self, table: str, new: str) -> str:
        """Return RENAME TABLE (``new`` in the same database as ``table``)."""
        schema, _ = split_table(table)
        short = new.rsplit(".", maxsplit=1)[-1]
        target = f"{schema}.{short}" if schema else short
        return f"RENAME TABLE {self.quote_table(table)} TO {self.quote_table(target)}"

    def lock(self, name: str) -> str | None:
        """Return GET_LOCK: a named lock held until the session ends (up to 10 min wait)."""
        return f"SELECT GET_LOCK({sql_literal(name)}, 600)"

    def unique_keys(self, table: str) -> str:
        """Return the columns of the unique indexes of ``table`` (a prefix part counts as an
        expression: NULL)."""
        parts = validate_table(table)
        schema = sql_literal(parts[0]) if len(parts) == 2 else "DATABASE()"
        return (
            "SELECT index_name, CASE WHEN sub_part IS NULL THEN column_name END"
            " FROM information_schema.statistics"
            f" WHERE table_schema = {schema} AND table_name = {sql_literal(parts[-1])}"
            " AND non_unique = 0"
        )

    def stage_table(self, target: str, name: str) -> str:
        """Return ``name`` in the target's database (a temporary table of this session)."""
        parts = validate_table(target)
        return f"{parts[0]}.{name}" if len(parts) == 2 else name

    def create_stage(self, st: Staging) -> list[str]:
        """Return ``CREATE TEMPORARY TABLE ... AS SELECT`` of the written columns (their types
        and NOT NULL, no index: ``LIKE`` would copy the primary key and refuse duplicate keys)
        with an AUTO_INCREMENT ``ordinal`` that numbers rows in write order. Temporary-table
        DDL does not commit the transaction (ALTER TABLE would: all is in this statement)."""
        cols = ", ".join(self.quote(c) for c in st.columns)
        not_null = " AND ".join(f"{self.quote(k)} IS NOT NULL" for k in st.keys)
        check = self.quote(f"{KEYS_NOT_NULL}_{st.ordinal}")  # MySQL 8: unique per database
        return [
            f"CREATE TEMPORARY TABLE {self.quote_table(st.stage)}"
            f" ({self.quote(st.ordinal)} BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
            f" CONSTRAINT {check} CHECK ({not_null})) ENGINE=InnoDB"
            f" AS SELECT {cols} FROM {self.quote_table(st.target)} WHERE 1 = 0"
        ]

    def merge(self, st: Staging) -> str:
        """Return ``INSERT ... SELECT ... ORDER BY ordinal ON DUPLICATE KEY UPDATE c = VALUES(c)``.

        Rows are applied in write order, so a later row with the same key updates the one
        before it: the last wins.
        """
        cols = ", ".join(self.quote(c) for c in st.columns)
        target_sql = self.quote_table(st.target)
        updates = [self.quote(c) for c in st.columns if c not in st.keys] or [
            self.quote(st.keys[0])
        ]
        sets = ", ".join(f"{target_sql}.{c} = VALUES({c})" for c in updates)
        return (
            f"INSERT INTO {target_sql} ({cols}) SELECT {cols} FROM {self.quote_table(st.stage)}"
            f" ORDER BY {self.quote(st.ordinal)} ON DUPLICATE KEY UPDATE {sets}"
        )

    def drop_stage(self, stage: str) -> str | None:
        """Return ``DROP TEMPORARY TABLE`` (no implicit commit, unlike DROP TABLE)."""
        return f"DROP TEMPORARY TABLE IF EXISTS {self.quote_table(stage)}"


DIALECT = MySqlDialect()


def _timedelta_to_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, dt.timedelta):
        raise TypeError(f"expected a TIME value, got {type(value).__name__}")
    if value < dt.timedelta(0) or value >= dt.timedelta(days=1):
        raise ValueError(f"TIME {value} is outside 00:00:00..23:59:59.999999")
    return (dt.datetime.min + value).time()


def _bits_to_int(value: Any) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes | bytearray) else int(value)


def _int_to_bool(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    return pa.array(values, type=pa.int64()).cast(data_type)


def _bits_to_bool(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    return per_value(_bits_to_int)(values, pa.int64()).cast(data_type)


def _decimal_type(length: int, scale: int, unsigned: bool) -> pa.DataType:
    precision = max(1, length - (1 if scale > 0 else 0) - (0 if unsigned else 1))
    precision = max(precision, scale, 1)
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)


_PLAIN: dict[int, tuple[pa.DataType, ColumnConverter | None]] = {
    **{code: (pa.int64(), None) for code in _INTS},
    _FLOAT: (pa.float64(), None),
    _DOUBLE: (pa.float64(), None),
    _DATE: (pa.date32(), None),
    _NEWDATE: (pa.date32(), None),
    _DATETIME: (pa.timestamp("us"), None),
    _TIMESTAMP: (pa.timestamp("us"), None),
    _TIME: (pa.time64("us"), per_value(_timedelta_to_time)),
    _JSON: (pa.string(), None),
    _ENUM: (pa.string(), None),
    _SET: (pa.string(), None),
    _GEOMETRY: (pa.binary(), None),
    _NULL: (pa.null(), None),
}
"""Arrow types of the type codes whose length, flags and charset do not matter."""


def arrow_field(field: Any) -> tuple[pa.Field, ColumnConverter | None]:
    """Return the Arrow field and converter for a pymysql ``FieldDescriptor``."""
    code, length, scale = field.type_code, field.length, field.scale
    unsigned = bool(field.flags & _UNSIGNED_FLAG)
    conv: ColumnConverter | None = None
    if code in (_DECIMAL, _NEWDECIMAL):
        t = _decimal_type(length, scale, unsigned)
    elif code == _TINY and length == 1:
        t, conv = pa.bool_(), _int_to_bool
    elif code == _LONGLONG and unsigned:
        t = pa.uint64()
    elif code == _BIT:
        bits = (pa.bool_(), _bits_to_bool) if length == 1 else (pa.int64(), per_value(_bits_to_int))
        t, conv = bits
    elif code in _STRINGS or code in _BLOBS:
        t = pa.binary() if field.charsetnr == _BINARY_CHARSET else pa.string()
    else:
        t, conv = _PLAIN.get(code, (pa.string(), per_value(str)))
    return pa.field(field.name, t), conv


def _bulk_exact(field: Any) -> bool:
    """Return whether connectorx reads a column exactly (then cast to our type losslessly).

    Left to pymysql: TIMESTAMP (connectorx's session is not in UTC), TIME, YEAR, BIT, JSON,
    ENUM/SET, binary strings, TINYINT(1), FLOAT (kept as MySQL prints it) and decimals beyond
    what connectorx's 28-digit decimal with 10 decimals holds.
    """
    code = field.type_code
    if code in (_DECIMAL, _NEWDECIMAL):
        return field.scale <= 10 and field.length - field.scale <= 19
    if code == _TINY:
        return field.length != 1
    if code in _STRINGS or code in _BLOBS:
        return field.charsetnr != _BINARY_CHARSET
    return code in _BULK_CODES


_BULK_CODES = frozenset({_SHORT, _LONG, _INT24, _LONGLONG, _DOUBLE, _DATE, _NEWDATE, _DATETIME})


class MySqlSource(SqlSource):
    """Stream a MySQL/MariaDB table: connectorx (Arrow) when every column allows it, else
    pymysql's unbuffered server-side cursor (SSCursor)."""

    type = NAME
    dialect = DIALECT
    options = (*SqlSource.options, BULK)
    chunk_bytes: ClassVar[int] = bulk.CHUNK_BYTES
    """Arrow bytes a chunk of a bulk read should hold at most (estimated: ``bulk.Chunks``)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._cursor: Any = None
        self._declared: dict[str, int] = {}
        self.chunks: bulk.Chunks | None = None
        """The chunks of the bulk read (None: no bulk read)."""

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db)
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _query_estimate(self) -> int | None:
        schema, table = split_table(self.endpoint.table)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT table_rows FROM information_schema.tables"
                " WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
                (schema, table),
            )
            row = cur.fetchone()
        self._conn.commit()  # end the snapshot so the SELECT sees current data
        return int(row[0]) if row and row[0] is not None else None

    def _start(self, sql: str) -> tuple[pa.Schema, list[ColumnConverter | None]]:
        import pymysql.cursors

        self._cursor = self._conn.cursor(pymysql.cursors.SSCursor)
        self._cursor.execute(sql)
        fields = [arrow_field(f) for f in self._cursor._result.fields]
        return pa.schema([f for f, _ in fields]), [c for _, c in fields]

    def _fetch(self, size: int) -> Sequence[Sequence[Any]]:
        return self._cursor.fetchmany(size)

    def _bulk_url(self) -> str | None:
        if not (self.opts["bulk"] and bulk.available("connectorx")):
            return None
        return bulk.url("mysql", self.endpoint.connect, 3306, self.endpoint.db)

    def _keyset(self, url: str, key: str, keyed: pa.Schema) -> Iterator[pa.RecordBatch]:
        """Yield the rows in chunks bounded in rows and (by estimate) in bytes: MySQL has no
        cheap way to cut a chunk by its rows' bytes on the server (see ``bulk.Chunks``)."""
        chunks = self.chunks = bulk.Chunks(keyed, self.chunk_bytes, declared=self._declared)
        return chunks.read(
            url, lambda after, limit: self._chunk_sql(key, after, limit), self._bulk_error
        )

    def _describe(self, sql: str) -> tuple[pa.Schema, bool]:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            described = list(cur._result.fields)
        self._conn.commit()
        # the most bytes a value takes (in the connection's utf8mb4): the first chunk's guess
        self._declared = {f.name: int(f.length) for f in described}
        fields = [arrow_field(f) for f in described]
        exact = all(
            conv is None and _bulk_exact(f) for f, (_, conv) in zip(described, fields, strict=True)
        )
        return pa.schema([f for f, _ in fields]), exact

    def _release(self) -> None:
        # Closing an SSCursor drains the rest of the result; close the socket instead, and mark
        # the unfinished result done so its __del__ does not try to drain a closed socket.
        result = getattr(self._cursor, "_result", None)
        if result is not None:
            result.unbuffered_active = False
        try:
            self._conn.close()
        except Exception:
            log.debug("mysql close failed", exc_info=True)
        self._cursor = None


def _prepare(column: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # The session time zone is UTC: store the UTC wall time.
        return pc.cast(column, pa.timestamp(column.type.unit))
    if pa.types.is_decimal(column.type):  # plain digits fit DECIMAL and text columns alike
        return bulk.decimal_text(column)
    return column


LOADER_THREAD = "exchangis-mysql-load"
"""Name of the thread that runs a sink's ``LOAD DATA`` statements (:class:`_Loader`)."""
LOAD_BYTES = 4 * 2**20
"""Encoded bytes one ``LOAD DATA`` statement of a sink takes at most: its batches are kept
until it has ended well (a statement that warned is undone and its batches written again)."""
QUEUE_BYTES = 2 * 2**20
"""Encoded bytes that wait for the server at most: a writer ahead of it waits beyond."""
ABORT_SECONDS = 10.0
"""Seconds an aborted load may take to end before its session is cut (a stalled server)."""
_LOAD_SAVEPOINT = "exchangis_load"


@dataclass
class _Part:
    """The batches of one ``LOAD DATA`` statement, kept until it has ended well."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class _End:
    """The end of one statement's data in a loader's feed, and the rows it must take."""

    rows: int


@dataclass(frozen=True)
class _Outcome:
    """How one statement of a loader ended."""

    rows: int
    """Rows sent (-1: its data did not end as it should)."""
    loaded: int
    warnings: int

    @property
    def ok(self) -> bool:
        """Return whether the statement took every row sent without a warning."""
        return self.loaded == self.rows and not self.warnings


class _Loader:
    """``LOAD DATA LOCAL`` statements that stream encoded batches to the server one after
    another from a thread of their own, while the writer reads and encodes the next batches.

    The writer puts the encoded batches into ``feed`` and ends each statement's data with an
    :class:`_End`. Each statement starts with a savepoint; ``outcomes`` are the ended
    statements', in order. The thread stops after a statement that warned, took fewer rows than
    sent, or failed (``error``): the writer undoes that statement and writes its batches again.
    It never outlives ``feed.close()`` and a join, or :meth:`abort`.
    """

    def __init__(self, conn: Any, statement: str, queue_bytes: int) -> None:
        self.conn = conn
        self.statement = statement
        self.feed: bulk.Feed[memoryview | _End] = bulk.Feed(queue_bytes)
        self.outcomes: deque[_Outcome] = deque()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=LOADER_THREAD, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                while self.feed.wait():
                    cur.execute(f"SAVEPOINT {_LOAD_SAVEPOINT}")
                    ends: list[_End] = []
                    loaded = stream_local(self.conn, cur, self.statement, self._data(ends))
                    rows = ends[0].rows if ends else -1
                    outcome = _Outcome(rows, loaded, int(cur.warning_count or 0))
                    self.outcomes.append(outcome)
                    if not outcome.ok:
                        return
        except BaseException as exc:  # handed over to the writer's thread (MySqlSink._drain)
            self.error = exc
        finally:
            self.feed.stop()

    def _data(self, ends: list[_End]) -> Iterator[memoryview]:
        """Yield one statement's data: the feed's pieces up to the next :class:`_End`."""
        while True:
            item = self.feed.get()
            if item is None:
                return
            if isinstance(item, _End):
                ends.append(item)
                return
            yield item

    def failed(self) -> bool:
        """Return whether the thread stopped (a statement failed, or the writer closed it)."""
        return bool(self.outcomes and not self.outcomes[0].ok) or not self.thread.is_alive()

    def abort(self, seconds: float) -> bool:
        """End the statement in flight where it is (its rows are rolled back) and the thread;
        return False when the server did not end it within ``seconds`` and the connection was
        cut instead (the server then rolls the transaction back)."""
        self.feed.abort()
        self.thread.join(seconds)
        if not self.thread.is_alive():
            return True
        sock = getattr(self.conn, "_sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                log.debug("shutdown of a stalled load's socket failed", exc_info=True)
        self.thread.join()
        return False


class MySqlSink(SqlSink):
    """Write inside one transaction: ``LOAD DATA LOCAL INFILE`` of the batches, else INSERTs.

    The bulk path encodes each batch as MySQL's default tab-separated format with Arrow kernels
    and streams it into a ``LOAD DATA`` statement that a thread of its own runs (:class:`_Load`),
    several batches a statement (``load_bytes``), while the caller reads and encodes the next
    batch. ``LOAD DATA LOCAL`` turns data errors into warnings (the server cannot stop the
    client's stream), so a statement that warns or loses rows is undone to a savepoint and its
    batches written again one by one: a load each, then strict multi-row INSERTs, which fail
    loudly on the bad row (an error record).
    """

    type = NAME
    dialect = DIALECT
    options = (*SqlSink.options, BULK)
    idle_seconds: ClassVar[int] = IDLE_SECONDS
    """The server closes the session once idle this long (see ``IDLE_SECONDS``; 0: never)."""
    load_bytes: ClassVar[int] = LOAD_BYTES
    """Encoded bytes one ``LOAD DATA`` statement takes at most (see ``LOAD_BYTES``)."""
    queue_bytes: ClassVar[int] = QUEUE_BYTES
    """Encoded bytes waiting for the server at most (see ``QUEUE_BYTES``)."""
    abort_seconds: ClassVar[float] = ABORT_SECONDS
    """Seconds an aborted load may take to end (see ``ABORT_SECONDS``)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.bulk = self.opts["bulk"] and bulk.available("pymysql")
        self._insert: str | None = None
        self._load: str | None = None
        self._behind = False
        self._loader: _Loader | None = None
        self._parts: deque[_Part] = deque()
        """Batches of the statements in flight whose data has ended, in order."""
        self._part = _Part()
        """Batches of the statement in flight whose data goes on."""
        self._flags: frozenset[str] | None = None

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db, local_files=self.bulk)
        with conn.cursor() as cur:
            # Fail loudly instead of truncating or rounding values.
            cur.execute(
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''),"
                " 'STRICT_ALL_TABLES')"
            )
            timeouts = sink_session(self.idle_seconds)
            if timeouts:
                cur.execute(timeouts)
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        self._conn.begin()

    def _exists(self, name: str) -> bool:
        schema, table = split_table(name)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
                (schema, table),
            )
            return cur.fetchone() is not None

    def _execute(self, sql: str) -> None:
        if sql.startswith("CREATE TABLE"):
            # DDL commits implicitly in MySQL: it runs before anything is written.
            sql = sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
        with self._conn.cursor() as cur:
            cur.execute(sql)

    def write(self, batch: pa.RecordBatch) -> int:
        """Write ``batch`` inside the open transaction; return the rows this call wrote.

        After :meth:`defer_writes`, on the bulk path, the batch joins the ``LOAD DATA``
        statements in flight (a thread of their own streams them to the server,
        :class:`_Loader`), and its rows count once its statement has ended well: in a later
        call, or in :meth:`flush`. The rows a statement refused go to :meth:`take_rejects` then.
        Other batches are written at once (after those in flight).
        """
        if not (self.bulk and self._behind and self._in_txn) or batch.num_rows == 0:
            return self._drain() + super().write(batch)
        try:
            with self._errors(f"write {self.endpoint.describe()}"):
                flagged = self._text_flags(batch)
        except RecordError:  # a flag that is no boolean: find the rows at fault one by one
            return self._drain() + super().write(batch)
        if not all(bulk.tsv_supported(f.type) for f in flagged.schema):
            return self._drain() + super().write(batch)
        data = bulk.encode_tsv(flagged)  # meanwhile the server takes the batches before it
        written = self._settle()
        if self._loader is None:
            statement = self._load_sql(flagged.schema.names)
            self._loader = _Loader(self._conn, statement, self.queue_bytes)
        if not self._loader.feed.put(data, len(data)):  # a statement failed: undo and redo it
            return written + self._drain() + super().write(batch)
        part = self._part
        part.batches.append(batch)
        part.rows += batch.num_rows
        part.bytes += len(data)
        if part.bytes >= self.load_bytes:
            self._end_part()
        return written

    def defer_writes(self) -> None:
        """Let :meth:`write` return before its batch is written, so that the caller reads and
        encodes the next batch while the server takes this one: its rows count in a later
        :meth:`write`, or in :meth:`flush`, which the caller calls after its last batch
        (:meth:`commit` flushes too, but then nobody gets the count and the refused rows)."""
        self._behind = True

    def flush(self) -> int:
        """Wait for the ``LOAD DATA`` statements in flight; return the rows they wrote (the
        rows they refused are in :meth:`take_rejects`)."""
        return self._drain()

    def _end_part(self) -> None:
        """End the data of the statement that takes the batches written since the last end."""
        part = self._part
        if not part.rows:
            return
        self._part = _Part()
        self._parts.append(part)
        if self._loader is not None:
            self._loader.feed.put(_End(part.rows), 0)  # False: stopped (_drain redoes the part)

    def _settle(self) -> int:
        """Return the rows of the statements that ended well since the last call (no wait);
        after a failed statement, :meth:`_drain` everything in flight."""
        loader = self._loader
        if loader is None:
            return 0
        written = 0
        while loader.outcomes and loader.outcomes[0].ok:
            loader.outcomes.popleft()
            part = self._parts.popleft()
            written += part.rows
            self._written += part.rows
        if loader.failed():
            written += self._drain()
        return written

    def _drain(self) -> int:
        """End the ``LOAD DATA`` statements in flight, wait for them; return the rows written.

        The first statement that warned (``LOAD DATA LOCAL`` makes data errors warnings), took
        fewer rows than sent or failed on a row is undone to its savepoint, and its batches and
        those after it are written again one by one (``SqlSink.write``: a load each, then strict
        INSERTs that find the rows at fault). A statement's other errors are raised as
        connector errors.
        """
        loader = self._loader
        if loader is None:
            return 0
        self._end_part()
        loader.feed.close()
        loader.thread.join()
        self._loader = None
        written = 0
        redo: list[_Part] = []
        for part in self._parts:
            if not redo and loader.outcomes and loader.outcomes[0].ok:
                loader.outcomes.popleft()
                written += part.rows
                self._written += part.rows
            else:
                redo.append(part)
        self._parts.clear()
        action = f"write {self.endpoint.describe()}"
        if loader.error is not None and classify(loader.error) is not RecordError:
            if not self._conn.open:  # the session is gone, and its transaction with it
                self._in_txn = False
            with self._errors(action):
                raise loader.error
        if not redo:
            return written
        failed = loader.outcomes[0] if loader.outcomes else None
        log.info(
            "load data of %s rows%s; those rows and the %s after them are written again batch by"
            " batch",
            redo[0].rows,
            f" took {failed.loaded} with {failed.warnings} warnings" if failed else " failed",
            sum(part.rows for part in redo[1:]),
        )
        if failed is not None or loader.error is not None:  # the statement ran: undo it
            with self._errors(action):
                self._execute(f"ROLLBACK TO SAVEPOINT {_LOAD_SAVEPOINT}")
        for part in redo:
            for batch in part.batches:
                written += super().write(batch)
        return written

    def _abort_load(self) -> None:
        """Stop the ``LOAD DATA`` in flight (its rows go with the transaction) and its thread."""
        loader, self._loader = self._loader, None
        self._parts.clear()
        self._part = _Part()
        if loader is not None and not loader.abort(self.abort_seconds):
            log.warning(
                "load data did not end within %ss of its abort: the session of %s was cut"
                " (the server rolls its transaction back)",
                self.abort_seconds,
                self.endpoint.describe(),
            )
            self._in_txn = False  # nothing left to roll back on this side

    def commit(self) -> None:
        """Finish the ``LOAD DATA`` in flight, then commit (``SqlSink.commit``).

        The rows those statements refused are in :meth:`take_rejects` (call :meth:`flush`
        first to count them before committing).
        """
        if self._in_txn:
            self._drain()
        super().commit()

    def rollback(self) -> None:
        """Stop the ``LOAD DATA`` in flight and roll the transaction back."""
        self._abort_load()
        super().rollback()

    def close(self) -> None:
        """Stop the ``LOAD DATA`` in flight, roll back anything uncommitted and close."""
        try:
            self._abort_load()
        finally:
            super().close()

    def _load_sql(self, names: Sequence[str]) -> str:
        """Return the ``LOAD DATA LOCAL INFILE %s`` statement of columns ``names``."""
        if self._load is None:
            columns = ", ".join(self.dialect.quote(n) for n in names)
            self._load = (
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.dialect.quote_table(self.write_table)}"
                f" CHARACTER SET utf8mb4 ({columns})"
            )
        return self._load

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        batch = self._text_flags(batch)
        if self.bulk and all(bulk.tsv_supported(f.type) for f in batch.schema):
            with self._conn.cursor() as cur:
                cur.execute(f"SAVEPOINT {_LOAD_SAVEPOINT}")
                if self._load_batch(cur, batch):
                    cur.execute(f"RELEASE SAVEPOINT {_LOAD_SAVEPOINT}")
                    return
                cur.execute(f"ROLLBACK TO SAVEPOINT {_LOAD_SAVEPOINT}")
        self._insert_rows(batch)

    def _text_flags(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return ``batch`` with text bound for TINYINT(1)/BIT(1) columns as booleans.

        Strict mode refuses ``'true'`` for an integer column; ``true``/``false``/``1``/``0``
        text (what CSV holds) becomes 1/0, anything else fails that row.
        """
        if self._flags is None:
            schema, table = split_table(self.endpoint.table)
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s"
                    " AND (column_type LIKE 'tinyint(1)%%' OR column_type = 'bit(1)')",
                    (schema, table),
                )
                self._flags = frozenset(str(row[0]).casefold() for row in cur.fetchall())
        names = [
            i
            for i, f in enumerate(batch.schema)
            if f.name.casefold() in self._flags and pa.types.is_string(f.type)
        ]
        if not names:
            return batch
        arrays = list(batch.columns)
        for i in names:
            try:
                flags = pc.cast(pc.utf8_lower(pc.utf8_trim_whitespace(arrays[i])), pa.bool_())
            except pa.ArrowInvalid as exc:
                raise RecordError(f"column {batch.schema.field(i).name!r}: {exc}") from None
            arrays[i] = pc.cast(flags, pa.int8())
        fields = [
            pa.field(f.name, pa.int8()) if i in names else f for i, f in enumerate(batch.schema)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))

    def _load_batch(self, cur: Any, batch: pa.RecordBatch) -> bool:
        """Load ``batch``; return False when the server warned or did not take every row."""
        statement = self._load_sql(batch.schema.names)
        loaded = stream_local(self._conn, cur, statement, [bulk.encode_tsv(batch)])
        warnings = int(cur.warning_count or 0)  # the statement's own (from its OK packet)
        if loaded == batch.num_rows and not warnings:
            return True
        log.info(
            "load data took %s of %s rows with %s warnings; the batch is written with INSERTs",
            loaded,
            batch.num_rows,
            warnings,
        )
        return False

    def _insert_rows(self, batch: pa.RecordBatch) -> None:
        if self._insert is None:
            self._insert = self.dialect.insert(self.write_table, batch.schema.names, "%s")
        rows = batch_to_rows(batch, _prepare)
        with self._conn.cursor() as cur:
            for part in chunks(rows, self.chunk_size):
                cur.executemany(self._insert, part)


TYPE = DataSourceType(
    NAME, PARAMS, "MySQL / MariaDB", tester=test_connection, source=MySqlSource, sink=MySqlSink
)
"""The mysql connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
