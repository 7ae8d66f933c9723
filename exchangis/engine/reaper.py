"""Find running tasks whose worker is gone (stale heartbeat) and give them a final state."""

from __future__ import annotations

import logging
import threading

from exchangis.engine import finalize
from exchangis.engine.states import TaskStatus
from exchangis.runtime import Runtime

logger = logging.getLogger(__name__)


def reap(rt: Runtime) -> list[int]:
    """Move tasks with a stale heartbeat to ``Undefined``; idempotent. Return the ids moved."""
    timeout = rt.settings.heartbeat_timeout_seconds
    moved = []
    for tid in rt.store.stale_tasks(timeout):
        task = rt.store.task(tid)
        if task is None or task.get("status") != TaskStatus.RUNNING:
            rt.store.drop_heartbeat(tid)
            continue
        error = f"worker lost: no heartbeat for {timeout:g}s (last on {task.get('worker_info')})"
        move = rt.store.transition_task(
            tid, TaskStatus.UNDEFINED, sources={TaskStatus.RUNNING}, fields={"error": error}
        )
        rt.store.drop_heartbeat(tid)
        if not move.moved:
            continue
        moved.append(tid)
        logger.warning("reaped task=%s execution=%s", tid, task["execution_id"])
        rt.task_log(tid).error(f"Task is Undefined: {error}")
        finalize.task_finished(rt, task["execution_id"], tid, TaskStatus.UNDEFINED, move, error)
    return moved


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
