"""The PostgreSQL source: connectorx keyset chunks cut on the server at a byte budget when
every column allows it, else a psycopg named cursor inside a read-only transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors import bulk
from exchangis.connectors.base import Endpoint
from exchangis.connectors.dialect import KEY_ALIAS
from exchangis.connectors.driver import ErrorClass
from exchangis.connectors.options import BULK
from exchangis.connectors.postgres.connection import (
    IDLE_IN_TRANSACTION_SECONDS,
    NAME,
    classify,
    open_connection,
)
from exchangis.connectors.postgres.dialect import DIALECT
from exchangis.connectors.postgres.types import _bulk_exact, arrow_field
from exchangis.connectors.sql_source import SqlSource
from exchangis.connectors.values import ColumnConverter

log = logging.getLogger(__name__)


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

    def _timed(self, sql: str) -> list[tuple[Any, ...]] | None:
        from psycopg.errors import QueryCanceled

        milliseconds = max(1, int(self.count_seconds * 1000))
        try:  # for this transaction only
            self._conn.execute(f"SET LOCAL statement_timeout = {milliseconds}")
            return [tuple(row) for row in self._conn.execute(sql).fetchall()]
        except QueryCanceled:
            return None

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
