"""The SQL source: a SELECT streamed (keyset chunks by bulk readers, or a server-side
cursor); backends fill in the driver hooks."""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors import bulk
from exchangis.connectors.base import Capabilities, Endpoint, Estimate, Source
from exchangis.connectors.dialect import Dialect
from exchangis.connectors.driver import ErrorClass, fetch_all, scrub, translate_errors
from exchangis.connectors.naming import validate_column, validate_columns, validate_table
from exchangis.connectors.options import BATCH_SIZE, Kind, Option
from exchangis.connectors.values import ColumnConverter, rows_to_batch
from exchangis.errors import (
    BulkRowRefusedError,
    ConnectorError,
    InvalidInputError,
    TerminalConnectorError,
    TransientConnectorError,
)

log = logging.getLogger(__name__)


def _numeric(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_decimal(data_type)


def _inner_bounds(lower: Any, upper: Any, channels: int) -> list[Any]:
    """Return up to ``channels - 1`` increasing bounds that cut [lower, upper] evenly."""
    if isinstance(lower, int) and isinstance(upper, int):
        span = upper - lower + 1
        points: list[Any] = [lower + span * k // channels for k in range(1, channels)]
    else:
        low, high = Decimal(str(lower)), Decimal(str(upper))
        points = [low + (high - low) * k / channels for k in range(1, channels)]
    unique = sorted({p for p in points if lower < p <= upper})
    return [p if isinstance(p, int) else str(p) for p in unique]


COUNT_SECONDS = 2.0
"""Longest the count of the rows a read selects may run (the server cuts it: a statement
timeout) before progress does without it; the query of a keyset read's first and last keys
too. Every task pays each at most once."""
SPAN_AFTER_SECONDS = 0.2
"""How long a keyset read whose rows were not counted runs before it takes its first and last
keys (its progress is 0 until then): tiny reads, done sooner, never run that query."""


class SqlSource(Source):
    """A SELECT streamed with a server-side cursor; backends implement the driver hooks."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("where", Kind.STRING, "A condition rows must meet (SQL, without WHERE)."),
        Option(
            "columns",
            Kind.LIST,
            "The columns to read, in this order (default: all of them).",
            check=validate_columns,
        ),
        BATCH_SIZE,
        Option(
            "splitPk",
            Kind.STRING,
            "The numeric column channels cut the table by (default: its one-column key).",
            check=validate_column,
        ),
    )
    capabilities: ClassVar[Capabilities] = Capabilities(channels=True, where=True, estimate=True)
    dialect: ClassVar[Dialect]
    count_seconds: ClassVar[float] = COUNT_SECONDS
    """Longest a count (or the first and last keys) may take (:data:`COUNT_SECONDS`)."""
    span_after_seconds: ClassVar[float] = SPAN_AFTER_SECONDS
    """How long a keyset read runs before it takes its first and last keys
    (:data:`SPAN_AFTER_SECONDS`)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        validate_table(endpoint.table)
        self.columns: list[str] | None = self.opts["columns"]
        self._conn: Any = None
        self._schema: pa.Schema | None = None
        self._converters: list[ColumnConverter | None] = []
        self._estimate: Estimate | None = None
        self._estimated = False
        self._rows_read = 0
        self._bulk_reader: Iterator[pa.RecordBatch] | None = None
        self._span: tuple[float, float] | None = None
        """The first and last keys a keyset read selects (None: not known, or not needed)."""
        self._span_key: str | None = None
        """The key whose first and last values are still to be taken (at ``_span_due``)."""
        self._span_due = 0.0
        self._last_key: Any = None
        """The key of the last row yielded by a keyset read."""

    # hooks -------------------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any:
        """Open and return a driver connection."""

    @abstractmethod
    def _classify(self, exc: BaseException) -> ErrorClass | None:
        """Map a driver exception to a connector error class."""

    @abstractmethod
    def _query_estimate(self) -> int | None:
        """Return the cheap row estimate of the table (connection open, no cursor streaming)."""

    @abstractmethod
    def _timed(self, sql: str) -> list[tuple[Any, ...]] | None:
        """Return the rows of ``sql``, or None when it ran past :attr:`count_seconds` (the
        server, or the driver, cut it; the caller ends the transaction)."""

    @abstractmethod
    def _start(self, sql: str) -> tuple[pa.Schema, list[ColumnConverter | None]]:
        """Run ``sql`` on a streaming cursor; return the Arrow schema and column converters."""

    @abstractmethod
    def _fetch(self, size: int) -> Sequence[Sequence[Any]]:
        """Return up to ``size`` more rows (empty at the end)."""

    @abstractmethod
    def _release(self) -> None:
        """Close the cursor and the connection, ignoring errors."""

    def _bulk_url(self) -> str | None:
        """Return the connectorx URL of a bulk read (None: no bulk read for this source)."""
        return None

    def _describe(self, sql: str) -> tuple[pa.Schema, bool]:
        """Return the schema of ``sql`` (a query of no rows), and whether a bulk read keeps it.

        Only called when :meth:`_bulk_url` gives a URL.
        """
        raise NotImplementedError

    # contract ----------------------------------------------------------------------------------
    def _errors(self, action: str, *, hide_cause: bool = False) -> Any:
        return translate_errors(
            self._classify, self.endpoint.connect, action, hide_cause=hide_cause
        )

    def _ensure_connection(self) -> None:
        if self._conn is None:
            with self._errors(f"connect to {self.endpoint.describe()}", hide_cause=True):
                self._conn = self._connect()

    @property
    def bulk(self) -> bool:
        """Return whether rows are read by the bulk path (known after ``open``)."""
        return self._bulk_reader is not None

    def select_sql(self) -> str:
        """Return the SELECT this source runs (a channel's: its key range only)."""
        return self.dialect.select(
            self.endpoint.table, self.columns, self.opts["where"], self.endpoint.split
        )

    def _primary_key(self) -> list[str]:
        """Return the table's primary key columns (the catalog read's transaction is ended)."""
        try:
            rows = fetch_all(self._conn, self.dialect.primary_key(self.endpoint.table))
        finally:
            self._end_read()
        return [str(row[0]) for row in rows]

    def _bulk_key(self) -> str | None:
        """Return the one-column primary key a bulk read pages on (None: no such key)."""
        keys = self._primary_key()
        if len(keys) != 1:
            log.info(
                "no one-column primary key on %s: rows are read by the driver", self.endpoint.table
            )
            return None
        return keys[0]

    def _end_read(self) -> None:
        """End the catalog query's transaction (the read starts a fresh snapshot)."""
        self._conn.rollback()

    def _chunk_sql(self, key: str, after: Any, limit: int | None = None) -> str:
        return self.dialect.keyset_select(
            self.endpoint.table,
            self.columns,
            self.opts["where"],
            self.endpoint.split,
            key,
            after,
            bulk.CHUNK_ROWS if limit is None else limit,
        )

    def _keyset(self, url: str, key: str, keyed: pa.Schema) -> Iterator[pa.RecordBatch]:
        """Yield the rows in chunks of ``CHUNK_ROWS`` in key order, one connectorx query each,
        with the key as the last column (``keyed``).

        connectorx reads ahead of a slower consumer without bound; a chunk bounds that to
        ``CHUNK_ROWS`` rows whatever the table's size. Each chunk is its own snapshot.
        """
        after: Any = None
        while True:
            got = 0
            for batch in bulk.stream(url, self._chunk_sql(key, after), keyed, self._bulk_error):
                got += batch.num_rows
                after = batch.column(batch.num_columns - 1)[batch.num_rows - 1].as_py()
                yield batch
            if got < bulk.CHUNK_ROWS:
                return

    def split_points(self, channels: int) -> tuple[str, list[Any]]:
        """Return the split key and the ``channels - 1`` inner bounds of equal key ranges.

        The key is option ``splitPk``, else the table's one-column primary key; it must be
        numeric. The ranges cut the whole number line (the first and last are open), so every
        row falls in exactly one channel whatever the bounds are.

        Raises:
            InvalidInputError: no usable key.
            ConnectorError: the database could not be asked.
        """
        self._ensure_connection()
        table = self.endpoint.table
        with self._errors(f"find the split key of {self.endpoint.describe()}"):
            key = self.opts["splitPk"]
            if key is None:
                keys = self._primary_key()
                if len(keys) != 1:
                    raise InvalidInputError(
                        f"table {table} has no one-column primary key: set option splitPk to a"
                        " numeric column to split it into channels"
                    )
                key = keys[0]
            key = validate_column(str(key))
            where = self.opts["where"]
            lower, upper = fetch_all(self._conn, self.dialect.bounds(table, key, where))[0]
            self._end_read()
        if lower is None:
            return key, []
        if not all(isinstance(v, int | float | Decimal) for v in (lower, upper)) or isinstance(
            lower, bool
        ):
            raise InvalidInputError(f"split key {key} of table {table} is not numeric")
        return key, _inner_bounds(lower, upper, channels)

    def open(self) -> pa.Schema:
        """Connect, take the estimate, start streaming and return the schema.

        A keyset read whose rows were not counted also takes its first and last keys once it
        has run :attr:`span_after_seconds` (a read done sooner never pays for that query): its
        progress is the position of the last key read between them (:meth:`progress`).
        """
        self._ensure_connection()
        estimate = self.estimate()
        sql = self.select_sql()
        with self._errors(f"read {self.endpoint.describe()}"):
            url = self._bulk_url()
            key = self._bulk_key() if url is not None else None
            if url is not None and key is not None:
                keyed, exact = self._describe(self._chunk_sql(key, None, limit=0))
                if exact and _numeric(keyed.field(len(keyed) - 1).type):
                    self._schema = pa.schema(list(keyed)[:-1])
                    if estimate is None or not estimate.exact:  # its span, once it has lasted
                        self._span_key = key
                        self._span_due = time.monotonic() + self.span_after_seconds
                    self._bulk_reader = self._keyset(url, key, keyed)
                    return self._schema
            self._schema, self._converters = self._start(sql)
        return self._schema

    def _bounded(self, sql: str, what: str) -> tuple[Any, ...] | None:
        """Return the first row of ``sql`` run for at most :attr:`count_seconds`, or None
        when it ran longer or failed (progress does without it; the read goes on)."""
        try:
            with self._errors(what):
                try:
                    found = self._timed(sql)
                finally:
                    self._end_read()
        except ConnectorError as exc:
            log.info("%s failed table=%s error=%s", what, self.endpoint.table, exc)
            return None
        if found is None:
            log.info("%s took over %gs table=%s", what, self.count_seconds, self.endpoint.table)
            return None
        return found[0]

    def _count(self) -> Estimate | None:
        """Return the rows the read selects, counted in :attr:`count_seconds` at most."""
        sql = self.dialect.count(self.endpoint.table, self.opts["where"], self.endpoint.split)
        found = self._bounded(sql, "count the rows")
        return None if found is None else Estimate(int(found[0]), exact=True)

    def _key_span(self, key: str) -> tuple[float, float] | None:
        """Return the first and last ``key`` the read selects (None: no rows, a single key,
        or the query ran past :attr:`count_seconds`)."""
        sql = self.dialect.key_span(
            self.endpoint.table, key, self.opts["where"], self.endpoint.split
        )
        found = self._bounded(sql, "find the first and last keys")
        if found is None or found[0] is None or found[1] is None:
            return None
        low, high = float(found[0]), float(found[1])
        return (low, high) if high > low else None

    def estimate(self) -> Estimate | None:
        """Return the rows the read selects: the catalog's figure for a whole table (a
        statistic), else (a ``where``, a channel's range, or a catalog that knows nothing: a
        table never analysed) a count that the server cuts after :attr:`count_seconds`
        (then None)."""
        if not self._estimated:
            self._ensure_connection()
            try:
                with self._errors("estimate"):
                    whole = not self.opts["where"] and not self.endpoint.split
                    rows = self._query_estimate() if whole else None
                self._estimate = Estimate(rows) if rows is not None else self._count()
            except ConnectorError as exc:
                log.info("estimate unavailable table=%s error=%s", self.endpoint.table, exc)
                self._estimate = None
            self._estimated = True
        return self._estimate

    def progress(self) -> float | None:
        """Return the position of the last key read between the first and last keys the read
        selects: keyset reads whose rows were not counted (None otherwise)."""
        if self._span_key is not None:
            if time.monotonic() < self._span_due:
                return 0.0  # no other yardstick in the meantime: it would be left behind
            key, self._span_key = self._span_key, None
            self._span = self._key_span(key)
        if self._span is None:
            return None
        if self._last_key is None:
            return 0.0
        low, high = self._span
        return min(max((float(self._last_key) - low) / (high - low), 0.0), 1.0)

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield batches of at most ``batch_size`` rows (or ``batchSize`` when smaller)."""
        if self._schema is None:
            raise TerminalConnectorError("source is not open")
        size = self.batch_rows(batch_size)
        if self._bulk_reader is not None:  # keyed batches: the key is the last column
            for batch in self._bulk_reader:
                for start in range(0, batch.num_rows, size):
                    part = batch.slice(start, size)
                    key = part.column(part.num_columns - 1)
                    self._last_key = key[part.num_rows - 1].as_py()
                    self._rows_read += part.num_rows
                    yield pa.RecordBatch.from_arrays(part.columns[:-1], schema=self._schema)
            return
        while True:
            with self._errors(f"read {self.endpoint.describe()}"):
                rows = self._fetch(size)
            if not rows:
                return
            batch = rows_to_batch(rows, self._schema, self._converters, self._rows_read + 1)
            self._rows_read += len(rows)
            yield batch

    def _bulk_error(self, message: str, lost: bool) -> ConnectorError:
        """Return the connector error for a failed bulk read (no password in the message).

        A lost connection is transient; anything else (a value connectorx cannot read, such as
        a MySQL zero date) asks the runner to read again with the driver, which names the
        column and row at fault.
        """
        cls = TransientConnectorError if lost else BulkRowRefusedError
        text = scrub(message, self.endpoint.connect)
        return cls(f"bulk read of {self.endpoint.describe()} failed: {text}")

    def close(self) -> None:
        """Close the cursor and connection; safe twice."""
        if self._bulk_reader is not None:
            close = getattr(self._bulk_reader, "close", None)
            if close is not None:
                close()
            self._bulk_reader = None
        if self._conn is not None:
            self._release()
            self._conn = None
