"""The periodic sweep that keeps every execution moving, run by each worker (one at a time).

A pass drives every execution that SQL records as unfinished, on this deployment's queues:
one whose live state is missing (the API died before writing it, Redis lost it) is adopted
once it has been missing for ``heartbeat_timeout_seconds``; one whose tasks have all ended is
completed (its last task's process may have died, or the metadata database refused it); a
kill or timeout that SQL holds but the live state missed is applied; Paused tasks of a resumed
execution, and tasks whose message may be lost, are sent again. Then: tasks whose worker is
gone (stale heartbeat) are retried or ended; tasks that ignore a kill or a timeout for
``kill_grace_seconds`` are terminated; executions past their deadline time out; due retries
are sent. Each step is idempotent and fails alone (a store error is logged and the pass goes
on); every time compared is the store's (the Redis server's) clock.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select

from exchangis import process_log
from exchangis.engine import archive, control, finalize, retry, sending, stages
from exchangis.models import JobExecution, counter
from exchangis.runtime import Runtime
from exchangis.state.machine import (
    CONTROL_OUTCOME,
    STOPPING,
    Control,
    TaskStatus,
    control_of,
)

logger = logging.getLogger(__name__)

PAGE = 200
"""Unfinished executions read from SQL per query."""


def reap(rt: Runtime) -> list[int]:
    """Run one pass; one reaper at a time does (a short leader lock), and every step is
    idempotent besides. Return the task ids moved."""
    with rt.store.locked("reaper", max(1, int(rt.settings.reaper_interval_seconds * 3))) as held:
        return _pass(rt) if held else []


def _step(name: str, action: Callable[..., Any], *args: Any) -> Any:
    """Run ``action(*args)``, one step of a pass; a failure is logged and the pass goes on."""
    try:
        return action(*args)
    except Exception:
        logger.exception("reaper step %s failed; the next pass tries again", name)
        return None


def _pass(rt: Runtime) -> list[int]:
    _step("drive", _drive_executions, rt)
    moved = _step("stale", _reap_stale, rt) or []
    _step("terminate", _terminate_ignored_kills, rt)
    _step("deadlines", _time_out_executions, rt)
    _step("retries", retry.send_due_retries, rt)
    _step("retention", archive.apply_retention, rt)
    _step("stages", stages.clean, rt)
    for eid in _step("unpersisted", rt.store.unpersisted) or []:
        _step(f"complete {eid}", finalize.complete, rt, eid)
    return list(moved)


def _unfinished(rt: Runtime) -> Iterator[tuple[str, Control]]:
    """Yield (id, SQL control request) of every execution that SQL records as unfinished on
    this deployment's queues (a pool of workers looks after its own executions only)."""
    queues = [rt.settings.task_queue, *rt.settings.queues]
    after = ""
    while True:
        page = rt.durable(functools.partial(_page, rt, queues, after))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1][0]


def _page(rt: Runtime, queues: list[str], after: str) -> list[tuple[str, Control]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(JobExecution.id, JobExecution.control)
            .where(
                JobExecution.status.in_([str(s) for s in finalize.NOT_FINAL]),
                JobExecution.queue.in_(queues),
                JobExecution.id > after,
            )
            .order_by(JobExecution.id)
            .limit(PAGE)
        ).all()
    return [(eid, control_of(value)) for eid, value in rows]


def _drive_executions(rt: Runtime) -> None:
    """Drive every unfinished execution one step (see the module's docstring)."""
    grace = rt.settings.heartbeat_timeout_seconds
    for eid, sql_control in _unfinished(rt):
        with process_log.about(execution=eid):
            execution = rt.store.execution(eid)
            if execution is None:
                if rt.store.missing_for(eid) >= grace:
                    _step(f"adopt {eid}", _adopt, rt, eid)
                continue
            _step(f"drive {eid}", _drive, rt, eid, execution, sql_control)
    rt.store.forget_missing_older_than(grace * 4)


def _adopt(rt: Runtime, eid: str) -> None:
    if control.adopt(rt, eid, "Live state missing (the API died at submit, or Redis lost it)"):
        logger.warning("adopted execution=%s: its live state was missing", eid)
        _count(rt, "adopt")
    rt.store.forget_missing(eid)


