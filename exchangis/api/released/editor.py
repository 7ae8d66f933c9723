"""The job editor's helper calls: the settings and parameter forms, the data source types and
the data source picker (``exchangis-ui-calls.md`` §4), generated from our declarations."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue

from exchangis.api.common import current_user, envelope, runtime
from exchangis.api.released import blp
from exchangis.api.released.forms import option_elements, setting_elements
from exchangis.connectors.options import Side
from exchangis.errors import NotFoundError
from exchangis.schemas.common import WireTime
from exchangis.schemas.released import (
    DataSourceQueryBodySchema,
    ParamsUiQuerySchema,
    TypeQuerySchema,
)
from exchangis.services import datasource as service
from exchangis.services import project as projects


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


@blp.route("/datasources/type", methods=["GET"])
@blp.arguments(TypeQuerySchema, location="query")
def types(query: dict[str, Any]) -> ResponseReturnValue:
    """The data source types, those that can be the side ``direct`` when it is given."""
    registry = runtime().registry
    sides: dict[str, set[str]] = {"source": set(registry.sources), "sink": set(registry.sinks)}
    wanted = sides.get(query.get("direct", ""))
    names = sorted(n for n in registry.types if wanted is None or n in wanted)
    return envelope(
        {
            "list": [
                {
                    "id": name,
                    "name": name,
                    "description": registry.types[name].description,
                    "struct_classifier": "file" if name == "FILE" else "table",
                    "classifier": name,
                }
                for name in names
            ]
        }
    )


@blp.route("/datasources/query", methods=["POST"])
@blp.arguments(DataSourceQueryBodySchema)
def query_datasources(body: dict[str, Any]) -> ResponseReturnValue:
    """A page of the data sources the caller may view (of a project, a type, by name)."""
    rt, caller = runtime(), current_user()
    project = None
    if body["project_id"] is not None:
        project = projects.name_of(rt, caller, body["project_id"])
    needle = body["name"].lower()
    found = [
        ds
        for ds in service.list_datasources(rt, caller, project)
        if (body["type_id"] in (None, "", ds["type"])) and needle in ds["name"].lower()
    ]
    start = (body["page"] - 1) * body["page_size"]
    time = WireTime()
    items = [
        {
            "id": ds["id"],
            "name": ds["name"],
            "type": ds["type"],
            "desc": ds["description"],
            "readAble": ds["type"] in rt.registry.sources,
            "writeAble": ds["type"] in rt.registry.sinks,
            "authDbs": "",
            "authTbls": "",
            "createUser": ds["create_user"],
            "createTime": time.serialize("create_time", ds),
            "modifyTime": time.serialize("update_time", ds),
        }
        for ds in found[start : start + body["page_size"]]
    ]
    return envelope({"list": items, "total": len(found)})
