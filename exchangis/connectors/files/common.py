"""What every FILE source and sink shares: the options, the format and codec a file has.

The options a file takes on both sides (:data:`SHARED_OPTIONS`); :func:`file_format` and
:func:`stream_codec`, which read the format and the compression from the options or the name;
:data:`FORMAT_MODULES`, the module serving each format (its ``SOURCE`` and ``SINK`` classes,
imported by name when a file of that format is used); and :class:`FileConnector`, the part a
source and a sink of one file have in common.
"""

from __future__ import annotations

import codecs
import importlib
from types import ModuleType
from typing import ClassVar, Self

from exchangis.connectors.base import Endpoint
from exchangis.connectors.files.paths import name_suffixes, named_format
from exchangis.connectors.options import Kind, Option, option_error
from exchangis.errors import InvalidInputError, TerminalConnectorError

NAME = "FILE"
FORMATS = ("csv", "jsonl", "parquet")
FORMAT_MODULES = {
    "csv": "exchangis.connectors.files.csv_format",
    "jsonl": "exchangis.connectors.files.jsonl_format",
    "parquet": "exchangis.connectors.files.parquet_format",
}
"""The module serving each format (its ``SOURCE`` and ``SINK`` classes, subclasses of
``FileSource`` and ``FileSink``), imported when a file of that format is used."""
CODECS = ("none", "gzip", "zstd")


def format_module(fmt: str) -> ModuleType:
    """Return the module serving ``fmt`` (see :data:`FORMAT_MODULES`)."""
    return importlib.import_module(FORMAT_MODULES[fmt])


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

SHARED_OPTIONS = (FORMAT, COMPRESSION, DELIMITER, HEADER, ENCODING, QUOTE_CHAR)
"""Options a file takes as a source and as a sink."""


def default_delimiter(endpoint: Endpoint) -> str:
    """Return a CSV file's field separator without option ``delimiter``: tab for ``.tsv``."""
    return "\t" if name_suffixes(endpoint.table)[0] == ".tsv" else ","


def file_format(endpoint: Endpoint) -> str:
    """Return ``csv``, ``jsonl`` or ``parquet``: the ``format`` option, else the name's suffix.

    Raises:
        InvalidInputError: neither tells the format, or the option contradicts the suffix
            (``a.csv`` with ``format: parquet``).
    """
    chosen = FORMAT.parse(endpoint.options.get("format"))
    named = named_format(endpoint.table)
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


class FileConnector:
    """What a file's source and sink share: the format, the codec, errors naming the file.

    A mixin placed before :class:`~exchangis.connectors.base.Source` or ``Sink``.
    """

    endpoint: Endpoint
    format: ClassVar[str] = ""
    builds: ClassVar[str] = ""
    """Set on ``FileSource`` (``SOURCE``) and ``FileSink`` (``SINK``): the class of the format
    module (:data:`FORMAT_MODULES`) that constructing them builds instead."""

    def __new__(cls, endpoint: Endpoint) -> Self:
        """Return an instance of ``cls``; of the format's class when ``cls`` names one (see
        :attr:`builds`): ``FileSource(endpoint)`` gives a CsvSource for a CSV file."""
        chosen: type[Self] = cls
        if "builds" in cls.__dict__:
            chosen = getattr(format_module(file_format(endpoint)), cls.builds)
        return super().__new__(chosen)

    @property
    def traffic(self) -> str:
        """Return the format: ``csv``, ``jsonl``, ``parquet``."""
        return self.format

    def _codec(self) -> str | None:
        """Return the codec the file's bytes are compressed with (None: not compressed)."""
        return stream_codec(self.endpoint)

    def _fail(self, action: str, exc: BaseException) -> TerminalConnectorError:
        return TerminalConnectorError(f"{action} {self.endpoint.table}: {exc}")
