"""Bulk fast paths shared by the SQL connectors: Arrow in and out without per-value Python.

* reads: connectorx streams a SELECT as Arrow record batches (Rust drivers, bounded memory);
* PostgreSQL writes: the ADBC driver's ``adbc_ingest`` (binary ``COPY`` straight from Arrow);
* MySQL writes: ``LOAD DATA LOCAL INFILE`` of a tab-separated file built by Arrow compute
  kernels (:func:`encode_tsv`).

Each path is optional: the libraries come as PyPI wheels, and when one cannot be imported (or
the ``bulk`` option is false) the connectors fall back to their per-row driver paths.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.base import check_host
from exchangis.errors import ExchangisError, TerminalConnectorError

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_BATCH_ROWS = 32768
"""Most rows per batch asked of connectorx; the runner re-slices to its own batch size."""

READ_BATCH_BYTES = 4 * 2**20
"""Arrow bytes a batch asked of connectorx should hold at most (its rows are cut to fit the
widest rows seen so far: :meth:`Chunks.batch_rows`), whatever the rows' width."""

CHUNK_ROWS = 131072
"""Most rows per connectorx query of a keyset read: connectorx reads ahead of a slower consumer
without bound, so a read is cut into chunks of at most this many rows (and ``CHUNK_BYTES``)."""

CHUNK_BYTES = 32 * 2**20
"""Arrow bytes a chunk of a keyset read should hold at most: its row count is cut to fit
(:class:`Chunks`). About what a read holds in memory at once, whatever the rows' width."""

FIRST_VALUE_BYTES = 256 * 2**10
"""Bytes assumed of a text or binary value before any row was read (or its declared maximum
when smaller): the first chunk of a table of rows this wide still fits its budget."""

TARGET = 0.875
"""Share of the budget an estimated chunk aims at: rows a little wider than those measured
before still fit."""

MORE = "exg_chunk_more"
"""Column of a cut chunk (:meth:`Chunks.read` with ``cut``): whether rows the cut left out
follow the row (the read goes on after it)."""

_TSV_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))


