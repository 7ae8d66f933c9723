"""MySQL and MariaDB: streaming SELECT with pymysql's SSCursor, multi-row INSERT sink."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.base import DataSourceType, Endpoint, ParamSpec
from exchangis.connectors.registry import Registry
from exchangis.connectors.sql import (
    ColumnConverter,
    Dialect,
    ErrorClass,
    SqlSink,
    SqlSource,
    batch_to_rows,
    chunks,
    per_value,
    probe_server,
    unsupported_type,
    validate_table,
)
from exchangis.errors import (
    ConnectorError,
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
# Extra connect params passed through to pymysql; JDBC-style ones (useSSL...) are ignored.
_PASSTHROUGH = frozenset(
    {"connect_timeout", "read_timeout", "write_timeout", "ssl_ca", "ssl_cert", "ssl_key"}
    | {"ssl_verify_cert", "ssl_verify_identity", "ssl_disabled", "local_infile"}
)
_SESSION = "SET time_zone = '+00:00', net_write_timeout = 3600, net_read_timeout = 3600"

PARAMS = (
    ParamSpec("host"),
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
    if isinstance(exc, pymysql.err.InterfaceError) or (
        isinstance(exc, pymysql.err.OperationalError) and code is None
    ):
        return TransientConnectorError
    return TerminalConnectorError


def open_connection(connect: Mapping[str, Any], database: str | None = None) -> Any:
    """Return a pymysql connection (autocommit off, utf8mb4, UTC session time zone)."""
    import pymysql

    extra = dict(connect.get("params") or {})
    kwargs: dict[str, Any] = {k: v for k, v in extra.items() if k in _PASSTHROUGH}
    ignored = sorted(set(extra) - _PASSTHROUGH)
    if ignored:
        log.info("mysql connect params ignored names=%s", ",".join(ignored))
    kwargs.setdefault("connect_timeout", 10)
    return pymysql.connect(
        host=str(connect.get("host") or "localhost"),
        port=int(connect.get("port") or 3306),
        user=connect.get("username"),
        password=str(connect.get("password") or ""),
        database=database or connect.get("database") or None,
        charset="utf8mb4",
        autocommit=False,
        init_command=_SESSION,
        **kwargs,
    )


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


DIALECT = MySqlDialect()


def _split(endpoint: Endpoint) -> tuple[str | None, str]:
    parts = validate_table(endpoint.table)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


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


class MySqlSource(SqlSource):
    """Stream a MySQL/MariaDB table with an unbuffered server-side cursor (SSCursor)."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._cursor: Any = None

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db)
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _query_estimate(self) -> int | None:
        schema, table = _split(self.endpoint)
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
    return column


class MySqlSink(SqlSink):
    """Insert with batched multi-row INSERTs inside one transaction (pymysql ``executemany``)."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._insert: str | None = None

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db)
        with conn.cursor() as cur:
            # Fail loudly instead of truncating or rounding values.
            cur.execute(
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''),"
                " 'STRICT_ALL_TABLES')"
            )
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        self._conn.begin()

    def _table_exists(self) -> bool:
        schema, table = _split(self.endpoint)
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
        if self._insert is None:
            self._insert = self.dialect.insert(self.endpoint.table, batch.schema.names, "%s")
        rows = batch_to_rows(batch, _prepare)
        with self._conn.cursor() as cur:
            for part in chunks(rows, self.chunk_size):
                cur.executemany(self._insert, part)


def register(registry: Registry) -> None:
    """Register the MYSQL data source type and its connectors."""
    registry.register(
        DataSourceType(NAME, PARAMS, "MySQL / MariaDB", tester=test_connection),
        MySqlSource,
        MySqlSink,
    )
