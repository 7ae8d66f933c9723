"""Turn a job's sub-jobs into task plans: variables rendered, options and settings normalised."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from exchangis.errors import InvalidInputError

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")

SETTING_KEYS: dict[str, str] = {
    "setting.speed.record": "speed_record",
    "setting.speed.byte": "speed_byte",
    "setting.speed.channel": "channel",
    "setting.errorLimit.record": "error_limit_record",
    "setting.errorLimit.percentage": "error_limit_percentage",
    "setting.retry.times": "retry_times",
    "setting.timeout.seconds": "timeout_seconds",
}
"""Sub-job setting keys (DataX/Exchangis names) and the plan field each one fills."""

SETTING_RANGES: dict[str, tuple[int | float, int | float]] = {
    "setting.speed.record": (0, 10**9),
    "setting.speed.byte": (0, 10**12),
    "setting.speed.channel": (1, 64),
    "setting.errorLimit.record": (0, 10**12),
    "setting.errorLimit.percentage": (0, 1),
    "setting.retry.times": (0, 10),
    "setting.timeout.seconds": (0, 10**9),
}
"""Accepted values of each setting, both ends included. Every setting is an integer except
``setting.errorLimit.percentage`` (a fraction of the rows read, as in DataX: 0.02 is 2 %). A
speed or timeout of 0 means none."""


def setting_value(key: str, value: Any) -> int | float:
    """Return setting ``key``'s value as a number: a JSON number or its text (``"3"``), as a UI
    sends every value.

    Raises:
        ValueError: why ``value`` is not a valid value of ``key``.
    """
    if key not in SETTING_RANGES:
        raise ValueError(f"is not a known setting (accepted: {', '.join(sorted(SETTING_RANGES))})")
    low, high = SETTING_RANGES[key]
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if key != "setting.errorLimit.percentage" and value != int(value):
        raise ValueError("must be an integer")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value if key == "setting.errorLimit.percentage" else int(value)


def setting_problem(key: str, value: Any) -> str | None:
    """Return why ``value`` is not a valid value of setting ``key``, or None when it is."""
    try:
        setting_value(key, value)
    except ValueError as exc:
        return str(exc)
    return None


def plan_settings(items: list[Mapping[str, Any]] | None, where: str) -> dict[str, Any]:
    """Return a sub-job's settings as plan fields (integers as ``int``), each value checked.

    Raises:
        InvalidInputError: naming the setting at fault.
    """
    settings: dict[str, Any] = {}
    for i, item in enumerate(items or []):
        key: Any = None
        value: Any = None
        if isinstance(item, Mapping):
            key, value = item.get("config_key"), item.get("config_value")
        try:
            settings[SETTING_KEYS[str(key)]] = setting_value(str(key), value)
        except ValueError as exc:
            field = f"{where}.settings[{i}].config_value"
            raise InvalidInputError(f"{field}: {key} {exc}", errors={field: [str(exc)]}) from None
    return settings


EXECUTION_TIMEOUT_PARAM = "execution.timeout.seconds"
"""A ``jobParams`` entry that bounds a whole execution: past it the execution is ``Timeout``."""


def execution_timeout(job_params: Mapping[str, Any]) -> float:
    """Return the execution timeout in seconds from ``jobParams`` (0: none).

    Raises:
        InvalidInputError: the value is not a positive number.
    """
    value = job_params.get(EXECUTION_TIMEOUT_PARAM)
    if value in (None, ""):
        return 0.0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds < 10**9:
        raise InvalidInputError(
            f"jobParams.{EXECUTION_TIMEOUT_PARAM}: must be a positive number of seconds",
            errors={f"jobParams.{EXECUTION_TIMEOUT_PARAM}": ["must be a positive number"]},
        )
    return seconds


WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S"
WINDOW_ORIGIN = "1970-01-01 00:00:00"
"""``${window_start}`` of a run with no earlier fire (a manual run, a plan's first): all of it."""


def date_variables(now: datetime, window_start: datetime | None = None) -> dict[str, str]:
    """Return the built-in date variables for a run whose logical time is ``now``.

    ``run_date`` follows the DSS/Exchangis convention: the day before the run, ``yyyyMMdd``.
    ``window_start`` / ``window_end`` bound what an incremental ``where`` moves: the previous
    fire (else the epoch) to this run's logical time, ``yyyy-MM-dd HH:mm:ss`` in its zone.
    """
    yesterday = now - timedelta(days=1)
    return {
        "window_start": window_start.strftime(WINDOW_FORMAT) if window_start else WINDOW_ORIGIN,
        "window_end": now.strftime(WINDOW_FORMAT),
        "run_date": yesterday.strftime("%Y%m%d"),
        "run_date_std": yesterday.strftime("%Y-%m-%d"),
        "run_today": now.strftime("%Y%m%d"),
        "run_today_std": now.strftime("%Y-%m-%d"),
        "yyyyMMdd": now.strftime("%Y%m%d"),
        "yyyy-MM-dd": now.strftime("%Y-%m-%d"),
        "yyyyMM": now.strftime("%Y%m"),
        "yyyy": now.strftime("%Y"),
        "HH": now.strftime("%H"),
    }


def render(value: Any, variables: Mapping[str, str], where: str) -> Any:
    """Replace ``${name}`` in strings (recursively in lists/dicts); unknown names are errors."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise InvalidInputError(
                    f"{where}: unknown variable ${{{name}}} (define it in jobParams)",
                    errors={where: [f"unknown variable ${{{name}}}"]},
                )
            return str(variables[name])

        return VARIABLE.sub(substitute, value)
    if isinstance(value, list):
        return [render(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: render(v, variables, f"{where}.{k}") for k, v in value.items()}
    return value


@dataclass(frozen=True)
class TaskPlan:
    """What one task does; stored as JSON on the task row."""

    name: str
    position: int
    source: dict[str, Any]
    sink: dict[str, Any]
    mapping: list[list[str]]
    settings: dict[str, Any]
    split: dict[str, Any] | None = None
    """A channel's key range of the source (see :mod:`exchangis.engine.channels`)."""
    stage: dict[str, Any] | None = None
    """A channel's stage tables when the sub-job overwrites its sink (published together)."""

    def to_json(self) -> dict[str, Any]:
        """Return the plan as a JSON-able dict."""
        plan = {
            "name": self.name,
            "position": self.position,
            "source": self.source,
            "sink": self.sink,
            "mapping": self.mapping,
            "settings": self.settings,
        }
        if self.split is not None:
            plan["split"] = self.split
        if self.stage is not None:
            plan["stage"] = self.stage
        return plan


def options_of(pairs: list[Mapping[str, Any]] | None) -> dict[str, Any]:
    """Return a sub-job side's ``params`` items (``config_key``/``config_value``) as a dict."""
    return {p["config_key"]: p["config_value"] for p in pairs or []}


def _endpoint(spec: Mapping[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": spec["type"],
        "datasource_id": spec["id"],
        "db": spec.get("db"),
        "table": spec["table"],
        "options": options,
    }


def plan_job(
    content: list[Mapping[str, Any]],
    job_params: Mapping[str, Any],
    now: datetime,
    default_retries: int = 0,
    window_start: datetime | None = None,
) -> list[TaskPlan]:
    """Return one task plan per sub-job (validated shape assumed; variables rendered here):
    ``now`` is the run's logical time (a scheduled run's fire time, in its plan's zone)."""
    variables = {
        **date_variables(now, window_start),
        **{k: str(v) for k, v in job_params.items()},
    }
    plans = []
    for position, raw in enumerate(content):
        where = f"content[{position}]"
        sub = render(dict(raw), variables, where)
        params = sub.get("params") or {}
        settings: dict[str, Any] = {
            "retry_times": default_retries,
            **plan_settings(sub.get("settings"), where),
        }
        mapping = [
            [m["source_field_name"], m["sink_field_name"]]
            for m in (sub.get("transforms") or {}).get("mapping") or []
        ]
        plans.append(
            TaskPlan(
                name=sub["subJobName"],
                position=position,
                source=_endpoint(sub["dataSources"]["source"], options_of(params.get("sources"))),
                sink=_endpoint(sub["dataSources"]["sink"], options_of(params.get("sinks"))),
                mapping=mapping,
                settings=settings,
            )
        )
    return plans
