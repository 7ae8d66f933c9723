"""Build the worker's Celery app from settings; the reaper runs beside it in the main process."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from exchangis.engine.dispatch import celery_config
from exchangis.engine.reaper import Reaper
from exchangis.runtime import Runtime
from exchangis.settings import Settings, load_settings
from workers import tasks

logger = logging.getLogger(__name__)


def create_celery(settings: Settings | None = None) -> Celery:
    """Return the worker app: shared config, the transfer task, and the reaper thread."""
    settings = settings or load_settings()
    app = Celery("exchangis", set_as_current=True)
    app.conf.update(celery_config(settings))
    tasks.register(app, settings)
    reaper: list[Reaper] = []

    def start_reaper(**_: Any) -> None:
        thread = Reaper(Runtime(settings))
        thread.start()
        reaper.append(thread)
        logger.info("reaper started interval=%ss", settings.reaper_interval_seconds)

    def stop_reaper(**_: Any) -> None:
        for thread in reaper:
            thread.stop()

    worker_ready.connect(start_reaper, weak=False)
    worker_shutdown.connect(stop_reaper, weak=False)
    return app


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
