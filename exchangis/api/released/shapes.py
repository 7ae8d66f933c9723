"""A job's content in the released UI's two shapes and ours (``exchangis-ui-calls.md`` §3).

- The **save shape** (``PUT /job/{id}/content``): ``dataSources`` objects with ``db`` and
  ``creator``, ``params`` and ``settings`` as ``{config_key, config_name, config_value, sort}``
  items (every form field, empty ones too), ``transforms`` with the editor's flags.
- The **view shape** (``GET /job/{id}``, inside ``content`` as JSON text ``{subJobs}``):
  ``dataSourceIds``, and ``params``/``settings`` as form elements (:mod:`.forms`).
- Ours (``docs/api.md``): ``dataSources`` with ``{type, id, db, table}``, options as
  ``{config_key, config_value}``, ``transforms.mapping`` of field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchangis.api.released.forms import option_elements, setting_elements
from exchangis.connectors.options import Side
from exchangis.connectors.registry import Registry
from exchangis.engine.planner import options_of
from exchangis.errors import InvalidInputError

SIDES = (("source", "sources", Side.SOURCE), ("sink", "sinks", Side.SINK))


def _items(raw: Any, where: str) -> list[dict[str, Any]]:
    """Return ``{config_key, config_value}`` items of the form's non-empty fields."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list) or not all(isinstance(i, Mapping) for i in raw):
        raise InvalidInputError.of(where, "must be a list of {config_key, config_value} items")
    return [
        {"config_key": i.get("config_key"), "config_value": i.get("config_value")}
        for i in raw
        if i.get("config_value") not in (None, "", [])
    ]


def _object(raw: Any, where: str) -> Mapping[str, Any]:
    """Return ``raw`` when it is an object (absent: an empty one)."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInputError.of(where, "must be an object")
    return raw


def _endpoint(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidInputError.of(where, "must be an object {type, id, db, table}")
    ref: dict[str, Any] = {"type": raw.get("type"), "id": raw.get("id"), "table": raw.get("table")}
    if isinstance(ref["id"], str) and ref["id"].strip().isdigit():
        ref["id"] = int(ref["id"])
    if raw.get("db") not in (None, ""):
        ref["db"] = raw.get("db")
    return ref


def _mapping(raw: Any, where: str) -> list[dict[str, Any]]:
    """Return the field-name pairs of the editor's mapping (validators and transformer
    functions are refused: the engine has none yet)."""
    if raw not in (None, "") and not isinstance(raw, list):
        raise InvalidInputError.of(where, "must be a list")
    mapping = []
    for i, entry in enumerate(raw or []):
        if not isinstance(entry, Mapping):
            raise InvalidInputError.of(f"{where}[{i}]", "must be an object")
        for extra in ("validator", "transformer"):
            if entry.get(extra):
                raise InvalidInputError.of(
                    f"{where}[{i}].{extra}", "field functions are not supported by this server"
                )
        source, sink = entry.get("source_field_name"), entry.get("sink_field_name")
        if source in (None, "") and sink in (None, ""):
            continue
        mapping.append({"source_field_name": source, "sink_field_name": sink})
    return mapping


def from_save_shape(content: Any) -> list[dict[str, Any]]:
    """Return the UI's saved sub-jobs in our shape (our schema checks them next).

    Raises:
        InvalidInputError: naming the part of ``content`` that cannot be ours.
    """
    if not isinstance(content, list):
        raise InvalidInputError.of("content", "must be a JSON list of sub-jobs")
    subs = []
    for n, raw in enumerate(content):
        where = f"content[{n}]"
        if not isinstance(raw, Mapping):
            raise InvalidInputError.of(where, "must be an object")
        ends = _object(raw.get("dataSources") or raw.get("dataSourceIds"), f"{where}.dataSources")
        params = _object(raw.get("params"), f"{where}.params")
        transforms = _object(raw.get("transforms"), f"{where}.transforms")
        if transforms.get("type") not in (None, "", "MAPPING"):
            raise InvalidInputError.of(
                f"{where}.transforms.type", f"{transforms.get('type')} is not supported (MAPPING)"
            )
        subs.append(
            {
                "subJobName": raw.get("subJobName"),
                "dataSources": {
                    side: _endpoint(ends.get(side), f"{where}.dataSources.{side}")
                    for side, _, _ in SIDES
                },
                "params": {
                    key: _items(params.get(key), f"{where}.params.{key}") for _, key, _ in SIDES
                },
                "transforms": {
                    "type": "MAPPING",
                    "mapping": _mapping(transforms.get("mapping"), f"{where}.transforms.mapping"),
                },
                "settings": _items(raw.get("settings"), f"{where}.settings"),
            }
        )
    return subs


def _view_mapping(mapping: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "source_field_name": m["source_field_name"],
            "source_field_type": "",
            "source_field_index": i,
            "source_field_editable": True,
            "sink_field_name": m["sink_field_name"],
            "sink_field_type": "",
            "sink_field_index": i,
            "sink_field_editable": True,
            "deleteEnable": True,
            "validator": [],
            "transformer": {},
        }
        for i, m in enumerate(mapping)
    ]


def to_view_shape(
    registry: Registry, content: list[Mapping[str, Any]], datasources: Mapping[int, Mapping]
) -> dict[str, Any]:
    """Return our sub-jobs in the view shape ``{subJobs}``, forms filled with their values
    (``datasources``: our masked data sources by id, for their names and creators)."""
    subs = []
    for sub in content:
        ends, params = sub["dataSources"], sub.get("params") or {}
        view_ends, view_params = {}, {}
        for side, key, kind in SIDES:
            ref = ends[side]
            ds = datasources.get(int(ref["id"]), {})
            view_ends[side] = {
                "type": ref["type"],
                "id": str(ref["id"]),
                "name": ds.get("name", ""),
                "ds": ds.get("name", ""),
                "db": ref.get("db") or "",
                "table": ref["table"],
                "creator": ds.get("create_user", ""),
            }
            kinds = registry.sources if kind is Side.SOURCE else registry.sinks
            connector = kinds.get(ref["type"])
            declared = connector.options if connector is not None else ()
            view_params[key] = option_elements(declared, kind, options_of(params.get(key)))
        mapping = (sub.get("transforms") or {}).get("mapping") or []
        subs.append(
            {
                "subJobName": sub["subJobName"],
                "dataSourceIds": view_ends,
                "params": view_params,
                "transforms": {
                    "type": "MAPPING",
                    "mapping": _view_mapping(mapping),
                    "addEnable": True,
                    "transformEnable": False,
                },
                "settings": setting_elements(options_of(sub.get("settings"))),
            }
        )
    return {"subJobs": subs}
