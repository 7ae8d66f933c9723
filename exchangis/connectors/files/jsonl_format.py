"""JSON Lines files: :class:`JsonlSource` streams with pyarrow's JSON reader, :class:`JsonlSink`
writes one JSON object per line.

A source takes its types from the first block (numbers, booleans, text; what looks like a date
stays text). A sink writes decimals and temporals as exact strings and binary as base64.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from exchangis.connectors.bulk import decimal_text
from exchangis.connectors.files.sink import FileSink
from exchangis.connectors.files.source import FileSource
from exchangis.connectors.files.text import base64_text, is_binary

_JSON_BLOCK_SIZE = 1 << 22  # 4 MiB: the longest JSON line a block must hold


class _NoRows:
    """The reader of an empty file: no column, no batch."""

    schema = pa.schema([])

    def read_next_batch(self) -> pa.RecordBatch:
        """Raise StopIteration: there is no batch."""
        raise StopIteration


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
        return self._open_reader(lambda: self._json_reader(read))

    def _json_reader(self, read: pajson.ReadOptions) -> Any:
        """Open the file with the first block's types fixed (on failure the caller closes it)."""
        if self._is_empty():  # an empty table written by a JSONL sink: no row, no column
            self._finished = True
            return _NoRows()
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
        return pajson.open_json(self._stream(self._file), read_options=read, parse_options=parse)


class JsonlSink(FileSink):
    """Write one JSON object per line: decimals and temporals as exact strings, bytes base64."""

    format = "jsonl"

    def _column(self, column: pa.Array) -> list[Any]:
        t = column.type
        if is_binary(t):
            return base64_text(column).to_pylist()
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


SOURCE = JsonlSource
"""The source class :class:`FileSource` builds for ``format: jsonl``."""
SINK = JsonlSink
"""The sink class :class:`FileSink` builds for ``format: jsonl``."""
