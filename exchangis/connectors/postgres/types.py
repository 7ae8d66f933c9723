"""PostgreSQL types in Arrow: the type OIDs the source reads, the Arrow field (and converter)
of a result column, which columns connectorx reads exactly, and the Arrow types ADBC sends in
binary ``COPY`` for a target column."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa

from exchangis.connectors.values import ColumnConverter, per_value

# Type OIDs (pg_type.oid), fixed across PostgreSQL versions.
_BOOL, _BYTEA, _INT8, _INT2, _INT4, _TEXT, _OID = 16, 17, 20, 21, 23, 25, 26
_JSON, _JSONB, _FLOAT4, _FLOAT8, _BPCHAR, _VARCHAR, _NAME = 114, 3802, 700, 701, 1042, 1043, 19
_DATE, _TIME, _TIMESTAMP, _TIMESTAMPTZ, _NUMERIC = 1082, 1083, 1114, 1184, 1700
_TYPES: dict[int, pa.DataType] = {
    _BOOL: pa.bool_(),
    _BYTEA: pa.binary(),
    _INT2: pa.int64(),
    _INT4: pa.int64(),
    _INT8: pa.int64(),
    _OID: pa.int64(),
    _FLOAT4: pa.float64(),
    _FLOAT8: pa.float64(),
    _TEXT: pa.string(),
    _BPCHAR: pa.string(),
    _VARCHAR: pa.string(),
    _NAME: pa.string(),
    _DATE: pa.date32(),
    _TIME: pa.time64("us"),
    _TIMESTAMP: pa.timestamp("us"),
    _TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}


def _numeric_text(value: Decimal) -> str:
    return format(value, "f")


def arrow_field(column: Any) -> tuple[pa.Field, ColumnConverter | None, bool]:
    """Return the Arrow field, converter and whether to load the column as raw text."""
    oid = column.type_code
    if oid == _NUMERIC:
        precision, scale = column.precision, column.scale
        if precision is None:  # numeric without typmod: exact text
            return pa.field(column.name, pa.string()), per_value(_numeric_text), False
        if precision <= 38:
            return pa.field(column.name, pa.decimal128(precision, scale)), None, False
        if precision <= 76:
            return pa.field(column.name, pa.decimal256(precision, scale)), None, False
        return pa.field(column.name, pa.string()), per_value(_numeric_text), False
    known = _TYPES.get(oid)
    if known is not None:
        return pa.field(column.name, known), None, False
    # json/jsonb, uuid, interval, arrays, enums...: the server's exact text.
    return pa.field(column.name, pa.string()), None, True


_BULK_OIDS = frozenset(
    {_BOOL, _INT2, _INT4, _INT8, _FLOAT4, _FLOAT8, _TEXT, _VARCHAR, _DATE, _TIMESTAMP}
    | {_TIMESTAMPTZ, _BYTEA}
)


def _bulk_exact(column: Any) -> bool:
    """Return whether connectorx reads a column exactly (numeric: within 28 digits, scale 10)."""
    if column.type_code == _NUMERIC:
        return (
            column.scale is not None
            and column.scale <= 10
            and column.precision - column.scale <= 18
        )
    return column.type_code in _BULK_OIDS


def binary_type(oid: int, typmod: int, incoming: pa.DataType) -> pa.DataType | None:
    """Return the Arrow type ADBC sends in binary for a column (None: not sendable so)."""
    if oid == _NUMERIC:
        if typmod < 4:  # numeric without precision: keep an incoming decimal as it is
            return incoming if pa.types.is_decimal(incoming) else None
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        return pa.decimal128(precision, scale) if precision <= 38 else None
    return _BINARY_TYPES.get(oid)


_BINARY_TYPES: dict[int, pa.DataType] = {
    _BOOL: pa.bool_(),
    _BYTEA: pa.binary(),
    _INT2: pa.int16(),
    _INT4: pa.int32(),
    _INT8: pa.int64(),
    _FLOAT4: pa.float32(),
    _FLOAT8: pa.float64(),
    _TEXT: pa.string(),
    _BPCHAR: pa.string(),
    _VARCHAR: pa.string(),
    _DATE: pa.date32(),
    _TIME: pa.time64("us"),
    _TIMESTAMP: pa.timestamp("us"),
    _TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}
