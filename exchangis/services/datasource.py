"""Register, read, change, delete and test data sources; secrets never leave masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from exchangis.confine import confine
from exchangis.connectors.base import DataSourceType
from exchangis.engine import calls
from exchangis.errors import MASK, ConflictError, InvalidInputError
from exchangis.models import DataSource, Job
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, fetch, require_project, visible


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


def list_datasources(
    rt: Runtime, caller: Caller, project: str | None = None
) -> list[dict[str, Any]]:
    """Return the data sources (masked) of the projects the caller may view, by id."""
    with rt.sessions() as session:
        stmt = select(DataSource).where(visible(session, caller, DataSource.project_name))
        if project:
            stmt = stmt.where(DataSource.project_name == project)
        return [masked(rt, ds) for ds in session.scalars(stmt.order_by(DataSource.id))]


def get_datasource(rt: Runtime, caller: Caller, ds_id: int) -> dict[str, Any]:
    """Return one data source (masked)."""
    with rt.sessions() as session:
        return masked(rt, fetch(session, caller, DataSource, ds_id, Privilege.VIEW))


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
        users = [  # only the project's own jobs may reference it
            job.job_name
            for job in session.scalars(select(Job).where(Job.project_name == ds.project_name))
            if ds_id in referenced_datasources(job.content)
        ]
        if users:
            raise ConflictError(f"data source {ds_id} is used by job(s): {', '.join(users[:5])}")
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
        fetch(session, caller, DataSource, ds_id, Privilege.VIEW)
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
