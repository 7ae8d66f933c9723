"""MySQL and MariaDB: streaming SELECT with pymysql's SSCursor, multi-row INSERT sink."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
from exchangis.connectors.registry import Registry
from exchangis.connectors.sql import (
    KEYS_NOT_NULL,
    ColumnConverter,
    Dialect,
    ErrorClass,
    SqlSink,
    SqlSource,
    batch_to_rows,
    chunks,
    per_value,
    probe_server,
    split_table,
    sql_literal,
    unsupported_type,
    validate_table,
)
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
    and then only the file that statement names may be asked for.
    """
    import pymysql.connections
    from pymysql.err import OperationalError

    shared: dict[str, Any] = {}

    class Connection(pymysql.connections.Connection):
        allowed_file: str | None = None
        """The only file the server may ask for (while a ``LOAD DATA LOCAL`` runs)."""

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


def load_local(conn: Any, cursor: Any, statement: str, path: str) -> int:
    """Run a ``LOAD DATA LOCAL INFILE %s`` ``statement`` of file ``path`` on ``conn`` (opened
    with ``local_files=True``); the server may ask for that file only, and only meanwhile."""
    conn.allowed_file, conn._local_infile = path, True
    try:
        return int(cursor.execute(statement, (path,)))
    finally:
        conn.allowed_file, conn._local_infile = None, False


