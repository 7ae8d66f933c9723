"""Create, read, change, delete and list job definitions; sub-jobs are checked against sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchangis.connectors import options as opts
from exchangis.connectors.base import SQL_WRITE_MODES, Endpoint, Sink, Source
from exchangis.engine.planner import VARIABLE as _VARIABLE
from exchangis.engine.planner import options_of, setting_value
from exchangis.errors import ForbiddenError, InvalidInputError
from exchangis.models import DataSource, Job, usable_in
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, fetch, require_project, visible


def check_endpoint(
    rt: Runtime,
    session: Session,
    project: str,
    side: str,
    ref: Mapping[str, Any],
    options: Mapping[str, Any],
    where: str,
    rendered: bool = False,
) -> Source | Sink:
    """Check one side of a sub-job: the data source exists in the job's project with that
    type, and the options and table suit it.

    ``${...}`` variables are checked with a placeholder; at submit (``rendered``) the rendered
    names are checked as they are. Returns the connector built from them (nothing opened).

    Raises:
        InvalidInputError: naming the field at fault (``options`` for a bad option value).
    """
    ds = session.scalar(select(DataSource).where(DataSource.id == ref["id"], usable_in(project)))
    if ds is None:  # a job uses its own project's data sources and those shared with it
        raise InvalidInputError.of(
            f"{where}.id", f"data source {ref['id']} does not exist in project {project}"
        )
    if ds.type != ref["type"]:
        raise InvalidInputError.of(
            f"{where}.type", f"data source {ref['id']} is {ds.type}, not {ref['type']}"
        )
    kinds = rt.registry.sources if side == "source" else rt.registry.sinks
    connector = kinds.get(ds.type)
    if connector is None:
        raise InvalidInputError.of(f"{where}.type", f"{ds.type} cannot be a {side}")
    try:
        opts.unknown(connector.options, options, f"{ds.type} {side}")
    except InvalidInputError as exc:
        raise InvalidInputError.of(f"{where}.options", exc.message) from None
    endpoint = Endpoint(
        type=ds.type,
        connect=dict(ds.connect_params),
        table=ref["table"] if rendered else _VARIABLE.sub("var", ref["table"]),
        db=ref.get("db"),
        options=dict(options),
    )
    try:
        return connector(endpoint)  # constructors validate names, paths and options without I/O
    except InvalidInputError as exc:
        part = "options" if exc.errors and "options" in exc.errors else "table"
        raise InvalidInputError.of(f"{where}.{part}", exc.message) from None


def _check_capabilities(
    rt: Runtime, sub: Mapping[str, Any], sink_options: Mapping[str, Any], where: str
) -> None:
    """Refuse what a sub-job asks of a connector that does not declare it: a ``writeMode``
    (other bad values fail the option's own check) or channels.

    Raises:
        InvalidInputError: naming the sub-job, the field and the capability.
    """
    title = f"{where} ({sub['subJobName']})"
    sink = rt.registry.sinks.get(sub["dataSources"]["sink"]["type"])
    asked = sink_options.get("writeMode")
    mode = asked.strip().lower() if isinstance(asked, str) else None
    if sink is not None and mode in SQL_WRITE_MODES and mode not in sink.capabilities.write_modes:
        raise InvalidInputError.of(
            f"{where}.dataSources.sink.options",
            f"{title}: {sink.type} sinks lack the capability {mode} (writeModes: "
            f"{', '.join(sink.capabilities.write_modes)})",
        )
    source = rt.registry.sources.get(sub["dataSources"]["source"]["type"])
    for i, item in enumerate(sub.get("settings") or []):
        if item.get("config_key") != "setting.speed.channel" or source is None:
            continue
        if (
            not source.capabilities.channels
            and setting_value(item["config_key"], item.get("config_value")) > 1
        ):
            raise InvalidInputError.of(
                f"{where}.settings[{i}].config_value",
                f"{title}: {source.type} sources lack the capability channels "
                "(setting.speed.channel must be 1)",
            )


def check_content(
    rt: Runtime, session: Session, project: str, content: list[dict[str, Any]]
) -> None:
    """Check each sub-job (wire form) against its data sources (of ``project``) and connectors.

    Raises:
        InvalidInputError: naming the sub-job field at fault.
    """
    names = [sub["subJobName"] for sub in content]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError.of("content", f"duplicate subJobName: {', '.join(duplicates)}")
    for i, sub in enumerate(content):
        params = sub.get("params", {})
        _check_capabilities(rt, sub, options_of(params.get("sinks")), f"content[{i}]")
        for side, option_key in (("source", "sources"), ("sink", "sinks")):
            options = options_of(params.get(option_key))
            connector = check_endpoint(
                rt,
                session,
                project,
                side,
                sub["dataSources"][side],
                options,
                f"content[{i}].dataSources.{side}",
            )
            mapping = (sub.get("transforms") or {}).get("mapping") or []
            if isinstance(connector, Sink) and mapping:
                try:
                    connector.check_columns([m["sink_field_name"] for m in mapping])
                except InvalidInputError as exc:
                    raise InvalidInputError.of(
                        f"content[{i}].dataSources.sink.options", exc.message
                    ) from None


def _dump(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "job_name": job.job_name,
        "job_desc": job.job_desc,
        "project_name": job.project_name,
        "engine_type": job.engine_type,
        "job_type": job.job_type,
        "job_labels": job.job_labels,
        "job_params": job.job_params,
        "execute_user": job.execute_user,
        "content": job.content,
        "create_user": job.create_user,
        "create_time": job.create_time,
        "update_time": job.update_time,
    }


def _check_execute_user(caller: Caller, wanted: str | None, stored: str | None = None) -> None:
    """Only admins name another execute user (a stored one may be kept as it is)."""
    if wanted in (None, caller.name, stored) or caller.admin:
        return
    raise ForbiddenError(
        f"executeUser: only admins may run a job as another user ({wanted})",
        errors={"executeUser": ["only admins may name another user"]},
    )


def create_job(rt: Runtime, caller: Caller, data: Mapping[str, Any]) -> dict[str, Any]:
    """Save a new job definition in a project the caller may edit; return it."""
    content = list(data["content"])
    _check_execute_user(caller, data["execute_user"])
    with rt.sessions.begin() as session:
        require_project(session, caller, data["project_name"], Privilege.EDIT)
        check_content(rt, session, data["project_name"], content)
        job = Job(
            job_name=data["job_name"],
            job_desc=data["job_desc"],
            project_name=data["project_name"],
            engine_type=data["engine_type"],
            job_type=data["job_type"],
            job_labels=data["job_labels"],
            job_params=dict(data["job_params"]),
            execute_user=data["execute_user"],
            content=content,
            create_user=caller.name,
        )
        session.add(job)
        session.flush()
        return _dump(job)


def update_job(rt: Runtime, caller: Caller, job_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """Replace a job definition (edit on its project, and on the new one if it moves)."""
    content = list(data["content"])
    with rt.sessions.begin() as session:
        job = fetch(session, caller, Job, job_id, Privilege.EDIT)
        _check_execute_user(caller, data["execute_user"], job.execute_user)
        if data["project_name"] != job.project_name:
            require_project(session, caller, data["project_name"], Privilege.EDIT)
        check_content(rt, session, data["project_name"], content)
        job.job_name = data["job_name"]
        job.job_desc = data["job_desc"]
        job.project_name = data["project_name"]
        job.engine_type = data["engine_type"]
        job.job_type = data["job_type"]
        job.job_labels = data["job_labels"]
        job.job_params = dict(data["job_params"])
        job.execute_user = data["execute_user"]
        job.content = content
        session.flush()
        return _dump(job)


def get_job(rt: Runtime, caller: Caller, job_id: int) -> dict[str, Any]:
    """Return one job definition."""
    with rt.sessions() as session:
        return _dump(fetch(session, caller, Job, job_id, Privilege.VIEW))


def delete_job(rt: Runtime, caller: Caller, job_id: int) -> None:
    """Delete a job definition (its executions keep their record)."""
    with rt.sessions.begin() as session:
        session.delete(fetch(session, caller, Job, job_id, Privilege.EDIT))


def list_jobs(rt: Runtime, caller: Caller, query: Mapping[str, Any]) -> dict[str, Any]:
    """Return a page of the jobs the caller may view, by project and name substring, newest
    first."""
    stmt = select(Job)
    if query.get("project_name"):
        stmt = stmt.where(Job.project_name == query["project_name"])
    if query.get("job_name"):
        stmt = stmt.where(Job.job_name.contains(query["job_name"], autoescape=True))
    if query.get("job_type"):
        stmt = stmt.where(Job.job_type == query["job_type"])
    with rt.sessions() as session:
        stmt = stmt.where(visible(session, caller, Job.project_name))
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(Job.id.desc())
            .offset((query["current"] - 1) * query["size"])
            .limit(query["size"])
        )
        return {"result": [_dump(job) for job in rows], "total": total}
