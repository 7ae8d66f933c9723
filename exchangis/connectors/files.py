"""CSV, JSON Lines and Parquet files under a data source ``root`` directory.

Sources stream with pyarrow's CSV/JSON readers; CSV columns are read as text (exact: the sink
database converts). Sinks write a temp file in the target's directory and ``os.replace`` it at
commit, so a failed task leaves the target as it was. CSV and JSONL files may be compressed
(gzip or zstd: option ``compression``, or the name's ``.gz``/``.zst`` suffix). Other formats
live in their own modules (:data:`FORMAT_MODULES`: Parquet in ``parquet.py``), subclasses of
:class:`FileSource` and :class:`FileSink` that ``FileSource(endpoint)`` picks by format.
"""

from __future__ import annotations

import base64
import codecs
import fcntl
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from exchangis.connectors.base import (
    WRITE_MODES,
    Capabilities,
    DataSourceType,
    Endpoint,
    ParamSpec,
    Sink,
    Source,
)
from exchangis.connectors.bulk import decimal_text
from exchangis.connectors.ledger import Fence, FileLedger
from exchangis.connectors.options import (
    BATCH_SIZE,
    LEDGER,
    Kind,
    Option,
    option_error,
    write_mode,
)
from exchangis.errors import ConnectorError, InvalidInputError, TerminalConnectorError

log = logging.getLogger(__name__)

NAME = "FILE"
PARAMS = (ParamSpec("root", local_path=True),)
FORMATS = ("csv", "jsonl", "parquet")
FORMAT_MODULES = {"parquet": "exchangis.connectors.parquet"}
"""Formats served by a module of their own (its ``SOURCE`` and ``SINK`` classes, subclasses of
:class:`FileSource` and :class:`FileSink`), imported when a file of that format is used."""
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
CODECS = ("none", "gzip", "zstd")
_COMPRESSED = {".gz": "gzip", ".zst": "zstd"}
_COPY_CHUNK = 1 << 20  # bytes decompressed at a time when scanning a compressed target
_CSV_BLOCK_SIZE = 1 << 20  # bytes parsed at a time: bounds memory and progress granularity
_JSON_BLOCK_SIZE = 1 << 22  # 4 MiB: the longest JSON line a block must hold
_READ_ERRORS = (pa.ArrowException, OSError, UnicodeError, ValueError)


def resolve_inside(root: str, relative: str) -> Path:
    """Return the absolute path of ``relative`` under ``root``, symlinks resolved.

    Raises:
        InvalidInputError: ``relative`` is empty, absolute, has a ``..`` component, or resolves
            (through symlinks too) outside ``root``; or ``root`` is not a directory.
    """
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        raise InvalidInputError("file path must be a non-empty relative path")
    text = relative.replace("\\", "/")
    if text.startswith("/") or os.path.isabs(relative) or re.match(r"^[A-Za-z]:", text):
        raise InvalidInputError(f"file path {relative!r} must be relative to the root")
    if ".." in text.split("/"):
        raise InvalidInputError(f"file path {relative!r} must not contain '..'")
    if not isinstance(root, str) or not root:
        raise InvalidInputError("file data source has no root directory")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise InvalidInputError(f"file root {root!r} is not a directory")
    base = base.resolve()
    target = (base / text).resolve()
    if target == base or not target.is_relative_to(base):
        raise InvalidInputError(f"file path {relative!r} resolves outside the root")
    return target


def name_suffixes(table: str) -> tuple[str, str | None]:
    """Return the suffix naming a file's format and the codec its compression suffix names.

    ``out.csv.gz`` gives ``(".csv", "gzip")``, ``in.jsonl`` ``(".jsonl", None)``.
    """
    path = PurePosixPath(table.replace("\\", "/"))
    codec = _COMPRESSED.get(path.suffix.lower())
    if codec is not None:
        path = path.with_suffix("")
    return path.suffix.lower(), codec


