"""Data sources as the released UI's data source page and the editor's pickers use them
(``exchangis-ui-calls.md`` §4 and §5): types by number, the page's list, key definitions from
our connect parameter declarations, create, edit, test, one version, and the database and table
pickers answered by a worker.

Our data sources have no versions: each is its one version, ``1``, always published. They
belong to a project; the page has none, so it creates in ``projectId`` when sent, else in
``default`` (a job uses the data sources of its own project).
"""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue

from exchangis.api.common import current_user, envelope, runtime
from exchangis.api.released import blp
from exchangis.errors import InvalidInputError, NotFoundError
from exchangis.schemas.common import WireTime
from exchangis.schemas.released import (
    TYPE_IDS,
    TYPE_NAMES,
    DataSourceFormSchema,
    DataSourceQueryBodySchema,
    TypeQuerySchema,
)
from exchangis.services import datasource as service
from exchangis.services import project as projects

VERSION = 1
"""The one version of each data source."""
MOST_NAMES = 5000
"""Most names a picker gets (it filters them itself)."""
_ID = "<int(max=2147483647):ds_id>"
_VERSION = "<int(max=2147483647):version>"


def _type_row(name: str) -> dict[str, Any]:
    ds_type = runtime().registry.types[name]
    label = ds_type.description or name
    return {
        "id": str(TYPE_IDS[name]),
        "name": name,
        "description": label,
        "option": label,
        "icon": "",
        "classifier": "file" if name == "FILE" else "database",
        "struct_classifier": "file" if name == "FILE" else "table",
    }


def _row(ds: dict[str, Any]) -> dict[str, Any]:
    """A data source as the page's list and the editor's picker read it."""
    registry, time = runtime().registry, WireTime()
    return {
        "id": ds["id"],
        "name": ds["name"],
        "type": ds["type"],
        "dataSourceTypeId": TYPE_IDS[ds["type"]],
        "createSystem": ds["type"],
        "createIdentify": "",
        "desc": ds["description"],
        "label": "",
        "labels": "",
        "versionId": VERSION,
        "expire": False,
        "readAble": ds["type"] in registry.sources,
        "writeAble": ds["type"] in registry.sinks,
        "authDbs": "",
        "authTbls": "",
        "createUser": ds["create_user"],
        "modifyUser": ds["create_user"],
        "createTime": time.serialize("create_time", ds),
        "modifyTime": time.serialize("update_time", ds),
    }


@blp.route("/datasources/type", methods=["GET"])
@blp.arguments(TypeQuerySchema, location="query")
def types(query: dict[str, Any]) -> ResponseReturnValue:
    """The data source types, those that can be the side ``direct`` when it is given."""
    registry = runtime().registry
    sides: dict[str, set[str]] = {"source": set(registry.sources), "sink": set(registry.sinks)}
    wanted = sides.get(query.get("direct", ""))
    names = sorted(n for n in registry.types if wanted is None or n in wanted)
    return envelope({"list": [_type_row(name) for name in names]})


@blp.route("/datasources/types/<int(max=2147483647):type_id>/keydefines", methods=["GET"])
def key_definitions(type_id: int) -> ResponseReturnValue:
    """The create form of a type: one field per connect parameter we declare."""
    ds_type = runtime().registry.types.get(TYPE_NAMES.get(type_id, ""))
    if ds_type is None:
        raise NotFoundError(f"data source type {type_id} does not exist")
    kinds = {int: "NUMBER", dict: "TEXTAREA"}
    items = [
        {
            "id": index,
            "key": param.name,
            "name": param.name,
            "description": "JSON object" if param.kind is dict else param.name,
            "defaultValue": "" if param.default is None else str(param.default),
            "valueType": "PASSWORD" if param.secret else kinds.get(param.kind, "TEXT"),
            "require": param.required,
        }
        for index, param in enumerate(ds_type.params, start=1)
    ]
    return envelope({"list": items})


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
        if body["type_id"] in (None, ds["type"]) and needle in ds["name"].lower()
    ]
    start = (body["page"] - 1) * body["page_size"]
    page = found[start : start + body["page_size"]]
    return envelope({"list": [_row(ds) for ds in page], "total": len(found)})


def _ours(form: dict[str, Any], *, new: bool) -> dict[str, Any]:
    """Our data source body from the page's form (``new``: a type and a name are needed)."""
    kind = form["data_source_type_id"] or form["create_system"]
    if new and kind is None:
        raise InvalidInputError.of("dataSourceTypeId", "the data source type is missing")
    if new and not form["data_source_name"]:
        raise InvalidInputError.of("dataSourceName", "the data source name is missing")
    project = "default"
    if form["project_id"] is not None:
        project = projects.name_of(runtime(), current_user(), form["project_id"])
    return {
        "name": form["data_source_name"],
        "project_name": project,
        "type": kind,
        "description": form["data_source_desc"],
        "connect_params": form["connect_params"],
    }


@blp.route("/datasources", methods=["POST"])
@blp.arguments(DataSourceFormSchema)
def create_datasource(form: dict[str, Any]) -> ResponseReturnValue:
    """Create a data source from the page's form."""
    made = service.create_datasource(runtime(), current_user(), _ours(form, new=True))
    return envelope({"id": made["id"]})


