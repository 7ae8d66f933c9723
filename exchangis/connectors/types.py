"""Arrow types sorted into families, and the rule by which a SQL dialect stores a family.

A dialect declares one table, :data:`TypeTable` (family → :class:`Rule`): the column type it
creates for an Arrow type of that family, the limits of that column, and the Arrow type its source
reads the column back as. :data:`ACCEPTED` lists an Arrow type of every shape the SQL sinks create
columns for; the round-trip tests run each through every SQL backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa

from exchangis.errors import InvalidInputError


class Family(StrEnum):
    """Arrow types a dialect stores alike (one rule each)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    """Signed integers of every width, and unsigned ones up to 32 bits."""
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    """float64, and float16 (a double holds it exactly)."""
    DECIMAL = "decimal"
    """decimal32, decimal64, decimal128 and decimal256."""
    STRING = "string"
    """string and large_string."""
    BINARY = "binary"
    """binary and large_binary."""
    FIXED_BINARY = "fixed_binary"
    DATE = "date"
    """date32 and date64."""
    TIMESTAMP = "timestamp"
    """Timestamps without a time zone, of every unit."""
    TIMESTAMP_TZ = "timestamp_tz"
    """Timestamps with a time zone (any zone), of every unit."""
    TIME = "time"
    """time32 and time64, of every unit."""
    NULL = "null"
    """The null type: a column of NULLs only."""


_FAMILIES: tuple[tuple[Callable[[pa.DataType], bool], Family], ...] = (
    (pa.types.is_boolean, Family.BOOLEAN),
    (pa.types.is_uint64, Family.UINT64),
    (pa.types.is_integer, Family.INTEGER),
    (pa.types.is_float32, Family.FLOAT32),
    (pa.types.is_floating, Family.FLOAT64),
    (pa.types.is_decimal, Family.DECIMAL),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), Family.STRING),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), Family.BINARY),
    (pa.types.is_fixed_size_binary, Family.FIXED_BINARY),
    (pa.types.is_date, Family.DATE),
    (lambda t: pa.types.is_timestamp(t) and t.tz is None, Family.TIMESTAMP),
    (pa.types.is_timestamp, Family.TIMESTAMP_TZ),
    (pa.types.is_time, Family.TIME),
    (pa.types.is_null, Family.NULL),
)
"""First match wins: uint64 before the other integers, float32 before the other floats."""


def family(data_type: pa.DataType) -> Family:
    """Return the family of ``data_type``.

    Raises:
        InvalidInputError: no SQL column takes the type (views, durations, intervals, nested
            and dictionary types).
    """
    for matches, found in _FAMILIES:
        if matches(data_type):
            return found
    raise unsupported_type(data_type)


def unsupported_type(data_type: pa.DataType, reason: str = "") -> InvalidInputError:
    """Return the error for an Arrow type a SQL sink cannot create a column for."""
    message = f"cannot store Arrow type {data_type} in a SQL column"
    return InvalidInputError(f"{message}: {reason}" if reason else message)


def same_decimal(data_type: pa.DataType) -> pa.DataType:
    """Return the decimal a DECIMAL/numeric column of ``data_type``'s precision and scale reads
    back as: decimal128 up to 38 digits, else decimal256."""
    precision, scale = data_type.precision, data_type.scale
    if precision <= 38:
        return pa.decimal128(precision, scale)
    return pa.decimal256(precision, scale)


def _parameters(data_type: pa.DataType) -> dict[str, int]:
    """Return the parameters of ``data_type`` a column template and a limit can name."""
    if pa.types.is_decimal(data_type):
        return {"precision": data_type.precision, "scale": data_type.scale}
    if pa.types.is_fixed_size_binary(data_type):
        return {"byte_width": data_type.byte_width}
    return {}


@dataclass(frozen=True)
class Rule:
    """How one dialect stores one family: the column it creates, and what it reads back."""

    column: str
    """The column type; a template that may name the Arrow type's ``{precision}``, ``{scale}``
    (decimals) and ``{byte_width}`` (fixed-size binary)."""
    reads_as: pa.DataType | Callable[[pa.DataType], pa.DataType]
    """The Arrow type the dialect's source reads the column back as: one type, or a function
    of the written type (:func:`same_decimal`). A value comes back as the written value cast
    to this type (a float32 as the same float32: a reader that parses the server's text widens
    its shortest decimal), unless :attr:`loss` says otherwise."""
    limits: Mapping[str, int] = field(default_factory=dict)
    """The largest value of each named type parameter the column takes; a larger one is
    refused (:func:`unsupported_type`)."""
    loss: str = ""
    """What a round trip through this column does not keep (empty: every value comes back)."""

    def column_type(self, data_type: pa.DataType) -> str:
        """Return the column type for ``data_type`` (of this rule's family).

        Raises:
            InvalidInputError: a type parameter is above the column's limit.
        """
        values = _parameters(data_type)
        for name, most in self.limits.items():
            if values[name] > most:
                raise unsupported_type(data_type, f"{name} {values[name]} is above {most}")
        return self.column.format_map(values)

    def read_type(self, data_type: pa.DataType) -> pa.DataType:
        """Return the Arrow type the column created for ``data_type`` reads back as."""
        if isinstance(self.reads_as, pa.DataType):
            return self.reads_as
        return self.reads_as(data_type)


TypeTable = Mapping[Family, Rule]
"""A dialect's rules, one per family it stores (a missing family is refused)."""


ACCEPTED: tuple[pa.DataType, ...] = (
    pa.bool_(),
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float16(),
    pa.float32(),
    pa.float64(),
    pa.decimal32(9, 2),
    pa.decimal64(18, 4),
    pa.decimal128(1, 0),
    pa.decimal128(12, 2),
    pa.decimal128(38, 10),
    pa.decimal256(40, 5),
    pa.decimal256(65, 30),
    pa.decimal256(76, 38),  # past MySQL's DECIMAL(65,30): refused there
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.large_binary(),
    pa.binary(16),
    pa.date32(),
    pa.date64(),
    *(pa.timestamp(unit) for unit in ("s", "ms", "us", "ns")),
    *(pa.timestamp(unit, tz="UTC") for unit in ("s", "ms", "us", "ns")),
    pa.timestamp("us", tz="+08:00"),
    pa.time32("s"),
    pa.time32("ms"),
    pa.time64("us"),
    pa.time64("ns"),
    pa.null(),
)
"""An Arrow type of every shape a SQL sink creates a column for (decimals: a sample of
precisions and scales; time zones: UTC and one offset)."""
