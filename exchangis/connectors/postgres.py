"""PostgreSQL: named (server-side) cursor source, ``COPY FROM STDIN`` sink (psycopg 3)."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

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
from exchangis.connectors.dialect import KEY_ALIAS, KEYS_NOT_NULL, Dialect, Staging
from exchangis.connectors.driver import ErrorClass, probe_server
from exchangis.connectors.naming import split_table
from exchangis.connectors.options import BULK
from exchangis.connectors.sql_sink import SqlSink
from exchangis.connectors.sql_source import SqlSource
from exchangis.connectors.types import Family, Rule, same_decimal
from exchangis.connectors.values import ColumnConverter, batch_to_rows, per_value
from exchangis.errors import (
    ConnectorError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
)

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
# SQLSTATE classes/codes worth a retry: connection, serialization, deadlock, resources, shutdown,
# a session ended for idling in its transaction (25P03: the connection is gone, as with ADBC).
_TRANSIENT_CLASSES = ("08", "53", "57P")
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57014", "25P03"})
# SQLSTATE classes of a row's own fault: data exception (22), integrity constraint (23).
_RECORD_CLASSES = ("22", "23")

PARAMS = (
    ParamSpec("host", check=check_host),
    ParamSpec("port", int, required=False, default=5432),
    ParamSpec("username"),
    ParamSpec("password", secret=True, required=False, default=""),
    ParamSpec("database"),
    ParamSpec("params", dict, required=False, default=None),
)


def classify(exc: BaseException) -> type[ConnectorError] | None:
    """Return the connector error class for a psycopg or ADBC exception (None: neither)."""
    import psycopg

    if isinstance(exc, psycopg.Error):
        state = getattr(exc, "sqlstate", None)
        lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    elif bulk.available("adbc_driver_manager") and _is_adbc_error(exc):
        state = getattr(exc, "sqlstate", None) or None
        lost = type(exc).__name__ in ("OperationalError", "InterfaceError")
    else:
        return None
    if state is None:
        # No SQLSTATE: the failure happened before or outside the server (refused, lost, DNS).
        return TransientConnectorError if lost else TerminalConnectorError
    if state in _TRANSIENT_STATES or state.startswith(_TRANSIENT_CLASSES):
        return TransientConnectorError
    if state.startswith(_RECORD_CLASSES):
        return RecordError
    return TerminalConnectorError


def _is_adbc_error(exc: BaseException) -> bool:
    import adbc_driver_manager

    return isinstance(exc, adbc_driver_manager.Error)


_PASSTHROUGH = frozenset(
    {"connect_timeout", "sslmode", "gssencmode", "application_name", "target_session_attrs"}
    | {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "options"}
    | {"tcp_user_timeout"}
)
"""Extra connect params passed to libpq. Others are ignored on purpose: ``hostaddr``,
``passfile`` and ``service`` would send a password the worker keeps for another server,
``sslcert``/``sslkey`` would borrow its client certificate, ``sslkeylogfile`` write its files."""


IDLE_IN_TRANSACTION_SECONDS = 1800
"""A session of ours idle inside a transaction this long is ended by the server (the
transaction rolled back, its locks released), so that the sessions of a worker host that
vanished or stopped mid-task do not hold a table's rows against a retry. A task's sessions go
that idle only while the other end of the transfer is busy (one batch, or a wait for a lock),
which takes far less; a data source may set another value in ``params.options``."""
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 10, 6
"""TCP keepalives, asked of libpq (the worker's end) and of the server (its end): a peer
silent 60 s is probed every 10 s and given up after 6 unanswered probes (about 2 min), so a
host that vanished mid-statement (no idle transaction) is noticed too."""


def session_options(idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS) -> str:
    """Return the server settings every session of ours starts with (libpq ``options``)."""
    return (
        f"-c idle_in_transaction_session_timeout={int(idle_seconds)}s"
        f" -c tcp_keepalives_idle={KEEPALIVE_IDLE}"
        f" -c tcp_keepalives_interval={KEEPALIVE_INTERVAL}"
        f" -c tcp_keepalives_count={KEEPALIVE_COUNT}"
    )


NO_PASSFILE = os.path.join(os.devnull, "exchangis-no-passfile")
"""libpq's ``passfile``: a path below the null device, which no one can create (its parent is
not a directory), so libpq finds no password file and says nothing. Without the param libpq
would read ``~/.pgpass`` (a password the worker keeps for another server); ``os.devnull``
itself exists but is not a plain file, and libpq warns about it on stderr at every connect."""


def libpq_params(
    connect: Mapping[str, Any], idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS
) -> dict[str, str]:
    """Return the extra libpq params of a data source (allowed ones over our keepalives and
    session settings; UTC session; no passfile, so a password is never looked up on the
    worker)."""
    extra = {str(k): str(v) for k, v in dict(connect.get("params") or {}).items()}
    ignored = sorted(set(extra) - _PASSTHROUGH)
    if ignored:
        log.info("postgresql connect params ignored names=%s", ",".join(ignored))
    params = {
        "keepalives": "1",
        "keepalives_idle": str(KEEPALIVE_IDLE),
        "keepalives_interval": str(KEEPALIVE_INTERVAL),
        "keepalives_count": str(KEEPALIVE_COUNT),
    }
    params.update((k, v) for k, v in extra.items() if k in _PASSTHROUGH)
    params["connect_timeout"] = str(connect_timeout(params.get("connect_timeout")))
    # a later -c wins: the data source's own options over ours, and UTC over everything
    own = params.get("options", "")
    params["options"] = " ".join(
        filter(None, [session_options(idle_seconds), own, "-c TimeZone=UTC"])
    )
    params["passfile"] = NO_PASSFILE
    return params


def open_connection(
    connect: Mapping[str, Any],
    database: str | None = None,
    idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS,
) -> Any:
    """Return a psycopg connection (autocommit off, UTC session time zone, keepalives, idle
    transactions ended after ``idle_seconds``)."""
    import psycopg

    kwargs: dict[str, Any] = libpq_params(connect, idle_seconds)
    password = connect.get("password")
    if password:
        kwargs["password"] = str(password)
    return psycopg.connect(
        host=check_host(str(connect.get("host") or "localhost")),
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

    column_types = {
        Family.BOOLEAN: Rule("boolean", pa.bool_()),
        Family.INTEGER: Rule("bigint", pa.int64()),
        Family.UINT64: Rule("numeric(20,0)", pa.decimal128(20, 0)),
        # psycopg reads a real as its shortest text (0.1), connectorx widens the float32 itself
        # (0.10000000149011612): the same float32 either way.
        Family.FLOAT32: Rule("real", pa.float64()),
        Family.FLOAT64: Rule("double precision", pa.float64()),
        Family.DECIMAL: Rule("numeric({precision},{scale})", same_decimal),
        Family.STRING: Rule("text", pa.string()),
        Family.BINARY: Rule("bytea", pa.binary()),
        Family.FIXED_BINARY: Rule("bytea", pa.binary()),
        Family.DATE: Rule("date", pa.date32()),
        Family.TIMESTAMP: Rule("timestamp", pa.timestamp("us")),
        Family.TIMESTAMP_TZ: Rule("timestamptz", pa.timestamp("us", tz="UTC")),
        Family.TIME: Rule("time", pa.time64("us")),
        Family.NULL: Rule("text", pa.string()),
    }

    def primary_key(self, table: str) -> str:
        """Return the primary key's columns of ``table`` in key order."""
        return (
            "SELECT a.attname::text FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            f" WHERE i.indrelid = to_regclass('{self.quote_table(table)}') AND i.indisprimary"
            " ORDER BY k.n"
        )

    def create_like(self, table: str, model: str) -> str:
        """Return CREATE TABLE ... (LIKE model INCLUDING ALL): defaults, constraints, indexes."""
        return (
            f"CREATE TABLE {self.quote_table(table)} (LIKE {self.quote_table(model)} INCLUDING ALL)"
        )

    def lock(self, name: str) -> str | None:
        """Return a transaction-scoped advisory lock on ``name``."""
        return f"SELECT pg_advisory_xact_lock(hashtext('{name}'))"  # a checked plain name

    def unique_keys(self, table: str) -> str:
        """Return the key columns of the immediate, non-partial unique indexes of ``table``."""
        return (
            "SELECT i.indexrelid::int8, a.attname::text FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            f" WHERE i.indrelid = to_regclass('{self.quote_table(table)}')"
            " AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL"
            " AND i.indexprs IS NULL AND k.n <= i.indnkeyatts"
        )

    def stage_table(self, target: str, name: str) -> str:
        """Return ``pg_temp.name``: the session's temporary schema, whatever the search path."""
        return f"pg_temp.{name}"

    def create_stage(self, st: Staging) -> list[str]:
        """Return a temporary copy of the written columns' types, dropped at COMMIT, plus an
        identity ``ordinal`` that numbers rows in write order (ctid is no order: an insert may
        reuse free space of an earlier page)."""
        cols = ", ".join(self.quote(c) for c in st.columns)
        stage_sql = self.quote_table(st.stage)
        not_null = " AND ".join(f"{self.quote(k)} IS NOT NULL" for k in st.keys)
        return [
            f"CREATE TEMP TABLE {stage_sql} ON COMMIT DROP AS SELECT {cols}"
            f" FROM {self.quote_table(st.target)} WITH NO DATA",
            f"ALTER TABLE {stage_sql} ADD COLUMN {self.quote(st.ordinal)} bigint"
            f" GENERATED ALWAYS AS IDENTITY, ADD CONSTRAINT {KEYS_NOT_NULL} CHECK ({not_null})",
        ]

    def merge(self, st: Staging) -> str:
        """Return ``INSERT ... SELECT DISTINCT ON (keys) ... ON CONFLICT (keys) DO UPDATE``.

        ON CONFLICT cannot change one row twice in a statement: DISTINCT ON keeps the last
        staged row of each key (highest ordinal).
        """
        cols = ", ".join(self.quote(c) for c in st.columns)
        key_list = ", ".join(self.quote(k) for k in st.keys)
        return (
            f"INSERT INTO {self.quote_table(st.target)} ({cols})"
            f" SELECT DISTINCT ON ({key_list}) {cols} FROM {self.quote_table(st.stage)}"
            f" ORDER BY {key_list}, {self.quote(st.ordinal)} DESC"
            f" {self.on_conflict(st, 'EXCLUDED')}"
        )


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


