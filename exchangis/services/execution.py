"""Submit executions, read their live state (or the durable record), and kill them."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from exchangis import faults
from exchangis.engine import channels, control, finalize, sending
from exchangis.engine.finalize import epoch_ms, execution_progress, task_metrics
from exchangis.engine.planner import execution_timeout, plan_job
from exchangis.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from exchangis.models import Job, JobExecution, TaskExecution, counter
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, fetch, privileges, require_execution
from exchangis.services.job import check_endpoint
from exchangis.state.machine import (
    EXECUTION_FINAL,
    Control,
    ExecutionStatus,
    TaskStatus,
    completed,
)

TASK_ORDER = [s.value for s in TaskStatus]
PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:/+\-]{0,256}\Z")
"""What a run's ``jobParams`` values may be when the caller may not edit the job: dates,
numbers, names (they are rendered into table names and options, the ``where`` SQL included)."""
logger = logging.getLogger(__name__)


def check_plain_values(params: Mapping[str, Any], project: str) -> None:
    """Refuse run parameters that are more than plain values (see PLAIN_VALUE).

    Raises:
        InvalidInputError: naming the parameter.
    """
    for key, value in params.items():
        text = str(value)
        if not PLAIN_VALUE.match(text) or "--" in text or "/*" in text:
            field = f"jobParams.{key}"
            message = (
                f"without edit on project {project}, a run passes only plain values (letters,"
                " digits and _ . : / + -)"
            )
            raise InvalidInputError.of(field, message)


@dataclass(frozen=True)
class Launch:
    """How a schedule starts a run (exchangis/schedule/contexts.py)."""

    eid: str
    """Chosen when the context was made: a second submission of it makes no second run."""
    now: datetime
    """The run's logical time (its fire time, in its plan's zone): what dates render from."""
    window_start: datetime | None
    trigger_type: str
    context_id: int


def submit_execution(
    rt: Runtime,
    job_id: int,
    caller: Caller,
    body: Mapping[str, Any],
    launch: Launch | None = None,
) -> str:
    """Plan the job, record the execution and its tasks, then queue one message per task.

    The caller needs execute on the job's project; the execution runs as the job's execute
    user, else as the caller. A ``launch`` whose execution exists already starts nothing.
    """
    now = launch.now if launch else datetime.now(rt.zone)
    user = caller.name
    with rt.sessions() as session:  # read and check: nothing is written yet
        job = fetch(session, caller, Job, job_id, Privilege.EXECUTE)
        if not job.content:  # a job made by the released UI's dialog, before its content
            raise InvalidInputError.of("content", f"job {job_id} has no sub-jobs to run")
        if Privilege.EDIT not in privileges(session, caller, job.project_name):
            check_plain_values(body.get("job_params") or {}, job.project_name)
        params = {**job.job_params, **body.get("job_params", {})}
        window = launch.window_start if launch else None
        plans = plan_job(job.content, params, now, rt.settings.task_retries, window)
        timeout = execution_timeout(params)
        for plan in plans:  # rendered names and paths are checked again
            for side in ("source", "sink"):
                spec = getattr(plan, side)
                ref = {
                    "id": spec["datasource_id"],
                    "type": spec["type"],
                    "table": spec["table"],
                    "db": spec["db"],
                }
                check_endpoint(
                    rt,
                    session,
                    job.project_name,
                    side,
                    ref,
                    spec["options"],
                    f"content[{plan.position}].dataSources.{side}",
                    rendered=True,
                )
    route = (body.get("labels") or {}).get("route")
    eid = launch.eid if launch else str(uuid.uuid4())
    plans = channels.expand(rt, plans, eid)  # may wait for a worker: no transaction is open
    try:
        live, tasks = _record(rt, eid, job, user, body, params, route, plans, launch)
    except IntegrityError:
        if launch is None:
            raise
        return eid  # this launch was submitted already (by another scheduler): it runs
    if timeout:
        live["timeout_seconds"] = timeout
    # committed: now the live state, then the messages (ids only); dying here leaves a row
    # that a reaper adopts (engine/control.adopt)
    faults.die_at(faults.SUBMIT_COMMITTED)
    try:
        _start(rt, eid, job_id, user, body, live, tasks)
    except RedisError as exc:
        # Some messages may be queued already: without live state their claim drops them.
        _fail_unstarted(rt, eid, f"live state unavailable: {type(exc).__name__}: {exc}")
        raise UnavailableError(
            f"execution {eid} could not start: the live-state store is unavailable"
        ) from None
    return eid


def _record(
    rt: Runtime,
    eid: str,
    job: Job,
    user: str,
    body: Mapping[str, Any],
    params: dict[str, Any],
    route: str | None,
    plans: list[Any],
    launch: Launch | None,
) -> tuple[dict[str, Any], list[tuple[int, str, str, int]]]:
    """Insert the execution (``Inited``) and its tasks; return its live state and its tasks.

    Raises:
        IntegrityError: an execution with this id exists already.
    """
    with rt.sessions.begin() as session:
        if launch is not None and session.get(JobExecution, eid) is not None:
            raise IntegrityError("launched already", None, Exception(eid))
        execution = JobExecution(
            id=eid,
            job_id=job.id,
            job_name=job.job_name,
            project_name=job.project_name,
            engine_type=job.engine_type,
            status=ExecutionStatus.INITED,
            permit_partial_failures=bool(body.get("permit_partial_failures")),
            job_params=params,
            labels=dict(body.get("labels") or {}),
            queue=rt.dispatcher.queue_for(route),
            create_user=user,
            execute_user=job.execute_user or user,
            trigger_type=launch.trigger_type if launch else "MANUAL",
            context_id=launch.context_id if launch else None,
        )
        execution.tasks = [
            TaskExecution(
                name=p.name,
                position=p.position,
                status=TaskStatus.INITED,
                plan=p.to_json(),
                celery_id=str(uuid.uuid4()),
            )
            for p in plans
        ]
        session.add(execution)
        session.flush()
        tasks = [
            (t.id, t.name, t.celery_id, int(t.plan["settings"].get("retry_times") or 0) + 1)
            for t in execution.tasks
        ]
        live: dict[str, Any] = {
            "job_id": job.id,
            "job_name": job.job_name,
            "project_name": job.project_name,
            "engine_type": job.engine_type,
            "execute_user": execution.execute_user,
            "create_user": user,
            "queue": execution.queue,
            "permit_partial_failures": "1" if execution.permit_partial_failures else "0",
        }
    return live, tasks


def _start(
    rt: Runtime,
    eid: str,
    job_id: int,
    user: str,
    body: Mapping[str, Any],
    live: dict[str, Any],
    tasks: list[tuple[int, str, str, int]],
) -> None:
    """Write the live state, then send one message per task (a task not queued is Failed)."""
    created = rt.store.create_execution(
        eid,
        live,
        [
            {
                "id": tid,
                "name": name,
                "celery_id": cid,
                "max_attempts": attempts,
                "retry_times": attempts - 1,
            }
            for tid, name, cid, attempts in tasks
        ],
    )
    if not created:  # a reaper adopted it first (this process was that slow): it runs
        return
    if live.get("timeout_seconds"):
        rt.store.set_deadline(eid, float(live["timeout_seconds"]))
    log = rt.job_log(eid)
    log.info(
        f"Execution {eid} of job {live['job_name']} (id {job_id}) submitted by {user}: "
        f"{len(tasks)} task(s), permitPartialFailures="
        f"{str(bool(body.get('permit_partial_failures'))).lower()}, queue={live['queue']}"
    )
    rt.store.transition_execution(eid, ExecutionStatus.SCHEDULED, sources={ExecutionStatus.INITED})
    finalize.record_status(rt, eid, ExecutionStatus.SCHEDULED)
    for tid, name, _, _ in tasks:
        if sending.send(rt, eid, tid, {TaskStatus.INITED}):
            log.info(f"Task {name} (id {tid}) is Scheduled")


def _fail_unstarted(rt: Runtime, eid: str, error: str) -> None:
    """Record an execution that could not start as Failed, and drop its partial live state
    (unless a reaper adopted it meanwhile: then it runs)."""
    with rt.sessions.begin() as session:
        row = session.get(JobExecution, eid)
        if row is None or row.status != ExecutionStatus.INITED:
            return
        row.status = ExecutionStatus.FAILED
        row.error = error
        counts: list[counter.Increment] = [
            ("exchangis_executions_total", {"status": row.status}, 1.0)
        ]
        for task in row.tasks:
            counts.append(("exchangis_tasks_total", {"status": TaskStatus.FAILED}, 1.0))
            task.status = TaskStatus.FAILED
            task.error = error
            task.counted = True
        counter.add(session, counts)
        task_ids = [task.id for task in row.tasks]
    try:  # a message already queued then finds no task to claim
        rt.store.drop_execution(eid, task_ids, logs=False)
    except RedisError:
        logger.warning("could not drop the live state of execution=%s", eid)


# -- reads: live state while it exists, the durable record after ---------------------------------
def _sql_execution(rt: Runtime, eid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with rt.sessions() as session:
        row = session.get(JobExecution, eid)
        if row is None:
            raise NotFoundError(f"job execution {eid} does not exist")

        execution = {
            "status": row.status,
            "progress": str(row.progress),
            "execute_user": row.execute_user,
            "engine_type": row.engine_type,
            "job_name": row.job_name,
            "create_time": epoch_ms(row.create_time),
            "launch_time": epoch_ms(row.launch_time),
            "last_update_time": epoch_ms(row.last_update_time),
            "persisted": "1" if row.status in EXECUTION_FINAL else "",
        }
        tasks = [
            {
                "id": str(t.id),
                "name": t.name,
                "status": t.status,
                "progress": str(t.progress),
                "celery_id": t.celery_id,
                "worker_info": t.worker_info or "",
                "create_time": epoch_ms(t.create_time),
                "launch_time": epoch_ms(t.launch_time),
                "last_update_time": epoch_ms(t.last_update_time),
                "error": t.error or "",
                **{k: str(v) for k, v in (t.metrics or {}).items()},
            }
            for t in row.tasks
        ]
    return execution, tasks


def load_execution(rt: Runtime, eid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the execution and its tasks, from Redis while live, else from SQL.

    Raises:
        NotFoundError: the id names no execution.
    """
    if len(eid) > 64:
        raise NotFoundError(f"job execution {eid[:64]}... does not exist")
    live = rt.store.execution(eid)
    if live is not None:
        return live, rt.store.tasks(eid)
    return _sql_execution(rt, eid)