def file_format(endpoint: Endpoint) -> str:
    """Return ``csv``, ``jsonl`` or ``parquet``: the ``format`` option, else the name's suffix.

    Raises:
        InvalidInputError: neither tells the format, or the option contradicts the suffix
            (``a.csv`` with ``format: parquet``).
    """
    chosen = FORMAT.parse(endpoint.options.get("format"))
    named = _EXTENSIONS.get(name_suffixes(endpoint.table)[0])
    if chosen is None and named is None:
        raise InvalidInputError(
            f"cannot tell the format of {endpoint.table!r}: set option format"
            f" ({', '.join(FORMATS)})"
        )
    if chosen is not None and named is not None and chosen != named:
        raise option_error(
            f"option format {chosen} contradicts the name {endpoint.table!r} ({named}):"
            " rename the file or drop the option"
        )
    return str(chosen or named)


def stream_codec(endpoint: Endpoint) -> str | None:
    """Return the codec a CSV or JSONL file's bytes go through (``gzip``, ``zstd``), or None:
    the ``compression`` option, else the name's ``.gz``/``.zst`` suffix.

    Raises:
        InvalidInputError: the option contradicts the suffix (``out.csv.gz`` with ``zstd``).
    """
    chosen = COMPRESSION.parse(endpoint.options.get("compression"))
    named = name_suffixes(endpoint.table)[1]
    if chosen is not None and named is not None and chosen != named:
        raise option_error(
            f"option compression {chosen} contradicts the name {endpoint.table!r} ({named}):"
            " rename the file or drop the option"
        )
    codec = chosen or named
    return None if codec in (None, "none") else str(codec)


def _format_module(fmt: str) -> ModuleType:
    """Return the module serving ``fmt`` (see :data:`FORMAT_MODULES`)."""
    return importlib.import_module(FORMAT_MODULES[fmt])


def test_connection(connect: Mapping[str, Any]) -> None:
    """Check that ``root`` is a readable directory.

    Raises:
        ConnectorError: the root is missing or unreadable.
    """
    root = connect.get("root")
    if not isinstance(root, str) or not root or not Path(root).expanduser().is_dir():
        raise TerminalConnectorError(f"file root {root!r} is not a directory")
    if not os.access(Path(root).expanduser(), os.R_OK | os.X_OK):
        raise TerminalConnectorError(f"file root {root!r} is not readable")


# --- options -----------------------------------------------------------------------------------


def _encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise InvalidInputError(f"unknown encoding {name!r}") from None


FORMAT = Option(
    "format",
    Kind.ENUM,
    "The file's format (default: from the name's suffix: .csv .tsv .jsonl .json .ndjson"
    " .parquet .pq, before any .gz or .zst).",
    values=FORMATS,
    aliases={"tsv": "csv", "json": "jsonl", "ndjson": "jsonl", "pq": "parquet"},
)
COMPRESSION = Option(
    "compression",
    Kind.ENUM,
    "CSV/JSONL: the file's compression (default: from the name's suffix .gz or .zst, else"
    " none). Parquet: the column codec written (default zstd; any codec is read).",
    values=CODECS,
    aliases={"gz": "gzip", "zst": "zstd", "uncompressed": "none"},
)
ENCODING = Option("encoding", Kind.STRING, "The text encoding.", default="utf-8", check=_encoding)
DELIMITER = Option(
    "delimiter", Kind.CHAR, "CSV: the field separator (default: tab for .tsv, else a comma)."
)
QUOTE_CHAR = Option("quoteChar", Kind.CHAR, "CSV: the quote character.", default='"')
HEADER = Option("header", Kind.BOOLEAN, "CSV: the first line names the columns.", default=True)


def _default_delimiter(endpoint: Endpoint) -> str:
    return "\t" if name_suffixes(endpoint.table)[0] == ".tsv" else ","


