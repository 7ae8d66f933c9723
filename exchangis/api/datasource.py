"""``/datasources``: register connections once, reference them by id from jobs."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import current_user, envelope, runtime
from exchangis.schemas.datasource import (
    CatalogQuerySchema,
    ColumnSchema,
    ColumnsQuerySchema,
    DataSourceCreateSchema,
    DataSourceListQuerySchema,
    DataSourceProbeSchema,
    DataSourceSchema,
    DataSourceTestSchema,
    DataSourceUpdateSchema,
    TablesQuerySchema,
)
from exchangis.services import datasource as service

blp = Blueprint("datasources", __name__, description="Data sources")


@blp.route("/datasources", methods=["POST"])
@blp.arguments(DataSourceCreateSchema)
def create_datasource(data: dict[str, Any]) -> ResponseReturnValue:
    """Register a data source."""
    ds = service.create_datasource(runtime(), current_user(), data)
    return envelope({"id": ds["id"], **DataSourceSchema().dump(ds)}, http_status=201)


@blp.route("/datasources", methods=["GET"])
@blp.arguments(DataSourceListQuerySchema, location="query")
def list_datasources(query: dict[str, Any]) -> ResponseReturnValue:
    """List the data sources of the projects the caller may view (secrets masked)."""
    items = service.list_datasources(runtime(), current_user(), query.get("project_name"))
    return envelope({"result": DataSourceSchema(many=True).dump(items), "total": len(items)})


@blp.route("/datasources/<int(max=2147483647):ds_id>", methods=["GET"])
def get_datasource(ds_id: int) -> ResponseReturnValue:
    """Read one data source (secrets masked)."""
    return envelope(
        DataSourceSchema().dump(service.get_datasource(runtime(), current_user(), ds_id))
    )


@blp.route("/datasources/<int(max=2147483647):ds_id>", methods=["PUT"])
@blp.arguments(DataSourceUpdateSchema)
def update_datasource(data: dict[str, Any], ds_id: int) -> ResponseReturnValue:
    """Change a data source; a secret sent as ``******`` keeps its value."""
    return envelope(
        DataSourceSchema().dump(service.update_datasource(runtime(), current_user(), ds_id, data))
    )


@blp.route("/datasources/<int(max=2147483647):ds_id>", methods=["DELETE"])
def delete_datasource(ds_id: int) -> ResponseReturnValue:
    """Delete a data source no job uses."""
    service.delete_datasource(runtime(), current_user(), ds_id)
    return envelope({"id": ds_id})


@blp.route("/datasources/test", methods=["POST"])
@blp.arguments(DataSourceProbeSchema)
def test_unsaved(data: dict[str, Any]) -> ResponseReturnValue:
    """Connect with params not saved yet (editing the project) and report how it went."""
    return envelope(
        DataSourceTestSchema().dump(service.check_unsaved(runtime(), current_user(), data))
    )


@blp.route("/datasources/<int(max=2147483647):ds_id>/test", methods=["POST"])
def test_datasource(ds_id: int) -> ResponseReturnValue:
    """Connect to a data source and report how it went."""
    return envelope(
        DataSourceTestSchema().dump(service.check_datasource(runtime(), current_user(), ds_id))
    )


def _listed(ds_id: int, what: str, query: dict[str, Any]) -> ResponseReturnValue:
    found = service.browse(runtime(), current_user(), ds_id, what, query)
    items = found["items"] if what != "columns" else ColumnSchema(many=True).dump(found["items"])
    return envelope({"result": items, "total": found["total"]})


@blp.route("/datasources/<int(max=2147483647):ds_id>/databases", methods=["GET"])
@blp.arguments(CatalogQuerySchema, location="query")
def list_databases(query: dict[str, Any], ds_id: int) -> ResponseReturnValue:
    """List the databases of a data source (a worker connects; names, paged)."""
    return _listed(ds_id, "databases", query)


@blp.route("/datasources/<int(max=2147483647):ds_id>/tables", methods=["GET"])
@blp.arguments(TablesQuerySchema, location="query")
def list_tables(query: dict[str, Any], ds_id: int) -> ResponseReturnValue:
    """List the tables of one of a data source's databases (a worker connects; names, paged)."""
    return _listed(ds_id, "tables", query)


@blp.route("/datasources/<int(max=2147483647):ds_id>/columns", methods=["GET"])
@blp.arguments(ColumnsQuerySchema, location="query")
def list_columns(query: dict[str, Any], ds_id: int) -> ResponseReturnValue:
    """List a table's columns: name, type, nullable, part of the primary key (a worker
    connects)."""
    return _listed(ds_id, "columns", query)
