"""Rows of driver values to Arrow record batches and back, column by column."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from exchangis.errors import (
    TerminalConnectorError,
)

ColumnConverter = Callable[[Sequence[Any], pa.DataType], pa.Array]
"""Turn one column of driver values into an Arrow array of the given type (raise when it can't)."""


def default_converter(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    """Convert driver values that already have the right Python types."""
    return pa.array(values, type=data_type)


def per_value(func: Callable[[Any], Any]) -> ColumnConverter:
    """Return a converter that applies ``func`` to every non-NULL value, then builds the array."""

    def convert(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
        return pa.array([None if v is None else func(v) for v in values], type=data_type)

    return convert


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def column_to_array(
    values: Sequence[Any], field: pa.Field, convert: ColumnConverter | None, first_row: int
) -> pa.Array:
    """Convert one column; on failure name the column and the first row that does not fit.

    Raises:
        TerminalConnectorError: a value does not fit the column's type.
    """
    conv = convert or default_converter
    try:
        return conv(values, field.type)
    except (pa.ArrowException, ValueError, TypeError, ArithmeticError) as exc:
        # Slow path, only on failure: find the culprit value.
        for offset, value in enumerate(values):
            try:
                conv([value], field.type)
            except (pa.ArrowException, ValueError, TypeError, ArithmeticError) as one:
                raise TerminalConnectorError(
                    f"column {field.name!r}, row {first_row + offset}: value {_preview(value)} "
                    f"does not fit {field.type}: {one}"
                ) from None
        raise TerminalConnectorError(
            f"column {field.name!r}, rows from {first_row}: cannot convert to {field.type}: {exc}"
        ) from None


def rows_to_batch(
    rows: Sequence[Sequence[Any]],
    schema: pa.Schema,
    converters: Sequence[ColumnConverter | None],
    first_row: int = 1,
) -> pa.RecordBatch:
    """Turn driver rows into one record batch of ``schema``, converting column by column."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = [
        column_to_array(columns[i], schema.field(i), converters[i], first_row)
        for i in range(len(schema))
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def batch_to_rows(
    batch: pa.RecordBatch, prepare: Callable[[pa.Array], pa.Array] | None = None
) -> list[tuple[Any, ...]]:
    """Return the rows of ``batch`` as tuples, after ``prepare`` maps each column (in Arrow)."""
    columns = [
        (prepare(batch.column(i)) if prepare else batch.column(i)).to_pylist()
        for i in range(batch.num_columns)
    ]
    return list(zip(*columns, strict=True)) if columns else []


def chunks(rows: list[tuple[Any, ...]], size: int | None) -> Iterator[list[tuple[Any, ...]]]:
    """Yield ``rows`` in slices of at most ``size`` (all at once when None)."""
    if not size:
        yield rows
        return
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
