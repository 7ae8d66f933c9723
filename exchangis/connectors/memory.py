"""MEMORY: a generated source and an in-process sink that fail on demand (fault-injection tests).

Options (on the endpoint): source ``rows`` (default 1000), ``failAtRow``, ``sleepPerBatch``
(seconds); sink ``failAtRow``, ``sleepPerBatch``, ``writeMode``. Committed sink rows are kept
per ``endpoint.table`` in :attr:`MemorySink.tables` (one process only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors.base import (
    WRITE_MODES,
    Capabilities,
    DataSourceType,
    Endpoint,
    Estimate,
    Sink,
    Source,
)
from exchangis.connectors.options import BATCH_SIZE, Kind, Option, write_mode
from exchangis.errors import TerminalConnectorError

NAME = "MEMORY"
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(12, 2))])


def test_connection(connect: Mapping[str, Any]) -> None:
    """Accept anything: there is nothing to reach."""


FAIL_AT_ROW = Option("failAtRow", Kind.INTEGER, "Fail at this row (1-based).", minimum=1)
SLEEP_PER_BATCH = Option(
    "sleepPerBatch", Kind.DURATION, "Pause this long before each batch.", default=0, minimum=0
)


def row_values(row_id: int) -> tuple[int, str, Decimal]:
    """Return the generated values of row ``row_id`` (1-based): id, name, amount."""
    return row_id, f"name-{row_id}", Decimal(row_id).scaleb(-2)


class MemorySource(Source):
    """Generate ``rows`` rows of (id int64, name string, amount decimal(12,2))."""

    type: ClassVar[str] = NAME
    options: ClassVar[tuple[Option, ...]] = (
        Option("rows", Kind.INTEGER, "Rows to generate.", default=1000, minimum=0),
        FAIL_AT_ROW,
        SLEEP_PER_BATCH,
        BATCH_SIZE,
    )
    capabilities: ClassVar[Capabilities] = Capabilities(estimate=True)

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.rows: int = self.opts["rows"]
        self.fail_at: int | None = self.opts["failAtRow"]
        self.sleep: float = self.opts["sleepPerBatch"]
        self.produced = 0
        self._open = False

    def open(self) -> pa.Schema:
        """Return the fixed schema."""
        self._open = True
        return SCHEMA

    def estimate(self) -> Estimate | None:
        """Return the configured row count (exact)."""
        return Estimate(self.rows, exact=True)

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield generated batches; raise at ``failAtRow`` after yielding the rows before it."""
        if not self._open:
            raise TerminalConnectorError("source is not open")
        size = self.batch_rows(batch_size)
        while self.produced < self.rows:
            if self.sleep:
                time.sleep(self.sleep)
            start = self.produced + 1
            end = min(self.rows, self.produced + size)
            if self.fail_at is not None and start <= self.fail_at <= end:
                end = self.fail_at - 1
            if end >= start:
                ids = range(start, end + 1)
                values = [row_values(i) for i in ids]
                yield pa.RecordBatch.from_arrays(
                    [
                        pa.array(col, type=f.type)
                        for col, f in zip(zip(*values, strict=True), SCHEMA, strict=True)
                    ],
                    schema=SCHEMA,
                )
                self.produced = end
            if self.fail_at is not None and self.produced + 1 == self.fail_at:
                raise TerminalConnectorError(f"injected failure at row {self.fail_at}")


class MemorySink(Sink):
    """Buffer rows; publish them to :attr:`tables` at commit. ``failAtRow`` fails the write."""

    type: ClassVar[str] = NAME
    options: ClassVar[tuple[Option, ...]] = (FAIL_AT_ROW, SLEEP_PER_BATCH, write_mode(WRITE_MODES))
    capabilities: ClassVar[Capabilities] = Capabilities(write_modes=WRITE_MODES, atomic=True)
    tables: ClassVar[dict[str, list[dict[str, Any]]]] = {}
    """Committed rows per ``endpoint.table``."""
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.mode: str = self.opts["writeMode"]
        self.fail_at: int | None = self.opts["failAtRow"]
        self.sleep: float = self.opts["sleepPerBatch"]
        self._pending: list[dict[str, Any]] | None = None
        self.written = 0

    @classmethod
    def rows(cls, table: str) -> list[dict[str, Any]]:
        """Return a copy of the committed rows of ``table``."""
        with cls._lock:
            return list(cls.tables.get(table, []))

    @classmethod
    def reset(cls, table: str | None = None) -> None:
        """Forget ``table`` (or every table)."""
        with cls._lock:
            if table is None:
                cls.tables.clear()
            else:
                cls.tables.pop(table, None)

    def open(self, schema: pa.Schema) -> None:
        """Start an empty buffer."""
        self._pending = []
        self.written = 0

    def write(self, batch: pa.RecordBatch) -> int:
        """Buffer ``batch``; raise when it holds row ``failAtRow``."""
        if self._pending is None:
            raise TerminalConnectorError("sink is not open")
        if self.sleep:
            time.sleep(self.sleep)
        if self.fail_at is not None and self.written < self.fail_at <= self.written + len(batch):
            raise TerminalConnectorError(f"injected write failure at row {self.fail_at}")
        self._pending.extend(batch.to_pylist())
        self.written += batch.num_rows
        return int(batch.num_rows)

    def commit(self) -> None:
        """Publish the buffered rows (replacing the table in overwrite mode)."""
        if self._pending is None:
            raise TerminalConnectorError("sink is not open")
        with self._lock:
            if self.mode == "overwrite":
                self.tables[self.endpoint.table] = list(self._pending)
            else:
                self.tables.setdefault(self.endpoint.table, []).extend(self._pending)
        self._pending = None

    def rollback(self) -> None:
        """Drop the buffer."""
        self._pending = None

    def close(self) -> None:
        """Drop anything uncommitted."""
        self._pending = None


TYPE = DataSourceType(
    NAME, (), "In-memory test double", tester=test_connection, source=MemorySource, sink=MemorySink
)
"""The memory connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
