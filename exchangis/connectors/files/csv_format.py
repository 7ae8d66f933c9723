"""CSV files: :class:`CsvSource` streams with pyarrow's CSV reader, :class:`CsvSink` writes.

A source reads every column as text (exact: the sink database converts); without a header the
columns are ``col1..colN``. A sink writes with pyarrow's CSV writer for UTF-8 with ``"``
quotes, else with a text writer; binary columns are written base64, decimals exactly.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from exchangis.connectors.base import Endpoint
from exchangis.connectors.bulk import decimal_text
from exchangis.connectors.files.common import default_delimiter
from exchangis.connectors.files.sink import FileSink
from exchangis.connectors.files.source import FileSource
from exchangis.connectors.files.text import base64_text, is_binary
from exchangis.errors import TerminalConnectorError

log = logging.getLogger(__name__)

_CSV_BLOCK_SIZE = 1 << 20  # bytes parsed at a time: bounds memory and progress granularity


class CsvSource(FileSource):
    """Stream a CSV file with ``pyarrow.csv.open_csv``; every column is text."""

    format = "csv"

    def _options(self) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, bool, str]:
        header = self.opts["header"]
        parse = pacsv.ParseOptions(
            delimiter=self.opts["delimiter"] or default_delimiter(self.endpoint),
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
        return self._open_reader(lambda: self._text_reader(read, parse, header, null_value))

    def _text_reader(
        self, read: pacsv.ReadOptions, parse: pacsv.ParseOptions, header: bool, null_value: str
    ) -> pacsv.CSVStreamingReader:
        """Open the file with every column read as text (on failure the caller closes it)."""
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
        return pacsv.open_csv(
            self._file, read_options=read, parse_options=parse, convert_options=convert
        )


class CsvSink(FileSink):
    """Write CSV: pyarrow's CSV writer for UTF-8 with ``"`` quotes, else a text writer."""

    format = "csv"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.delimiter: str = self.opts["delimiter"] or default_delimiter(endpoint)
        self.quote: str = self.opts["quoteChar"]
        self.header: bool = self.opts["header"]
        self._writer: pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not any(is_binary(t) or pa.types.is_decimal(t) for t in batch.schema.types):
            return batch
        arrays = [
            base64_text(c)
            if is_binary(c.type)
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
            pa.field(f.name, pa.string()) if is_binary(f.type) or pa.types.is_decimal(f.type) else f
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


SOURCE = CsvSource
"""The source class :class:`FileSource` builds for ``format: csv``."""
SINK = CsvSink
"""The sink class :class:`FileSink` builds for ``format: csv``."""
