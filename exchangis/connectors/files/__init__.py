"""CSV, JSON Lines and Parquet files under a data source ``root`` directory (type ``FILE``).

Sources stream with pyarrow's CSV/JSON/dataset readers; CSV columns are read as text (exact:
the sink database converts). Sinks write a temp file in the target's directory and
``os.replace`` it at commit, so a failed task leaves the target as it was. CSV and JSONL files
may be compressed (gzip or zstd: option ``compression``, or the name's ``.gz``/``.zst``
suffix). Each format has a module (:data:`FORMAT_MODULES`: ``csv_format``, ``jsonl_format``,
``parquet_format``) whose classes subclass :class:`FileSource` (``source.py``) and
:class:`FileSink` (``sink.py``); ``FileSource(endpoint)`` picks the one for the file's format.
Paths and globs are confined to the root (``paths.py``); the options both sides take are in
``common.py``. This module declares the connector (:data:`TYPE`) and re-exports its names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exchangis.connectors.base import DataSourceType, ParamSpec
from exchangis.connectors.files.catalog import CATALOG
from exchangis.connectors.files.common import (
    CODECS,
    FORMAT_MODULES,
    FORMATS,
    NAME,
    SHARED_OPTIONS,
    file_format,
    stream_codec,
)
from exchangis.connectors.files.csv_format import CsvSink, CsvSource
from exchangis.connectors.files.jsonl_format import JsonlSink, JsonlSource
from exchangis.connectors.files.parquet_format import ParquetSink, ParquetSource, written_schema
from exchangis.connectors.files.paths import (
    is_glob,
    matching_files,
    name_suffixes,
    resolve_inside,
)
from exchangis.connectors.files.row_groups import RowGroups, RowGroupWriter
from exchangis.connectors.files.sink import FileSink
from exchangis.connectors.files.source import FileSource
from exchangis.errors import TerminalConnectorError

__all__ = [
    "CATALOG",
    "CODECS",
    "FORMATS",
    "FORMAT_MODULES",
    "NAME",
    "PARAMS",
    "SHARED_OPTIONS",
    "TYPE",
    "CsvSink",
    "CsvSource",
    "FileSink",
    "FileSource",
    "JsonlSink",
    "JsonlSource",
    "ParquetSink",
    "ParquetSource",
    "RowGroupWriter",
    "RowGroups",
    "file_format",
    "is_glob",
    "matching_files",
    "name_suffixes",
    "resolve_inside",
    "stream_codec",
    "test_connection",
    "written_schema",
]

PARAMS = (ParamSpec("root", local_path=True),)


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


TYPE = DataSourceType(
    NAME,
    PARAMS,
    "CSV / JSON Lines / Parquet files under a root directory",
    tester=test_connection,
    source=FileSource,
    sink=FileSink,
    catalog=CATALOG,
)
"""The files connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
