"""The released UI's form elements (``InputElementUI``), generated from our own declarations:
connector options (``connectors/options.py``) for ``params``, the planner's settings for
``settings``. The same generator serves ``params/ui``, ``settings/ui`` and a job's view shape,
so a form never lists what the engine refuses, nor misses what it takes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from exchangis.connectors.options import Kind, Option, Side
from exchangis.engine.planner import SETTING_RANGES

INTEGER = r"^\d+$"
NUMBER = r"^\d+(\.\d+)?$"

SETTING_LABELS: dict[str, tuple[str, str, str]] = {
    "setting.speed.channel": ("Channels", "1", "parallel channels of the sub-job"),
    "setting.speed.record": ("Records per second", "0", "0: unlimited"),
    "setting.speed.byte": ("Bytes per second", "0", "0: unlimited"),
    "setting.errorLimit.record": ("Error records allowed", "", "empty: none allowed"),
    "setting.errorLimit.percentage": ("Error fraction allowed", "", "0.02 is 2 % of rows read"),
    "setting.retry.times": ("Retries", "", "empty: the server's default"),
    "setting.timeout.seconds": ("Timeout (s)", "0", "0: none"),
}
"""Label, default and help of each sub-job setting, in the order a form shows them."""


def text(value: Any) -> str:
    """Return a value as the form's text (lists comma-joined, booleans lower-case)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _validation(kind: Kind) -> dict[str, Any]:
    if kind is Kind.INTEGER:
        return {"validateType": "REGEX", "validateRange": INTEGER, "validateMsg": "a whole number"}
    if kind in (Kind.NUMBER, Kind.DURATION):
        return {"validateType": "REGEX", "validateRange": NUMBER, "validateMsg": "a number"}
    return {}


def _element(
    key: str, field: str, label: str, sort: int, kind: Kind, **rest: Any
) -> dict[str, Any]:
    """Return one form element; ``rest``: ``id``, ``values``, ``value``, ``defaultValue``,
    ``required``, ``description``."""
    values = rest.get("values") or []
    return {
        "id": rest.get("id", key),
        "key": key,
        "field": field,
        "label": label,
        "sort": sort,
        "type": "OPTION" if values else "INPUT",
        "values": values,
        "value": rest.get("value", ""),
        "defaultValue": rest.get("defaultValue", ""),
        "unit": "",
        "required": rest.get("required", False),
        "description": rest.get("description", ""),
        **_validation(kind),
    }


def option_element(option: Option, side: Side, sort: int, value: Any = None) -> dict[str, Any]:
    """Return one connector option as a form element (``config_key`` is its ``field``)."""
    values = list(option.values) or (["true", "false"] if option.kind is Kind.BOOLEAN else [])
    return _element(
        f"{option.name}.{side.value}",
        option.name,
        option.name,
        sort,
        option.kind,
        id=f"{side.value}.{option.name}",
        values=values,
        value=text(value),
        defaultValue=text(option.default),
        required=option.required,
        description=option.help,
    )


def option_elements(
    declared: Sequence[Option], side: Side, values: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Return the form of a connector's options of one side (secrets left out: they belong to
    the data source), with ``values`` filled in."""
    given = values or {}
    shown = [o for o in declared if not o.secret]
    return [option_element(o, side, i + 1, given.get(o.name)) for i, o in enumerate(shown)]


def setting_elements(values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Return the sub-job settings as form elements (``config_key`` is its ``key``)."""
    given = values or {}
    return [
        _element(
            key,
            key.removeprefix("setting."),
            label,
            sort,
            Kind.INTEGER
            if all(float(end).is_integer() for end in SETTING_RANGES[key])
            else Kind.NUMBER,
            value=text(given.get(key)),
            defaultValue=default,
            description=help_text,
        )
        for sort, (key, (label, default, help_text)) in enumerate(SETTING_LABELS.items(), 1)
    ]


def json_text(value: Any) -> str:
    """Return ``value`` as the JSON text the released server sends for content and params."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