@blp.route(f"/datasources/{_ID}", methods=["PUT"])
@blp.arguments(DataSourceFormSchema)
def update_datasource(form: dict[str, Any], ds_id: int) -> ResponseReturnValue:
    """Change a data source from the page's form (its type stays; ``******`` keeps a secret)."""
    rt, caller = runtime(), current_user()
    kept = service.get_datasource(rt, caller, ds_id)
    body = _ours(form, new=False)
    if body["type"] not in (None, kept["type"]):
        raise InvalidInputError.of("dataSourceTypeId", f"a {kept['type']} data source stays one")
    change = {"description": body["description"], "connect_params": body["connect_params"]}
    if body["name"]:
        change["name"] = body["name"]
    service.update_datasource(rt, caller, ds_id, change)
    return envelope({"id": ds_id})


def _tested(result: dict[str, Any]) -> ResponseReturnValue:
    """The page's test answer: success, or a 400 saying why the connection failed."""
    if not result["ok"]:
        raise InvalidInputError(f"connection failed: {result['message']}")
    return envelope({"ok": True, "elapsedMs": result["elapsed_ms"]})


@blp.route("/datasources/op/connect", methods=["POST"])
@blp.arguments(DataSourceFormSchema)
def test_unsaved(form: dict[str, Any]) -> ResponseReturnValue:
    """Try the form's connect params before saving (a worker connects)."""
    return _tested(service.check_unsaved(runtime(), current_user(), _ours(form, new=True)))


def _one_version(ds: dict[str, Any], version: int) -> None:
    if version != VERSION:
        raise NotFoundError(f"data source {ds['id']} has one version, {VERSION}")


@blp.route(f"/datasources/{_ID}/{_VERSION}/connect", methods=["PUT"])
def test_saved(ds_id: int, version: int) -> ResponseReturnValue:
    """Test a saved data source (its one version)."""
    rt, caller = runtime(), current_user()
    _one_version(service.get_datasource(rt, caller, ds_id), version)
    return _tested(service.check_datasource(rt, caller, ds_id))


@blp.route(f"/datasources/{_ID}", methods=["GET"])
def datasource_info(ds_id: int) -> ResponseReturnValue:
    """One data source as the page's form reads it (``info``; secrets masked)."""
    ds = service.get_datasource(runtime(), current_user(), ds_id)
    info = {
        **_row(ds),
        "dataSourceName": ds["name"],
        "dataSourceDesc": ds["description"],
        "connectParams": ds["connect_params"],
        "publishedVersionId": VERSION,
        "dataSourceType": {"name": ds["type"], "layers": 0},
    }
    return envelope({"info": info})


@blp.route(f"/datasources/{_ID}/versions", methods=["GET"])
def versions(ds_id: int) -> ResponseReturnValue:
    """The data source's versions: its one, published."""
    ds = service.get_datasource(runtime(), current_user(), ds_id)
    version = {
        "versionId": VERSION,
        "datasourceId": ds_id,
        "published": True,
        "connectParams": ds["connect_params"],
        "comment": "",
        "createUser": ds["create_user"],
        "createTime": WireTime().serialize("update_time", ds),
    }
    return envelope({"versions": [version]})


@blp.route(f"/datasources/{_ID}/{_VERSION}/publish", methods=["PUT"])
def publish(ds_id: int, version: int) -> ResponseReturnValue:
    """Publish a version: the one version is published already."""
    _one_version(service.get_datasource(runtime(), current_user(), ds_id), version)
    return envelope({"id": ds_id, "versionId": VERSION})


@blp.route(f"/datasources/{_ID}/expire", methods=["PUT"])
def expire(ds_id: int) -> ResponseReturnValue:
    """Data sources do not expire here: refused (nothing changes)."""
    service.get_datasource(runtime(), current_user(), ds_id)
    raise InvalidInputError(f"data source {ds_id}: data sources do not expire here; delete it")


@blp.route(f"/datasources/<ds_type>/{_ID}/dbs", methods=["GET"])
def databases(ds_type: str, ds_id: int) -> ResponseReturnValue:
    """The editor's database picker: every database name (a worker lists them)."""
    return envelope({"dbs": browse_all(ds_id, ds_type, "databases", {})})


@blp.route(f"/datasources/<ds_type>/{_ID}/dbs/<db>/tables", methods=["GET"])
def tables(ds_type: str, ds_id: int, db: str) -> ResponseReturnValue:
    """The editor's table picker: every table name of ``db`` (a worker lists them)."""
    return envelope({"tbs": browse_all(ds_id, ds_type, "tables", {"db": db})})


def browse_all(
    ds_id: int, claimed: str, what: str, query: dict[str, Any], field: str | None = None
) -> list[Any]:
    """Every name (or column) a worker lists of data source ``ds_id``, which the UI says is of
    type ``claimed`` (else a 404, or a 400 naming ``field`` of a body)."""
    rt, caller = runtime(), current_user()
    kind = service.get_datasource(rt, caller, ds_id)["type"]
    if claimed.upper() != kind:
        message = f"data source {ds_id} is a {kind}, not {claimed[:32]}"
        raise NotFoundError(message) if field is None else InvalidInputError.of(field, message)
    found = service.browse(rt, caller, ds_id, what, {**query, "current": 1, "size": MOST_NAMES})
    return list(found["items"])
