"""Thin Celery adapters: each hands over to the engine with ids only."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pyarrow as pa
from celery import Celery, Task

from exchangis.dispatch import RUN_TASK
from exchangis.engine.runner import TaskRunner
from exchangis.runtime import Runtime
from exchangis.settings import Settings

_runtime: dict[int, Runtime] = {}

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)
_TRIM = getattr(_LIBC, "malloc_trim", None)  # glibc only; elsewhere freeing is left to the libc


def release_memory() -> None:
    """Hand what a finished task freed back to the system: Arrow's pool, then glibc's arenas.

    A pool process runs task after task; without this, what one large transfer freed stays
    resident and adds to the next one's peak. Both calls take well under a millisecond.
    """
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


def runtime(settings: Settings) -> Runtime:
    """Return this process's runtime (a forked child builds its own pools)."""
    pid = os.getpid()
    if pid not in _runtime:
        _runtime.clear()
        _runtime[pid] = Runtime(settings)
    return _runtime[pid]


def register(app: Celery, settings: Settings) -> None:
    """Register the transfer task on ``app``."""

    @app.task(name=RUN_TASK, ignore_result=True, bind=True)
    def run_task(self: Task, task_id: int) -> None:
        """Run one transfer task (claimed atomically; a duplicate exits quietly)."""
        try:
            TaskRunner(runtime(settings), int(task_id), str(self.request.id or "")).run()
        finally:
            release_memory()