def _root(endpoint: Endpoint) -> str:
    return str(endpoint.connect.get("root") or "")


# --- sources -----------------------------------------------------------------------------------


SHARED_OPTIONS = (FORMAT, COMPRESSION, DELIMITER, HEADER, ENCODING, QUOTE_CHAR)
"""Options a file takes as a source and as a sink."""


class FileSource(Source):
    """Read a file; ``FileSource(endpoint)`` builds the class for its format."""

    type: ClassVar[str] = NAME
    options: ClassVar[tuple[Option, ...]] = (
        *SHARED_OPTIONS,
        Option("nullValue", Kind.STRING, "CSV: the text read as NULL (default: none)."),
        BATCH_SIZE,
    )
    capabilities: ClassVar[Capabilities] = Capabilities(estimate=True)
    format: ClassVar[str] = ""

    def __new__(cls, endpoint: Endpoint) -> FileSource:
        """Return a CsvSource, JsonlSource or the format module's source for ``endpoint``."""
        if cls is FileSource:
            fmt = file_format(endpoint)
            chosen: type[FileSource] = (
                CsvSource
                if fmt == "csv"
                else JsonlSource
                if fmt == "jsonl"
                else _format_module(fmt).SOURCE
            )
            return super().__new__(chosen)
        return super().__new__(cls)

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.root = _root(endpoint)
        self.path = resolve_inside(self.root, endpoint.table)
        self.encoding: str = self.opts["encoding"]
        self.codec = self._codec()
        self._raw: Any = None
        self._file: Any = None
        self._reader: Any = None
        self._size = 0
        self._consumed = 0.0
        self._finished = False

    @property
    def traffic(self) -> str:
        """Return the format: ``csv``, ``jsonl``, ``parquet``."""
        return self.format

    def _codec(self) -> str | None:
        """Return the codec the file's bytes are compressed with (None: not compressed)."""
        return stream_codec(self.endpoint)

    def _fail(self, action: str, exc: BaseException) -> TerminalConnectorError:
        return TerminalConnectorError(f"{action} {self.endpoint.table}: {exc}")

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

    def estimate(self) -> int | None:
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
            except _READ_ERRORS as exc:
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


class _NoRows:
    """The reader of an empty file: no column, no batch."""

    schema = pa.schema([])

    def read_next_batch(self) -> pa.RecordBatch:
        """Raise StopIteration: there is no batch."""
        raise StopIteration


class CsvSource(FileSource):
    """Stream a CSV file with ``pyarrow.csv.open_csv``; every column is text."""

    format = "csv"

    def _options(self) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, bool, str]:
        header = self.opts["header"]
        parse = pacsv.ParseOptions(
            delimiter=self.opts["delimiter"] or _default_delimiter(self.endpoint),
            quote_char=self.opts["quoteChar"],
            newlines_in_values=True,
        )
        read = pacsv.ReadOptions(
            encoding=self.encoding, block_size=_CSV_BLOCK_SIZE, autogenerate_column_names=not header
        )
        null_value = self.opts["nullValue"]
        return read, parse, header, "" if null_value is None else str(null_value)

    def open(self) -> pa.Schema:
        """Learn the column names from the first block, then stream with all-text columns."""
        read, parse, header, null_value = self._options()
        try:
            with self._open_file() as probe:
                names = pacsv.open_csv(probe, read_options=read, parse_options=parse).schema.names
            if not header:
                names = [f"col{i + 1}" for i in range(len(names))]
                read = pacsv.ReadOptions(
                    encoding=self.encoding, block_size=_CSV_BLOCK_SIZE, column_names=names
                )
            if len(set(names)) != len(names):
                raise TerminalConnectorError(f"file {self.endpoint.table} repeats column names")
            convert = pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=[null_value],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            )
            self._file = self._open_file()
            self._reader = pacsv.open_csv(
                self._file, read_options=read, parse_options=parse, convert_options=convert
            )
        except ConnectorError:
            self.close()
            raise
        except _READ_ERRORS as exc:
            self.close()
            raise self._fail("open", exc) from None
        schema: pa.Schema = self._reader.schema
        return schema


