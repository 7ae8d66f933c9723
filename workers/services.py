"""The worker's services process: the reaper, the scheduler and the server of the API's
connector calls, each a thread of this process.

They used to run as threads of the Celery main process. That process forks a new pool process
whenever one is replaced (``worker_max_memory_mb``, a crash), and a fork copies every lock a
thread holds at that instant: a reaper pass inside SQLite left the new pool process waiting
forever on SQLite's mutex at its first query, and each task it took was reaped as Undefined
30 s later (docs/operations.md, the failure table). A process that forks must run no threads
of ours, so ``exchangis worker`` runs these services in a process of their own beside the
Celery worker, and starts either again when it dies.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from exchangis.engine import calls, channels
from exchangis.engine.reaper import Reaper
from exchangis.runtime import Runtime
from exchangis.schedule.scheduler import Scheduler
from exchangis.settings import Settings

logger = logging.getLogger("exchangis")


def call_server(settings: Settings) -> calls.CallServer:
    """Return the thread that answers the API's calls a worker serves (connect, split,
    browse)."""
    handlers = {calls.PROBE: calls.probe, calls.SPLIT: channels.cut, calls.CATALOG: calls.catalog}
    return calls.CallServer(Runtime(settings), handlers)


def run_services(settings: Settings) -> None:
    """Run the reaper, the call server and (when enabled) the scheduler until SIGTERM/SIGINT."""
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads: list[Reaper | Scheduler | calls.CallServer] = [
        Reaper(Runtime(settings)),
        call_server(settings),
    ]
    if settings.scheduler_enabled:
        threads.append(Scheduler(Runtime(settings)))
    for thread in threads:
        thread.start()
    logger.info(
        "worker services started: reaper (every %ss), connector calls%s",
        settings.reaper_interval_seconds,
        ", scheduler" if settings.scheduler_enabled else "",
    )
    stopped.wait()
    for thread in threads:
        thread.stop()
    logger.info("worker services stopped")
