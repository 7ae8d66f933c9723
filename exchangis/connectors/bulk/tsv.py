"""Arrow batches as tab-separated text: what MySQL's ``LOAD DATA LOCAL INFILE`` reads.

:func:`encode_tsv` writes the default format of ``LOAD DATA`` (and of PostgreSQL's text
``COPY``): ``\\N`` for NULL, ``\\``-escaped text, one line a row, with Arrow compute kernels
only (nothing loops over values in Python). :func:`tsv_supported` says which column types it
writes exactly; a batch with another type takes the driver's per-row path.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.bulk.text import text_of

_TSV_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))


def _tsv_column(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_boolean(t):
        column = pc.cast(column, pa.int8())
    elif pa.types.is_timestamp(t) and t.tz is not None:
        column = pc.cast(column, pa.timestamp(t.unit))  # UTC wall time (sessions run in UTC)
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    if pa.types.is_string(column.type):
        found = _text_bytes(column)  # one scan; most text holds none of the characters
        for old, new in _TSV_ESCAPES:
            if old.encode() in found:
                column = pc.replace_substring(column, old, new)
    else:
        column = text_of(column)
    return pc.fill_null(column, "\\N")


def _text_bytes(column: pa.Array) -> bytes:
    """Return the UTF-8 bytes of a text column's values, one after another."""
    if len(column) == 0 or column.buffers()[2] is None:
        return b""
    offsets = memoryview(column.buffers()[1]).cast("i")
    start, end = offsets[column.offset], offsets[column.offset + len(column)]
    return memoryview(column.buffers()[2])[start:end].tobytes()


def tsv_supported(data_type: pa.DataType) -> bool:
    """Return whether :func:`encode_tsv` writes ``data_type`` exactly."""
    t = data_type
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_time(t)
        or pa.types.is_null(t)
    )


def encode_tsv(batch: pa.RecordBatch) -> memoryview:
    """Return ``batch`` as tab-separated lines: ``\\N`` for NULL, ``\\``-escaped text.

    This is the default format of MySQL's ``LOAD DATA`` (and PostgreSQL's text ``COPY``).
    Every step is an Arrow compute kernel; nothing loops over values in Python. The bytes are
    a view of the Arrow buffer that holds them (no copy).
    """
    if batch.num_rows == 0:
        return memoryview(b"")
    columns = [_tsv_column(c) for c in batch.columns]
    columns[-1] = pc.binary_join_element_wise(columns[-1], "\n", "")  # each line's end
    lines = pc.binary_join_element_wise(*columns, "\t") if len(columns) > 1 else columns[0]
    offsets = memoryview(lines.buffers()[1]).cast("i")
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[start:end]
