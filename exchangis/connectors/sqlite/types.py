"""SQLite values in Arrow: the Arrow type of a declared column type, the converters from
SQLite's loosely typed values to it, and the storage forms the sink writes (integers for
booleans, exact decimal text, ISO text for dates and times)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors.bulk import decimal_text
from exchangis.connectors.values import ColumnConverter, default_converter, per_value

_DECIMAL_RE = re.compile(r"\b(?:DECIMAL|NUMERIC)\b[^(]*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def arrow_type(declared: str) -> pa.DataType:
    """Return the Arrow type for a declared SQLite column type."""
    decl = (declared or "").upper()
    if "INT" in decl:
        return pa.int64()
    if "BOOL" in decl:
        return pa.bool_()
    match = _DECIMAL_RE.search(decl)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if 0 < precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
        if 0 < precision <= 76 and scale <= precision:
            return pa.decimal256(precision, scale)
        return pa.string()
    if any(word in decl for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "DATETIME" in decl or "TIMESTAMP" in decl:
        aware = "TZ" in decl.replace("TIMESTAMP", "") or "WITH TIME ZONE" in decl
        return pa.timestamp("us", tz="UTC" if aware else None)
    if "DATE" in decl:
        return pa.date32()
    if "TIME" in decl:
        return pa.time64("us")
    if "BLOB" in decl:
        return pa.binary()
    return pa.string()


# --- value converters (SQLite values are loosely typed) ------------------------------------------


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | bytes):
        raise TypeError(f"{type(value).__name__} is not a number")
    if isinstance(value, str):
        return Decimal(value.strip())
    return Decimal(str(value))


def _to_bool(value: Any) -> bool:
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean (0/1/true/false)")


def _to_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not an ISO date")
    return dt.date.fromisoformat(value.strip())


def _to_time(value: Any) -> dt.time:
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not an ISO time")
    return dt.time.fromisoformat(value.strip())


def _datetime_parser(aware: bool) -> Callable[[Any], dt.datetime]:
    def parse(value: Any) -> dt.datetime:
        if not isinstance(value, str):
            raise TypeError(f"{type(value).__name__} is not an ISO timestamp")
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC) if aware else parsed
        utc = parsed.astimezone(dt.UTC)
        return utc if aware else utc.replace(tzinfo=None)

    return parse


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not text")


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{type(value).__name__} is not a blob")


def _fast_then(fast: ColumnConverter, slow: ColumnConverter) -> ColumnConverter:
    def convert(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
        try:
            return fast(values, data_type)
        except (pa.ArrowException, ValueError, TypeError):
            return slow(values, data_type)

    return convert


def _cast_text(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    return pa.array(values, type=pa.string()).cast(data_type)


def converter(data_type: pa.DataType) -> ColumnConverter | None:
    """Return the column converter from SQLite values to ``data_type``."""
    t = data_type
    if pa.types.is_decimal(t):
        return per_value(_to_decimal)
    if pa.types.is_boolean(t):
        return per_value(_to_bool)
    if pa.types.is_date(t):
        return _fast_then(_cast_text, per_value(_to_date))
    if pa.types.is_timestamp(t):
        return _fast_then(_cast_text, per_value(_datetime_parser(t.tz is not None)))
    if pa.types.is_time(t):
        return per_value(_to_time)
    if pa.types.is_string(t):
        return _fast_then(default_converter, per_value(_to_text))
    if pa.types.is_binary(t):
        return _fast_then(default_converter, per_value(_to_bytes))
    return None


def _prepare(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_boolean(t):
        return pc.cast(column, pa.int64())
    if pa.types.is_decimal(t):
        return decimal_text(column)  # plain digits: never 1E-10
    if pa.types.is_temporal(t):
        return pc.cast(column, pa.string())
    return column