def _progress(execution: Mapping[str, Any], tasks: list[dict[str, Any]]) -> float:
    if execution.get("persisted"):
        return float(execution.get("progress") or 0)
    return execution_progress(tasks)


def _viewed(rt: Runtime, caller: Caller, eid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return an execution the caller may view, and its tasks (404 otherwise)."""
    require_execution(rt, caller, eid, Privilege.VIEW)
    return load_execution(rt, eid)


def get_status(rt: Runtime, caller: Caller, eid: str) -> dict[str, Any]:
    """E2: status, progress, and whether the execution and all its tasks are completed."""
    execution, tasks = _viewed(rt, caller, eid)
    return {
        "status": execution["status"],
        "progress": _progress(execution, tasks),
        "all_task_status": completed(execution, tasks),
    }


def list_tasks(rt: Runtime, caller: Caller, eid: str) -> dict[str, Any]:
    """E3: every task of the execution."""
    execution, tasks = _viewed(rt, caller, eid)
    return {
        "tasks": [
            {
                "task_id": int(t["id"]),
                "name": t.get("name", ""),
                "status": t["status"],
                "create_time": t.get("create_time"),
                "launch_time": t.get("launch_time"),
                "last_update_time": t.get("last_update_time"),
                "engine_type": execution.get("engine_type", ""),
                "linkis_job_id": t.get("celery_id") or None,
                "linkis_job_info": t.get("worker_info") or None,
                "execute_user": execution.get("execute_user", ""),
            }
            for t in tasks
        ]
    }


def _task_progress(t: Mapping[str, Any]) -> dict[str, Any]:
    progress = 1.0 if t["status"] == TaskStatus.SUCCESS else float(t.get("progress") or 0)
    return {
        "task_id": int(t["id"]),
        "name": t.get("name", ""),
        "status": t["status"],
        "progress": progress,
    }


def get_progress(rt: Runtime, caller: Caller, eid: str) -> dict[str, Any]:
    """E4: the execution's status and progress, with its tasks grouped by status."""
    execution, tasks = _viewed(rt, caller, eid)
    groups: dict[str, list[dict[str, Any]]] = {}
    for task in sorted(tasks, key=lambda t: TASK_ORDER.index(t["status"])):
        groups.setdefault(task["status"], []).append(_task_progress(task))
    return {
        "job": {
            "status": execution["status"],
            "progress": _progress(execution, tasks),
            "total": len(tasks),
            "tasks": groups,
        }
    }


def all_task_status(rt: Runtime, caller: Caller, eid: str) -> dict[str, Any]:
    """E9: every task's status, and whether they are all completed."""
    execution, tasks = _viewed(rt, caller, eid)
    return {
        "job_execution_id": eid,
        "all_status": [_task_progress(t) for t in tasks],
        "completed": completed(execution, tasks),
    }


def kill_execution(rt: Runtime, caller: Caller, eid: str) -> dict[str, Any]:
    """E6: kill an execution of a project the caller may execute in (:func:`cancel`)."""
    require_execution(rt, caller, eid, Privilege.EXECUTE)
    return cancel(rt, eid, caller.name)


def cancel(rt: Runtime, eid: str, user: str) -> dict[str, Any]:
    """Cancel queued tasks now, stop running ones at their next batch; → Cancelled. Works on
    any unfinished execution: the kill is written to SQL first, and one whose live state is
    missing is adopted (it then ends Cancelled at once).

    Raises:
        ConflictError: the execution is completed already.
    """
    execution, _ = load_execution(rt, eid)
    if execution["status"] in EXECUTION_FINAL:
        raise ConflictError(f"job execution {eid} is {execution['status']} already")
    if not finalize.record_control(rt, eid, Control.KILL):
        raise ConflictError(f"job execution {eid} is completed already")
    reason = f"Kill requested by {user}"
    if rt.store.execution(eid) is None:
        control.adopt(rt, eid, reason)  # or a reaper is adopting it: it reads the kill too
    else:
        finalize.stop(rt, eid, Control.KILL, reason)
    return {"job_execution_id": eid, "status": ExecutionStatus.CANCELLED.value}


def _task_of(rt: Runtime, caller: Caller, tid: int, eid: str) -> dict[str, Any]:
    """Return a task of ``eid`` (live or durable); 404 when it belongs to another execution."""
    _, tasks = _viewed(rt, caller, eid)
    task = next((t for t in tasks if t["id"] == str(tid)), None)
    if task is None:
        raise NotFoundError(f"task {tid} is not a task of job execution {eid}")
    return task


def get_task_output(rt: Runtime, caller: Caller, tid: int, eid: str) -> dict[str, Any]:
    """A task's result summary: records, sink location (no credentials), error, attempts."""
    task = _task_of(rt, caller, tid, eid)
    m = task_metrics(task)
    with rt.sessions() as session:
        row = session.get(TaskExecution, tid)
        sink = dict(row.plan["sink"]) if row is not None else {}
    location = " ".join(
        part
        for part in (
            sink.get("type", "").lower(),
            f"datasource={sink.get('datasource_id')}",
            f"db={sink['db']}" if sink.get("db") else "",
            f"table={sink.get('table')}",
        )
        if part
    )
    return {
        "task_id": tid,
        "name": task.get("name", ""),
        "status": task["status"],
        "attempts": int(task.get("attempts") or 0),
        "read_records": m["read_records"],
        "written_records": m["written_records"],
        "error_records": m["error_records"],
        "bytes": m["bytes"],
        "elapsed_ms": m["elapsed_ms"],
        "sink": location,
        "error": task.get("error") or None,
    }


def get_task_metrics(rt: Runtime, caller: Caller, tid: int, eid: str) -> dict[str, Any]:
    """T1: a task's metrics (zeros before it runs); the task must belong to ``eid``."""
    task = _task_of(rt, caller, tid, eid)
    m = task_metrics(task)
    return {
        "task": {
            "task_id": tid,
            "name": task.get("name", ""),
            "status": task["status"],
            "metrics": {
                "resource_used": {"cpu": m["cpu"], "memory": m["memory_mb"]},
                "traffic": {"source": m["source_type"], "sink": m["sink_type"], "flow": m["flow"]},
                "indicator": {
                    "exchanged_records": m["written_records"],
                    "error_records": m["error_records"],
                    "ignored_records": m["ignored_records"],
                },
                "bytes": m["bytes"],
                "read_records": m["read_records"],
                "elapsed_ms": m["elapsed_ms"],
            },
        }
    }


def submit_batch(rt: Runtime, caller: Caller, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Submit one execution per job id; a job that cannot be submitted says why."""
    results = []
    for job_id in dict.fromkeys(body["job_ids"]):
        one = {
            "permit_partial_failures": body.get("permit_partial_failures"),
            "labels": body.get("labels") or {},
        }
        try:
            eid: str | None = submit_execution(rt, job_id, caller, one)
            message = "submitted"
        except (NotFoundError, ForbiddenError, InvalidInputError, UnavailableError) as exc:
            eid, message = None, exc.message
        results.append({"job_id": job_id, "job_execution_id": eid, "message": message})
    return results
