"""The SQLite sink: ``executemany`` of the batches' rows inside one ``BEGIN IMMEDIATE``
transaction."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from exchangis.connectors.base import Endpoint
from exchangis.connectors.driver import ErrorClass
from exchangis.connectors.sql_sink import SqlSink
from exchangis.connectors.sqlite.connection import NAME, _path, classify, open_connection
from exchangis.connectors.sqlite.dialect import DIALECT, _qualified
from exchangis.connectors.sqlite.types import _prepare
from exchangis.connectors.values import batch_to_rows, chunks
from exchangis.errors import TerminalConnectorError


class SqliteSink(SqlSink):
    """Insert with ``executemany`` inside one ``BEGIN IMMEDIATE`` transaction."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._insert: str | None = None

    def _connect(self) -> Any:
        path = _path(self.endpoint.connect)
        if not path.parent.is_dir():
            raise TerminalConnectorError(f"directory of sqlite database {path} does not exist")
        return open_connection(self.endpoint.connect, read_only=False)

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _exists(self, name: str) -> bool:
        master, table = _qualified(name, "sqlite_master")
        row = self._conn.execute(
            f"SELECT 1 FROM {master} WHERE type IN ('table', 'view') AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def _execute(self, sql: str) -> None:
        self._conn.execute(sql)

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        if self._insert is None:
            self._insert = self.dialect.insert(self.write_table, batch.schema.names, "?")
        rows = batch_to_rows(batch, _prepare)
        for part in chunks(rows, self.chunk_size):
            self._conn.executemany(self._insert, part)
