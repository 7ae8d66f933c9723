"""Task outcome → execution status; cancel what must be cancelled; write the durable record."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, update

from exchangis.db import changed
from exchangis.engine import stages
from exchangis.engine.archive import archive_logs
from exchangis.engine.progress import shown
from exchangis.models import JobExecution, TaskExecution, counter
from exchangis.runtime import Runtime, durable
from exchangis.state.machine import (
    EXECUTION_FINAL,
    TASK_FAILURES,
    TASK_FINAL,
    Control,
    ExecutionStatus,
    TaskStatus,
    control_of,
)

logger = logging.getLogger(__name__)

CANCELLABLE = frozenset(
    {TaskStatus.INITED, TaskStatus.SCHEDULED, TaskStatus.WAIT_FOR_RETRY, TaskStatus.PAUSED}
)
NOT_FINAL = frozenset(ExecutionStatus) - EXECUTION_FINAL
EARLIER = {
    ExecutionStatus.SCHEDULED: (ExecutionStatus.INITED, ExecutionStatus.PAUSED),
    ExecutionStatus.RUNNING: (ExecutionStatus.INITED, ExecutionStatus.SCHEDULED),
    ExecutionStatus.PAUSED: (
        ExecutionStatus.INITED,
        ExecutionStatus.SCHEDULED,
        ExecutionStatus.RUNNING,
    ),
}
"""The SQL statuses a recorded status may replace (the final state is written by persist)."""


def task_finished(rt: Runtime, eid: str, tid: int, status: TaskStatus, error: str | None) -> None:
    """React to one task reaching a final status (called once per final move, after it)."""
    persist_task(rt, tid)
    log = rt.job_log(eid)
    name = (rt.store.task(tid) or {}).get("name", str(tid))
    line = f"Task {name} (id {tid}) is {status}" + (f": {error}" if error else "")
    if status in TASK_FAILURES:
        log.error(line)
    else:
        log.info(line)
    execution = rt.store.execution(eid) or {}
    permit = execution.get("permit_partial_failures") == "1"
    if status in TASK_FAILURES and not permit:
        first = rt.store.transition_execution(
            eid,
            ExecutionStatus.FAILED,
            sources=NOT_FINAL,
            fields={"error": f"task {name} is {status}"},
        )
        if first.moved:
            log.error(
                f"Execution failed: task {name} is {status} and partial failures are not "
                "permitted; cancelling the other tasks"
            )
            cancel_remaining(rt, eid, Control.KILL)
    _final_logged(rt, eid)


def _final_logged(rt: Runtime, eid: str) -> None:
    """Count a final task whose job-log line is written; the last one completes the execution.

    Counting after the log line (not at the move) keeps every task's line before the summary.
    """
    logged, total = rt.store.count_final_logged(eid)
    if logged >= total > 0:
        complete(rt, eid)


STOPPED = {Control.KILL: ExecutionStatus.CANCELLED, Control.TIMEOUT: ExecutionStatus.TIMEOUT}
"""The execution status a kill or a timeout ends an execution in."""


def stop(rt: Runtime, eid: str, control: Control, reason: str) -> bool:
    """End a live execution by a kill or a timeout (its SQL ``control`` is written already):
    the status now, queued tasks cancelled, running ones told to stop. Safe to call again (the
    reaper does while a stop is unfinished). True when this call moved the status."""
    move = rt.store.transition_execution(
        eid, STOPPED[control], sources=NOT_FINAL, fields={"error": reason}
    )
    if move.moved:
        rt.job_log(eid).warn(
            f"{reason}: cancelling queued tasks, stopping running ones at their next batch "
            "(each rolls back)"
        )
    live = rt.store.execution(eid) or {}
    if move.moved or control_of(live.get("control")) is control:
        cancel_remaining(rt, eid, control)  # else another stop (or the end) came first
    return move.moved


def cancel_remaining(rt: Runtime, eid: str, control: Control) -> None:
    """Stop every task that is not final: flag running ones, cancel queued ones now. Safe to
    call again: the flag (and the time the kill grace counts from) is set once."""
    if control_of((rt.store.execution(eid) or {}).get("control")) is not control:
        rt.store.set_control(eid, control)
    revoke: list[str] = []
    for task in rt.store.tasks(eid):
        if task.get("status") not in CANCELLABLE:
            continue
        tid = int(task["id"])
        move = rt.store.transition_task(tid, TaskStatus.CANCELLED, sources=CANCELLABLE)
        if not move.moved:
            continue
        if task.get("celery_id"):
            revoke.append(task["celery_id"])
        persist_task(rt, tid)
        rt.job_log(eid).warn(f"Task {task.get('name')} (id {tid}) is Cancelled before it ran")
        _final_logged(rt, eid)
    try:
        rt.dispatcher.revoke(revoke)
    except Exception:  # the claim refuses cancelled tasks anyway
        logger.warning("revoke failed execution=%s", eid, exc_info=True)


def decide(tasks: list[dict[str, str]], permit: bool, control: str) -> ExecutionStatus:
    """Return the final execution status for tasks that are all final."""
    statuses = [TaskStatus(t["status"]) for t in tasks]
    stopped = STOPPED.get(control_of(control))
    if stopped is not None:
        return stopped
    if all(s is TaskStatus.SUCCESS for s in statuses):
        return ExecutionStatus.SUCCESS
    if permit and any(s is TaskStatus.SUCCESS for s in statuses):
        return ExecutionStatus.PARTIAL_SUCCESS
    return ExecutionStatus.FAILED


def execution_progress(tasks: list[dict[str, str]]) -> float:
    """Return the mean task progress as published (:func:`~exchangis.engine.progress.shown`:
    below 1, printing short as a percentage); exactly 1.0 only when every task succeeded."""
    if not tasks:
        return 0.0
    if all(t.get("status") == TaskStatus.SUCCESS for t in tasks):
        return 1.0
    values = [
        1.0 if t.get("status") == TaskStatus.SUCCESS else float(t.get("progress") or 0)
        for t in tasks
    ]
    return shown(sum(values) / len(values))


def complete(rt: Runtime, eid: str) -> None:
    """Every task is final: settle the status, log the summary, write the record and archive.

    Safe to call again (the reaper does, for records whose SQL write failed).
    """
    execution = rt.store.execution(eid)
    if execution is None:
        return
    tasks = rt.store.tasks(eid)
    if not all_final(tasks):
        return
    if execution.get("status") not in EXECUTION_FINAL:
        status = decide(
            tasks, execution.get("permit_partial_failures") == "1", execution.get("control", "")
        )
        rt.store.transition_execution(eid, status, sources=NOT_FINAL)
        execution = rt.store.execution(eid) or execution
        if execution.get("status") not in EXECUTION_FINAL:
            return
    if execution.get("persisted"):
        return
    rt.store.drop_deadline(eid)
    progress = execution_progress(tasks)
    rt.store.update_execution(eid, {"progress": progress})
    rt.store.mark_unpersisted(eid)
    with rt.store.locked(f"persist:{eid}", 120) as held:
        if not held:
            return
        if rt.store.first_time(eid, "summarized"):  # the job log's last line, written once
            counts: dict[str, int] = {}
            for task in tasks:
                counts[task["status"]] = counts.get(task["status"], 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            rt.job_log(eid).info(f"Execution {eid} finished {execution['status']}: {summary}")
        plans = persist(rt, eid, execution, tasks, progress)
        rt.durable(lambda: archive_logs(rt, eid, [int(t["id"]) for t in tasks]))
        stages.request_cleanup(rt, eid, plans, published=False)  # a resume makes new ones
        rt.store.mark_persisted(eid)
    rt.store.expire_execution(eid, rt.settings.live_ttl_seconds)


def execute_node(tasks: list[dict[str, str]]) -> str:
    """Return the hosts the tasks ran on, comma-separated and sorted ('' before any ran)."""
    hosts = {json.loads(t["worker_info"]).get("host") for t in tasks if t.get("worker_info")}
    return ",".join(sorted(h for h in hosts if h))


def last_update_ms(execution: dict[str, str], tasks: list[dict[str, str]]) -> int:
    """Return the store time (ms) of an execution's newest change: a status move of it or of a
    task, or a task's progress."""
    times = [execution.get("last_update_time")]
    times += [t.get(k) for t in tasks for k in ("last_update_time", "progress_time")]
    return max((int(x) for x in times if x), default=0)


