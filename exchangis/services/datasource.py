"""Register, read, change, delete and test data sources; secrets never leave masked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchangis.confine import confine
from exchangis.connectors.base import DataSourceType
from exchangis.engine import calls
from exchangis.errors import MASK, ConflictError, ExchangisError, InvalidInputError, NotFoundError
from exchangis.models import DataSource, Job, SharedDataSource, usable_in
from exchangis.runtime import Runtime
from exchangis.services.access import (
    Caller,
    Privilege,
    fetch,
    require,
    require_project,
    visible_projects,
)


def check_connect_params(
    rt: Runtime, ds_type: DataSourceType, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Return ``params`` validated against the type: required present, types right, no extras,
    hosts plain, local paths inside ``file_roots``."""
    errors: dict[str, list[str]] = {}
    known = {p.name: p for p in ds_type.params}
    for key in params:
        if key not in known:
            errors[f"connectParams.{key}"] = [f"unknown parameter for {ds_type.name}"]
    out: dict[str, Any] = {}
    for spec in ds_type.params:
        value = params.get(spec.name)
        if value is None or value == "":
            if spec.required:
                errors[f"connectParams.{spec.name}"] = ["missing required parameter"]
            elif spec.default is not None:
                out[spec.name] = spec.default
            continue
        try:
            out[spec.name] = spec.parse(value)
        except ValueError as exc:
            errors[f"connectParams.{spec.name}"] = [str(exc)]
        except InvalidInputError as exc:
            errors[f"connectParams.{spec.name}"] = [exc.message]
    if not errors:
        try:
            confine(rt.settings, ds_type, out)
        except InvalidInputError as exc:
            errors.update(exc.errors or {})
    if errors:
        first = next(iter(errors))
        raise InvalidInputError(f"{first}: {errors[first][0]}", errors=errors)
    return out


def masked(rt: Runtime, ds: DataSource) -> dict[str, Any]:
    """Return the data source as a dict with secret parameters shown as ``******``."""
    params = rt.registry.type(ds.type).masked(ds.connect_params)
    return {
        "id": ds.id,
        "name": ds.name,
        "project_name": ds.project_name,
        "type": ds.type,
        "description": ds.description,
        "connect_params": params,
        "create_user": ds.create_user,
        "create_time": ds.create_time,
        "update_time": ds.update_time,
    }


def _refuse_taken_name(session: Any, project: str, name: str) -> None:
    taken = session.scalar(
        select(DataSource.id).where(DataSource.project_name == project, DataSource.name == name)
    )
    if taken is not None:
        raise ConflictError(f"project {project} has a data source named {name!r} already")


def create_datasource(rt: Runtime, caller: Caller, data: Mapping[str, Any]) -> dict[str, Any]:
    """Register a data source in a project the caller may edit; return it (masked)."""
    ds_type = rt.registry.type(data["type"])
    params = rt.vault.seal(ds_type, check_connect_params(rt, ds_type, data["connect_params"]))
    project = data["project_name"]
    with rt.sessions.begin() as session:
        require_project(session, caller, project, Privilege.EDIT)
        _refuse_taken_name(session, project, data["name"])
        ds = DataSource(
            name=data["name"],
            project_name=project,
            type=ds_type.name,
            description=data["description"],
            connect_params=params,
            create_user=caller.name,
        )
        session.add(ds)
        try:
            session.flush()
        except IntegrityError:  # saved meanwhile by someone else
            raise ConflictError(
                f"project {project} has a data source named {data['name']!r} already"
            ) from None
        return masked(rt, ds)


def _viewable(session: Session, caller: Caller) -> ColumnElement[bool]:
    """Return a filter on data sources: those of a project the caller may view, or shared with
    one (the editor of a job that may use it must see and browse it; secrets stay masked)."""
    names = visible_projects(session, caller)
    if names is None:
        return true()
    shared = select(SharedDataSource.datasource_id).where(SharedDataSource.project_name.in_(names))
    return or_(DataSource.project_name.in_(names), DataSource.id.in_(shared))


