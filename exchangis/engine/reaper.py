"""Find running tasks whose worker is gone (stale heartbeat) and give them a final state.

Also: terminate tasks that ignore a kill for longer than ``kill_grace_seconds``, and write the
durable record of completed executions whose SQL write failed before.
"""

from __future__ import annotations

import logging
import threading

from exchangis.engine import finalize, retry
from exchangis.engine.states import ExecutionStatus, TaskStatus
from exchangis.runtime import Runtime

logger = logging.getLogger(__name__)

STOPPING = {"kill": TaskStatus.CANCELLED, "timeout": TaskStatus.TIMEOUT}
"""Control flags that stop tasks (and the status a task that had to be terminated ends in)."""


def reap(rt: Runtime) -> list[int]:
    """Run one pass (idempotent; any number of reapers may run). Return the task ids moved."""
    moved = [
        tid
        for tid in rt.store.stale_tasks(rt.settings.heartbeat_timeout_seconds)
        if _reap_task(rt, tid)
    ]
    _terminate_ignored_kills(rt)
    _time_out_executions(rt)
    retry.send_due_retries(rt)
    for eid in rt.store.unpersisted():
        try:
            finalize.complete(rt, eid)
        except Exception:
            logger.exception("writing the record of execution=%s failed; will retry", eid)
    return moved


def _reap_task(rt: Runtime, tid: int) -> bool:
    task = rt.store.task(tid)
    if task is None or task.get("status") != TaskStatus.RUNNING:
        rt.store.drop_heartbeat(tid)
        return False
    eid = task["execution_id"]
    execution = rt.store.execution(eid) or {}
    timeout = rt.settings.heartbeat_timeout_seconds
    stopped = STOPPING.get(execution.get("control", ""))
    if stopped is not None:
        target, error = stopped, f"stopped after {execution['control']} (its process ended)"
    else:
        target = TaskStatus.UNDEFINED
        error = f"worker lost: no heartbeat for {timeout:g}s (last on {task.get('worker_info')})"
        if retry.try_retry(rt, eid, tid, int(task.get("attempts") or 1), error):
            rt.task_log(tid, eid).error(f"Attempt lost: {error}")
            return True
    move = rt.store.transition_task(
        tid,
        target,
        sources={TaskStatus.RUNNING},
        fields={"error": error},
        expect={"attempts": task.get("attempts", "")},
    )
    if not move.moved:
        rt.store.drop_heartbeat(tid)
        return False
    logger.warning("reaped task=%s execution=%s as %s", tid, eid, target)
    rt.task_log(tid, eid).error(f"Task is {target}: {error}")
    finalize.task_finished(rt, eid, tid, target, error)
    return True


def _time_out_executions(rt: Runtime) -> None:
    """End executions past their deadline as Timeout and stop their tasks."""
    for eid in rt.store.due_deadlines():
        if not rt.store.drop_deadline(eid):
            continue  # another reaper has it
        move = rt.store.transition_execution(
            eid,
            ExecutionStatus.TIMEOUT,
            sources=finalize.NOT_FINAL,
            fields={"error": "execution timed out"},
        )
        if move.moved:
            rt.job_log(eid).error(
                "Execution timed out: stopping its tasks (queued ones are "
                "cancelled, running ones stop as Timeout and roll back)"
            )
            finalize.cancel_remaining(rt, eid, "timeout")


def _terminate_ignored_kills(rt: Runtime) -> None:
    """Terminate the processes of Running tasks still going ``kill_grace_seconds`` after a kill
    or an execution timeout."""
    grace_ms = rt.settings.kill_grace_seconds * 1000
    now = rt.store.now_ms()
    for tid in rt.store.stale_tasks(-1e9):  # every task with a heartbeat, i.e. Running
        task = rt.store.task(tid) or {}
        execution = rt.store.execution(task.get("execution_id", "")) or {}
        if execution.get("control") not in STOPPING or not task.get("celery_id"):
            continue
        if now - int(execution.get("control_time") or now) < grace_ms:
            continue
        if rt.store.lock(f"terminate:{tid}", int(rt.settings.heartbeat_timeout_seconds) + 60):
            logger.warning(
                "terminating task=%s: still running %ss after kill",
                tid,
                rt.settings.kill_grace_seconds,
            )
            rt.task_log(tid, task["execution_id"]).warn(
                f"Task ignored the {execution['control']} request: terminating its process"
            )
            rt.dispatcher.terminate([task["celery_id"]])


class Reaper(threading.Thread):
    """Call :func:`reap` every ``reaper_interval_seconds`` until stopped (runs in a worker)."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="exchangis-reaper", daemon=True)
        self.rt = rt
        self.stopped = threading.Event()

    def run(self) -> None:
        """Reap until stopped; errors are logged and the loop goes on."""
        while not self.stopped.wait(self.rt.settings.reaper_interval_seconds):
            try:
                reap(self.rt)
            except Exception:
                logger.exception("reaper pass failed")

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
