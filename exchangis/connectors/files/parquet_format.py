"""Parquet files under a FILE data source's root: :class:`ParquetSource` and :class:`ParquetSink`.

A format of the FILE connector (``format: parquet``, or a name ending ``.parquet``/``.pq``):
``FileSource(endpoint)``/``FileSink(endpoint)`` build these classes, and the rest — confinement
to the root, the temp file renamed at commit, ``writeMode``, the ledger — is theirs.

- Types round-trip exactly: a Parquet file stores the Arrow schema, so decimals, timestamps
  with their time zone, binary and nulls read back as written; a FILE→FILE Parquet copy is exact.
  The three temporal types Parquet widens (``timestamp[s]`` kept as ms, ``date64`` as date32,
  ``time32[s]`` as ms) are cast back to the stored type (:func:`written_schema`). Types Parquet
  cannot hold (intervals) fail the sink's ``open``.
- A source reads one file, or every file a glob in the table name matches
  (``dt=2026-*/part-*.parquet``) as one table, in path order, with pyarrow's dataset reader.
  Matches are confined like any path (:func:`matching_files`); every file must have the first
  one's columns and types. The footers give the row count: the estimate is exact.
- A sink gathers batches into row groups bounded in bytes and in rows (:class:`RowGroups`), so
  its memory stays bounded for wide rows. ``compression`` is the column codec (default
  :data:`DEFAULT_CODEC`); a ``.gz``/``.zst`` suffix is refused (the file compresses itself).
- ``writeMode: append`` rewrites: at commit, under the file's lock, the existing file's rows
  and then the new ones (cast to the file's column types) go into the temp file that replaces
  it. The columns must be the file's, by name and order.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa

from exchangis.connectors.base import Endpoint, Estimate
from exchangis.connectors.files.paths import is_glob, matching_files, name_suffixes
from exchangis.connectors.files.row_groups import (
    ROW_GROUP_BYTES,
    ROW_GROUP_ROWS,
    RowGroups,
    RowGroupWriter,
)
from exchangis.connectors.files.sink import FileSink
from exchangis.connectors.files.source import FileSource
from exchangis.errors import ConnectorError, InvalidInputError, TerminalConnectorError

log = logging.getLogger(__name__)

DEFAULT_CODEC = "zstd"
"""The column codec of a sink without option ``compression`` (smaller than snappy, as fast to
read, and every current Parquet reader has it)."""
_COPY_ROWS = 64 * 1024  # rows per batch when an append copies a file's rows
_ERRORS = (pa.ArrowException, OSError, ValueError)


def _no_stream_compression(endpoint: Endpoint) -> None:
    """Refuse a ``.gz``/``.zst`` name: a Parquet file compresses its columns itself."""
    if name_suffixes(endpoint.table)[1] is not None:
        raise InvalidInputError(
            f"{endpoint.table!r}: a Parquet file compresses its columns itself; name it"
            " without .gz/.zst and set option compression"
        )


def _columns(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name} {field.type}" for field in schema)


def written_schema(read: pa.Schema, metadata: Any) -> pa.Schema:
    """Return ``read`` (a file's schema as pyarrow reads it) with the temporal types its writer
    had where Parquet widened them, as the Arrow schema stored in the file's key-value
    ``metadata`` says (``timestamp[s]`` read as ms, ``date64`` as date32, ``time32[s]`` as ms).
    """
    stored = (metadata or {}).get(b"ARROW:schema")
    if stored is None:
        return read
    try:
        original = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(stored)))
    except (pa.ArrowException, ValueError):
        return read
    if original.names != read.names:
        return read
    for i, (have, had) in enumerate(zip(read, original, strict=True)):
        widened = pa.types.is_temporal(have.type) and pa.types.is_temporal(had.type)
        if widened and have.type != had.type:
            read = read.set(i, have.with_type(had.type))
    return read


# --- source ------------------------------------------------------------------------------------


class ParquetSource(FileSource):
    """Stream one Parquet file, or every file a glob matches, as one table."""

    format = "parquet"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._dataset: Any = None
        self._rows: int | None = None
        self._restore: pa.Schema | None = None
        """The schema batches are cast to (types Parquet widened), or None."""

    def _codec(self) -> str | None:
        _no_stream_compression(self.endpoint)
        return None  # option compression: the reader takes whatever codec the file names

    def _files(self) -> list[Path]:
        if is_glob(self.endpoint.table):
            return matching_files(self.root, self.endpoint.table)
        if not self.path.is_file():
            raise TerminalConnectorError(f"file {self.endpoint.table} does not exist")
        return [self.path]

    def open(self) -> pa.Schema:
        """Read every file's footer (schema, row count), then set up the dataset reader.

        Raises:
            TerminalConnectorError: no file, a file that is not Parquet, or files whose columns
                differ.
        """
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        paths = self._files()
        schema: pa.Schema | None = None
        written: pa.Schema | None = None
        rows = 0
        try:
            for path in paths:
                with pq.ParquetFile(path) as file:
                    if schema is None:
                        schema = file.schema_arrow
                        written = written_schema(schema, file.metadata.metadata)
                    elif not file.schema_arrow.equals(schema):
                        raise TerminalConnectorError(
                            f"{path.name} has the columns ({_columns(file.schema_arrow)}), not"
                            f" those of {paths[0].name} ({_columns(schema)})"
                        )
                    rows += file.metadata.num_rows
            self._dataset = ds.dataset([str(p) for p in paths], schema=schema, format="parquet")
        except ConnectorError:
            raise
        except _ERRORS as exc:
            raise self._fail("open", exc) from None
        assert schema is not None and written is not None
        self._rows = rows
        self._restore = None if written.equals(schema) else written
        return written

    def estimate(self) -> Estimate | None:
        """Return the row count the files' footers give, exact (None before :meth:`open`)."""
        return None if self._rows is None else Estimate(self._rows, exact=True)

    def progress(self) -> float | None:
        """Return None: rows read over :meth:`estimate` is exact."""
        return None

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield batches of at most ``batch_size`` rows, a row group of one file at a time."""
        if self._dataset is None:
            raise TerminalConnectorError("source is not open")
        size = self.batch_rows(batch_size)
        try:
            # No read-ahead across files and little within: memory stays near one row group.
            stream = iter(
                self._dataset.to_batches(batch_size=size, batch_readahead=1, fragment_readahead=1)
            )
        except _ERRORS as exc:
            raise self._fail("read", exc) from None
        while True:
            try:
                batch = next(stream)
                if self._restore is not None:
                    batch = batch.cast(self._restore)
            except StopIteration:
                self._finished = True
                return
            except _ERRORS as exc:
                raise self._fail("read", exc) from None
            for start in range(0, batch.num_rows, size):
                yield batch.slice(start, size)

    def close(self) -> None:
        """Forget the dataset reader; safe twice."""
        self._dataset = None
        super().close()


# --- sink --------------------------------------------------------------------------------------


class ParquetSink(FileSink):
    """Write a Parquet file atomically, in row groups bounded in bytes and rows."""

    format = "parquet"
    row_group_bytes: ClassVar[int] = ROW_GROUP_BYTES
    row_group_rows: ClassVar[int] = ROW_GROUP_ROWS

    def __init__(self, endpoint: Endpoint) -> None:
        if is_glob(endpoint.table):
            raise InvalidInputError(f"a sink writes one file: {endpoint.table!r} is a glob")
        super().__init__(endpoint)
        chosen = self.opts["compression"]
        self.column_codec: str = DEFAULT_CODEC if chosen is None else str(chosen)
        self._schema: pa.Schema | None = None
        self._writer: RowGroupWriter | None = None

    def _codec(self) -> str | None:
        _no_stream_compression(self.endpoint)
        return None  # option compression is the column codec

    def _row_groups(self) -> RowGroups:
        """Return the row-group bounds of a new writer."""
        return RowGroups(self.row_group_bytes, self.row_group_rows)

    def _start(self, schema: pa.Schema, appending: bool) -> None:
        self._schema = schema
        if appending and self.path.is_file() and self.path.stat().st_size > 0:
            import pyarrow.parquet as pq

            self._check_appendable(pq.read_schema(self.path))  # early; commit checks again
        self._writer = RowGroupWriter(self._fh, schema, self.column_codec, self._row_groups())

    def _check_appendable(self, existing: pa.Schema) -> None:
        assert self._schema is not None
        if existing.names != self._schema.names:
            raise TerminalConnectorError(
                f"cannot append to {self.endpoint.table}: its columns are"
                f" {', '.join(existing.names)}; the rows' are {', '.join(self._schema.names)}"
            )

    def _write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            raise TerminalConnectorError("sink is not open")
        if not batch.schema.equals(self._writer.schema):  # now, not when its row group is full
            raise ValueError(
                f"the batch's columns ({_columns(batch.schema)}) are not the file's"
                f" ({_columns(self._writer.schema)})"
            )
        self._writer.write(batch)

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()  # the footer; the temp file stays open
            self._writer = None

    def _append_to_target(self) -> None:
        """Replace the temp file with the target's rows followed by the new ones, cast to the
        target's column types (a missing or empty target: the temp file is the new file)."""
        assert self._tmp is not None
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        import pyarrow.parquet as pq

        new_rows = self._tmp

        def fill(handle: BinaryIO) -> None:
            with pq.ParquetFile(self.path) as existing, pq.ParquetFile(new_rows) as new:
                schema = written_schema(existing.schema_arrow, existing.metadata.metadata)
                self._check_appendable(schema)
                self._copy(existing, new, schema, handle)

        self._replace_temp(fill)

    def _copy(self, existing: Any, new: Any, schema: pa.Schema, handle: BinaryIO) -> None:
        """Write ``existing``'s rows, then ``new``'s cast to ``schema``, to ``handle``."""
        writer = RowGroupWriter(handle, schema, self.column_codec, self._row_groups())
        for file in (existing, new):
            same = file.schema_arrow.equals(schema)
            for batch in file.iter_batches(batch_size=_COPY_ROWS, use_threads=False):
                writer.write(batch if same else batch.cast(schema))
        writer.close()

    def rollback(self) -> None:
        """Delete the temp file; the target is untouched."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except _ERRORS:
                log.debug("closing parquet writer failed table=%s", self.endpoint.table)
        super().rollback()


SOURCE = ParquetSource
"""The source class :class:`FileSource` builds for ``format: parquet``."""
SINK = ParquetSink
"""The sink class :class:`FileSink` builds for ``format: parquet``."""