def _view(session: Session, caller: Caller, ds_id: int) -> DataSource:
    """Return a data source the caller may view (NotFoundError otherwise)."""
    ds = session.scalar(
        select(DataSource).where(DataSource.id == ds_id, _viewable(session, caller))
    )
    if ds is None:
        raise NotFoundError(f"data source {ds_id} does not exist")
    return ds


def list_datasources(
    rt: Runtime, caller: Caller, project: str | None = None
) -> list[dict[str, Any]]:
    """Return the data sources (masked) the caller may view, by id (``project``: those its jobs
    may use)."""
    with rt.sessions() as session:
        stmt = select(DataSource).where(_viewable(session, caller))
        if project:
            stmt = stmt.where(usable_in(project))
        return [masked(rt, ds) for ds in session.scalars(stmt.order_by(DataSource.id))]


def get_datasource(rt: Runtime, caller: Caller, ds_id: int) -> dict[str, Any]:
    """Return one data source (masked): of a project the caller may view, or shared with
    one."""
    with rt.sessions() as session:
        return masked(rt, _view(session, caller, ds_id))


def shared_with(rt: Runtime, project: str) -> list[dict[str, Any]]:
    """Return the data sources (masked) shared with ``project`` from other projects."""
    with rt.sessions() as session:
        shared = select(SharedDataSource.datasource_id).where(
            SharedDataSource.project_name == project
        )
        stmt = select(DataSource).where(DataSource.id.in_(shared)).order_by(DataSource.id)
        return [masked(rt, ds) for ds in session.scalars(stmt)]


def check_shareable(rt: Runtime, caller: Caller, ds_ids: Iterable[int], field: str) -> None:
    """Raise unless the caller may share every data source named (edit it).

    Raises:
        InvalidInputError: naming ``field`` and the first data source that cannot be shared.
    """
    with rt.sessions() as session:
        _check_shareable(session, caller, ds_ids, field)


def _check_shareable(session: Session, caller: Caller, ds_ids: Iterable[int], field: str) -> None:
    for ds_id in ds_ids:
        try:
            fetch(session, caller, DataSource, ds_id, Privilege.EDIT)
        except ExchangisError as exc:
            raise InvalidInputError.of(field, exc.message) from None


def share(rt: Runtime, caller: Caller, project: str, ds_ids: Iterable[int], field: str) -> None:
    """Make exactly ``ds_ids`` the data sources shared with ``project`` (besides its own).

    The caller edits the project and every data source newly shared (who may change a data
    source decides who may use it; those shared already may be sent back by anyone editing the
    project). A data source that ``project``'s jobs use stays.

    Raises:
        InvalidInputError: naming ``field``: a data source the caller may not share.
        ConflictError: one to unshare is used by a job of ``project``.
    """
    wanted = set(ds_ids)
    with rt.sessions.begin() as session:
        require(session, caller, project, Privilege.EDIT, f"project {project}")
        rows = session.scalars(
            select(SharedDataSource).where(SharedDataSource.project_name == project)
        )
        held = {row.datasource_id: row for row in rows}
        _check_shareable(session, caller, sorted(wanted - set(held)), field)
        for ds_id in sorted(wanted - set(held)):
            ds = session.get(DataSource, ds_id)
            if ds is not None and ds.project_name != project:
                session.add(
                    SharedDataSource(
                        project_name=project, datasource_id=ds_id, create_user=caller.name
                    )
                )
        for ds_id in sorted(set(held) - wanted):
            _refuse_used(session, ds_id, [project])
            session.delete(held[ds_id])


def _refuse_used(session: Session, ds_id: int, projects: list[str]) -> None:
    """Raise ConflictError when a job of ``projects`` references data source ``ds_id``."""
    users = [
        job.job_name
        for job in session.scalars(select(Job).where(Job.project_name.in_(projects)))
        if ds_id in referenced_datasources(job.content)
    ]
    if users:
        raise ConflictError(f"data source {ds_id} is used by job(s): {', '.join(users[:5])}")


