"""``/projects``: jobs and data sources belong to a project; members hold privileges on it."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import current_user, envelope, runtime
from exchangis.schemas.project import ProjectCreateSchema, ProjectSchema, ProjectUpdateSchema
from exchangis.services import project as service

blp = Blueprint("projects", __name__, description="Projects and their members")


@blp.route("/projects", methods=["POST"])
@blp.arguments(ProjectCreateSchema)
def create_project(body: dict[str, Any]) -> ResponseReturnValue:
    """Create a project owned by the caller."""
    project = service.create_project(runtime(), current_user(), body)
    return envelope(ProjectSchema().dump(project), http_status=201)


@blp.route("/projects", methods=["GET"])
def list_projects() -> ResponseReturnValue:
    """List the projects the caller may view."""
    items = service.list_projects(runtime(), current_user())
    return envelope({"result": ProjectSchema(many=True).dump(items), "total": len(items)})


@blp.route("/projects/<name>", methods=["GET"])
def get_project(name: str) -> ResponseReturnValue:
    """Read a project."""
    return envelope(ProjectSchema().dump(service.get_project(runtime(), current_user(), name)))


@blp.route("/projects/<name>", methods=["PUT"])
@blp.arguments(ProjectUpdateSchema)
def update_project(body: dict[str, Any], name: str) -> ResponseReturnValue:
    """Change a project's description or members (owner and admins)."""
    project = service.update_project(runtime(), current_user(), name, body)
    return envelope(ProjectSchema().dump(project))


@blp.route("/projects/<name>", methods=["DELETE"])
def delete_project(name: str) -> ResponseReturnValue:
    """Delete an empty project (owner and admins)."""
    service.delete_project(runtime(), current_user(), name)
    return envelope({"name": name})
