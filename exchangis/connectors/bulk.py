"""Bulk fast paths shared by the SQL connectors: Arrow in and out without per-value Python.

* reads: connectorx streams a SELECT as Arrow record batches (Rust drivers, bounded memory);
* PostgreSQL writes: the ADBC driver's ``adbc_ingest`` (binary ``COPY`` straight from Arrow);
* MySQL writes: ``LOAD DATA LOCAL INFILE`` of a tab-separated file built by Arrow compute
  kernels (:func:`encode_tsv`).

Each path is optional: the libraries come as PyPI wheels, and when one cannot be imported (or
the ``bulk`` option is false) the connectors fall back to their per-row driver paths.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.base import Endpoint, check_host
from exchangis.errors import ExchangisError, InvalidInputError, TerminalConnectorError

log = logging.getLogger(__name__)

READ_BATCH_ROWS = 32768
"""Rows per batch asked of connectorx; the runner re-slices to its own batch size."""

CHUNK_ROWS = 131072
"""Rows per connectorx query of a keyset read: connectorx reads ahead of a slower consumer
without bound, so a read is cut into chunks of this many rows (about 20 MB of typical rows)."""

_TSV_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))


def available(module: str) -> bool:
    """Return whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def wanted(endpoint: Endpoint, module: str) -> bool:
    """Return whether a bulk path using ``module`` should be used for ``endpoint``.

    Raises:
        InvalidInputError: the ``bulk`` option is not a boolean.
    """
    value = endpoint.option("bulk", True)
    if not isinstance(value, bool):
        raise InvalidInputError(f"option bulk must be true or false, got {value!r}")
    return value and available(module)


def url(scheme: str, connect: Mapping[str, Any], default_port: int, db: str | None) -> str:
    """Return a ``scheme://user:password@host:port/db`` URL (every part percent-encoded).

    The URL holds the password: never log it.
    """
    user = quote(str(connect.get("username") or ""), safe="")
    password = str(connect.get("password") or "")
    auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    host = check_host(str(connect.get("host") or "localhost"))
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = int(connect.get("port") or default_port)
    database = quote(str(db or connect.get("database") or ""), safe="")
    return f"{scheme}://{auth}{host}:{port}/{database}"


# --- reads -------------------------------------------------------------------------------------


def stream(
    conn_url: str, sql: str, schema: pa.Schema, error: Callable[[str, bool], Exception]
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of ``sql`` read by connectorx, cast to ``schema`` batch by batch.

    ``schema`` is the exact schema the per-row driver path would give (taken from the driver's
    column metadata); connectorx's own mapping is wider (e.g. every decimal as (38, 10)), so
    each batch is cast to it — a cast that would lose anything fails instead. A failure of
    connectorx (a Rust panic included) becomes ``error(message, lost_connection)``.
    """
    import connectorx

    try:
        reader = connectorx.read_sql(
            conn_url, sql, return_type="arrow_stream", batch_size=READ_BATCH_ROWS
        )
        batches = iter(reader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            if batch.num_rows:
                yield conform(batch, schema)
    except (GeneratorExit, KeyboardInterrupt, SystemExit, ExchangisError):
        raise
    except BaseException as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "0000-00-00" in message:
            message += (
                " (a MySQL zero date is not a date: fix the rows, or leave them out with the"
                " source's where option)"
            )
        raise error(message, bool(_LOST.search(message))) from None


_LOST = re.compile(
    r"(?i)connection (refused|reset|closed|lost)|broken pipe|timed out|unexpected eof|"
    r"server has gone away|lost connection"
)


def conform(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    error: type[ExchangisError] = TerminalConnectorError,
) -> pa.RecordBatch:
    """Return ``batch`` with ``schema``'s names and types (a checked, vectorised cast).

    Raises:
        ExchangisError: ``error``, when a value does not fit its column's type.
    """
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for column, field in zip(batch.columns, schema, strict=True):
        if column.type == field.type:
            arrays.append(column)
            continue
        try:
            if pa.types.is_string(field.type):
                arrays.append(text_of(column))
            else:
                arrays.append(pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise error(
                f"column {field.name!r}: a value does not fit {field.type}: {exc}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def decimal_text(column: pa.Array) -> pa.Array:
    """Return a decimal column as plain fixed-point text at its scale (``0.0000000001``).

    Arrow's cast writes small and zero values in scientific notation (``1E-10``, ``0E-10``);
    only those values are rewritten, one by one.
    """
    text = pc.cast(column, pa.string())
    scientific = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    fixed = [format(v, "f") for v in pc.filter(column, scientific).to_pylist()]
    return pc.replace_with_mask(text, scientific, pa.array(fixed, pa.string()))


def text_of(column: pa.Array) -> pa.Array:
    """Return ``column`` cast to text the way every sink writes it (decimals in plain digits)."""
    if pa.types.is_decimal(column.type):
        return decimal_text(column)
    return pc.cast(column, pa.string())


# --- TSV (MySQL LOAD DATA, PostgreSQL text COPY) ------------------------------------------------


def _tsv_column(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_boolean(t):
        column = pc.cast(column, pa.int8())
    elif pa.types.is_timestamp(t) and t.tz is not None:
        column = pc.cast(column, pa.timestamp(t.unit))  # UTC wall time (sessions run in UTC)
    if pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    if pa.types.is_string(column.type):
        for old, new in _TSV_ESCAPES:
            column = pc.replace_substring(column, old, new)
    else:
        column = text_of(column)
    return pc.fill_null(column, "\\N")


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


def encode_tsv(batch: pa.RecordBatch) -> bytes:
    """Return ``batch`` as tab-separated lines: ``\\N`` for NULL, ``\\``-escaped text.

    This is the default format of MySQL's ``LOAD DATA`` (and PostgreSQL's text ``COPY``).
    Every step is an Arrow compute kernel; nothing loops over values in Python.
    """
    if batch.num_rows == 0:
        return b""
    columns = [_tsv_column(c) for c in batch.columns]
    lines = pc.binary_join_element_wise(*columns, "\t") if len(columns) > 1 else columns[0]
    lines = pc.binary_join_element_wise(lines, "\n", "")
    offsets = memoryview(lines.buffers()[1]).cast("i")
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[start:end].tobytes()
