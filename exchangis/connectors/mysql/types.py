"""Arrow types of the columns pymysql describes, the converters of values pymysql reads
(TIME, BIT, TINYINT(1)) and of values an INSERT writes, and which columns connectorx reads
exactly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors import bulk
from exchangis.connectors.values import ColumnConverter, per_value

# pymysql.constants.FIELD_TYPE, spelled out so nothing imports the driver at module load.
_DECIMAL, _TINY, _SHORT, _LONG, _FLOAT, _DOUBLE, _NULL, _TIMESTAMP = 0, 1, 2, 3, 4, 5, 6, 7
_LONGLONG, _INT24, _DATE, _TIME, _DATETIME, _YEAR, _NEWDATE, _VARCHAR, _BIT = range(8, 17)
_JSON, _NEWDECIMAL, _ENUM, _SET = 245, 246, 247, 248
_BLOBS = frozenset({249, 250, 251, 252})
_STRINGS = frozenset({_VARCHAR, 253, 254})
_GEOMETRY = 255
_INTS = frozenset({_TINY, _SHORT, _LONG, _INT24, _LONGLONG, _YEAR})
_UNSIGNED_FLAG = 32
_BINARY_CHARSET = 63


def _timedelta_to_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, dt.timedelta):
        raise TypeError(f"expected a TIME value, got {type(value).__name__}")
    if value < dt.timedelta(0) or value >= dt.timedelta(days=1):
        raise ValueError(f"TIME {value} is outside 00:00:00..23:59:59.999999")
    return (dt.datetime.min + value).time()


def _bits_to_int(value: Any) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes | bytearray) else int(value)


def _int_to_bool(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    return pa.array(values, type=pa.int64()).cast(data_type)


def _bits_to_bool(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    return per_value(_bits_to_int)(values, pa.int64()).cast(data_type)


def _decimal_type(length: int, scale: int, unsigned: bool) -> pa.DataType:
    precision = max(1, length - (1 if scale > 0 else 0) - (0 if unsigned else 1))
    precision = max(precision, scale, 1)
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)


_PLAIN: dict[int, tuple[pa.DataType, ColumnConverter | None]] = {
    **{code: (pa.int64(), None) for code in _INTS},
    _FLOAT: (pa.float64(), None),
    _DOUBLE: (pa.float64(), None),
    _DATE: (pa.date32(), None),
    _NEWDATE: (pa.date32(), None),
    _DATETIME: (pa.timestamp("us"), None),
    _TIMESTAMP: (pa.timestamp("us"), None),
    _TIME: (pa.time64("us"), per_value(_timedelta_to_time)),
    _JSON: (pa.string(), None),
    _ENUM: (pa.string(), None),
    _SET: (pa.string(), None),
    _GEOMETRY: (pa.binary(), None),
    _NULL: (pa.null(), None),
}
"""Arrow types of the type codes whose length, flags and charset do not matter."""


def arrow_field(field: Any) -> tuple[pa.Field, ColumnConverter | None]:
    """Return the Arrow field and converter for a pymysql ``FieldDescriptor``."""
    code, length, scale = field.type_code, field.length, field.scale
    unsigned = bool(field.flags & _UNSIGNED_FLAG)
    conv: ColumnConverter | None = None
    if code in (_DECIMAL, _NEWDECIMAL):
        t = _decimal_type(length, scale, unsigned)
    elif code == _TINY and length == 1:
        t, conv = pa.bool_(), _int_to_bool
    elif code == _LONGLONG and unsigned:
        t = pa.uint64()
    elif code == _BIT:
        bits = (pa.bool_(), _bits_to_bool) if length == 1 else (pa.int64(), per_value(_bits_to_int))
        t, conv = bits
    elif code in _STRINGS or code in _BLOBS:
        t = pa.binary() if field.charsetnr == _BINARY_CHARSET else pa.string()
    else:
        t, conv = _PLAIN.get(code, (pa.string(), per_value(str)))
    return pa.field(field.name, t), conv


def _bulk_exact(field: Any) -> bool:
    """Return whether connectorx reads a column exactly (then cast to our type losslessly).

    Left to pymysql: TIMESTAMP (connectorx's session is not in UTC), TIME, YEAR, BIT, JSON,
    ENUM/SET, binary strings, TINYINT(1), FLOAT (kept as MySQL prints it) and decimals beyond
    what connectorx's 28-digit decimal with 10 decimals holds.
    """
    code = field.type_code
    if code in (_DECIMAL, _NEWDECIMAL):
        return field.scale <= 10 and field.length - field.scale <= 19
    if code == _TINY:
        return field.length != 1
    if code in _STRINGS or code in _BLOBS:
        return field.charsetnr != _BINARY_CHARSET
    return code in _BULK_CODES


_BULK_CODES = frozenset({_SHORT, _LONG, _INT24, _LONGLONG, _DOUBLE, _DATE, _NEWDATE, _DATETIME})


def _prepare(column: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # The session time zone is UTC: store the UTC wall time.
        return pc.cast(column, pa.timestamp(column.type.unit))
    if pa.types.is_decimal(column.type):  # plain digits fit DECIMAL and text columns alike
        return bulk.decimal_text(column)
    return column
