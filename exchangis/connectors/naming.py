"""Names a SQL connector accepts (tables, columns) and the literals it writes itself."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from exchangis.errors import InvalidInputError

_NAME = r"[\w$]{1,128}"
_TABLE_RE = re.compile(rf"^{_NAME}(?:\.{_NAME})?\Z")  # \Z: "$" would take a final newline
_COLUMN_RE = re.compile(rf"^{_NAME}\Z")


def validate_table(name: str) -> list[str]:
    """Return the parts of a ``table`` or ``schema.table`` name.

    Raises:
        InvalidInputError: the name is not plain (letters, digits, ``_``, ``$``, one dot).
    """
    if not isinstance(name, str) or not _TABLE_RE.match(name):
        raise InvalidInputError(f"invalid table name {name!r}: use letters, digits, _ and $")
    return name.split(".")


def split_table(name: str) -> tuple[str | None, str]:
    """Return ``(schema, table)`` of a validated ``table`` or ``schema.table`` name."""
    parts = validate_table(name)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def validate_column(name: str) -> str:
    """Return ``name`` when it is a plain column name.

    Raises:
        InvalidInputError: the name holds anything but letters, digits, ``_`` and ``$``.
    """
    if not isinstance(name, str) or not _COLUMN_RE.match(name):
        raise InvalidInputError(f"invalid column name {name!r}: use letters, digits, _ and $")
    return name


def validate_columns(names: list[str]) -> list[str]:
    """Return a list of plain column names, each validated (an option's ``check``)."""
    return [validate_column(name) for name in names]


def validate_keys(names: list[str]) -> list[str]:
    """Return a list of distinct plain column names (``primaryKeys``).

    Raises:
        InvalidInputError: a name is not plain, or named twice.
    """
    validate_columns(names)
    if len(set(names)) != len(names):
        raise InvalidInputError(f"names a column twice: {', '.join(names)}")
    return names


def sql_literal(name: str) -> str:
    """Return a plain name as a SQL string literal (plain names hold no quote nor backslash)."""
    if not all(_COLUMN_RE.match(part) for part in name.split(".")):
        raise InvalidInputError(f"invalid name {name!r}: use letters, digits, _ and $")
    return f"'{name}'"


def number_literal(value: Any) -> str:
    """Return a number (int, or a decimal as text) as a SQL literal.

    Raises:
        InvalidInputError: ``value`` is not a finite number.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f"not a number: {value!r}") from None
    if not number.is_finite() or isinstance(value, bool):
        raise InvalidInputError(f"not a finite number: {value!r}")
    return format(number, "f")
