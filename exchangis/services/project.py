"""Create, read, change and delete projects and their members."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchangis.errors import ConflictError, ForbiddenError, NotFoundError
from exchangis.models import (
    DataSource,
    Job,
    JobExecution,
    Project,
    ProjectMember,
    SharedDataSource,
)
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, privileges, visible_projects


def _member_lists(project: Project) -> dict[str, list[str]]:
    """Return the wire lists of members: every member views; some edit, some execute."""
    members = project.members
    return {
        "view_users": [m.user_name for m in members],
        "edit_users": [m.user_name for m in members if m.can_edit],
        "exec_users": [m.user_name for m in members if m.can_execute],
    }


def _dump(project: Project, held: frozenset[Privilege]) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "owner": project.owner,
        **_member_lists(project),
        "privileges": [p.value for p in Privilege if p in held],
        "create_time": project.create_time,
        "update_time": project.update_time,
    }


def _members(project: Project, data: Mapping[str, Any]) -> None:
    """Replace the members by the lists given (a list not given keeps its part as it is)."""
    lists = {
        key: set(data[key] if data.get(key) is not None else current)
        for key, current in _member_lists(project).items()
    }
    edit, execute = lists["edit_users"], lists["exec_users"]
    names = (lists["view_users"] | edit | execute) - {project.owner}  # the owner holds all
    project.members = [
        ProjectMember(
            user_name=name, can_view=True, can_edit=name in edit, can_execute=name in execute
        )
        for name in sorted(names)
    ]


def _get(session: Session, caller: Caller, name: str) -> tuple[Project, frozenset[Privilege]]:
    project = session.scalar(select(Project).where(Project.name == name))
    held = privileges(session, caller, name) if project is not None else frozenset()
    if project is None or Privilege.VIEW not in held:
        raise NotFoundError(f"project {name[:128]} does not exist")
    return project, held


def _require_owner(caller: Caller, project: Project, action: str) -> None:
    if not caller.admin and project.owner != caller.name:
        raise ForbiddenError(
            f"{caller.name} may not {action} project {project.name}: only its owner "
            f"({project.owner}) and admins may"
        )


def create_project(rt: Runtime, caller: Caller, data: Mapping[str, Any]) -> dict[str, Any]:
    """Create a project owned by the caller; return it.

    Raises:
        ConflictError: the name is taken (also when the caller cannot see that project).
    """
    with rt.sessions.begin() as session:
        if session.scalar(select(Project.id).where(Project.name == data["name"])) is not None:
            raise ConflictError(f"a project named {data['name']} exists already")
        project = Project(name=data["name"], description=data["description"], owner=caller.name)
        _members(project, data)
        session.add(project)
        try:
            session.flush()
        except IntegrityError:
            raise ConflictError(f"a project named {data['name']} exists already") from None
        return _dump(project, privileges(session, caller, project.name))


def list_projects(rt: Runtime, caller: Caller) -> list[dict[str, Any]]:
    """Return the projects the caller may view, by name, with their privileges on each."""
    with rt.sessions() as session:
        names = visible_projects(session, caller)
        stmt = select(Project).order_by(Project.name)
        if names is not None:
            stmt = stmt.where(Project.name.in_(names))
        return [
            _dump(project, privileges(session, caller, project.name))
            for project in session.scalars(stmt)
        ]


def name_of(rt: Runtime, caller: Caller, project_id: int) -> str:
    """Return the name of the project with id ``project_id`` that the caller may view.

    Raises:
        NotFoundError: no such project, or the caller may not view it.
    """
    with rt.sessions() as session:
        name = session.scalar(select(Project.name).where(Project.id == project_id))
        if name is None or Privilege.VIEW not in privileges(session, caller, name):
            raise NotFoundError(f"project {project_id} does not exist")
        return str(name)


def ids_of(rt: Runtime, names: Iterable[str]) -> dict[str, int]:
    """Return the ids of the projects named (those that exist)."""
    wanted = set(names)
    with rt.sessions() as session:
        rows = session.execute(select(Project.name, Project.id).where(Project.name.in_(wanted)))
        return {name: project_id for name, project_id in rows}


def get_project(rt: Runtime, caller: Caller, name: str) -> dict[str, Any]:
    """Return one project the caller may view."""
    with rt.sessions() as session:
        project, held = _get(session, caller, name)
        return _dump(project, held)


def update_project(
    rt: Runtime, caller: Caller, name: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Change the description or the members (its owner and admins only)."""
    with rt.sessions.begin() as session:
        project, _ = _get(session, caller, name)
        _require_owner(caller, project, "change")
        if data.get("description") is not None:
            project.description = data["description"]
        _members(project, data)
        session.flush()
        return _dump(project, privileges(session, caller, project.name))


def delete_project(rt: Runtime, caller: Caller, name: str) -> None:
    """Delete an empty project (its owner and admins only).

    Raises:
        ConflictError: jobs, data sources or executions still belong to it.
    """
    with rt.sessions.begin() as session:
        project, _ = _get(session, caller, name)
        _require_owner(caller, project, "delete")
        for model, what in ((Job, "job"), (DataSource, "data source"), (JobExecution, "execution")):
            count = session.scalar(
                select(func.count()).select_from(model).where(model.project_name == name)
            )
            if count:
                raise ConflictError(
                    f"project {name} still has {count} {what}(s): delete them first"
                )
        session.execute(delete(SharedDataSource).where(SharedDataSource.project_name == name))
        session.delete(project)
