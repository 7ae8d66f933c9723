"""Connector options, declared once: parsed, validated, documented and served from one place.

Each connector declares its options as a tuple of :class:`Option` (name, type, default, allowed
values, secret or not, one line of help). :func:`parse` turns a sub-job's raw options — strings
from a UI (``"true"``, ``"1000"``), JSON values from a script — into typed values the same way
for every connector, and every refusal is an :class:`InvalidInputError` reported under the field
``options``. The same declarations answer ``GET /connectors`` and write ``docs/connectors.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from exchangis.errors import InvalidInputError

_TRUE = frozenset({"true", "1", "yes", "y", "t", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "off"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_CHAR_ALIASES = {"\\t": "\t", "tab": "\t"}


class Kind(StrEnum):
    """The type of an option's value (as a form shows it)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    DURATION = "duration"
    """Seconds: a number, or text with a unit (``500ms``, ``30s``, ``5m``, ``1h``)."""
    STRING = "string"
    CHAR = "char"
    """One character (``\\t`` and ``tab`` name the tab)."""
    ENUM = "enum"
    LIST = "list"
    """A JSON list of strings or one comma-separated string."""


class Side(StrEnum):
    """Which end of a sub-job an option belongs to (``params.sources`` or ``params.sinks``)."""

    SOURCE = "source"
    SINK = "sink"


def option_error(message: str) -> InvalidInputError:
    """Return the error for a bad connector option (a job save reports it under ``options``)."""
    return InvalidInputError(message, errors={"options": [message]})


@dataclass(frozen=True)
class Option:
    """One option a source or sink takes."""

    name: str
    kind: Kind
    help: str
    default: Any = None
    values: tuple[str, ...] = ()
    """An enum's accepted values (matched without regard to case; the declared spelling wins)."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Other spellings an enum takes (lower case) and the value each one stands for."""
    required: bool = False
    secret: bool = False
    """Never shown back nor logged (a form draws a password field)."""
    minimum: float | None = None
    """Smallest accepted number (integers, numbers and durations)."""
    check: Callable[[Any], Any] | None = field(default=None, compare=False)
    """Validates (and may normalise) a parsed value; raises InvalidInputError."""

    def parse(self, raw: Any) -> Any:
        """Return ``raw`` as this option's typed value (``default`` when absent or empty).

        Raises:
            InvalidInputError: a value of the wrong type or out of range, naming the option.
        """
        if raw is None or raw in ("", []):
            if self.required:
                raise option_error(f"option {self.name} is required")
            return self.default
        value = _PARSERS[self.kind](self, raw)
        if self.minimum is not None and value < self.minimum:
            raise option_error(
                f"option {self.name} must be at least {_number_text(self.minimum)}, got {raw!r}"
            )
        if self.check is not None:
            try:
                value = self.check(value)
            except InvalidInputError as exc:
                raise option_error(f"option {self.name}: {exc.message}") from None
        return value

    def form(self, side: Side) -> dict[str, Any]:
        """Return the option as a form field: ``{name, type, default, side, required, ...}``."""
        return {
            "name": self.name,
            "type": self.kind.value,
            "default": self.default,
            "side": side.value,
            "required": self.required,
            "secret": self.secret,
            "values": list(self.values),
            "help": self.help,
        }

    def fail(self, raw: Any, expected: str) -> InvalidInputError:
        """Return the error for a value that is not ``expected``."""
        return option_error(f"option {self.name} must be {expected}, got {raw!r}")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _boolean(option: Option, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str | int) else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise option.fail(raw, "true or false")


def _number(option: Option, raw: Any) -> float:
    if isinstance(raw, bool):
        raise option.fail(raw, "a number")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise option.fail(raw, "a number") from None
    if not math.isfinite(value):
        raise option.fail(raw, "a finite number")
    return value


def _integer(option: Option, raw: Any) -> int:
    if isinstance(raw, bool):
        raise option.fail(raw, "an integer")
    if isinstance(raw, int):
        return raw
    value = _number(option, raw) if isinstance(raw, str | float) else math.nan
    if not value.is_integer():
        raise option.fail(raw, "an integer")
    return int(value)


def _duration(option: Option, raw: Any) -> float:
    if isinstance(raw, str):
        match = _DURATION.match(raw)
        if match is None:
            raise option.fail(raw, "a duration (seconds, or a number with ms, s, m or h)")
        return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    return _number(option, raw)


def _string(option: Option, raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise option.fail(raw, "text")
    return str(raw)


def _char(option: Option, raw: Any) -> str:
    value = _CHAR_ALIASES.get(raw, raw) if isinstance(raw, str) else raw
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise option.fail(raw, "a single character")
    return value


def _enum(option: Option, raw: Any) -> str:
    text = raw.strip().lower() if isinstance(raw, str) else None
    text = option.aliases.get(text, text) if text is not None else None
    for value in option.values:
        if value.lower() == text:
            return value
    raise option_error(
        f"option {option.name} must be one of {', '.join(option.values)}, got {raw!r}"
    )


def _list(option: Option, raw: Any) -> list[str]:
    if isinstance(raw, str):
        names = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list | tuple) and all(isinstance(part, str) for part in raw):
        names = [part.strip() for part in raw]
    else:
        raise option.fail(raw, "a list of names or a comma-separated string")
    if any(not name for name in names):
        raise option_error(f"option {option.name} holds an empty name")
    return names


_PARSERS: dict[Kind, Callable[[Option, Any], Any]] = {
    Kind.BOOLEAN: _boolean,
    Kind.INTEGER: _integer,
    Kind.NUMBER: _number,
    Kind.DURATION: _duration,
    Kind.STRING: _string,
    Kind.CHAR: _char,
    Kind.ENUM: _enum,
    Kind.LIST: _list,
}


def names(declared: Iterable[Option]) -> frozenset[str]:
    """Return the names of ``declared``."""
    return frozenset(option.name for option in declared)


def unknown(declared: Sequence[Option], raw: Mapping[str, Any], what: str) -> None:
    """Refuse keys of ``raw`` that ``declared`` does not name (``what``: e.g. ``MYSQL sink``).

    Raises:
        InvalidInputError: naming the unknown keys and the accepted ones.
    """
    extra = sorted(set(raw) - names(declared))
    if extra:
        raise option_error(
            f"unknown option(s) {', '.join(extra)} for {what}; accepted: "
            f"{', '.join(sorted(names(declared)))}"
        )


def parse(declared: Sequence[Option], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return every declared option's value from ``raw`` (defaults filled; other keys ignored).

    Raises:
        InvalidInputError: the first bad value, naming its option.
    """
    return {option.name: option.parse(raw.get(option.name)) for option in declared}


# --- options many connectors share --------------------------------------------------------------

BATCH_SIZE = Option(
    "batchSize",
    Kind.INTEGER,
    "Most rows per batch (smaller than the worker's batch_size to cut memory for wide rows).",
    minimum=1,
)
LEDGER = Option(
    "ledger",
    Kind.BOOLEAN,
    "Fence commits through the sink's ledger so a task's rows land exactly once.",
    default=True,
)

BULK = Option(
    "bulk",
    Kind.BOOLEAN,
    "Use the bulk path (connectorx reads; COPY or LOAD DATA writes) when it is installed.",
    default=True,
)


def write_mode(modes: Sequence[str]) -> Option:
    """Return the ``writeMode`` option of a sink that takes ``modes`` (its capability)."""
    return Option(
        "writeMode",
        Kind.ENUM,
        "append keeps the rows there; overwrite replaces them; upsert matches primaryKeys.",
        default="append",
        values=tuple(modes),
    )