_BULK_OIDS = frozenset(
    {_BOOL, _INT2, _INT4, _INT8, _FLOAT4, _FLOAT8, _TEXT, _VARCHAR, _DATE, _TIMESTAMP}
    | {_TIMESTAMPTZ, _BYTEA}
)


def _bulk_exact(column: Any) -> bool:
    """Return whether connectorx reads a column exactly (numeric: within 28 digits, scale 10)."""
    if column.type_code == _NUMERIC:
        return (
            column.scale is not None
            and column.scale <= 10
            and column.precision - column.scale <= 18
        )
    return column.type_code in _BULK_OIDS


def budget_cut(sql: str, chunks: bulk.Chunks) -> str:
    """Return chunk query ``sql`` stopped where its rows pass ``chunks.budget`` Arrow bytes
    (at least one row), with the ``bulk.MORE`` flag before the key (``Chunks.read(cut=True)``).

    A row's bytes are ``chunks.fixed_bytes`` plus the ``octet_length`` of its text and bytea
    values, which PostgreSQL reads from a TOASTed value's header without fetching the value;
    the window functions run in key order as the index scan hands the rows over.
    """
    q = DIALECT.quote
    width = " + ".join(
        [str(chunks.fixed_bytes)]
        + [f"coalesce(octet_length(c.{q(name)}), 0)" for name in chunks.var_names]
    )
    order = f"OVER (ORDER BY c.{q(KEY_ALIAS)} ROWS UNBOUNDED PRECEDING)"
    columns = ", ".join(f"r.{q(name)}" for name in chunks.keyed.names[:-1])
    return (
        f"SELECT {columns}, r.{bulk.MORE}, r.{q(KEY_ALIAS)} FROM (SELECT c.*,"
        f" sum({width}) {order} AS exg_chunk_bytes, row_number() {order} AS exg_chunk_row,"
        f" lead(true, 1, false) {order} AS {bulk.MORE} FROM ({sql}) c) r"
        f" WHERE r.exg_chunk_bytes <= {int(chunks.budget)} OR r.exg_chunk_row = 1"
    )


