"""The PostgreSQL sink: one transaction per write, binary ``COPY`` from Arrow through ADBC
(see :mod:`.ingest`) on a thread of its own while the task reads on (:mod:`..behind`), else
psycopg's text ``COPY FROM STDIN``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors import bulk
from exchangis.connectors.base import Endpoint
from exchangis.connectors.behind import Outcome, Part, WriteBehindSink
from exchangis.connectors.driver import ErrorClass
from exchangis.connectors.naming import split_table
from exchangis.connectors.options import BULK
from exchangis.connectors.postgres.adbc import ADBC_DATABASES
from exchangis.connectors.postgres.connection import (
    IDLE_IN_TRANSACTION_SECONDS,
    NAME,
    adbc_uri,
    classify,
    open_connection,
)
from exchangis.connectors.postgres.dialect import DIALECT
from exchangis.connectors.postgres.ingest import _COLUMNS_SQL, _IngestPlan
from exchangis.connectors.sql_sink import SqlSink
from exchangis.connectors.values import batch_to_rows
from exchangis.errors import BulkRowRefusedError, RecordError, TerminalConnectorError

log = logging.getLogger(__name__)

COPY_BYTES = 32 * 2**20
"""Arrow bytes one binary ``COPY`` of a sink takes at most: its rows count once it has ended."""


class PostgresSink(WriteBehindSink):
    """Write inside one transaction: binary ``COPY`` from Arrow (ADBC), else psycopg ``COPY``.

    The ADBC path casts each batch to the target table's column types (a checked Arrow cast)
    and ingests it with binary ``COPY``; columns of types it cannot send in binary (json,
    uuid, arrays...) make that batch go through a bound ``INSERT`` with text casts instead.
    After ``defer_writes`` (the task runner's), one ``COPY`` takes the batches of
    ``load_bytes`` on a thread of its own while the task reads and casts the next ones
    (:class:`~exchangis.connectors.behind.WriteBehindSink`). A failed ``COPY`` leaves the
    transaction good for nothing but a rollback: a refused value is a
    :class:`BulkRowRefusedError` (the task runs again without the bulk path, row by row).
    """

    type = NAME
    dialect = DIALECT
    options = (*SqlSink.options, BULK)
    idle_seconds: ClassVar[int] = IDLE_IN_TRANSACTION_SECONDS
    """The server ends the session once idle this long inside its transaction (0: never):
    the transaction of a worker that vanished is rolled back and its locks freed."""
    load_bytes: ClassVar[int] = COPY_BYTES
    loader_thread: ClassVar[str] = "exchangis-pg-copy"
    keeps_batches: ClassVar[bool] = False

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.bulk = self.opts["bulk"] and bulk.available("adbc_driver_postgresql")
        self._copy_sql: str | None = None
        self._cursor: Any = None
        self._plans: dict[tuple[str, tuple[str, ...]], _IngestPlan] = {}
        self._ingest: tuple[tuple[str, tuple[str, ...]], pa.Schema, str | None, str] | None = None
        """What the statements in flight copy: their plan's key and schema, the table's schema
        and name."""

    @property
    def splits(self) -> bool:
        """Return False on ADBC: after a failed ``COPY`` it accepts nothing but a rollback."""
        return not self.bulk

    def _connect(self) -> Any:
        if not self.bulk:
            return open_connection(self.endpoint.connect, self.endpoint.db, self.idle_seconds)
        conn = ADBC_DATABASES.connect(self._uri)
        self._cursor = conn.cursor()
        return conn

    @property
    def _uri(self) -> str:
        return adbc_uri(self.endpoint.connect, self.endpoint.db, self.idle_seconds)

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

    def _behind_item(self, batch: pa.RecordBatch) -> tuple[Any, int] | None:
        """Return ``batch`` cast for a ``COPY`` of the statements in flight (None: an
        ``INSERT`` plan, a value that does not fit, or another shape than the ``COPY`` in
        flight takes: written at once, after it)."""
        if self._cursor is None:
            return None
        key = (self.write_table, tuple(batch.schema.names))
        if self._loader is not None and (self._ingest is None or self._ingest[0] != key):
            return None
        plan = self._plan(batch.schema)  # before a COPY starts: it may read the catalog
        if plan.insert_sql is not None:
            return None
        try:
            data = plan.cast(batch)
        except RecordError:  # written at once, where it fails as a refused row
            return None
        if self._loader is None:
            self._ingest = (key, plan.schema, *split_table(self.write_table))
        return data, data.nbytes

    def _statement(self, pieces: Iterator[Any]) -> tuple[int, int]:
        assert self._ingest is not None
        _, schema, db_schema, table = self._ingest
        reader = pa.RecordBatchReader.from_batches(schema, pieces)
        loaded = self._cursor.adbc_ingest(table, reader, mode="append", db_schema_name=db_schema)
        return int(loaded), 0

    def _cut(self) -> None:
        self._cursor.adbc_cancel()

    def _redo(self, redo: list[Part], failed: Outcome | None, error: BaseException | None) -> int:
        """Fail the write: a failed ``COPY`` leaves nothing to redo in this transaction."""
        if error is not None:
            try:
                with self._errors(f"write {self.endpoint.describe()}"):
                    raise error
            except RecordError as exc:
                raise BulkRowRefusedError(f"a row was refused: {exc.message}") from None
        raise TerminalConnectorError(
            f"COPY into {self.endpoint.describe()} took {failed.loaded if failed else 0} of"
            f" {redo[0].rows} rows"
        )

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
        """Close the session; on ADBC, hand it on to the process's next sink of the same
        data source instead when its last transaction committed (a login less a task)."""
        if self._cursor is None:
            super()._release()
            return
        try:
            self._cursor.close()
        except Exception:
            log.debug("adbc cursor close failed", exc_info=True)
            self._clean = False
        self._cursor = None
        if self._clean:
            ADBC_DATABASES.give_back(self._uri, self._conn)
        else:
            super()._release()


def _plain_decimals(column: pa.Array) -> pa.Array:
    """Return decimals as plain digits (numeric and text columns both take them)."""
    return bulk.decimal_text(column) if pa.types.is_decimal(column.type) else column
