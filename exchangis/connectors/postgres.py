"""PostgreSQL: named (server-side) cursor source, ``COPY FROM STDIN`` sink (psycopg 3)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from exchangis.connectors.base import DataSourceType, Endpoint, ParamSpec
from exchangis.connectors.registry import Registry
from exchangis.connectors.sql import (
    ColumnConverter,
    Dialect,
    ErrorClass,
    SqlSink,
    SqlSource,
    batch_to_rows,
    per_value,
    probe_server,
    unsupported_type,
)
from exchangis.errors import ConnectorError, TerminalConnectorError, TransientConnectorError

log = logging.getLogger(__name__)

NAME = "POSTGRESQL"

# Type OIDs (pg_type.oid), fixed across PostgreSQL versions.
_BOOL, _BYTEA, _INT8, _INT2, _INT4, _TEXT, _OID = 16, 17, 20, 21, 23, 25, 26
_JSON, _JSONB, _FLOAT4, _FLOAT8, _BPCHAR, _VARCHAR, _NAME = 114, 3802, 700, 701, 1042, 1043, 19
_DATE, _TIME, _TIMESTAMP, _TIMESTAMPTZ, _NUMERIC = 1082, 1083, 1114, 1184, 1700
_TYPES: dict[int, pa.DataType] = {
    _BOOL: pa.bool_(),
    _BYTEA: pa.binary(),
    _INT2: pa.int64(),
    _INT4: pa.int64(),
    _INT8: pa.int64(),
    _OID: pa.int64(),
    _FLOAT4: pa.float64(),
    _FLOAT8: pa.float64(),
    _TEXT: pa.string(),
    _BPCHAR: pa.string(),
    _VARCHAR: pa.string(),
    _NAME: pa.string(),
    _DATE: pa.date32(),
    _TIME: pa.time64("us"),
    _TIMESTAMP: pa.timestamp("us"),
    _TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}
# SQLSTATE classes/codes worth a retry: connection, serialization, deadlock, resources, shutdown.
_TRANSIENT_CLASSES = ("08", "53", "57P")
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57014"})

PARAMS = (
    ParamSpec("host"),
    ParamSpec("port", int, required=False, default=5432),
    ParamSpec("username"),
    ParamSpec("password", secret=True, required=False, default=""),
    ParamSpec("database"),
    ParamSpec("params", dict, required=False, default=None),
)


def classify(exc: BaseException) -> type[ConnectorError] | None:
    """Return the connector error class for a psycopg exception (None: not a driver error)."""
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return None
    state = getattr(exc, "sqlstate", None)
    if state is None:
        # No SQLSTATE: the failure happened before or outside the server (refused, lost, DNS).
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return TransientConnectorError
        return TerminalConnectorError
    if state in _TRANSIENT_STATES or state.startswith(_TRANSIENT_CLASSES):
        return TransientConnectorError
    return TerminalConnectorError


def open_connection(connect: Mapping[str, Any], database: str | None = None) -> Any:
    """Return a psycopg connection (autocommit off, UTC session time zone)."""
    import psycopg

    kwargs: dict[str, Any] = {str(k): v for k, v in dict(connect.get("params") or {}).items()}
    kwargs.setdefault("connect_timeout", 10)
    kwargs["options"] = (str(kwargs.get("options") or "") + " -c TimeZone=UTC").strip()
    password = connect.get("password")
    if password:
        kwargs["password"] = str(password)
    return psycopg.connect(
        host=str(connect.get("host") or "localhost"),
        port=int(connect.get("port") or 5432),
        user=connect.get("username"),
        dbname=database or connect.get("database"),
        autocommit=False,
        **kwargs,
    )


def test_connection(connect: Mapping[str, Any]) -> None:
    """Connect and run ``SELECT 1``; raise ConnectorError (no password) when that fails."""
    probe_server(connect, "postgresql", 5432, open_connection, classify)


class PostgresDialect(Dialect):
    """Double-quoted names; PostgreSQL column types."""

    name = "postgresql"
    quote_char = '"'

    def column_type(self, data_type: pa.DataType) -> str:
        """Return the PostgreSQL column type that holds ``data_type`` exactly."""
        t = data_type
        if pa.types.is_boolean(t):
            return "boolean"
        if pa.types.is_uint64(t):
            return "numeric(20,0)"
        if pa.types.is_integer(t):
            return "bigint"
        if pa.types.is_float32(t):
            return "real"
        if pa.types.is_floating(t):
            return "double precision"
        if pa.types.is_decimal(t):
            return f"numeric({t.precision},{t.scale})"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            return "text"
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            return "bytea"
        if pa.types.is_date(t):
            return "date"
        if pa.types.is_timestamp(t):
            return "timestamptz" if t.tz is not None else "timestamp"
        if pa.types.is_time(t):
            return "time"
        raise unsupported_type(t)


DIALECT = PostgresDialect()


def _numeric_text(value: Decimal) -> str:
    return format(value, "f")


def arrow_field(column: Any) -> tuple[pa.Field, ColumnConverter | None, bool]:
    """Return the Arrow field, converter and whether to load the column as raw text."""
    oid = column.type_code
    if oid == _NUMERIC:
        precision, scale = column.precision, column.scale
        if precision is None:  # numeric without typmod: exact text
            return pa.field(column.name, pa.string()), per_value(_numeric_text), False
        if precision <= 38:
            return pa.field(column.name, pa.decimal128(precision, scale)), None, False
        if precision <= 76:
            return pa.field(column.name, pa.decimal256(precision, scale)), None, False
        return pa.field(column.name, pa.string()), per_value(_numeric_text), False
    known = _TYPES.get(oid)
    if known is not None:
        return pa.field(column.name, known), None, False
    # json/jsonb, uuid, interval, arrays, enums...: the server's exact text.
    return pa.field(column.name, pa.string()), None, True


class PostgresSource(SqlSource):
    """Stream a PostgreSQL table with a named cursor inside a read-only transaction."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._cursor: Any = None

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db)
        conn.read_only = True
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _query_estimate(self) -> int | None:
        row = self._conn.execute(
            "SELECT c.reltuples::bigint FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (self.dialect.quote_table(self.endpoint.table),),
        ).fetchone()
        self._conn.rollback()  # the read below starts a fresh snapshot
        if row is None or row[0] is None or row[0] < 0:
            return None
        return int(row[0])

    def _start(self, sql: str) -> tuple[pa.Schema, list[ColumnConverter | None]]:
        from psycopg.types.string import TextLoader

        self._cursor = self._conn.cursor(name="exchangis_source")
        self._cursor.execute(sql)
        fields, converters = [], []
        for column in self._cursor.description or []:
            field, conv, as_text = arrow_field(column)
            if as_text:
                self._cursor.adapters.register_loader(column.type_code, TextLoader)
            fields.append(field)
            converters.append(conv)
        return pa.schema(fields), converters

    def _fetch(self, size: int) -> Sequence[Sequence[Any]]:
        return self._cursor.fetchmany(size)

    def _release(self) -> None:
        try:
            self._conn.close()  # ends the transaction and the named cursor with it
        except Exception:
            log.debug("postgres close failed", exc_info=True)
        self._cursor = None


class PostgresSink(SqlSink):
    """Write with ``COPY ... FROM STDIN`` inside one transaction."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._copy_sql: str | None = None

    def _connect(self) -> Any:
        return open_connection(self.endpoint.connect, self.endpoint.db)

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        """Nothing: psycopg begins the transaction with the first statement."""

    def _table_exists(self) -> bool:
        row = self._conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            (self.dialect.quote_table(self.endpoint.table),),
        ).fetchone()
        return bool(row and row[0])

    def _execute(self, sql: str) -> None:
        self._conn.execute(sql)

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        if self._copy_sql is None:
            names = ", ".join(self.dialect.quote(n) for n in batch.schema.names)
            self._copy_sql = (
                f"COPY {self.dialect.quote_table(self.endpoint.table)} ({names}) FROM STDIN"
            )
        rows = batch_to_rows(batch)
        with self._conn.cursor() as cur, cur.copy(self._copy_sql) as copy:
            for row in rows:
                copy.write_row(row)


def register(registry: Registry) -> None:
    """Register the POSTGRESQL data source type and its connectors."""
    registry.register(
        DataSourceType(NAME, PARAMS, "PostgreSQL", tester=test_connection),
        PostgresSource,
        PostgresSink,
    )
