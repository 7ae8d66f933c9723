"""Keyset reads cut into chunks, one connectorx query each, sized to a budget of Arrow bytes.

connectorx reads ahead of a slower consumer without bound, so a read is cut into chunks of a
bounded row count, estimated from the widest rows seen so far (:class:`Chunks`); a backend
that can cut a chunk by its rows' bytes on the server adds the ``MORE`` flag column.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from exchangis.connectors.bulk.reads import READ_BATCH_ROWS, stream

log = logging.getLogger(__name__)

READ_BATCH_BYTES = 4 * 2**20
"""Arrow bytes a batch asked of connectorx should hold at most (its rows are cut to fit the
widest rows seen so far: :meth:`Chunks.batch_rows`), whatever the rows' width."""

CHUNK_ROWS = 131072
"""Most rows per connectorx query of a keyset read: connectorx reads ahead of a slower consumer
without bound, so a read is cut into chunks of at most this many rows (and ``CHUNK_BYTES``)."""

CHUNK_BYTES = 16 * 2**20
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


def _var_width(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
    )


def _fixed_width(data_type: pa.DataType) -> int:
    """Return the Arrow bytes a value takes besides its text or binary payload (offsets of
    the widest kind, and a validity byte rather than a bit)."""
    if _var_width(data_type):
        return 8 + 1
    try:
        return max(1, data_type.bit_width // 8) + 1
    except ValueError:  # not fixed-width: counted as a wide offset
        return 8 + 1


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
        """Yield the rows of a keyset read (``keyed``: the key last), one connectorx query a
        chunk.

        ``chunk_sql(after, limit)`` is the query of the next chunk: the rows after key value
        ``after`` (None: from the start) in key order, at most ``limit``, the key last. With
        ``cut`` it also stops where its rows pass the budget (at least one row) and has the
        ``MORE`` flag before the key; the read then ends only at a chunk short of its limit
        whose last row has nothing after it.
        """
        fields = list(self.keyed)
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
                if not cut:
                    yield batch
                    continue
                more = bool(batch.column(batch.num_columns - 2)[batch.num_rows - 1].as_py())
                columns = batch.columns  # the batch without the flag
                yield pa.RecordBatch.from_arrays([*columns[:-2], columns[-1]], schema=self.keyed)
            self.count += 1
            self.largest = max(self.largest, size)
            if widest:
                self.row_bytes = widest
            if got == 0 or (got < limit and not more):
                log.debug("keyset read chunks=%s largest_bytes=%s", self.count, self.largest)
                return
