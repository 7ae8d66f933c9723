"""Send and revoke transfer tasks by name; the API never imports worker code."""

from __future__ import annotations

from typing import Any

from celery import Celery

from exchangis.settings import Settings

RUN_TASK = "exchangis.run_task"
"""Celery task name of one transfer task; its only argument is the task id."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration shared by the API (sender) and the workers."""
    return {
        "broker_url": settings.broker(),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_seconds,
        },
        "task_default_queue": settings.task_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 3600,
        "worker_prefetch_multiplier": 1,
        # Off on purpose: with it on, this Celery/kombu crashes the worker when the Redis
        # broker comes back ("Unrecoverable error ... 'hostname'"), and a task redelivered
        # after a connection loss is harmless here (its claim token refuses the duplicate).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
        "worker_concurrency": settings.worker_concurrency,
        # Freed memory is not always handed back to the system: a pool process that grew past
        # the limit is replaced after its task, so a worker's size does not creep up.
        "worker_max_memory_per_child": settings.worker_max_memory_mb * 1024 or None,
        "timezone": settings.timezone,
    }


class Dispatcher:
    """Sends transfer tasks to the broker and revokes queued ones."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        """Return the sender-side Celery app (built on first use)."""
        if self._app is None:
            app = Celery("exchangis-sender", set_as_current=False)
            app.conf.update(celery_config(self.settings))
            self._app = app
        return self._app

    def queue_for(self, route: str | None) -> str:
        """Return the queue of an execution: ``labels.route`` when it names a known queue."""
        if route and route in self.settings.queues:
            return route
        return self.settings.task_queue

    def send(self, task_id: int, celery_id: str, queue: str, countdown: float = 0) -> None:
        """Send one transfer task, passing its id only (``countdown``: not before that)."""
        self.app.send_task(
            RUN_TASK, args=[task_id], task_id=celery_id, queue=queue, countdown=countdown or None
        )

    def revoke(self, celery_ids: list[str]) -> None:
        """Revoke queued messages (the worker's claim refuses them anyway)."""
        if celery_ids:
            self.app.control.revoke(celery_ids)

    def terminate(self, celery_ids: list[str]) -> None:
        """Kill the worker processes running these tasks (SIGKILL; the reaper settles them)."""
        if celery_ids:
            self.app.control.revoke(celery_ids, terminate=True, signal="SIGKILL")
