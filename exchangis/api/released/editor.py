"""The job editor's helper calls: the settings and parameter forms, generated from our
declarations, the field functions and the field mapping (``exchangis-ui-calls.md`` §2, §4)."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue

from exchangis.api.common import envelope, runtime
from exchangis.api.released import blp
from exchangis.api.released.datasources import browse_all
from exchangis.api.released.forms import option_elements, setting_elements
from exchangis.connectors.options import Side
from exchangis.errors import NotFoundError
from exchangis.schemas.released import (
    ParamsUiQuerySchema,
    TransformSettingsBodySchema,
)


@blp.route("/jobs/engine/<engine>/settings/ui", methods=["GET"])
def settings_form(engine: str) -> ResponseReturnValue:
    """The sub-job settings form (the same for every engine name)."""
    return envelope({"ui": setting_elements()})


@blp.route("/datasources/<engine>/<ds_type>/params/ui", methods=["GET"])
@blp.arguments(ParamsUiQuerySchema, location="query")
def params_form(query: dict[str, Any], engine: str, ds_type: str) -> ResponseReturnValue:
    """The options form of a data source type as a source or a sink (``dir``)."""
    side = Side(query["dir"])
    registry = runtime().registry
    connector = (registry.sources if side is Side.SOURCE else registry.sinks).get(ds_type)
    if connector is None:
        raise NotFoundError(f"data source type {ds_type[:32]} cannot be a {side.value}")
    return envelope({"uis": option_elements(connector.options, side)})


@blp.route("/job/func/<any(verify, transform):func_type>", methods=["GET"])
def field_functions(func_type: str) -> ResponseReturnValue:
    """The field functions the mapping editor offers: none (the engine maps fields by name,
    with no validator or transformer), so the editor shows the mapping without them."""
    return envelope({"data": []})


def _fields(side: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields of one side's table, in order (none when the table is to be created)."""
    if body["sink_tbl_not_exist" if side == "sink" else "src_tbl_not_exist"]:
        return []
    query = {"db": body[f"{side}_data_base"], "table": body[f"{side}_table"]}
    columns = browse_all(
        body[f"{side}_data_source_id"], body[f"{side}_type_id"], "columns", query, f"{side}TypeId"
    )
    return [
        {"name": column["name"], "type": column["type"], "fieldIndex": index}
        for index, column in enumerate(columns)
    ]


@blp.route("/job/transform/settings", methods=["POST"])
@blp.arguments(TransformSettingsBodySchema)
def transform_settings(body: dict[str, Any]) -> ResponseReturnValue:
    """The mapping editor's fields: both tables' columns (a worker reads them) and the default
    mapping, by name (any case); to a table still to be created, every source field."""
    sources, sinks = _fields("source", body), _fields("sink", body)
    by_name = {field["name"].lower(): field for field in sinks}
    deductions = []
    for field in sources:
        sink = dict(field) if body["sink_tbl_not_exist"] else by_name.get(field["name"].lower())
        if sink is not None:
            deductions.append(
                {
                    "source": {**field, "fieldEditable": False},
                    "sink": {**sink, "fieldEditable": True},
                    "deleteEnable": True,
                }
            )
    return envelope(
        {
            "types": ["MAPPING"],
            "sourceFields": sources,
            "sinkFields": sinks,
            "deductions": deductions,
            "addEnable": True,
            "transformEnable": False,
        }
    )