def open_connection(
    connect: Mapping[str, Any], database: str | None = None, local_files: bool = False
) -> Any:
    """Return a pymysql connection (autocommit off, utf8mb4, UTC session time zone).

    ``local_files``: the server may take ``LOAD DATA LOCAL`` from this connection, through
    :func:`load_local` only (local files stay off otherwise).
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

    def column_type(self, data_type: pa.DataType) -> str:
        """Return the MySQL column type that holds ``data_type`` exactly."""
        t = data_type
        if pa.types.is_boolean(t):
            return "TINYINT(1)"
        if pa.types.is_uint64(t):
            return "BIGINT UNSIGNED"
        if pa.types.is_integer(t):
            return "BIGINT"
        if pa.types.is_float32(t):
            return "FLOAT"
        if pa.types.is_floating(t):
            return "DOUBLE"
        if pa.types.is_decimal(t):
            if t.precision > 65 or t.scale > 30:
                raise unsupported_type(t)
            return f"DECIMAL({t.precision},{t.scale})"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            return "LONGTEXT"
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return "LONGBLOB"
        if pa.types.is_fixed_size_binary(t):
            return f"BINARY({t.byte_width})"
        if pa.types.is_date(t):
            return "DATE"
        if pa.types.is_timestamp(t):
            return "DATETIME(6)"
        if pa.types.is_time(t):
            return "TIME(6)"
        raise unsupported_type(t)

    def table_suffix(self) -> str:
        """Return the table options: InnoDB (transactional) and utf8mb4 (emoji)."""
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    def key_column_type(self, data_type: pa.DataType) -> str:
        """Return a key column's type: text and blobs cannot be keys, so VARCHAR(255) (binary
        collation: keys compare exactly, as in PostgreSQL and SQLite) and VARBINARY(255)."""
        t = data_type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            return "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return "VARBINARY(255)"
        return self.column_type(t)

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

    def create_stage(
        self,
        stage: str,
        target: str,
        columns: Sequence[str],
        keys: Sequence[str],
        ordinal: str,
    ) -> list[str]:
        """Return ``CREATE TEMPORARY TABLE ... AS SELECT`` of the written columns (their types
        and NOT NULL, no index: ``LIKE`` would copy the primary key and refuse duplicate keys)
        with an AUTO_INCREMENT ``ordinal`` that numbers rows in write order. Temporary-table
        DDL does not commit the transaction (ALTER TABLE would: all is in this statement)."""
        cols = ", ".join(self.quote(c) for c in columns)
        not_null = " AND ".join(f"{self.quote(k)} IS NOT NULL" for k in keys)
        check = self.quote(f"{KEYS_NOT_NULL}_{ordinal}")  # MySQL 8: unique per database
        return [
            f"CREATE TEMPORARY TABLE {self.quote_table(stage)}"
            f" ({self.quote(ordinal)} BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
            f" CONSTRAINT {check} CHECK ({not_null})) ENGINE=InnoDB"
            f" AS SELECT {cols} FROM {self.quote_table(target)} WHERE 1 = 0"
        ]

    def merge(
        self,
        target: str,
        stage: str,
        columns: Sequence[str],
        keys: Sequence[str],
        ordinal: str,
    ) -> str:
        """Return ``INSERT ... SELECT ... ORDER BY ordinal ON DUPLICATE KEY UPDATE c = VALUES(c)``.

        Rows are applied in write order, so a later row with the same key updates the one
        before it: the last wins.
        """
        cols = ", ".join(self.quote(c) for c in columns)
        target_sql = self.quote_table(target)
        updates = [self.quote(c) for c in columns if c not in keys] or [self.quote(keys[0])]
        sets = ", ".join(f"{target_sql}.{c} = VALUES({c})" for c in updates)
        return (
            f"INSERT INTO {target_sql} ({cols}) SELECT {cols} FROM {self.quote_table(stage)}"
            f" ORDER BY {self.quote(ordinal)} ON DUPLICATE KEY UPDATE {sets}"
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


def arrow_field(field: Any) -> tuple[pa.Field, ColumnConverter | None]:
    """Return the Arrow field and converter for a pymysql ``FieldDescriptor``."""
    code, length, scale = field.type_code, field.length, field.scale
    unsigned = bool(field.flags & _UNSIGNED_FLAG)
    binary = field.charsetnr == _BINARY_CHARSET
    conv: ColumnConverter | None = None
    if code in (_DECIMAL, _NEWDECIMAL):
        precision = max(1, length - (1 if scale > 0 else 0) - (0 if unsigned else 1))
        precision = max(precision, scale, 1)
        t = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    elif code == _TINY and length == 1:
        t, conv = pa.bool_(), _int_to_bool
    elif code == _LONGLONG and unsigned:
        t = pa.uint64()
    elif code in _INTS:
        t = pa.int64()
    elif code in (_FLOAT, _DOUBLE):
        t = pa.float64()
    elif code in (_DATE, _NEWDATE):
        t = pa.date32()
    elif code in (_DATETIME, _TIMESTAMP):
        t = pa.timestamp("us")
    elif code == _TIME:
        t, conv = pa.time64("us"), per_value(_timedelta_to_time)
    elif code == _BIT:
        if length == 1:
            t, conv = pa.bool_(), _bits_to_bool
        else:
            t, conv = pa.int64(), per_value(_bits_to_int)
    elif code in (_JSON, _ENUM, _SET):
        t = pa.string()
    elif code in _STRINGS or code in _BLOBS:
        t = pa.binary() if binary else pa.string()
    elif code == _GEOMETRY:
        t = pa.binary()
    elif code == _NULL:
        t = pa.null()
    else:
        t = pa.string()
        conv = per_value(str)
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
    options = SqlSource.options | frozenset({"bulk"})
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
        if not bulk.wanted(self.endpoint, "connectorx"):
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


class MySqlSink(SqlSink):
    """Write inside one transaction: ``LOAD DATA LOCAL INFILE`` of each batch, else INSERTs.

    The bulk path encodes a batch as MySQL's default tab-separated format with Arrow kernels
    and loads it. ``LOAD DATA LOCAL`` turns data errors into warnings (the server cannot stop
    the client's stream), so a batch whose load warns or loses rows is undone to a savepoint
    and written again with strict multi-row INSERTs, which fail loudly on the bad row.
    """

    type = NAME
    dialect = DIALECT
    options = SqlSink.options | frozenset({"bulk"})
    idle_seconds: ClassVar[int] = IDLE_SECONDS
    """The server closes the session once idle this long (see ``IDLE_SECONDS``; 0: never)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.bulk = bulk.wanted(endpoint, "pymysql")
        self._insert: str | None = None
        self._load: str | None = None
        self._spool: Any = None
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

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        batch = self._text_flags(batch)
        if self.bulk and all(bulk.tsv_supported(f.type) for f in batch.schema):
            with self._conn.cursor() as cur:
                cur.execute("SAVEPOINT exchangis_load")
                if self._load_batch(cur, batch):
                    cur.execute("RELEASE SAVEPOINT exchangis_load")
                    return
                cur.execute("ROLLBACK TO SAVEPOINT exchangis_load")
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
        if self._spool is None:
            self._spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in _release
                prefix="exchangis-load-", suffix=".tsv"
            )
            names = ", ".join(self.dialect.quote(n) for n in batch.schema.names)
            self._load = (
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.dialect.quote_table(self.write_table)}"
                f" CHARACTER SET utf8mb4 ({names})"
            )
        self._spool.seek(0)
        self._spool.truncate()
        self._spool.write(bulk.encode_tsv(batch))
        self._spool.flush()
        loaded = load_local(self._conn, cur, str(self._load), self._spool.name)
        cur.execute("SELECT @@warning_count")
        warnings = cur.fetchone()[0]
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

    def _release(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        super()._release()


def register(registry: Registry) -> None:
    """Register the MYSQL data source type and its connectors."""
    registry.register(
        DataSourceType(NAME, PARAMS, "MySQL / MariaDB", tester=test_connection),
        MySqlSource,
        MySqlSink,
    )