def _drive(rt: Runtime, eid: str, execution: dict[str, str], sql_control: Control) -> None:
    live_control = control_of(execution.get("control"))
    if sql_control in STOPPING and live_control is not sql_control:
        logger.warning("execution=%s: applying the %s SQL holds", eid, sql_control)
        finalize.stop(rt, eid, sql_control, f"{sql_control.title()} (recorded, not yet applied)")
        _count(rt, "apply_" + sql_control.value)
        execution = rt.store.execution(eid) or execution
        live_control = control_of(execution.get("control"))
    if live_control in STOPPING:
        finalize.cancel_remaining(rt, eid, live_control)  # what an interrupted stop left queued
    tasks = rt.store.tasks(eid)
    if finalize.all_final(tasks):
        quiet_ms = rt.store.now_ms() - finalize.quiet_since(tasks)
        if quiet_ms >= rt.settings.heartbeat_timeout_seconds * 1000:
            logger.warning("completing execution=%s: every task ended, it did not", eid)
            finalize.complete(rt, eid)
            _count(rt, "complete")
        return
    resumed = control.resumed(execution)
    resend_ms = rt.store.now_ms() - int(rt.settings.resend_after_seconds * 1000)
    for task in tasks:
        status = task.get("status")
        if status == TaskStatus.PAUSED and resumed:
            control.send_paused(rt, eid, task)
        elif (
            status in (TaskStatus.SCHEDULED, TaskStatus.INITED)
            and resumed
            and int(task.get("last_update_time") or 0) <= resend_ms
        ):
            logger.warning("task=%s waited too long in %s: sending it again", task["id"], status)
            if sending.send(rt, eid, int(task["id"]), {TaskStatus.SCHEDULED, TaskStatus.INITED}):
                _count(rt, "resend")


def _reap_stale(rt: Runtime) -> list[int]:
    return [
        tid
        for tid in rt.store.stale_tasks(rt.settings.heartbeat_timeout_seconds)
        if _step(f"reap {tid}", _reap_task, rt, tid)
    ]


def _reap_task(rt: Runtime, tid: int) -> bool:
    task = rt.store.task(tid)
    if task is None or task.get("status") != TaskStatus.RUNNING:
        rt.store.drop_heartbeat(tid)
        return False
    with process_log.about(execution=task["execution_id"], task=tid):
        return _reap_running(rt, tid, task)


def _reap_running(rt: Runtime, tid: int, task: dict[str, str]) -> bool:
    eid = task["execution_id"]
    execution = rt.store.execution(eid) or {}
    timeout = rt.settings.heartbeat_timeout_seconds
    stopping = control_of(execution.get("control"))
    if stopping in STOPPING:
        target = CONTROL_OUTCOME[stopping]
        error = f"stopped after {stopping} (its process ended)"
    else:
        target = TaskStatus.UNDEFINED
        error = f"worker lost: no heartbeat for {timeout:g}s (last on {task.get('worker_info')})"
        if retry.try_retry(rt, eid, tid, task.get("claim", ""), error):
            rt.task_log(tid, eid).error(f"Attempt lost: {error}")
            _count(rt, "reap_lost_task")
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
    _count(rt, "reap_lost_task")
    rt.task_log(tid, eid).error(f"Task is {target}: {error}")
    finalize.task_finished(rt, eid, tid, target, error)
    return True


def _time_out_executions(rt: Runtime) -> None:
    """End executions past their deadline as Timeout and stop their tasks (SQL first)."""
    for eid in rt.store.due_deadlines():
        finalize.record_control(rt, eid, Control.TIMEOUT)
        if not rt.store.drop_deadline(eid):
            continue  # another reaper has it
        finalize.stop(rt, eid, Control.TIMEOUT, "Execution timed out")
        _count(rt, "timeout")


def _terminate_ignored_kills(rt: Runtime) -> None:
    """Terminate the processes of Running tasks still going ``kill_grace_seconds`` after a kill
    or an execution timeout (the message their attempt was claimed from names them)."""
    grace_ms = rt.settings.kill_grace_seconds * 1000
    now = rt.store.now_ms()
    for tid in rt.store.stale_tasks(-1e9):  # every task with a heartbeat, i.e. Running
        task = rt.store.task(tid) or {}
        execution = rt.store.execution(task.get("execution_id", "")) or {}
        stopping = control_of(execution.get("control"))
        message = task.get("message_id") or task.get("celery_id")
        if stopping not in STOPPING or not message:
            continue
        if now - int(execution.get("control_time") or now) < grace_ms:
            continue
        if rt.store.lock(f"terminate:{tid}", int(rt.settings.heartbeat_timeout_seconds) + 60):
            logger.warning(
                "terminating task=%s: still running %ss after %s",
                tid,
                rt.settings.kill_grace_seconds,
                stopping,
            )
            rt.task_log(tid, task["execution_id"]).warn(
                f"Task ignored the {stopping} request: terminating its process"
            )
            rt.dispatcher.terminate([message])
            _count(rt, "terminate")


def _count(rt: Runtime, action: str) -> None:
    """Count one action of a reaper (``exchangis_reaper_actions_total{action}``)."""
    counter.add_apart(rt.sessions, [("exchangis_reaper_actions_total", {"action": action}, 1)])


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