def quiet_since(tasks: list[dict[str, str]]) -> int:
    """Return the store time (ms) of the newest task move: the moment the last one ended."""
    return max((int(t.get("last_update_time") or 0) for t in tasks), default=0)


def all_final(tasks: list[dict[str, str]]) -> bool:
    """Return True when the execution has tasks and every one is final."""
    return bool(tasks) and all(t.get("status") in TASK_FINAL for t in tasks)


def _time(ms: str | None) -> datetime | None:
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).replace(tzinfo=None)


def epoch_ms(value: datetime | None) -> int | str:
    """Return a stored (naive UTC) time as epoch ms, as the live state keeps times ('' if None)."""
    return int(value.replace(tzinfo=UTC).timestamp() * 1000) if value else ""


def task_metrics(task: dict[str, str]) -> dict[str, Any]:
    """Return the metric fields of a task hash as numbers (zeros when absent)."""

    def num(key: str) -> float:
        return float(task.get(key) or 0)

    return {
        "read_records": int(num("read_records")),
        "written_records": int(num("written_records")),
        "error_records": int(num("error_records")),
        "ignored_records": int(num("ignored_records")),
        "bytes": int(num("bytes")),
        "flow": num("flow"),
        "cpu": num("cpu"),
        "memory_mb": num("memory_mb"),
        "elapsed_ms": int(num("elapsed_ms")),
        "source_type": task.get("source_type", ""),
        "sink_type": task.get("sink_type", ""),
    }


