"""Pause, resume and restart an execution; adopt one whose live state is missing.

Pause stops queued tasks where they are and running ones at their next batch (each rolls back).
Resume sends the paused tasks again; on a completed execution it starts a new run of the tasks
that did not succeed (restart: of every task), with a fresh retry budget, in the same live state,
logs and records: the execution and those tasks go back to Inited, the others keep their result.
Adoption rebuilds the live state of an unfinished execution from SQL (the API died before
writing it, or Redis lost it) and carries on as SQL's control request says.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update

from exchangis.engine import finalize, sending
from exchangis.engine.archive import execution_owner, task_owner
from exchangis.engine.finalize import epoch_ms
from exchangis.engine.planner import execution_timeout
from exchangis.errors import ConflictError, NotFoundError
from exchangis.models import JobExecution, LogLine, TaskExecution
from exchangis.runtime import Runtime, durable
from exchangis.state.logs import LiveLog, LogWriter
from exchangis.state.machine import (
    EXECUTION_FINAL,
    STOPPING,
    TASK_FINAL,
    Control,
    ExecutionStatus,
    TaskStatus,
    completed,
    control_of,
)

QUEUED = (TaskStatus.INITED, TaskStatus.SCHEDULED, TaskStatus.WAIT_FOR_RETRY)
PAUSABLE = frozenset({ExecutionStatus.SCHEDULED, ExecutionStatus.RUNNING})


def pause(rt: Runtime, eid: str, user: str) -> str:
    """Pause a Scheduled or Running execution; return its new status.

    Raises:
        ConflictError: naming the state that does not allow it.
    """
    execution = rt.store.execution(eid) or {}
    if execution.get("status") not in PAUSABLE:
        raise ConflictError(
            f"job execution {eid} is {execution.get('status') or 'unknown'}: only a "
            "Scheduled or Running execution can be paused"
        )
    finalize.record_control(rt, eid, Control.PAUSE)  # SQL first: a rebuilt live state obeys it
    move = rt.store.transition_execution(eid, ExecutionStatus.PAUSED, sources=PAUSABLE)
    if not move.moved:  # it ended, or another pause won: SQL's request holds either way
        raise ConflictError(
            f"job execution {eid} is {move.previous or 'unknown'}: only a "
            "Scheduled or Running execution can be paused"
        )
    finalize.record_status(rt, eid, ExecutionStatus.PAUSED)
    rt.store.set_control(eid, Control.PAUSE)
    rt.job_log(eid).warn(
        f"Pause requested by {user}: queued tasks stay back, running ones "
        "stop at their next batch and roll back"
    )
    revoke = []
    for task in rt.store.tasks(eid):
        held = rt.store.transition_task(int(task["id"]), TaskStatus.PAUSED, sources=QUEUED)
        if held.moved:
            rt.store.drop_retry(task["id"])
            revoke.append(task.get("celery_id", ""))
            rt.job_log(eid).info(f"Task {task.get('name')} (id {task['id']}) is Paused")
    rt.dispatcher.revoke([c for c in revoke if c])
    return ExecutionStatus.PAUSED.value


def resume(rt: Runtime, eid: str, user: str) -> str:
    """Resume a Paused execution, or re-run the tasks of a completed one that did not succeed.

    Raises:
        ConflictError: the execution is running, or nothing is left to resume.
    """
    execution = rt.store.execution(eid)
    if execution is not None and execution["status"] == ExecutionStatus.PAUSED:
        return _resume_paused(rt, eid, user)
    status, tasks = _completed(rt, eid, "resumed")
    rerun = [tid for tid, task_status in tasks if task_status != TaskStatus.SUCCESS]
    if not rerun:
        raise ConflictError(
            f"job execution {eid} is {status}: every task succeeded, nothing "
            "to resume (restart runs them all again)"
        )
    return reopen(rt, eid, rerun, f"Resume requested by {user}")


def restart(rt: Runtime, eid: str, user: str) -> str:
    """Run every task of a completed execution again.

    Raises:
        ConflictError: the execution is not completed.
    """
    _, tasks = _completed(rt, eid, "restarted")
    return reopen(rt, eid, [tid for tid, _ in tasks], f"Restart requested by {user}")


def _completed(rt: Runtime, eid: str, verb: str) -> tuple[str, list[tuple[int, str]]]:
    """Return the status and (task id, status) list of a completed execution."""
    execution = rt.store.execution(eid)
    with rt.sessions() as session:
        row = session.get(JobExecution, eid[:64])
        if row is None:
            raise NotFoundError(f"job execution {eid[:64]} does not exist")
        if execution is None:
            status, tasks = row.status, [(t.id, t.status) for t in row.tasks]
        else:
            status = execution["status"]
            tasks = [(int(t["id"]), t["status"]) for t in rt.store.tasks(eid)]
    state = execution or {"status": status, "persisted": "1"}
    if not completed(state, [{"status": s} for _, s in tasks]):
        raise ConflictError(
            f"job execution {eid} is {status}: only a Paused or completed execution can be {verb}"
        )
    return status, tasks


def _resume_paused(rt: Runtime, eid: str, user: str) -> str:
    finalize.record_control(rt, eid, Control.NONE)  # SQL first, as for a pause
    move = rt.store.transition_execution(
        eid, ExecutionStatus.SCHEDULED, sources={ExecutionStatus.PAUSED}
    )
    if not move.moved:
        raise ConflictError(f"job execution {eid} is {move.previous}: it cannot be resumed")
    finalize.record_status(rt, eid, ExecutionStatus.SCHEDULED)
    rt.store.set_control(eid, Control.NONE)
    rt.job_log(eid).info(f"Resume requested by {user}")
    for task in rt.store.tasks(eid):
        if task["status"] == TaskStatus.PAUSED:
            send_paused(rt, eid, task)
    # a task still rolling back sends itself once Paused (send_if_resumed), and a reaper pass
    # sends any Paused task of an execution that is not paused
    if finalize.all_final(rt.store.tasks(eid)):
        finalize.complete(rt, eid)  # everything had finished while it was paused
    return ExecutionStatus.SCHEDULED.value


def send_paused(rt: Runtime, eid: str, task: dict[str, str]) -> bool:
    """Send a Paused task again with a fresh retry budget (a pause is not a failure)."""
    attempts = int(task.get("attempts") or 0)
    budget = attempts + int(task.get("retry_times") or 0) + 1
    tid = int(task["id"])
    if not sending.send(rt, eid, tid, {TaskStatus.PAUSED}, fields={"max_attempts": budget}):
        return False
    rt.job_log(eid).info(f"Task {task.get('name')} (id {tid}) is Scheduled again")
    return True


def resumed(execution: dict[str, str]) -> bool:
    """Return True when an execution's Paused tasks should run: it is live, not paused and not
    told to stop."""
    status = execution.get("status")
    return (
        status not in EXECUTION_FINAL
        and status != ExecutionStatus.PAUSED
        and control_of(execution.get("control")) is Control.NONE
    )


def send_if_resumed(rt: Runtime, eid: str, tid: int) -> bool:
    """Send a task that has just become Paused again when its execution was resumed meanwhile
    (the resume found it still running and left it to this call)."""
    task = rt.store.task(tid) or {}
    if task.get("status") != TaskStatus.PAUSED or not resumed(rt.store.execution(eid) or {}):
        return False
    return send_paused(rt, eid, {"id": str(tid), **task})


def reopen(rt: Runtime, eid: str, rerun: list[int], reason: str) -> str:
    """Start a new run of a completed execution for the tasks ``rerun``; return its status."""
    # a worker dropping the last run's work stages holds it briefly (engine/stages.py)
    with rt.store.locked(f"reopen:{eid}", 30, wait_seconds=10) as held:
        if not held:
            raise ConflictError(f"job execution {eid} is being resumed or restarted already")
        _completed(rt, eid, "resumed or restarted")  # again: one may have just been reopened
        _next_run(rt, rerun)
        fields, tasks = _live_state_for(rt, eid, set(rerun))
        rt.store.create_execution(eid, fields, tasks, replace=True)
        if fields.get("timeout_seconds"):  # a new run gets the whole time again
            rt.store.set_deadline(eid, float(fields["timeout_seconds"]))
        _restore_log(rt, rt.keys.execution_log(eid), execution_owner(eid), rt.job_log(eid))
        for task in tasks:
            _restore_log(
                rt,
                rt.keys.task_log(task["id"]),
                task_owner(task["id"]),
                rt.task_log(task["id"], eid),
            )
        rt.job_log(eid).info(
            f"{reason}: a new run of {len(rerun)} of {len(tasks)} task(s) "
            f"(the others keep their result)"
        )
        finalize.record_status(rt, eid, ExecutionStatus.SCHEDULED, reopened=True)
        _start(rt, eid, tasks, set(rerun))
    return ExecutionStatus.SCHEDULED.value


@durable
def _next_run(rt: Runtime, tids: list[int]) -> None:
    """Count a new run of tasks whose rows a user asked to move again: it gets a new entry in
    its sink's ledger (an adopted execution keeps its runs: their ledger entries say what is
    in already). Their rows are unfinished again (an adoption runs them) and not counted (the
    run's end is counted anew)."""
    with rt.sessions.begin() as session:
        session.execute(
            update(TaskExecution)
            .where(TaskExecution.id.in_(tids))
            .values(run=TaskExecution.run + 1, status=TaskStatus.INITED.value, counted=False)
        )


def _start(rt: Runtime, eid: str, tasks: list[dict[str, Any]], rerun: set[int]) -> None:
    """Move a fresh live state's execution to Scheduled and send the tasks ``rerun``."""
    rt.store.transition_execution(eid, ExecutionStatus.SCHEDULED, sources={ExecutionStatus.INITED})
    for task in tasks:
        if task["id"] in rerun and sending.send(rt, eid, task["id"], {TaskStatus.INITED}):
            rt.job_log(eid).info(f"Task {task['name']} (id {task['id']}) is Scheduled")


def adopt(rt: Runtime, eid: str, why: str) -> bool:
    """Rebuild the live state of an unfinished execution that Redis does not hold, and carry
    on: killed or timed out (SQL's control) → its unfinished tasks are cancelled and it ends;
    paused → it waits, Paused; else its unfinished tasks run (again: their sinks' ledgers keep
    an attempt that had committed from being written twice). True when this call rebuilt it
    (another adopter, or the API that submitted it, may have been first)."""
    with rt.store.locked(f"adopt:{eid}", 60) as held:
        if not held:
            return False
        with rt.sessions() as session:
            row = session.get(JobExecution, eid)
            if row is None or row.status in EXECUTION_FINAL:
                return False
            control = control_of(row.control)
            rerun = {t.id for t in row.tasks if t.status not in TASK_FINAL}
        fields, tasks = _live_state_for(rt, eid, rerun)
        if control is Control.PAUSE:
            fields.update(status=ExecutionStatus.PAUSED, control=control)
            for task in tasks:
                if task["id"] in rerun:
                    task["status"] = TaskStatus.PAUSED
        if not rt.store.create_execution(eid, fields, tasks):
            return False
        if fields.get("timeout_seconds") and control not in STOPPING:
            rt.store.set_deadline(eid, float(fields["timeout_seconds"]))
        rt.job_log(eid).warn(
            f"{why}: the live state was rebuilt from the durable record; "
            + (
                f"{len(rerun)} unfinished task(s) will {ADOPTED[control]}"
                if rerun
                else "every task had ended"
            )
        )
    if control in STOPPING:
        finalize.cancel_remaining(rt, eid, control)
    elif control is not Control.PAUSE:
        finalize.record_status(rt, eid, ExecutionStatus.SCHEDULED)
        _start(rt, eid, tasks, rerun)
    if not rerun:
        finalize.complete(rt, eid)
    return True


ADOPTED = {
    Control.NONE: "run (again)",
    Control.PAUSE: "wait, Paused, for a resume",
    Control.KILL: "be cancelled (it was killed)",
    Control.TIMEOUT: "be cancelled (it timed out)",
}
"""What an adopted execution's unfinished tasks do, by its control request (the job log says)."""


def _live_state_for(
    rt: Runtime, eid: str, rerun: set[int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the live execution and task fields of a new run of the tasks ``rerun``, from the
    durable record; the other tasks keep their final result."""
    with rt.sessions() as session:
        row = session.get(JobExecution, eid)
        if row is None:
            raise NotFoundError(f"job execution {eid} does not exist")
        kept = [t for t in row.tasks if t.id not in rerun]
        fields: dict[str, Any] = {
            "job_id": row.job_id or "",
            "job_name": row.job_name,
            "project_name": row.project_name,
            "engine_type": row.engine_type,
            "execute_user": row.execute_user,
            "create_user": row.create_user,
            "queue": row.queue,
            "permit_partial_failures": "1" if row.permit_partial_failures else "0",
            "create_time": epoch_ms(row.create_time),
            "timeout_seconds": execution_timeout(row.job_params) or "",
            "n_final": len(kept),
            "n_logged": len(kept),
        }
        for task in kept:
            count = f"n_{task.status}"
            fields[count] = fields.get(count, 0) + 1
        tasks = []
        for task in row.tasks:
            retry_times = int(task.plan.get("settings", {}).get("retry_times") or 0)
            state: dict[str, Any] = {
                "id": task.id,
                "name": task.name,
                "attempts": task.attempts,
                "retry_times": retry_times,
                "worker_info": task.worker_info or "",
                "create_time": epoch_ms(task.create_time),
            }
            if task.id in rerun:
                state.update(
                    celery_id=str(uuid.uuid4()), max_attempts=task.attempts + retry_times + 1
                )
            else:
                state.update(
                    status=task.status,
                    progress=1.0 if task.status == TaskStatus.SUCCESS else task.progress,
                    error=task.error or "",
                    celery_id=task.celery_id,
                    launch_time=epoch_ms(task.launch_time),
                    last_update_time=epoch_ms(task.last_update_time),
                    **(task.metrics or {}),
                )
            tasks.append(state)
    return fields, tasks


def _restore_log(rt: Runtime, key: str, owner: str, writer: LogWriter) -> None:
    """Reopen a log; when its live copy expired, bring its lines back from the archive."""
    live = LiveLog(rt.redis, key)
    live.reopen()
    if live.last_line():
        return
    with rt.sessions() as session:
        lines = session.scalars(
            select(LogLine.text).where(LogLine.owner == owner).order_by(LogLine.line_no)
        ).all()
    for start in range(0, len(lines), 5000):
        writer.append_lines(list(lines[start : start + 5000]))
