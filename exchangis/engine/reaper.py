"""The periodic sweep that keeps every execution moving, run by each worker (one at a time).

A pass: starts again executions whose live state Redis lost; sends again tasks whose message
may be lost; retries or ends tasks whose worker is gone (stale heartbeat); terminates tasks that
ignore a kill or a timeout for ``kill_grace_seconds``; times out executions past their deadline;
sends the retries that are due; writes the record of completed executions whose SQL write failed.
"""

from __future__ import annotations

import logging
import threading
import uuid

from sqlalchemy import select

from exchangis.engine import control, finalize, retry
from exchangis.engine.states import ExecutionStatus, TaskStatus
from exchangis.errors import ExchangisError
from exchangis.models import JobExecution
from exchangis.runtime import Runtime

logger = logging.getLogger(__name__)

STOPPING = {"kill": TaskStatus.CANCELLED, "timeout": TaskStatus.TIMEOUT}
"""Control flags that stop tasks (and the status a task that had to be terminated ends in)."""


def reap(rt: Runtime) -> list[int]:
    """Run one pass; one reaper at a time does (a short leader lock), and every step is
    idempotent besides. Return the task ids moved."""
    if not rt.store.lock("reaper", max(1, int(rt.settings.reaper_interval_seconds * 3))):
        return []
    try:
        return _pass(rt)
    finally:
        rt.store.unlock("reaper")


def _pass(rt: Runtime) -> list[int]:
    _recover_lost_executions(rt)
    _resend_waiting_tasks(rt)
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
        if retry.try_retry(rt, eid, tid, task.get("claim", ""), error):
            rt.task_log(tid, eid).error(f"Attempt lost: {error}")
            return True
    move = rt.store.transition_task(
        tid,
        target,
        sources={TaskStatus.RUNNING},
        fields={"error": error},
        expect={"claim": task.get("claim", "")},
    )
    if not move.moved:
        rt.store.drop_heartbeat(tid)
        return False
    logger.warning("reaped task=%s execution=%s as %s", tid, eid, target)
    rt.task_log(tid, eid).error(f"Task is {target}: {error}")
    finalize.task_finished(rt, eid, tid, target, error)
    return True


RECOVERY_BATCH = 100


def _running_in_sql(rt: Runtime) -> list[str]:
    """Return the newest executions that SQL records as Scheduled or Running, on this
    deployment's queues (a pool of workers looks after its own executions only)."""
    queues = [rt.settings.task_queue, *rt.settings.queues]
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(JobExecution.id)
                .where(
                    JobExecution.status.in_([ExecutionStatus.SCHEDULED, ExecutionStatus.RUNNING]),
                    JobExecution.queue.in_(queues),
                )
                .order_by(JobExecution.create_time.desc())
                .limit(RECOVERY_BATCH)
            )
        )


def _resend_waiting_tasks(rt: Runtime) -> None:
    """Send again tasks left Scheduled or Inited for ``resend_after_seconds``: their message may
    be lost (an API that died before sending, a broker that dropped it). A duplicate is refused
    by the claim, so sending one too many costs nothing."""
    limit_ms = rt.store.now_ms() - int(rt.settings.resend_after_seconds * 1000)
    for eid in _running_in_sql(rt):
        execution = rt.store.execution(eid)
        if execution is None or execution.get("control"):
            continue
        queue = execution.get("queue") or rt.settings.task_queue
        for task in rt.store.tasks(eid):
            if task["status"] not in (TaskStatus.SCHEDULED, TaskStatus.INITED):
                continue
            if int(task.get("last_update_time") or 0) > limit_ms:
                continue
            tid, celery_id = int(task["id"]), str(uuid.uuid4())
            if task["status"] == TaskStatus.INITED:
                move = rt.store.transition_task(
                    tid,
                    TaskStatus.SCHEDULED,
                    sources={TaskStatus.INITED},
                    fields={"celery_id": celery_id},
                )
                if not move.moved:
                    continue
            else:  # Scheduled: a new message id, and the clock starts again
                rt.store.update_task(
                    tid, {"celery_id": celery_id, "last_update_time": rt.store.now_ms()}
                )
            logger.warning("task=%s waited too long in %s: sending it again", tid, task["status"])
            finalize.queue_or_fail(rt, eid, tid, celery_id, queue)


def _recover_lost_executions(rt: Runtime) -> None:
    """Start again executions that SQL says are running but Redis no longer knows (it lost its
    data): the tasks that had not succeeded run again; the others keep their result."""
    ids = _running_in_sql(rt)
    known = rt.redis.pipeline(transaction=False)
    for eid in ids:
        known.exists(rt.keys.execution(eid))
    for eid, live in zip(ids, known.execute(), strict=True):
        if live:
            continue
        with rt.sessions() as session:
            row = session.get(JobExecution, eid)
            rerun = [t.id for t in row.tasks if t.status != TaskStatus.SUCCESS] if row else []
        if not rerun:
            continue
        logger.warning("execution=%s lost its live state: starting its unfinished tasks again", eid)
        try:
            control.reopen(rt, eid, rerun, "Live state lost (Redis restarted?)")
        except ExchangisError as exc:
            logger.warning("recovering execution=%s failed: %s", eid, exc.message)


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
