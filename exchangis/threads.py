"""Threads a process keeps for the work of its tasks, instead of starting new ones per task.

Starting a thread waits until the new thread runs, which takes milliseconds on a busy host; a
sub-job of ten rows used to start three (its heartbeat, its held log lines' timer and its sink's
loader), a sixth of its time. Now:

- :data:`TIMERS`: one thread runs every short timed call of the process (heartbeats, the store
  of held log lines) at its time. A call must be short: the next one waits for it.
- :data:`SPARES`: threads that run one long job each (a write-behind loader), kept for the next
  job once it ends. While it runs, a job's thread carries the job's name.

A forked child starts with neither (threads do not survive a fork) and makes its own on first
use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

IDLE_NAME = "exchangis-spare"
"""The name of a spare thread between jobs."""


class Timer:
    """A call :class:`Timers` makes once, or every ``every`` seconds, until cancelled."""

    __slots__ = ("call", "cancelled", "every")

    def __init__(self, call: Callable[[], object], every: float) -> None:
        self.call = call
        self.every = every
        self.cancelled = False

    def cancel(self) -> None:
        """Make no more calls (one running now ends as it would)."""
        self.cancelled = True


class _PerProcess:
    """State of one process: made afresh in a forked child (its threads did not come)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        raise NotImplementedError


class Timers(_PerProcess):
    """One thread that makes the timed calls of a process, each at its time."""

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call(self, delay: float, call: Callable[[], object], every: float = 0.0) -> Timer:
        """Call ``call`` in ``delay`` seconds, and then every ``every`` seconds after each
        call ends when ``every`` > 0. An exception is logged and ends nothing."""
        timer = Timer(call, every)
        self._push(delay, timer)
        return timer

    def _push(self, delay: float, timer: Timer) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="exchangis-timers")
                self._thread.daemon = True
                self._thread.start()
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), timer))
            self._cond.notify()

    def _next(self) -> Timer:
        """Wait for the next call that is due and not cancelled."""
        with self._cond:
            while True:
                if self._due and self._due[0][2].cancelled:
                    heapq.heappop(self._due)
                    continue
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    return heapq.heappop(self._due)[2]
                self._cond.wait(wait)

    def _run(self) -> None:
        while True:
            timer = self._next()
            try:
                timer.call()
            except Exception:
                log.warning("timed call %r failed", timer.call, exc_info=True)
            if timer.every > 0 and not timer.cancelled:
                self._push(timer.every, timer)


class Job:
    """One job that :class:`Spares` runs on a thread of its own."""

    def __init__(self, run: Callable[[], object], name: str) -> None:
        self.run = run
        self.name = name
        self._done = threading.Event()

    def is_alive(self) -> bool:
        """Return whether the job has not ended yet."""
        return not self._done.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the job ends, or ``timeout`` seconds."""
        self._done.wait(timeout)


class Spares(_PerProcess):
    """Threads that run one job at a time each and wait for the next one in between."""

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[threading.Thread, queue.SimpleQueue[Job]]] = []

    def start(self, run: Callable[[], object], name: str) -> Job:
        """Run ``run`` on a spare thread named ``name`` until it ends (a new thread when none
        is idle); an exception it raises is logged."""
        job = Job(run, name)
        with self._lock:
            spare = self._idle.pop() if self._idle else None
        if spare is None:
            inbox: queue.SimpleQueue[Job] = queue.SimpleQueue()
            thread = threading.Thread(target=self._serve, args=(inbox,), name=name)
            thread.daemon = True
            thread.start()
        else:
            thread, inbox = spare
            thread.name = name
        inbox.put(job)
        return job

    def _serve(self, inbox: queue.SimpleQueue[Job]) -> None:
        me = threading.current_thread()
        while True:
            job = inbox.get()
            try:
                job.run()
            except BaseException:
                log.exception("job %s failed", job.name)
            finally:
                me.name = IDLE_NAME
                with self._lock:
                    self._idle.append((me, inbox))
                job._done.set()


TIMERS = Timers()
"""The process's timed calls."""
SPARES = Spares()
"""The process's spare threads."""