class PostgresSource(SqlSource):
    """Stream a PostgreSQL table: connectorx (binary COPY to Arrow) when every column allows
    it, else a psycopg named cursor inside a read-only transaction."""

    type = NAME
    dialect = DIALECT
    options = (*SqlSource.options, BULK)
    chunk_bytes: ClassVar[int] = bulk.CHUNK_BYTES
    """Arrow bytes a chunk of a bulk read holds at most (cut on the server: ``budget_cut``)."""
    idle_seconds: ClassVar[int] = IDLE_IN_TRANSACTION_SECONDS
    """The server ends the session once idle this long inside its transaction (0: never)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._cursor: Any = None
        self.chunks: bulk.Chunks | None = None
        """The chunks of the bulk read (None: no bulk read)."""

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db, self.idle_seconds)
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

    def _bulk_url(self) -> str | None:
        if not (self.opts["bulk"] and bulk.available("connectorx")):
            return None
        return bulk.url("postgresql", self.endpoint.connect, 5432, self.endpoint.db)

    def _keyset(self, url: str, key: str, keyed: pa.Schema) -> Iterator[pa.RecordBatch]:
        """Yield the rows in chunks bounded in rows and in bytes (``bulk.Chunks``), each cut
        on the server where its rows pass ``chunk_bytes``."""
        chunks = self.chunks = bulk.Chunks(keyed, self.chunk_bytes)

        def chunk_sql(after: Any, limit: int) -> str:
            return budget_cut(self._chunk_sql(key, after, limit), chunks)

        return chunks.read(url, chunk_sql, self._bulk_error, cut=True)

    def _describe(self, sql: str) -> tuple[pa.Schema, bool]:
        described = self._conn.execute(sql).description or []
        self._conn.rollback()
        fields = [arrow_field(column) for column in described]
        exact = all(
            conv is None and not as_text and _bulk_exact(column)
            for column, (_, conv, as_text) in zip(described, fields, strict=True)
        )
        return pa.schema([f for f, _, _ in fields]), exact

    def _release(self) -> None:
        try:
            self._conn.close()  # ends the transaction and the named cursor with it
        except Exception:
            log.debug("postgres close failed", exc_info=True)
        self._cursor = None


class PostgresSink(SqlSink):
    """Write inside one transaction: binary ``COPY`` from Arrow (ADBC), else psycopg ``COPY``.

    The ADBC path casts each batch to the target table's column types (a checked Arrow cast)
    and ingests it with binary ``COPY``; columns of types it cannot send in binary (json,
    uuid, arrays...) make that batch go through a bound ``INSERT`` with text casts instead.
    """

    type = NAME
    dialect = DIALECT
    options = (*SqlSink.options, BULK)
    idle_seconds: ClassVar[int] = IDLE_IN_TRANSACTION_SECONDS
    """The server ends the session once idle this long inside its transaction (0: never):
    the transaction of a worker that vanished is rolled back and its locks freed."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.bulk = self.opts["bulk"] and bulk.available("adbc_driver_postgresql")
        self._copy_sql: str | None = None
        self._cursor: Any = None
        self._plans: dict[tuple[str, tuple[str, ...]], _IngestPlan] = {}

    @property
    def splits(self) -> bool:
        """Return False on ADBC: after a failed ``COPY`` it accepts nothing but a rollback."""
        return not self.bulk

    def _connect(self) -> Any:
        if not self.bulk:
            return open_connection(self.endpoint.connect, self.endpoint.db, self.idle_seconds)
        uri = adbc_uri(self.endpoint.connect, self.endpoint.db, self.idle_seconds)
        conn = ADBC_DATABASES.connect(uri)
        self._cursor = conn.cursor()
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        """Nothing: both drivers begin the transaction with the first statement."""

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._cursor is not None:  # ADBC: $n placeholders
            self._cursor.execute(sql.replace("%s", "$1"), params)
            return list(self._cursor.fetchall())
        return list(self._conn.execute(sql, params).fetchall())

    def _exists(self, name: str) -> bool:
        rows = self._query("SELECT to_regclass(%s) IS NOT NULL", (self.dialect.quote_table(name),))
        return bool(rows and rows[0][0])

    def _execute(self, sql: str) -> None:
        if self._cursor is not None:
            self._cursor.execute(sql)
        else:
            self._conn.execute(sql)

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        if self._cursor is None:
            self._copy_rows(batch)
            return
        plan = self._plan(batch.schema)
        data = plan.cast(batch)
        if plan.insert_sql is None:
            schema, table = split_table(self.write_table)
            self._cursor.adbc_ingest(table, data, mode="append", db_schema_name=schema)
        else:
            self._cursor.executemany(plan.insert_sql, data)

    def _plan(self, schema: pa.Schema) -> _IngestPlan:
        key = (self.write_table, tuple(schema.names))
        if key not in self._plans:
            rows = self._query(_COLUMNS_SQL, (self.dialect.quote_table(self.write_table),))
            columns = {name: (oid, typmod, spelled) for name, oid, typmod, spelled in rows}
            self._plans[key] = _IngestPlan.build(self.dialect, self.write_table, schema, columns)
        return self._plans[key]

    def _copy_rows(self, batch: pa.RecordBatch) -> None:
        if self._copy_sql is None:
            names = ", ".join(self.dialect.quote(n) for n in batch.schema.names)
            self._copy_sql = (
                f"COPY {self.dialect.quote_table(self.write_table)} ({names}) FROM STDIN"
            )
        rows = batch_to_rows(batch, _plain_decimals)
        with self._conn.cursor() as cur, cur.copy(self._copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    def _release(self) -> None:
        if self._cursor is not None:
            try:
                self._cursor.close()
            except Exception:
                log.debug("adbc cursor close failed", exc_info=True)
            self._cursor = None
        super()._release()


def _plain_decimals(column: pa.Array) -> pa.Array:
    """Return decimals as plain digits (numeric and text columns both take them)."""
    return bulk.decimal_text(column) if pa.types.is_decimal(column.type) else column


_COLUMNS_SQL = (
    "SELECT a.attname::text, a.atttypid::int8, a.atttypmod::int8,"
    " format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
)


def binary_type(oid: int, typmod: int, incoming: pa.DataType) -> pa.DataType | None:
    """Return the Arrow type ADBC sends in binary for a column (None: not sendable so)."""
    if oid == _NUMERIC:
        if typmod < 4:  # numeric without precision: keep an incoming decimal as it is
            return incoming if pa.types.is_decimal(incoming) else None
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        return pa.decimal128(precision, scale) if precision <= 38 else None
    return _BINARY_TYPES.get(oid)


_BINARY_TYPES: dict[int, pa.DataType] = {
    _BOOL: pa.bool_(),
    _BYTEA: pa.binary(),
    _INT2: pa.int16(),
    _INT4: pa.int32(),
    _INT8: pa.int64(),
    _FLOAT4: pa.float32(),
    _FLOAT8: pa.float64(),
    _TEXT: pa.string(),
    _BPCHAR: pa.string(),
    _VARCHAR: pa.string(),
    _DATE: pa.date32(),
    _TIME: pa.time64("us"),
    _TIMESTAMP: pa.timestamp("us"),
    _TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class _IngestPlan:
    """How batches of one shape go into one table: target Arrow types, and COPY or INSERT."""

    schema: pa.Schema
    insert_sql: str | None
    """None: binary COPY (``adbc_ingest``); else a bound INSERT with text casts."""

    @classmethod
    def build(
        cls,
        dialect: Dialect,
        table: str,
        incoming: pa.Schema,
        columns: Mapping[str, tuple[int, int, str]],
    ) -> _IngestPlan:
        fields, marks, copyable = [], [], True
        for i, field in enumerate(incoming, start=1):
            if field.name not in columns:
                raise TerminalConnectorError(f"table {table} has no column {field.name!r}")
            oid, typmod, spelled = columns[field.name]
            target = binary_type(oid, typmod, field.type)
            if target is None or not _castable(field.type, target):
                copyable = False
                fields.append(pa.field(field.name, pa.string()))
                marks.append(f"${i}::text::{spelled}")
            else:
                fields.append(pa.field(field.name, target))
                marks.append(f"${i}")
        if copyable:
            return cls(pa.schema(fields), None)
        names = ", ".join(dialect.quote(f.name) for f in incoming)
        sql = f"INSERT INTO {dialect.quote_table(table)} ({names}) VALUES ({', '.join(marks)})"
        return cls(pa.schema(fields), sql)

    def cast(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return ``batch`` in the plan's types; a value that does not fit fails its column."""
        return bulk.conform(batch, self.schema, RecordError)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_binary(target) and not pa.types.is_binary(source):
        return False  # text into bytea: PostgreSQL's own text input (\x...) must parse it
    try:
        pc.cast(pa.array([], source), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def adbc_uri(
    connect: Mapping[str, Any], db: str | None, idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS
) -> str:
    """Return the libpq URI of ADBC's connection (the params of :func:`libpq_params`)."""
    params = libpq_params(connect, idle_seconds)
    return bulk.url("postgresql", connect, 5432, db) + "?" + urlencode(params, quote_via=quote)


ADBC_KEPT = 8
"""Most ADBC database objects a process keeps (the least recently used one goes first)."""
ADBC_KEPT_SECONDS = 600.0
"""Age at which a kept ADBC database object is made again (so that it reads the server's type
catalog afresh)."""


class _Kept:
    """One kept database object: its holder, when it was made, and the lock of its calls."""

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        """``adbc_driver_manager.dbapi._SharedDatabase``: a count of the object's holders (the
        cache, each open connection); the last one to let go closes the object."""
        self.born = time.monotonic()
        self.lock = threading.Lock()


class AdbcDatabases:
    """The ADBC database objects of a process, one per connection URI, each the maker of new
    connections.

    Making an ADBC PostgreSQL database object logs in and reads the server's type catalog
    (pg_type, pg_attribute: 25-30 ms on a local server); a connection on an existing one costs a
    plain libpq login (about 2 ms). The key is the whole URI (host, port, user, password,
    database and every libpq param), so a data source changed in any of them gets a new object
    at its next task. :meth:`connect` always returns a new connection (its own session and
    transaction): connections are never shared. An object let go (the least recently used past
    ``size``, one older than ``max_age``, every one at :meth:`close` and at exit) is closed when
    its last open connection is. A forked child leaves its parent's objects alone.
    """

    def __init__(self, size: int = ADBC_KEPT, max_age: float = ADBC_KEPT_SECONDS) -> None:
        self.size = size
        self.max_age = max_age
        self.made = 0
        """Database objects this process made and kept."""
        self._kept: OrderedDict[bytes, _Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed_at_exit = False

    def connect(self, uri: str) -> Any:
        """Return a new DB-API connection (autocommit off) to ``uri``, made on the kept
        database object of ``uri`` (which is made first when there is none)."""
        from adbc_driver_manager import AdbcConnection
        from adbc_driver_manager.dbapi import Connection

        kept = self._take(uri)
        try:
            with kept.lock:  # an ADBC object takes one call at a time
                handle = AdbcConnection(kept.shared._db)
            try:
                return Connection(kept.shared, handle)  # a holder of the object until closed
            except BaseException:
                handle.close()
                raise
        finally:
            kept.shared.close()  # let go of _take's hold

    def _take(self, uri: str) -> _Kept:
        """Return the kept object of ``uri`` with one more hold on it (the caller lets go)."""
        import adbc_driver_postgresql
        from adbc_driver_manager.dbapi import _SharedDatabase

        key = hashlib.sha256(uri.encode()).digest()  # the URI holds the password
        with self._lock:
            kept = self._fresh(key)
            if kept is not None:
                kept.shared.clone()
                return kept
        # made outside the lock: it logs in, which may take up to the connect timeout
        made = _Kept(_SharedDatabase(adbc_driver_postgresql.connect(uri)))
        with self._lock:
            kept = self._fresh(key)
            if kept is None:
                kept = self._kept[key] = made
                self.made += 1
                while len(self._kept) > self.size:
                    self._let_go(next(iter(self._kept)))
                if not self._closed_at_exit:
                    atexit.register(self.close)
                    self._closed_at_exit = True
            else:  # another thread made one meanwhile
                made.shared.close()
            kept.shared.clone()
            return kept

    def _fresh(self, key: bytes) -> _Kept | None:
        """Return the kept object of ``key`` unless missing or too old (under the lock)."""
        if self._pid != os.getpid():  # a forked child: the parent's objects are not its own
            self._kept = OrderedDict()
            self._pid = os.getpid()
        kept = self._kept.get(key)
        if kept is not None and time.monotonic() - kept.born > self.max_age:
            self._let_go(key)
            return None
        if kept is not None:
            self._kept.move_to_end(key)
        return kept

    def _let_go(self, key: bytes) -> None:
        """Drop the kept object of ``key`` (closed once no connection holds it)."""
        kept = self._kept.pop(key)
        try:
            kept.shared.close()
        except Exception:  # a driver error on close: nothing more to do with it
            log.debug("adbc database close failed", exc_info=True)

    def close(self) -> None:
        """Let go of every kept object (each closes after its last open connection)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            while self._kept:
                self._let_go(next(iter(self._kept)))


ADBC_DATABASES = AdbcDatabases()
"""This process's ADBC database objects (PostgreSQL sinks connect through it)."""


TYPE = DataSourceType(
    NAME, PARAMS, "PostgreSQL", tester=test_connection, source=PostgresSource, sink=PostgresSink
)
"""The PostgreSQL connector (listed in :data:`exchangis.connectors.registry.MODULES`)."""
