"""Projects as the released UI lists, opens, creates, changes and deletes them (by id)."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue

from exchangis.api.common import current_user, envelope, runtime
from exchangis.api.released import blp
from exchangis.errors import InvalidInputError
from exchangis.schemas.released import (
    LabelsBodySchema,
    ProjectFormSchema,
    ProjectInfoSchema,
    ProjectPageQuerySchema,
)
from exchangis.services import datasource as datasources
from exchangis.services import project as service
from exchangis.services.access import Privilege

PROJECT_ID = "<int(max=2147483647):project_id>"


@blp.route("/projects", methods=["POST"])
@blp.arguments(ProjectPageQuerySchema, location="query")
@blp.arguments(LabelsBodySchema)
def list_projects(query: dict[str, Any], body: dict[str, Any]) -> ResponseReturnValue:
    """The UI's project list: a page of the projects the caller may view, by name substring
    (``name`` in the query, or in the body as the released server reads it)."""
    needle = (query.get("name") or body.get("name") or "").lower()
    items = [
        p for p in service.list_projects(runtime(), current_user()) if needle in p["name"].lower()
    ]
    start = (query["current"] - 1) * query["size"]
    page = [_with_shared(p) for p in items[start : start + query["size"]]]
    return envelope({"list": ProjectInfoSchema(many=True).dump(page), "total": len(items)})


def _with_shared(project: dict[str, Any]) -> dict[str, Any]:
    """The project with the data sources shared with it (the dialog's ``dataSources``)."""
    return {**project, "data_sources": datasources.shared_with(runtime(), project["name"])}


def _bound(body: dict[str, Any]) -> list[int]:
    return [item["data_source_id"] for item in body["data_sources"]]


@blp.route(f"/projects/{PROJECT_ID}", methods=["GET"])
def get_project(project_id: int) -> ResponseReturnValue:
    """One project, under ``item``."""
    rt, caller = runtime(), current_user()
    project = service.get_project(rt, caller, service.name_of(rt, caller, project_id))
    return envelope({"item": ProjectInfoSchema().dump(_with_shared(project))})


def _saved(project: dict[str, Any]) -> ResponseReturnValue:
    return envelope({"projectName": project["name"], "projectId": str(project["id"])})


@blp.route("/createProject", methods=["POST"])
@blp.arguments(ProjectFormSchema)
def create_project(body: dict[str, Any]) -> ResponseReturnValue:
    """Create a project owned by the caller, with the data sources of ``dataSources`` shared
    with it (the caller must be able to change each; ``tags`` and ``domain`` are not kept)."""
    rt, caller = runtime(), current_user()
    datasources.check_shareable(rt, caller, _bound(body), "dataSources")  # before anything
    made = service.create_project(rt, caller, body)
    datasources.share(rt, caller, made["name"], _bound(body), "dataSources")
    return _saved(made)


@blp.route("/updateProject", methods=["PUT"])
@blp.arguments(ProjectFormSchema)
def update_project(body: dict[str, Any]) -> ResponseReturnValue:
    """Change a project's description, members and shared data sources (``dataSources``,
    exactly those sent); ``id`` names it, its name stays. A member
    list sent empty keeps the stored one (the released dialog sends its disabled inputs as
    ``""``; an edit of the description must not drop every member)."""
    rt, caller = runtime(), current_user()
    if body["id"] is None:
        raise InvalidInputError.of("id", "is required: the project's id")
    name = service.name_of(rt, caller, body["id"])
    datasources.share(rt, caller, name, _bound(body), "dataSources")  # exactly those sent
    members = ("view_users", "edit_users", "exec_users")
    changes = {k: v for k, v in body.items() if k not in members or v}
    return _saved(service.update_project(rt, caller, name, changes))


@blp.route(f"/projects/{PROJECT_ID}", methods=["DELETE"])
@blp.arguments(LabelsBodySchema)
def delete_project(_body: dict[str, Any], project_id: int) -> ResponseReturnValue:
    """Delete an empty project."""
    rt, caller = runtime(), current_user()
    service.delete_project(rt, caller, service.name_of(rt, caller, project_id))
    return envelope({"id": str(project_id)})


@blp.route(f"/getProjectPermission/{PROJECT_ID}", methods=["GET"])
def project_permission(project_id: int) -> ResponseReturnValue:
    """``exchangisProjectUser`` names the project when the caller may make jobs in it (the
    UI enables "create job" then); ``{}`` otherwise."""
    rt, caller = runtime(), current_user()
    project = service.get_project(rt, caller, service.name_of(rt, caller, project_id))
    if Privilege.EDIT.value not in project["privileges"]:
        return envelope({"exchangisProjectUser": {}})
    user = {
        "projectId": str(project_id),
        "privUser": caller.name,
        "privileges": project["privileges"],
    }
    return envelope({"exchangisProjectUser": user})
