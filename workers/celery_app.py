"""Build the worker's Celery app from settings; the reaper and the call server run beside it
(:mod:`workers.services`)."""

from __future__ import annotations

from celery import Celery

from exchangis.dispatch import celery_config
from exchangis.settings import Settings, load_settings
from workers import tasks


def create_celery(settings: Settings | None = None) -> Celery:
    """Return the worker app: shared config and the transfer task. Its main process runs no
    thread of ours (it forks pool processes): the services run beside it (:mod:`.services`)."""
    settings = settings or load_settings()
    app = Celery("exchangis", set_as_current=True)
    app.conf.update(celery_config(settings))
    tasks.register(app, settings)
    return app


def worker_argv(settings: Settings, extra: list[str] | None = None) -> list[str]:
    """Return the ``worker`` command line that consumes the default and the routed queues."""
    queues = ",".join(dict.fromkeys([settings.task_queue, *settings.queues]))
    return [
        *(["--quiet"] if settings.log_format == "json" else []),  # no banner: JSON lines only
        "worker",
        "--loglevel=INFO",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={queues}",
        "--without-gossip",
        "--without-mingle",
        *(extra or []),
    ]
