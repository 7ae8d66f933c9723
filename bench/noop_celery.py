"""A throwaway Celery app with one no-op task: the baseline of the orchestration benchmark.

``bench/transfer.py`` starts ``celery -A noop_celery worker`` (cwd ``bench/``) with
``BENCH_BROKER_URL``, ``BENCH_BACKEND_URL`` and ``BENCH_QUEUE`` set, then sends a group of
no-op tasks and waits for their results. The Celery options mirror the engine's
(``exchangis.dispatch.celery_config``) where they matter: late acks, prefetch 1, JSON.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery(
    "bench-noop",
    broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/1"),
    backend=os.environ.get("BENCH_BACKEND_URL", "redis://127.0.0.1:6379/1"),
    set_as_current=True,
)
app.conf.update(
    task_default_queue=os.environ.get("BENCH_QUEUE", "bench-noop"),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=600,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(index: int) -> int:
    """Do nothing; return the argument."""
    return index
