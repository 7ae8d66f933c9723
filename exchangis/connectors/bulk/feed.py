"""A bounded hand-over of items between two threads: the producer waits, memory stays flat.

The MySQL sink encodes batches on one thread while the server loads the file on another
(``LOAD DATA LOCAL INFILE``): :class:`Feed` carries the encoded bytes between them, at most
a set number of bytes waiting at once, and lets either side give up without leaving the
other waiting forever.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FeedAborted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The producer of a :class:`Feed` gave up: what was handed over so far is discarded."""


class Feed(Generic[T]):
    """Items handed from one thread (the producer) to another (the consumer) in order, at most
    ``limit`` bytes of them waiting at once: the producer waits beyond, so memory stays flat
    however far ahead of the consumer it runs.

    The consumer takes items with :meth:`get` until :meth:`close`; :meth:`abort` makes it raise
    :class:`FeedAborted` instead. The consumer calls :meth:`stop` when it ends (done or
    failed): a producer waiting in :meth:`put` then gets False rather than waiting forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[tuple[T, int]] = deque()
        self._queued = 0
        self._closed = False
        self._aborted = False
        self._stopped = False
        self._cond = threading.Condition()

    def put(self, item: T, size: int) -> bool:
        """Queue ``item`` of ``size`` bytes, waiting while ``limit`` bytes wait (a larger item
        waits alone). Returns False, ``item`` dropped, once the consumer has stopped."""
        with self._cond:
            while self._queued and self._queued + size > self.limit and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return False
            self._items.append((item, size))
            self._queued += size
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """Say that nothing more comes: :meth:`get` returns None after the last item."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Drop what waits, and make :meth:`get` raise :class:`FeedAborted` from now on."""
        with self._cond:
            self._aborted = True
            self._drop()

    def stop(self) -> None:
        """Consumer side: take nothing more (a waiting or later :meth:`put` returns False)."""
        with self._cond:
            self._stopped = True
            self._drop()

    def _drop(self) -> None:
        """Under the lock: forget the items that wait, and wake every thread waiting."""
        self._items.clear()
        self._queued = 0
        self._cond.notify_all()

    def get(self) -> T | None:
        """Consumer side: return the next item, waiting for it; None once closed and empty.

        Raises:
            FeedAborted: the producer called :meth:`abort`.
        """
        with self._cond:
            if not self._await():
                return None
            item, size = self._items.popleft()
            self._queued -= size
            self._cond.notify_all()
            return item

    def wait(self) -> bool:
        """Consumer side: wait for an item; return False when closed and empty instead.

        Raises:
            FeedAborted: the producer called :meth:`abort`.
        """
        with self._cond:
            return self._await()

    def _await(self) -> bool:
        """Under the lock: wait for an item, the close or the abort; return whether an item
        waits.

        Raises:
            FeedAborted: the producer called :meth:`abort`.
        """
        while not (self._items or self._closed or self._aborted):
            self._cond.wait()
        if self._aborted:
            raise FeedAborted("the writer gave up")
        return bool(self._items)
