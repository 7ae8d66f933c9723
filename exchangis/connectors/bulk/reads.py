"""connectorx reads: a SELECT streamed as Arrow record batches, each cast to the exact schema.

connectorx runs the query with its Rust drivers and hands over Arrow batches (bounded memory);
its own type mapping is wider than the per-row driver path's, so every batch goes through
:func:`conform`, a checked vectorised cast to the schema the per-row path would give. A
failure of connectorx (a Rust panic included) becomes the connector's own error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.bulk.text import text_of
from exchangis.errors import ExchangisError, TerminalConnectorError

READ_BATCH_ROWS = 32768
"""Most rows per batch asked of connectorx; the runner re-slices to its own batch size."""

_LOST = re.compile(
    r"(?i)connection (refused|reset|closed|lost)|broken pipe|timed out|unexpected eof|"
    r"server has gone away|lost connection"
)


def stream(
    conn_url: str,
    sql: str,
    schema: pa.Schema,
    error: Callable[[str, bool], Exception],
    batch_rows: int = READ_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of ``sql`` read by connectorx, cast to ``schema`` batch by batch.

    ``schema`` is the exact schema the per-row driver path would give (taken from the driver's
    column metadata); connectorx's own mapping is wider (e.g. every decimal as (38, 10)), so
    each batch is cast to it — a cast that would lose anything fails instead. A failure of
    connectorx (a Rust panic included) becomes ``error(message, lost_connection)``.
    ``batch_rows``: the most rows connectorx puts in a batch.
    """
    import connectorx

    try:
        reader = connectorx.read_sql(
            conn_url, sql, return_type="arrow_stream", batch_size=max(1, int(batch_rows))
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
