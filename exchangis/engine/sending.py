"""The one path that sends a task: a new message id, the execution's queue, the message.

Every sender (submit, resume, restart, adoption, retries, resends, a claim that found no free
slot) moves the task to ``Scheduled`` with a compare-and-set from the statuses it expects, so
of two senders racing for one task only one sends; a task whose message cannot be queued is
``Failed`` with the reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from exchangis.engine import finalize
from exchangis.runtime import Runtime
from exchangis.state.machine import TaskStatus

logger = logging.getLogger(__name__)


def send(
    rt: Runtime,
    eid: str,
    tid: int,
    sources: Iterable[TaskStatus],
    *,
    fields: Mapping[str, Any] | None = None,
    countdown: float = 0,
) -> bool:
    """Move task ``tid`` to Scheduled from one of ``sources`` and send its message; True when
    this caller sent it (False: the task was elsewhere, or could not be queued and is Failed).

    ``Scheduled`` among ``sources`` resends a task that stays Scheduled (its old message may be
    lost); ``countdown`` delays the message. ``sent_time`` is when the task began to wait for
    a worker (``exchangis_task_queue_wait_seconds``).
    """
    celery_id = str(uuid.uuid4())
    sources = set(sources)
    more: dict[str, Any] = {"celery_id": celery_id}
    if TaskStatus.SCHEDULED not in sources:  # a resend or a deferral keeps waiting from then
        more["sent_time"] = rt.store.now_ms()
    move = rt.store.transition_task(
        tid, TaskStatus.SCHEDULED, sources=sources, fields={**(fields or {}), **more}
    )
    if not move.moved:
        return False
    queue = (rt.store.execution(eid) or {}).get("queue") or rt.settings.task_queue
    try:
        rt.dispatcher.send(tid, celery_id, queue, countdown=countdown)
    except Exception as exc:
        error = f"could not queue the task: {type(exc).__name__}: {exc}"
        failed = rt.store.transition_task(
            tid,
            TaskStatus.FAILED,
            sources={TaskStatus.SCHEDULED},
            fields={"error": error},
            expect={"celery_id": celery_id},
        )
        if failed.moved:
            finalize.task_finished(rt, eid, tid, TaskStatus.FAILED, error)
        return False
    logger.debug("sent task=%s execution=%s queue=%s", tid, eid, queue)
    return True
