"""Who may do what: the caller, project privileges, and the checks every service makes.

A project's owner and admins hold every privilege; a member holds view, edit and/or execute
(edit or execute imply view). View reads jobs, data sources, executions, logs and metrics;
edit changes jobs and data sources; execute runs, kills, pauses, resumes, restarts and deletes
executions. A caller without view on a thing's project is told it does not exist (404: its
existence does not leak); one who may view it but lacks the privilege gets a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from exchangis.errors import ForbiddenError, InvalidInputError, NotFoundError
from exchangis.models import DataSource, Job, JobExecution, Project, ProjectMember
from exchangis.runtime import Runtime


class Privilege(StrEnum):
    """A right on a project."""

    VIEW = "view"
    EDIT = "edit"
    EXECUTE = "execute"


ALL = frozenset(Privilege)

Owned = TypeVar("Owned", DataSource, Job)
"""A thing that belongs to a project by its ``project_name``."""
_NAMES: dict[type, str] = {DataSource: "data source", Job: "job"}


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request."""

    name: str
    admin: bool = False


def privileges(session: Session, caller: Caller, project: str) -> frozenset[Privilege]:
    """Return the caller's privileges on the project named ``project`` (none: not a member, or
    no such project, for admins too: nothing is made in a project that does not exist)."""
    if caller.admin:
        exists = session.scalar(select(Project.id).where(Project.name == project))
        return ALL if exists is not None else frozenset()
    row = session.execute(
        select(Project.owner, ProjectMember)
        .outerjoin(
            ProjectMember,
            (ProjectMember.project_id == Project.id) & (ProjectMember.user_name == caller.name),
        )
        .where(Project.name == project)
    ).first()
    if row is None:
        return frozenset()
    owner, member = row
    if owner == caller.name:
        return ALL
    if member is None:
        return frozenset()
    held = {Privilege.VIEW}
    if member.can_edit:
        held.add(Privilege.EDIT)
    if member.can_execute:
        held.add(Privilege.EXECUTE)
    return frozenset(held)


def require(
    session: Session, caller: Caller, project: str, privilege: Privilege, thing: str
) -> None:
    """Raise unless the caller holds ``privilege`` on ``project``.

    Args:
        thing: what the caller named, as the error should say it (``job 5``).

    Raises:
        NotFoundError: the caller may not even view the project's things.
        ForbiddenError: the caller may view it but lacks ``privilege``.
    """
    held = privileges(session, caller, project)
    if Privilege.VIEW not in held:
        raise NotFoundError(f"{thing} does not exist")
    if privilege not in held:
        raise ForbiddenError(
            f"{caller.name} may not {_VERBS[privilege]} {thing}: it needs the {privilege} "
            f"privilege on project {project}"
        )


def require_project(session: Session, caller: Caller, project: str, privilege: Privilege) -> None:
    """Raise unless the caller holds ``privilege`` on the project a request body names.

    Raises:
        InvalidInputError: ``projectName`` names no project the caller may view.
        ForbiddenError: the caller may view it but lacks ``privilege``.
    """
    try:
        require(session, caller, project, privilege, f"project {project}")
    except NotFoundError as exc:
        raise InvalidInputError.of("projectName", exc.message) from None


_VERBS = {
    Privilege.VIEW: "read",
    Privilege.EDIT: "change",
    Privilege.EXECUTE: "run or control",
}


def visible_projects(session: Session, caller: Caller) -> list[str] | None:
    """Return the names of the projects the caller may view (None: every project, an admin)."""
    if caller.admin:
        return None
    member = select(ProjectMember.project_id).where(ProjectMember.user_name == caller.name)
    return list(
        session.scalars(
            select(Project.name).where(or_(Project.owner == caller.name, Project.id.in_(member)))
        )
    )


def visible(
    session: Session, caller: Caller, column: InstrumentedAttribute[str]
) -> ColumnElement[bool]:
    """Return a filter on a ``project_name`` column: the rows the caller may view."""
    names = visible_projects(session, caller)
    return true() if names is None else column.in_(names)


def fetch(
    session: Session, caller: Caller, model: type[Owned], ident: int, privilege: Privilege
) -> Owned:
    """Return the job or data source ``ident`` if the caller holds ``privilege`` on its
    project.

    Raises:
        NotFoundError: no such row, or one the caller may not view. ForbiddenError: the
        caller may view it but lacks ``privilege``.
    """
    what = f"{_NAMES[model]} {ident}"
    row = session.get(model, ident)
    if row is None:
        raise NotFoundError(f"{what} does not exist")
    require(session, caller, row.project_name, privilege, what)
    return row


def require_execution(rt: Runtime, caller: Caller, eid: str, privilege: Privilege) -> None:
    """Raise unless the caller holds ``privilege`` on the execution's project (SQL holds it
    from the submit on).

    Raises:
        NotFoundError: no such execution, or one the caller may not view. ForbiddenError: the
        caller may view it but lacks ``privilege``.
    """
    with rt.sessions() as session:
        project = (
            session.scalar(select(JobExecution.project_name).where(JobExecution.id == eid))
            if len(eid) <= 64
            else None
        )
        if project is None:
            raise NotFoundError(f"job execution {eid[:64]} does not exist")
        require(session, caller, project, privilege, f"job execution {eid}")
