"""The SQLite source: a table streamed with ``fetchmany`` on a read-only connection, typed by
the columns' declared types."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from exchangis.connectors.base import Endpoint
from exchangis.connectors.driver import ErrorClass
from exchangis.connectors.sql_source import SqlSource
from exchangis.connectors.sqlite.connection import NAME, classify, open_connection
from exchangis.connectors.sqlite.dialect import DIALECT, _qualified
from exchangis.connectors.sqlite.types import arrow_type, converter
from exchangis.connectors.values import ColumnConverter
from exchangis.errors import TerminalConnectorError

log = logging.getLogger(__name__)

_CHECK_EVERY = 10_000
"""Virtual machine instructions between two looks at a timed query's clock."""


class SqliteSource(SqlSource):
    """Stream a SQLite table with ``fetchmany`` on a read-only connection."""

    type = NAME
    dialect = DIALECT

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._cursor: Any = None

    def _connect(self) -> Any:
        return open_connection(self.endpoint.connect, read_only=True)

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _query_estimate(self) -> int | None:
        # max(rowid) is a b-tree lookup; count(*) would scan the table.
        row = self._conn.execute(
            f"SELECT max(rowid) FROM {self.dialect.quote_table(self.endpoint.table)}"
        ).fetchone()
        return int(row[0]) if row and isinstance(row[0], int) else 0

    def _timed(self, sql: str) -> list[tuple[Any, ...]] | None:
        import sqlite3

        deadline = time.monotonic() + self.count_seconds
        self._conn.set_progress_handler(lambda: time.monotonic() > deadline, _CHECK_EVERY)
        try:
            return [tuple(row) for row in self._conn.execute(sql).fetchall()]
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                return None
            raise
        finally:
            self._conn.set_progress_handler(None, 0)

    def _declared_types(self) -> dict[str, str]:
        pragma, table = _qualified(self.endpoint.table, "table_info")
        rows = self._conn.execute(f'PRAGMA {pragma}("{table}")').fetchall()
        if not rows:
            raise TerminalConnectorError(f"sqlite table {self.endpoint.table} does not exist")
        return {str(r[1]).lower(): str(r[2] or "") for r in rows}

    def _start(self, sql: str) -> tuple[pa.Schema, list[ColumnConverter | None]]:
        declared = self._declared_types()
        self._cursor = self._conn.execute(sql)
        fields, converters = [], []
        for column in self._cursor.description:
            t = arrow_type(declared.get(column[0].lower(), ""))
            fields.append(pa.field(column[0], t))
            converters.append(converter(t))
        return pa.schema(fields), converters

    def _fetch(self, size: int) -> Sequence[Sequence[Any]]:
        return self._cursor.fetchmany(size)

    def _release(self) -> None:
        try:
            self._conn.close()
        except Exception:
            log.debug("sqlite close failed", exc_info=True)
        self._cursor = None