class JsonlSource(FileSource):
    """Stream a JSON Lines file with ``pyarrow.json.open_json``.

    Types come from the first block (numbers, booleans, text); text that looks like a date stays
    text, and a field whose type changes later in the file is an error.
    """

    format = "jsonl"

    def _stream(self, file: Any) -> Any:
        if self.encoding == "utf-8":
            return file
        return pa.transcoding_input_stream(file, self.encoding, "utf-8")

    def open(self) -> pa.Schema:
        """Infer the schema from the first block, then stream with it fixed."""
        read = pajson.ReadOptions(block_size=_JSON_BLOCK_SIZE, use_threads=False)
        try:
            if self._is_empty():  # an empty table written by a JSONL sink: no row, no column
                self._reader = _NoRows()
                self._finished = True
                return pa.schema([])
            with self._open_file() as probe:
                inferred = pajson.open_json(self._stream(probe), read_options=read).schema
            fields = [
                pa.field(f.name, pa.string())
                if pa.types.is_temporal(f.type) or pa.types.is_null(f.type)
                else f
                for f in inferred
            ]
            parse = pajson.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="error"
            )
            self._file = self._open_file()
            self._reader = pajson.open_json(
                self._stream(self._file), read_options=read, parse_options=parse
            )
        except ConnectorError:
            self.close()
            raise
        except _READ_ERRORS as exc:
            self.close()
            raise self._fail("open", exc) from None
        schema: pa.Schema = self._reader.schema
        return schema


# --- sinks -------------------------------------------------------------------------------------


def _sync_dir(path: Path) -> None:
    """Make a rename in directory ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _base64(column: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else base64.b64encode(v).decode("ascii") for v in column.to_pylist()],
        type=pa.string(),
    )


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


class FileSink(Sink):
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
    format: ClassVar[str] = ""

    def __new__(cls, endpoint: Endpoint) -> FileSink:
        """Return a CsvSink, JsonlSink or the format module's sink for ``endpoint``."""
        if cls is FileSink:
            fmt = file_format(endpoint)
            chosen: type[FileSink] = (
                CsvSink
                if fmt == "csv"
                else JsonlSink
                if fmt == "jsonl"
                else _format_module(fmt).SINK
            )
            return super().__new__(chosen)
        return super().__new__(cls)

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.path = resolve_inside(_root(endpoint), endpoint.table)
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

    @property
    def traffic(self) -> str:
        """Return the format: ``csv``, ``jsonl``, ``parquet``."""
        return self.format

    def _codec(self) -> str | None:
        """Return the codec the file's bytes are compressed with (None: not compressed)."""
        return stream_codec(self.endpoint)

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

    def _fail(self, action: str, exc: BaseException) -> TerminalConnectorError:
        return TerminalConnectorError(f"{action} {self.endpoint.table}: {exc}")

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
        try:
            self._tmp, self._fh = self._temp()
            self._out = self._compressor(self._fh)
            self._start(schema, self.mode == "append")  # append: the header comes at commit
        except ConnectorError:
            self.rollback()
            raise
        except (OSError, pa.ArrowException, ValueError) as exc:
            self.rollback()
            raise self._fail("open", exc) from None

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
        try:
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
        except ConnectorError:
            self.rollback()
            raise
        except (OSError, pa.ArrowException, ValueError) as exc:
            self.rollback()
            raise self._fail("commit", exc) from None

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