def available(module: str) -> bool:
    """Return whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def url(scheme: str, connect: Mapping[str, Any], default_port: int, db: str | None) -> str:
    """Return a ``scheme://user:password@host:port/db`` URL (every part percent-encoded).

    The URL holds the password: never log it.
    """
    user = quote(str(connect.get("username") or ""), safe="")
    password = str(connect.get("password") or "")
    auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    host = check_host(str(connect.get("host") or "localhost"))
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = int(connect.get("port") or default_port)
    database = quote(str(db or connect.get("database") or ""), safe="")
    return f"{scheme}://{auth}{host}:{port}/{database}"


# --- reads -------------------------------------------------------------------------------------


def stream(
    conn_url: str,
    sql: str,
    schema: pa.Schema,
    error: Callable[[str, bool], Exception],
    batch_rows: int = READ_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of ``sql`` read by connectorx, cast to ``schema`` batch by batch.

    ``schema`` is the exact schema the per-row driver path would give (taken from the driver's
    column metadata); connectorx's own mapping is wider (e.g. every decimal as (38, 10)), so
    each batch is cast to it — a cast that would lose anything fails instead. A failure of
    connectorx (a Rust panic included) becomes ``error(message, lost_connection)``.
    ``batch_rows``: the most rows connectorx puts in a batch.
    """
    import connectorx

    try:
        reader = connectorx.read_sql(
            conn_url, sql, return_type="arrow_stream", batch_size=max(1, int(batch_rows))
        )
        batches = iter(reader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            if batch.num_rows:
                yield conform(batch, schema)
    except (GeneratorExit, KeyboardInterrupt, SystemExit, ExchangisError):
        raise
    except BaseException as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "0000-00-00" in message:
            message += (
                " (a MySQL zero date is not a date: fix the rows, or leave them out with the"
                " source's where option)"
            )
        raise error(message, bool(_LOST.search(message))) from None


def _var_width(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
    )


class Chunks:
    """The chunks of one keyset read, each cut to at most ``max_rows`` rows and about
    ``budget`` Arrow bytes.

    The first chunk's row count comes from the column types (a text or binary value counts
    ``FIRST_VALUE_BYTES``, or its declared maximum when smaller); each later one from the
    widest batch (Arrow bytes per row) of the chunk before it, aiming at ``TARGET`` of the
    budget. An estimate cannot foresee rows much wider than those before them; a backend that
    can cut a chunk by its rows' bytes on the server does so as well (``read(cut=True)``).

    Args:
        keyed: the chunk query's schema, its key last (as :func:`stream` conforms it).
        declared: the most bytes each column's values may take, by name (text and binary).
    """

    def __init__(
        self,
        keyed: pa.Schema,
        budget: int = CHUNK_BYTES,
        max_rows: int = CHUNK_ROWS,
        declared: Mapping[str, int] | None = None,
    ) -> None:
        self.keyed = keyed
        self.budget = budget
        self.max_rows = max_rows
        self.var_names = [f.name for f in list(keyed)[:-1] if _var_width(f.type)]
        """The text and binary columns (the key, last, is a number)."""
        self.fixed_bytes = sum(_fixed_width(f.type) for f in keyed) + 2  # a cut's flag too
        """Bytes a row takes besides its text and binary values (offsets and validity
        counted generously, so the sum is never below the Arrow size)."""
        guess = sum(
            min((declared or {}).get(n, FIRST_VALUE_BYTES), FIRST_VALUE_BYTES)
            for n in self.var_names
        )
        self.row_bytes = float(self.fixed_bytes + guess)
        """Bytes per row the next chunk is sized by."""
        self.count = 0
        """Chunks read so far."""
        self.largest = 0
        """Arrow bytes of the largest chunk read so far."""

    def limit(self) -> int:
        """Return the row count of the next chunk."""
        return max(1, min(self.max_rows, int(self.budget * TARGET // self.row_bytes)))

    def batch_rows(self) -> int:
        """Return the rows per connectorx batch of the next chunk: ``READ_BATCH_BYTES`` of
        rows as wide as the widest seen so far (at most ``READ_BATCH_ROWS``)."""
        return max(1, min(READ_BATCH_ROWS, int(READ_BATCH_BYTES // self.row_bytes)))

    def read(
        self,
        url: str,
        chunk_sql: Callable[[Any, int], str],
        error: Callable[[str, bool], Exception],
        *,
        cut: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        """Yield the rows of a keyset read (without the key), one connectorx query a chunk.

        ``chunk_sql(after, limit)`` is the query of the next chunk: the rows after key value
        ``after`` (None: from the start) in key order, at most ``limit``, the key last. With
        ``cut`` it also stops where its rows pass the budget (at least one row) and has the
        ``MORE`` flag before the key; the read then ends only at a chunk short of its limit
        whose last row has nothing after it.
        """
        fields = list(self.keyed)
        out = pa.schema(fields[:-1])
        schema = (
            pa.schema([*fields[:-1], pa.field(MORE, pa.bool_()), fields[-1]]) if cut else self.keyed
        )
        after: Any = None
        while True:
            limit = self.limit()
            got, size, widest, more = 0, 0, 0.0, False
            for batch in stream(url, chunk_sql(after, limit), schema, error, self.batch_rows()):
                got += batch.num_rows
                size += batch.nbytes
                widest = max(widest, batch.nbytes / batch.num_rows)
                after = batch.column(batch.num_columns - 1)[batch.num_rows - 1].as_py()
                if cut:
                    more = bool(batch.column(batch.num_columns - 2)[batch.num_rows - 1].as_py())
                yield pa.RecordBatch.from_arrays(batch.columns[: len(out)], schema=out)
            self.count += 1
            self.largest = max(self.largest, size)
            if widest:
                self.row_bytes = widest
            if got == 0 or (got < limit and not more):
                log.debug("keyset read chunks=%s largest_bytes=%s", self.count, self.largest)
                return


def _fixed_width(data_type: pa.DataType) -> int:
    """Return the Arrow bytes a value takes besides its text or binary payload (offsets of
    the widest kind, and a validity byte rather than a bit)."""
    if _var_width(data_type):
        return 8 + 1
    try:
        return max(1, data_type.bit_width // 8) + 1
    except ValueError:  # not fixed-width: counted as a wide offset
        return 8 + 1


_LOST = re.compile(
    r"(?i)connection (refused|reset|closed|lost)|broken pipe|timed out|unexpected eof|"
    r"server has gone away|lost connection"
)


def conform(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    error: type[ExchangisError] = TerminalConnectorError,
) -> pa.RecordBatch:
    """Return ``batch`` with ``schema``'s names and types (a checked, vectorised cast).

    Raises:
        ExchangisError: ``error``, when a value does not fit its column's type.
    """
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for column, field in zip(batch.columns, schema, strict=True):
        if column.type == field.type:
            arrays.append(column)
            continue
        try:
            if pa.types.is_string(field.type):
                arrays.append(text_of(column))
            else:
                arrays.append(pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise error(
                f"column {field.name!r}: a value does not fit {field.type}: {exc}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def decimal_text(column: pa.Array) -> pa.Array:
    """Return a decimal column as plain fixed-point text at its scale (``0.0000000001``).

    Arrow's cast writes small and zero values in scientific notation (``1E-10``, ``0E-10``)
    when the scale is above 6 (or negative); only those values are rewritten, one by one.
    """
    text = pc.cast(column, pa.string())
    if 0 <= column.type.scale <= 6:  # never scientific: -scale + digits - 1 >= -6
        return text
    scientific = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    fixed = [format(v, "f") for v in pc.filter(column, scientific).to_pylist()]
    return pc.replace_with_mask(text, scientific, pa.array(fixed, pa.string()))


def text_of(column: pa.Array) -> pa.Array:
    """Return ``column`` cast to text the way every sink writes it (decimals in plain digits)."""
    if pa.types.is_decimal(column.type):
        return decimal_text(column)
    return pc.cast(column, pa.string())


# --- TSV (MySQL LOAD DATA, PostgreSQL text COPY) ------------------------------------------------


def _tsv_column(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_boolean(t):
        column = pc.cast(column, pa.int8())
    elif pa.types.is_timestamp(t) and t.tz is not None:
        column = pc.cast(column, pa.timestamp(t.unit))  # UTC wall time (sessions run in UTC)
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    if pa.types.is_string(column.type):
        found = _text_bytes(column)  # one scan; most text holds none of the characters
        for old, new in _TSV_ESCAPES:
            if old.encode() in found:
                column = pc.replace_substring(column, old, new)
    else:
        column = text_of(column)
    return pc.fill_null(column, "\\N")


def _text_bytes(column: pa.Array) -> bytes:
    """Return the UTF-8 bytes of a text column's values, one after another."""
    if len(column) == 0 or column.buffers()[2] is None:
        return b""
    offsets = memoryview(column.buffers()[1]).cast("i")
    start, end = offsets[column.offset], offsets[column.offset + len(column)]
    return memoryview(column.buffers()[2])[start:end].tobytes()


def tsv_supported(data_type: pa.DataType) -> bool:
    """Return whether :func:`encode_tsv` writes ``data_type`` exactly."""
    t = data_type
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_time(t)
        or pa.types.is_null(t)
    )


def encode_tsv(batch: pa.RecordBatch) -> memoryview:
    """Return ``batch`` as tab-separated lines: ``\\N`` for NULL, ``\\``-escaped text.

    This is the default format of MySQL's ``LOAD DATA`` (and PostgreSQL's text ``COPY``).
    Every step is an Arrow compute kernel; nothing loops over values in Python. The bytes are
    a view of the Arrow buffer that holds them (no copy).
    """
    if batch.num_rows == 0:
        return memoryview(b"")
    columns = [_tsv_column(c) for c in batch.columns]
    columns[-1] = pc.binary_join_element_wise(columns[-1], "\n", "")  # each line's end
    lines = pc.binary_join_element_wise(*columns, "\t") if len(columns) > 1 else columns[0]
    offsets = memoryview(lines.buffers()[1]).cast("i")
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[start:end]


# --- a bounded hand-over between two threads ---------------------------------------------------


class FeedAborted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The producer of a :class:`Feed` gave up: what was handed over so far is discarded."""


class Feed(Generic[T]):
    """Items handed from one thread (the producer) to another (the consumer) in order, at most
    ``limit`` bytes of them waiting at once: the producer waits beyond, so memory stays flat
    however far ahead of the consumer it runs.

    The consumer takes items with :meth:`get` until :meth:`close`; :meth:`abort` makes it raise
    :class:`FeedAborted` instead. The consumer calls :meth:`stop` when it ends (done or
    failed): a producer waiting in :meth:`put` then gets False rather than waiting forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[tuple[T, int]] = deque()
        self._queued = 0
        self._closed = False
        self._aborted = False
        self._stopped = False
        self._cond = threading.Condition()

    def put(self, item: T, size: int) -> bool:
        """Queue ``item`` of ``size`` bytes, waiting while ``limit`` bytes wait (a larger item
        waits alone). Returns False, ``item`` dropped, once the consumer has stopped."""
        with self._cond:
            while self._queued and self._queued + size > self.limit and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return False
            self._items.append((item, size))
            self._queued += size
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """Say that nothing more comes: :meth:`get` returns None after the last item."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Drop what waits, and make :meth:`get` raise :class:`FeedAborted` from now on."""
        with self._cond:
            self._aborted = True
            self._items.clear()
            self._queued = 0
            self._cond.notify_all()

    def stop(self) -> None:
        """Consumer side: take nothing more (a waiting or later :meth:`put` returns False)."""
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._queued = 0
            self._cond.notify_all()

    def get(self) -> T | None:
        """Consumer side: return the next item, waiting for it; None once closed and empty.

        Raises:
            FeedAborted: the producer called :meth:`abort`.
        """
        with self._cond:
            while not (self._items or self._closed or self._aborted):
                self._cond.wait()
            if self._aborted:
                raise FeedAborted("the writer gave up")
            if not self._items:
                return None
            item, size = self._items.popleft()
            self._queued -= size
            self._cond.notify_all()
            return item

    def wait(self) -> bool:
        """Consumer side: wait for an item; return False when closed and empty instead.

        Raises:
            FeedAborted: the producer called :meth:`abort`.
        """
        with self._cond:
            while not (self._items or self._closed or self._aborted):
                self._cond.wait()
            if self._aborted:
                raise FeedAborted("the writer gave up")
            return bool(self._items)
