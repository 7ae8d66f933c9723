"""The base of every FILE source: :class:`FileSource`, which streams a file's batches.

``FileSource(endpoint)`` builds the class of the file's format (``common.FORMAT_MODULES``). The
base opens the file (decompressing a CSV or JSONL file's bytes), slices the format reader's
blocks into batches, and reports progress as the share of the file's raw bytes read so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors.base import Capabilities, Endpoint, Estimate, Source
from exchangis.connectors.files.common import (
    NAME,
    SHARED_OPTIONS,
    FileConnector,
)
from exchangis.connectors.files.paths import resolve_inside, root_of
from exchangis.connectors.options import BATCH_SIZE, Kind, Option
from exchangis.errors import ConnectorError, TerminalConnectorError

READ_ERRORS = (pa.ArrowException, OSError, UnicodeError, ValueError)
"""What a format reader raises on a file it cannot read."""


class FileSource(FileConnector, Source):
    """Read a file; ``FileSource(endpoint)`` builds the class for its format."""

    type: ClassVar[str] = NAME
    options: ClassVar[tuple[Option, ...]] = (
        *SHARED_OPTIONS,
        Option("nullValue", Kind.STRING, "CSV: the text read as NULL (default: none)."),
        BATCH_SIZE,
    )
    capabilities: ClassVar[Capabilities] = Capabilities(estimate=True)
    builds = "SOURCE"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.root = root_of(endpoint)
        self.path = resolve_inside(self.root, endpoint.table)
        self.encoding: str = self.opts["encoding"]
        self.codec = self._codec()
        self._raw: Any = None
        self._file: Any = None
        self._reader: Any = None
        self._size = 0
        self._consumed = 0.0
        self._finished = False

    def _open_file(self) -> Any:
        """Open the file's content (decompressed); progress follows the raw file's position."""
        if not self.path.is_file():
            raise TerminalConnectorError(f"file {self.endpoint.table} does not exist")
        self._size = self.path.stat().st_size
        self._raw = pa.OSFile(str(self.path), "rb")
        if self.codec is None:
            return self._raw
        return pa.CompressedInputStream(self._raw, self.codec)

    def _is_empty(self) -> bool:
        """Return whether the file holds no byte once decompressed."""
        with self._open_file() as probe:
            return self._size == 0 or not probe.read(1)

    def _open_reader(self, reader: Callable[[], Any]) -> pa.Schema:
        """Set the format reader ``reader()`` returns and return its schema; on failure close
        the file and raise :class:`TerminalConnectorError` naming it."""
        try:
            self._reader = reader()
        except ConnectorError:
            self.close()
            raise
        except READ_ERRORS as exc:
            self.close()
            raise self._fail("open", exc) from None
        schema: pa.Schema = self._reader.schema
        return schema

    def estimate(self) -> Estimate | None:
        """Return None: a file's row count is unknown until read (see :meth:`progress`)."""
        return None

    def progress(self) -> float | None:
        """Return the fraction of the file's bytes behind the rows yielded so far."""
        if self._file is None and not self._finished:
            return None
        if self._finished or self._size == 0:
            return 1.0
        return min(1.0, self._consumed / self._size)

    def _tell(self) -> int:
        try:
            return int(self._raw.tell())
        except (OSError, ValueError, AttributeError, pa.ArrowException):
            return self._size

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield batches of at most ``batch_size`` rows, slicing the reader's blocks."""
        if self._reader is None:
            raise TerminalConnectorError("source is not open")
        size = self.batch_rows(batch_size)
        while True:
            before = self._consumed
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                self._finished = True
                return
            except READ_ERRORS as exc:
                raise self._fail("read", exc) from None
            # The reader may have read ahead: spread the bytes read over this block's rows.
            read = max(before, float(self._tell()))
            rows = batch.num_rows
            for start in range(0, rows, size):
                end = min(rows, start + size)
                self._consumed = before + (read - before) * end / rows
                yield batch.slice(start, size)
            self._consumed = read

    def close(self) -> None:
        """Close the reader and the file; safe twice."""
        self._reader = None
        file, raw = self._file, self._raw
        self._file = self._raw = None
        try:
            if file is not None:
                file.close()
        finally:
            if raw is not None and not raw.closed:
                raw.close()