class CsvSink(FileSink):
    """Write CSV: pyarrow's CSV writer for UTF-8 with ``"`` quotes, else a text writer."""

    format = "csv"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.delimiter: str = self.opts["delimiter"] or _default_delimiter(endpoint)
        self.quote: str = self.opts["quoteChar"]
        self.header: bool = self.opts["header"]
        self._writer: pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not any(_is_binary(t) or pa.types.is_decimal(t) for t in batch.schema.types):
            return batch
        arrays = [
            _base64(c)
            if _is_binary(c.type)
            else decimal_text(c)
            if pa.types.is_decimal(c.type)
            else c
            for c in batch.columns
        ]
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def _fast(self) -> bool:
        return self.encoding == "utf-8" and self.quote == '"'

    def _start(self, schema: pa.Schema, appending: bool) -> None:
        fields = [
            pa.field(f.name, pa.string())
            if _is_binary(f.type) or pa.types.is_decimal(f.type)
            else f
            for f in schema
        ]
        self._schema = pa.schema(fields)
        include_header = self.header and not appending
        if self._fast():
            options = pacsv.WriteOptions(include_header=include_header, delimiter=self.delimiter)
            self._writer = pacsv.CSVWriter(self._out, self._schema, write_options=options)
        elif include_header:
            self._write_lines([[self._quoted(n) for n in schema.names]])

    def _header(self) -> bytes:
        if not self.header or self._schema is None:
            return b""
        if self._fast():
            out = pa.BufferOutputStream()
            options = pacsv.WriteOptions(include_header=True, delimiter=self.delimiter)
            pacsv.CSVWriter(out, self._schema, write_options=options).close()
            return bytes(out.getvalue().to_pybytes())
        line = self.delimiter.join(self._quoted(n) for n in self._schema.names) + "\n"
        return line.encode(self.encoding)

    def _quoted(self, text: str) -> str:
        q = self.quote
        return q + text.replace(q, q + q) + q

    def _write_lines(self, rows: list[list[str]]) -> None:
        assert self._out is not None
        text = "".join(self.delimiter.join(row) + "\n" for row in rows)
        self._out.write(text.encode(self.encoding))

    def _write(self, batch: pa.RecordBatch) -> None:
        batch = self._prepare(batch)
        if self._writer is not None:
            self._writer.write_batch(batch)
            return
        # Text path: NULL is an empty field, every value (even '') is quoted.
        columns = [pc.cast(c, pa.string()).to_pylist() for c in batch.columns]
        self._write_lines(
            [
                ["" if v is None else self._quoted(v) for v in row]
                for row in zip(*columns, strict=True)
            ]
        )

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()  # flushes; the temp file stays open
            self._writer = None

    def rollback(self) -> None:
        """Delete the temp file; the target is untouched."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except (OSError, pa.ArrowException):
                log.debug("closing csv writer failed table=%s", self.endpoint.table)
        super().rollback()


class JsonlSink(FileSink):
    """Write one JSON object per line: decimals and temporals as exact strings, bytes base64."""

    format = "jsonl"

    def _column(self, column: pa.Array) -> list[Any]:
        t = column.type
        if _is_binary(t):
            return _base64(column).to_pylist()
        if pa.types.is_timestamp(t):
            text = pc.cast(column, pa.string())
            return pc.replace_substring(text, " ", "T", max_replacements=1).to_pylist()
        if pa.types.is_decimal(t):
            return decimal_text(column).to_pylist()
        if pa.types.is_temporal(t):
            return pc.cast(column, pa.string()).to_pylist()
        return column.to_pylist()

    def _write(self, batch: pa.RecordBatch) -> None:
        assert self._out is not None
        names = batch.schema.names
        columns = [self._column(c) for c in batch.columns]
        lines = [
            json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False, allow_nan=False)
            for row in zip(*columns, strict=True)
        ]
        if lines:
            self._out.write(("\n".join(lines) + "\n").encode(self.encoding))


TYPE = DataSourceType(
    NAME,
    PARAMS,
    "CSV / JSON Lines / Parquet files under a root directory",
    tester=test_connection,
    source=FileSource,
    sink=FileSink,
)
"""The files connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