def update_datasource(
    rt: Runtime, caller: Caller, ds_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Change name, description or connect params; a secret sent as ``******`` is kept."""
    with rt.sessions.begin() as session:
        ds = fetch(session, caller, DataSource, ds_id, Privilege.EDIT)
        if "name" in data and data["name"] != ds.name:
            _refuse_taken_name(session, ds.project_name, data["name"])
            ds.name = data["name"]
        if "description" in data:
            ds.description = data["description"]
        if "connect_params" in data:
            ds_type = rt.registry.type(ds.type)
            incoming = ds_type.unmasked(data["connect_params"], ds.connect_params)
            checked = check_connect_params(rt, ds_type, incoming)
            moved = ds_type.masked(checked) != ds_type.masked(ds.connect_params)
            if moved and _sends_a_mask(data["connect_params"]):
                raise InvalidInputError.of(
                    "connectParams",
                    "send the secrets again when you change where or how it connects: a kept"
                    " secret only goes where it went before",
                )
            ds.connect_params = rt.vault.seal(ds_type, checked)
        session.flush()
        return masked(rt, ds)


def _sends_a_mask(params: Mapping[str, Any]) -> bool:
    """Return True when ``params`` hold a ``******`` (a secret to keep) at any depth."""
    return any(
        value == MASK or (isinstance(value, Mapping) and _sends_a_mask(value))
        for value in params.values()
    )


def delete_datasource(rt: Runtime, caller: Caller, ds_id: int) -> None:
    """Delete a data source unless a job references it (409)."""
    with rt.sessions.begin() as session:
        ds = fetch(session, caller, DataSource, ds_id, Privilege.EDIT)
        shares = list(
            session.scalars(select(SharedDataSource).where(SharedDataSource.datasource_id == ds_id))
        )
        _refuse_used(session, ds_id, [ds.project_name, *(s.project_name for s in shares)])
        for row in shares:
            session.delete(row)
        session.delete(ds)


def referenced_datasources(content: list[Any]) -> set[int]:
    """Return the data source ids a job's sub-jobs reference."""
    ids = set()
    for sub in content:
        for side in ("source", "sink"):
            ids.add(int(sub["dataSources"][side]["id"]))
    return ids


def check_unsaved(rt: Runtime, caller: Caller, data: Mapping[str, Any]) -> dict[str, Any]:
    """Have a worker connect with params not saved yet (a data source being created in the
    project ``data["project_name"]``, which the caller may edit); report like
    :func:`check_datasource`. The params travel sealed, as a saved data source's are kept."""
    ds_type = rt.registry.type(data["type"])
    params = rt.vault.seal(ds_type, check_connect_params(rt, ds_type, data["connect_params"]))
    with rt.sessions() as session:
        require_project(session, caller, data["project_name"], Privilege.EDIT)
    result: dict[str, Any] = calls.ask(rt, calls.PROBE, {"type": ds_type.name, "connect": params})
    return result


def check_datasource(rt: Runtime, caller: Caller, ds_id: int) -> dict[str, Any]:
    """Have a worker connect to the data source; report ``{ok, message, elapsed_ms}``."""
    with rt.sessions() as session:
        fetch(session, caller, DataSource, ds_id, Privilege.EDIT)
    result: dict[str, Any] = calls.ask(rt, calls.PROBE, {"datasource_id": ds_id})
    return result


def browse(
    rt: Runtime,
    caller: Caller,
    ds_id: int,
    what: str,
    query: Mapping[str, Any],
) -> dict[str, Any]:
    """Have a worker list a data source's ``databases``, ``tables`` (of ``query["db"]``) or
    ``columns`` (of ``query["table"]``): ``{total, items}``, the page ``current``/``size`` of the
    names containing ``query["name"]``."""
    with rt.sessions() as session:
        _view(session, caller, ds_id)  # a job of a project it is shared with may use it
    args = {
        "datasource_id": ds_id,
        "what": what,
        "db": query.get("db"),
        "table": query.get("table"),
        "name": query.get("name"),
        "offset": (query["current"] - 1) * query["size"],
        "limit": query["size"],
    }
    result: dict[str, Any] = calls.ask(rt, calls.CATALOG, args)
    return result
