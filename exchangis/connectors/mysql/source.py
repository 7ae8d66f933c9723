"""The MySQL/MariaDB source: a streaming SELECT through pymysql's server-side cursor, or a
bulk read through connectorx in keyset chunks when every column allows it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors import bulk
from exchangis.connectors.base import Endpoint
from exchangis.connectors.driver import ErrorClass, fetch_all
from exchangis.connectors.mysql.connection import NAME, classify, open_connection
from exchangis.connectors.mysql.dialect import DIALECT
from exchangis.connectors.mysql.types import _bulk_exact, arrow_field
from exchangis.connectors.naming import split_table
from exchangis.connectors.options import BULK
from exchangis.connectors.sql_source import SqlSource
from exchangis.connectors.values import ColumnConverter

log = logging.getLogger(__name__)

_TIMED_OUT = frozenset({1969, 3024})
"""Server errors of a statement cut at its time limit (MariaDB ``max_statement_time``, MySQL
``MAX_EXECUTION_TIME``)."""


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

    def _timed(self, sql: str) -> list[tuple[Any, ...]] | None:
        import pymysql

        seconds = max(self.count_seconds, 0.001)  # 0 would mean no limit
        if "mariadb" in str(self._conn.get_server_info()).lower():
            sql = f"SET STATEMENT max_statement_time = {seconds:.3f} FOR {sql}"
        else:  # MySQL: an optimizer hint of the top SELECT
            sql = sql.replace(
                "SELECT", f"SELECT /*+ MAX_EXECUTION_TIME({int(seconds * 1000)}) */", 1
            )
        try:
            return fetch_all(self._conn, sql)
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in _TIMED_OUT:
                return None
            raise

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
