"""Helpers for scripts that talk to the API: the wire shape of a sub-job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def sub_job(
    name: str,
    source: tuple[str, int, str],
    sink: tuple[str, int, str],
    sources: Mapping[str, Any] | None = None,
    sinks: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    mapping: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Return one sub-job of a job's ``content``: ``source``/``sink`` are (type, data source
    id, table); ``sources``/``sinks``/``settings`` become ``{config_key, config_value}`` pairs;
    ``mapping`` is (source column, sink column) pairs (none: the same names)."""

    def pairs(options: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        return [{"config_key": k, "config_value": v} for k, v in (options or {}).items()]

    return {
        "subJobName": name,
        "dataSources": {
            "source": {"type": source[0], "id": source[1], "table": source[2]},
            "sink": {"type": sink[0], "id": sink[1], "table": sink[2]},
        },
        "params": {"sources": pairs(sources), "sinks": pairs(sinks)},
        "transforms": {
            "type": "MAPPING",
            "mapping": [{"source_field_name": s, "sink_field_name": d} for s, d in mapping or []],
        },
        "settings": pairs(settings),
    }
