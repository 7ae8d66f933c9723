"""Retries: a failed attempt with attempts left waits (``WaitForRetry``), then is sent again.

Who retries: the runner after a transient connector error, the reaper after a lost worker.
Terminal errors (bad SQL, missing table, constraint violation) and timeouts never retry. The
delay doubles with each attempt (``retry_backoff_seconds`` … ``retry_backoff_max_seconds``);
every worker's reaper thread sends the retries that are due (a compare-and-set picks one).
"""

from __future__ import annotations

import logging
from typing import Any

from exchangis.engine import sending
from exchangis.models import counter
from exchangis.runtime import Runtime
from exchangis.state.machine import TaskStatus

logger = logging.getLogger(__name__)


def backoff(rt: Runtime, attempt: int) -> float:
    """Return the delay after failed attempt number ``attempt`` (1-based)."""
    delay = rt.settings.retry_backoff_seconds * 2 ** (attempt - 1)
    return float(min(delay, rt.settings.retry_backoff_max_seconds))


def try_retry(
    rt: Runtime,
    eid: str,
    tid: int,
    claim: str,
    error: str,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Move a task Running the attempt ``claim`` to ``WaitForRetry`` if attempts are left.

    False when none are left (or the attempt is no longer the current one): the caller then
    ends the task as it would have without retries.
    """
    task = rt.store.task(tid) or {}
    attempts = int(task.get("attempts") or 1)
    allowed = int(task.get("max_attempts") or 1)
    if attempts >= allowed or (rt.store.execution(eid) or {}).get("control"):
        return False
    delay = backoff(rt, attempts)
    move = rt.store.transition_task(
        tid,
        TaskStatus.WAIT_FOR_RETRY,
        sources={TaskStatus.RUNNING},
        fields={**(fields or {}), "error": error},
        heartbeat="rem",
        expect={"claim": claim},
    )
    if not move.moved:
        return False
    rt.store.schedule_retry(tid, delay)
    counter.add_apart(rt.sessions, [("exchangis_task_retries_total", {}, 1)])
    rt.job_log(eid).warn(
        f"Task {task.get('name')} (id {tid}) attempt {attempts} of {allowed} failed: {error}; "
        f"it is WaitForRetry, next attempt in {delay:g}s"
    )
    return True


def send_due_retries(rt: Runtime) -> list[int]:
    """Send the retries that are due (WaitForRetry → Scheduled, a new message); return them."""
    sent = []
    for tid in rt.store.due_retries():
        if not rt.store.drop_retry(tid):
            continue  # another reaper took it
        eid = (rt.store.task(tid) or {}).get("execution_id", "")
        if sending.send(rt, eid, tid, {TaskStatus.WAIT_FOR_RETRY}):  # not if cancelled meanwhile
            logger.info("retry sent task=%s", tid)
            sent.append(tid)
    return sent
