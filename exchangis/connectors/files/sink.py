"""The base of every FILE sink: :class:`FileSink`, which writes a file atomically.

``FileSink(endpoint)`` builds the class of the file's format (``common.FORMAT_MODULES``). Rows
go to a locked temp file beside the target; ``commit``, under the file's lock, appends the
target's content when appending (:meth:`FileSink._replace_temp`), records the attempt in the
file's ledger and renames the temp file over the target, so a failed task leaves the target as
it was. A format subclass supplies the writer: ``_start``, ``_write``, ``_finish``, ``_header``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa

from exchangis.connectors.base import WRITE_MODES, Capabilities, Endpoint, Sink
from exchangis.connectors.files.common import (
    NAME,
    SHARED_OPTIONS,
    FileConnector,
)
from exchangis.connectors.files.paths import resolve_inside, root_of
from exchangis.connectors.ledger import Fence, FileLedger
from exchangis.connectors.options import LEDGER, Option, write_mode
from exchangis.errors import ConnectorError, TerminalConnectorError

log = logging.getLogger(__name__)

_COPY_CHUNK = 1 << 20  # bytes decompressed at a time when scanning a compressed target


def _sync_dir(path: Path) -> None:
    """Make a rename in directory ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FileSink(FileConnector, Sink):
    """Write a file atomically; ``FileSink(endpoint)`` builds the class for its format."""

    type: ClassVar[str] = NAME
    options: ClassVar[tuple[Option, ...]] = (
        *SHARED_OPTIONS,
        write_mode(WRITE_MODES),
        LEDGER,
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_modes=WRITE_MODES, atomic=True, ledger=True
    )
    builds = "SINK"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.path = resolve_inside(root_of(endpoint), endpoint.table)
        self.mode: str = self.opts["writeMode"]
        self.encoding: str = self.opts["encoding"]
        self.keeps_ledger: bool = self.opts["ledger"]
        self.codec = self._codec()
        self._tmp: Path | None = None
        self._fh: BinaryIO | None = None
        self._out: Any = None
        """What the format writer writes to: the temp file, or a compressor in front of it."""
        self._fence: Fence | None = None
        self._names: list[str] = []
        """The columns given to :meth:`open`: every batch has them."""
        self._written = 0

    def _compressor(self, handle: BinaryIO) -> Any:
        """Return the stream the format writer writes to: ``handle``, or a compressor on it."""
        if self.codec is None:
            return handle
        # On a duplicate descriptor: closing the compressor ends the compressed stream and
        # leaves the temp file (and its lock) open until the rename.
        return pa.CompressedOutputStream(os.fdopen(os.dup(handle.fileno()), "wb"), self.codec)

    def _close_out(self) -> None:
        """End the compressed stream, if any (the temp file stays open)."""
        out, self._out = self._out, None
        if out is not None and out is not self._fh:
            out.close()

    def _packed(self, data: bytes) -> bytes:
        """Return ``data`` as the file stores it: a compressed member (gzip) or frame (zstd) of
        its own when compressed; concatenated members read back as one stream."""
        if self.codec is None or not data:
            return data
        out = pa.BufferOutputStream()
        with pa.CompressedOutputStream(out, self.codec) as stream:
            stream.write(data)
        return bytes(out.getvalue().to_pybytes())

    def _last_byte(self) -> bytes | None:
        """Return the target's last byte (decompressed), or None when it is missing or empty."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        if self.codec is None:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                return existing.read(1)
        last = b""
        with pa.CompressedInputStream(pa.OSFile(str(self.path), "rb"), self.codec) as stream:
            while chunk := stream.read(_COPY_CHUNK):
                last = chunk[-1:]
        return last or None

    def _start(self, schema: pa.Schema, appending: bool) -> None:
        """Prepare the format writer (``appending``: the temp file already holds rows)."""

    def _write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush what the format writer buffers."""

    def _header(self) -> bytes:
        """Return the header an empty target starts with (CSV's column names)."""
        return b""

    def _temp(self) -> tuple[Path, BinaryIO]:
        """Create a temp file beside the target, locked while this process lives (a writer
        that died leaves it unlocked: the next writer's :meth:`FileLedger.sweep` removes it)."""
        # resolve_inside() proved the path is under root: its parents are too.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        fcntl.flock(fd, fcntl.LOCK_EX)
        return Path(tmp), os.fdopen(fd, "wb")

    def fence(self, fence: Fence) -> int | None:
        """Take the task's entry in the file's ledger (``.<name>.exg-ledger``); see
        :meth:`Sink.fence`. Also removes temp files of writers that died."""
        if not self.keeps_ledger:
            return None
        self._fence = fence
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLedger(self.path).locked() as book:
                book.sweep()
                return book.take(fence)
        except OSError as exc:
            raise self._fail("keep the ledger of", exc) from None

    def open(self, schema: pa.Schema) -> None:
        """Create the temp file the new rows go to (appended to the target at commit)."""
        if self.path.is_dir():
            raise TerminalConnectorError(f"{self.endpoint.table} is a directory")
        self._names = list(schema.names)
        with self._rolling_back("open"):
            self._tmp, self._fh = self._temp()
            self._out = self._compressor(self._fh)
            self._start(schema, self.mode == "append")  # append: the header comes at commit

    @contextmanager
    def _rolling_back(self, action: str) -> Iterator[None]:
        """Run the block; on failure roll back and raise, naming the file and ``action``."""
        try:
            yield
        except ConnectorError:
            self.rollback()
            raise
        except (OSError, pa.ArrowException, ValueError) as exc:
            self.rollback()
            raise self._fail(action, exc) from None

    def write(self, batch: pa.RecordBatch) -> int:
        """Append ``batch`` to the temp file."""
        if self._fh is None:
            raise TerminalConnectorError("sink is not open")
        if batch.schema.names != self._names:  # (pyarrow's CSV writer crashes on fewer)
            raise TerminalConnectorError(
                f"write {self.endpoint.table}: the batch's columns"
                f" ({', '.join(batch.schema.names)}) are not the file's ({', '.join(self._names)})"
            )
        try:
            self._write(batch)
        except ConnectorError:
            raise
        except (OSError, pa.ArrowException, ValueError, TypeError) as exc:
            raise self._fail("write", exc) from None
        self._written += batch.num_rows
        return int(batch.num_rows)

    def commit(self) -> None:
        """Under the file's lock: build the new content (append: the target's, then the new
        rows), record it in the ledger while this attempt owns its entry, rename it over the
        target. Concurrent writers of one file take turns here, so no append is lost."""
        if self._fh is None or self._tmp is None:
            raise TerminalConnectorError("sink is not open")
        with self._rolling_back("commit"):
            self._finish()
            self._close_out()
            self._sync(self._fh)
            with FileLedger(self.path).locked() as book:
                if self.mode == "append":
                    self._append_to_target()
                if self.path.is_file():
                    shutil.copymode(self.path, self._tmp)
                else:
                    os.chmod(self._tmp, 0o644)
                if self._fence is not None:
                    book.pending(self._fence, self._tmp.stat().st_ino)
                os.replace(self._tmp, self.path)
                _sync_dir(self.path.parent)
                if self._fence is not None:
                    book.committed(self._fence, self._written)
            self._close_temp()

    @staticmethod
    def _sync(handle: BinaryIO) -> None:
        handle.flush()
        os.fsync(handle.fileno())

    def _append_to_target(self) -> None:
        """Replace the temp file with the target's content followed by the new rows (or the
        header, when the target is missing or empty). Compressed files are concatenated as
        they are: gzip members and zstd frames read back as one stream."""
        assert self._fh is not None and self._tmp is not None
        new = self._tmp

        def fill(handle: BinaryIO) -> None:
            last = self._last_byte()
            if last is None:
                handle.write(self._packed(self._header()))
            else:
                with self.path.open("rb") as existing:
                    shutil.copyfileobj(existing, handle)
                if last != b"\n":
                    handle.write(self._packed(b"\n"))
            with new.open("rb") as rows:
                shutil.copyfileobj(rows, handle)

        self._replace_temp(fill)

    def _replace_temp(self, fill: Callable[[BinaryIO], None]) -> None:
        """Write a new temp file with ``fill`` and make it the one ``commit`` publishes; on any
        failure the new file is removed and the old one stays."""
        merged, handle = self._temp()
        try:
            fill(handle)
            self._sync(handle)
        except BaseException:
            handle.close()
            merged.unlink(missing_ok=True)
            raise
        self._close_temp()
        self._tmp, self._fh = merged, handle

    def _close_temp(self) -> None:
        """Close (and unlock) the temp file and delete it if it was not renamed."""
        try:
            self._close_out()
        except (OSError, pa.ArrowException):
            log.debug("closing the compressor failed path=%s", self._tmp)
        fh, tmp = self._fh, self._tmp
        self._fh, self._tmp = None, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                log.debug("closing temp file failed path=%s", tmp)
        if tmp is not None:
            tmp.unlink(missing_ok=True)

    def rollback(self) -> None:
        """Delete the temp file; the target is untouched."""
        self._close_temp()

    def close(self) -> None:
        """Discard anything uncommitted; safe twice."""
        self.rollback()
