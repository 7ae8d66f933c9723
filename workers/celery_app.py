"""Build the worker's Celery app from settings; the reaper and the call server run beside it."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from exchangis.dispatch import celery_config
from exchangis.engine import calls, channels
from exchangis.engine.reaper import Reaper
from exchangis.runtime import Runtime
from exchangis.schedule.scheduler import Scheduler
from exchangis.settings import Settings, load_settings
from workers import tasks

logger = logging.getLogger(__name__)


def create_celery(settings: Settings | None = None) -> Celery:
    """Return the worker app: shared config, the transfer task, and (in the main process) the
    reaper, the scheduler and the thread that answers the API's connector calls."""
    settings = settings or load_settings()
    app = Celery("exchangis", set_as_current=True)
    app.conf.update(celery_config(settings))
    tasks.register(app, settings)
    threads: list[Reaper | Scheduler | calls.CallServer] = []

    def start_threads(**_: Any) -> None:
        threads.append(Reaper(Runtime(settings)))
        threads.append(call_server(settings))
        if settings.scheduler_enabled:
            threads.append(Scheduler(Runtime(settings)))
        for thread in threads:
            thread.start()
        logger.info("reaper started interval=%ss", settings.reaper_interval_seconds)

    def stop_threads(**_: Any) -> None:
        for thread in threads:
            thread.stop()

    worker_ready.connect(start_threads, weak=False)
    worker_shutdown.connect(stop_threads, weak=False)
    return app


def call_server(settings: Settings) -> calls.CallServer:
    """Return the thread that answers the API's calls a worker serves (connect, split)."""
    return calls.CallServer(
        Runtime(settings), {calls.PROBE: calls.probe, calls.SPLIT: channels.cut}
    )


def worker_argv(settings: Settings, extra: list[str] | None = None) -> list[str]:
    """Return the ``worker`` command line that consumes the default and the routed queues."""
    queues = ",".join(dict.fromkeys([settings.task_queue, *settings.queues]))
    return [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={queues}",
        "--without-gossip",
        "--without-mingle",
        *(extra or []),
    ]
