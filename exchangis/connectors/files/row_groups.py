"""Parquet row groups bounded in bytes and in rows, so a sink's memory stays bounded.

:class:`RowGroups` gathers batches into groups of at most :data:`ROW_GROUP_BYTES` bytes and
:data:`ROW_GROUP_ROWS` rows (cutting a batch that would overshoot); :class:`RowGroupWriter`
writes each group it closes as one row group of a Parquet stream.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

ROW_GROUP_BYTES = 64 << 20
"""A sink writes a row group once the batches it holds reach this many bytes (Arrow sizes)..."""
ROW_GROUP_ROWS = 1 << 20
"""...or this many rows, whichever comes first."""


class RowGroups:
    """Gather batches into row groups of at most ``max_rows`` rows and ``max_bytes`` bytes.

    A group is complete once it reaches either bound; a batch that would overshoot is cut, so
    only a single row wider than ``max_bytes`` makes a group larger.
    """

    def __init__(self, max_bytes: int = ROW_GROUP_BYTES, max_rows: int = ROW_GROUP_ROWS) -> None:
        if max_bytes < 1 or max_rows < 1:
            raise ValueError("row group bounds must be positive")
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self._held: list[pa.RecordBatch] = []
        self._rows = 0
        self._bytes = 0

    @property
    def held_bytes(self) -> int:
        """Return the bytes of the batches held (not yet in a complete group)."""
        return self._bytes

    def push(self, batch: pa.RecordBatch) -> list[list[pa.RecordBatch]]:
        """Hold ``batch``; return the groups it completed (each a list of batches)."""
        done: list[list[pa.RecordBatch]] = []
        while batch.num_rows:
            width = batch.nbytes / batch.num_rows
            room = self.max_bytes - self._bytes
            if self._held and width > room:  # not one more row fits: close the group first
                done.append(self.drain())
                continue
            rows = min(batch.num_rows, self.max_rows - self._rows)
            if width:
                rows = max(1, min(rows, int(room // width)))
            piece, batch = batch.slice(0, rows), batch.slice(rows)
            self._held.append(piece)
            self._rows += piece.num_rows
            self._bytes += piece.nbytes
            if self._rows >= self.max_rows or self._bytes >= self.max_bytes:
                done.append(self.drain())
        return done

    def drain(self) -> list[pa.RecordBatch]:
        """Return the batches held (an incomplete group, maybe empty) and hold none."""
        held, self._held, self._rows, self._bytes = self._held, [], 0, 0
        return held


class RowGroupWriter:
    """Write batches to a Parquet stream, one row group per group :class:`RowGroups` closes."""

    def __init__(
        self, where: Any, schema: pa.Schema, codec: str, groups: RowGroups | None = None
    ) -> None:
        import pyarrow.parquet as pq

        self.schema = schema
        self.row_groups = 0
        self._groups = groups or RowGroups()
        self._writer = pq.ParquetWriter(where, schema, compression=codec)

    def write(self, batch: pa.RecordBatch) -> None:
        """Hold ``batch``; write the row groups it completes."""
        for group in self._groups.push(batch):
            self._flush(group)

    def _flush(self, group: list[pa.RecordBatch]) -> None:
        table = pa.Table.from_batches(group, schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)
            self.row_groups += 1

    def close(self) -> None:
        """Write the last row group and the footer (the stream itself stays open)."""
        self._flush(self._groups.drain())
        self._writer.close()