@durable
def record_control(rt: Runtime, eid: str, control: Control) -> bool:
    """Write a kill, pause or timeout request (or none: a resume) to an unfinished execution's
    SQL row, before the live state hears of it; False when the row is final or missing, or
    when it was killed or timed out already (that request is never taken back)."""
    stopped = [str(c) for c in STOPPED]
    with rt.sessions.begin() as session:
        done = session.execute(
            update(JobExecution)
            .where(
                JobExecution.id == eid,
                JobExecution.status.in_([str(x) for x in NOT_FINAL]),
                or_(JobExecution.control.is_(None), JobExecution.control.not_in(stopped)),
            )
            .values(control=control.value or None)
        )
        return bool(changed(done))


@durable
def record_status(
    rt: Runtime, eid: str, status: ExecutionStatus, launched: bool = False, reopened: bool = False
) -> None:
    """Note a non-final execution status in SQL (the history list filters on it); it only
    moves forward (a late writer cannot move it back), except when a new run ``reopened`` it
    (which also clears its control request)."""
    values: dict[str, Any] = {"status": status, "last_update_time": _time(str(rt.store.now_ms()))}
    if launched:
        values["launch_time"] = values["last_update_time"]
    if reopened:
        values["control"] = None
    with rt.sessions.begin() as session:
        session.execute(
            update(JobExecution)
            .where(
                JobExecution.id == eid,
                JobExecution.status.in_([str(x) for x in ExecutionStatus])
                if reopened
                else JobExecution.status.in_([str(x) for x in EARLIER[status]]),
            )
            .values(**values)
        )


@durable
def persist(
    rt: Runtime, eid: str, execution: dict[str, str], tasks: list[dict[str, str]], progress: float
) -> list[dict[str, Any]]:
    """Write the final execution and task rows (the durable record); return the task plans."""
    by_id = {int(t["id"]): t for t in tasks}
    with rt.sessions.begin() as session:
        row = session.get(JobExecution, eid)
        if row is None:
            logger.error("execution=%s has no SQL row to complete", eid)
            return []
        counts: list[counter.Increment] = []
        if row.status not in EXECUTION_FINAL:  # its first final status (a restart reopens it)
            counts.append(("exchangis_executions_total", {"status": execution["status"]}, 1.0))
        row.status = execution["status"]
        row.progress = progress
        row.error = execution.get("error") or None
        row.launch_time = _time(execution.get("launch_time"))
        row.completed_time = _time(execution.get("completed_time"))
        row.last_update_time = _time(execution.get("last_update_time")) or row.last_update_time
        launched, completed = execution.get("launch_time"), execution.get("completed_time")
        row.duration_ms = int(completed) - int(launched) if launched and completed else 0
        written = sum(task_metrics(t)["written_records"] for t in tasks)
        row.flow = int(written * 1000 / row.duration_ms) if row.duration_ms else 0
        row.execute_node = execute_node(tasks) or None
        for task_row in row.tasks:
            live = by_id.get(task_row.id)
            if live is not None:
                _copy_task(task_row, live)
                if not task_row.counted and live["status"] in TASK_FINAL:
                    counts += _task_counts(live)
                    task_row.counted = True
        counter.add(session, counts)  # one statement for the execution and all its tasks
        return [dict(t.plan) for t in row.tasks]


def _task_counts(live: dict[str, str]) -> list[counter.Increment]:
    """Return the counters the end of a task's run adds to: by status, its rows and bytes,
    how long its last attempt ran and waited for a worker (when one was launched). Counted
    with its execution's record (``persist``): one statement per execution, not per task."""
    metrics = task_metrics(live)
    counts: list[counter.Increment] = [
        ("exchangis_tasks_total", {"status": live["status"]}, 1.0),
        ("exchangis_rows_total", {"direction": "read"}, metrics["read_records"]),
        ("exchangis_rows_total", {"direction": "written"}, metrics["written_records"]),
        ("exchangis_bytes_total", {}, metrics["bytes"]),
    ]
    launched, ended, sent = (
        int(live.get(k) or 0) for k in ("launch_time", "last_update_time", "sent_time")
    )
    if launched:
        counts += counter.TASK_DURATION.observe(max(ended - launched, 0) / 1000)
        if sent and sent <= launched:
            counts += counter.QUEUE_WAIT.observe((launched - sent) / 1000)
    return counts


def _copy_task(row: TaskExecution, live: dict[str, str]) -> None:
    """Copy a task's live state onto its row."""
    row.status = live["status"]
    row.progress = 1.0 if live["status"] == TaskStatus.SUCCESS else float(live.get("progress") or 0)
    row.error = live.get("error") or None
    row.worker_info = live.get("worker_info") or None
    row.celery_id = live.get("celery_id") or row.celery_id
    row.attempts = int(live.get("attempts") or 0)
    row.metrics = task_metrics(live)
    row.launch_time = _time(live.get("launch_time"))
    row.last_update_time = _time(live.get("last_update_time")) or row.last_update_time


@durable
def persist_task(rt: Runtime, tid: int) -> None:
    """Write one task's final state to its row as soon as it ends (a Redis loss keeps it)."""
    live = rt.store.task(tid)
    if live is None:
        return
    with rt.sessions.begin() as session:
        row = session.get(TaskExecution, tid)
        if row is not None:
            _copy_task(row, live)
