"""Writing behind: a sink's bulk statements run on a thread of their own while the task's thread
reads and encodes the next batches.

A SQL sink built on :class:`WriteBehindSink` hands each batch, encoded, to a
:class:`Loader`: a thread that runs one bulk statement after another (MySQL's
``LOAD DATA LOCAL``, PostgreSQL's binary ``COPY``), each taking the pieces fed to it up to
an :class:`End`. At most ``queue_bytes`` wait between the threads (a :class:`~exchangis.
connectors.bulk.Feed`), so memory stays flat however far ahead the reader runs. A statement
takes ``load_bytes`` at most; its rows count once it has ended well. The batches of a
statement in flight are kept until then, so that a statement that failed on a value can be
written again another way (:meth:`WriteBehindSink._redo`).

Only the loader's thread uses the sink's connection while statements are in flight; the task's
thread uses it again after :meth:`WriteBehindSink._drain` (or an abort) has joined that thread.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa

from exchangis.connectors.base import Endpoint
from exchangis.connectors.bulk import Feed
from exchangis.connectors.sql_sink import SqlSink
from exchangis.errors import RecordError
from exchangis.threads import SPARES

log = logging.getLogger(__name__)

T = TypeVar("T")

LOAD_BYTES = 4 * 2**20
"""Encoded bytes one statement of a sink takes at most: its batches are kept until it has
ended well (a statement that failed on a value is undone and its batches written again)."""
QUEUE_BYTES = 2 * 2**20
"""Encoded bytes that wait for the server at most: a writer ahead of it waits beyond."""
ABORT_SECONDS = 10.0
"""Seconds an aborted statement may take to end before it is cut (a stalled server)."""


@dataclass
class Part:
    """The batches of one statement, kept until it has ended well."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class End:
    """The end of one statement's data in a loader's feed, and the rows it must take."""

    rows: int


@dataclass(frozen=True)
class Outcome:
    """How one statement of a loader ended."""

    rows: int
    """Rows sent (-1: its data did not end as it should)."""
    loaded: int
    warnings: int

    @property
    def ok(self) -> bool:
        """Return whether the statement took every row sent without a warning."""
        return self.loaded == self.rows and not self.warnings


Statement = Callable[[Iterator[Any]], tuple[int, int]]
"""Runs one statement over the pieces it is given; returns the rows it took and its warnings."""


class Loader(Generic[T]):
    """Statements that take pieces fed to them one after another, from a thread of their own
    (a spare one of the process, :data:`~exchangis.threads.SPARES`).

    The writer puts pieces into ``feed`` and ends each statement's data with an :class:`End`;
    ``outcomes`` are the ended statements', in order. The thread stops after a statement that
    warned, took fewer rows than sent, or failed (``error``). It never outlives
    ``feed.close()`` and a join, or :meth:`abort`.
    """

    def __init__(
        self, statement: Statement, queue_bytes: int, name: str, cut: Callable[[], None]
    ) -> None:
        self.statement = statement
        self.cut = cut
        """Ends the session under a statement the server does not end (a stalled server)."""
        self.feed: Feed[T | End] = Feed(queue_bytes)
        self.outcomes: deque[Outcome] = deque()
        self.error: BaseException | None = None
        self.thread = SPARES.start(self._run, name)

    def _run(self) -> None:
        try:
            while self.feed.wait():
                ends: list[End] = []
                loaded, warnings = self.statement(self._data(ends))
                outcome = Outcome(ends[0].rows if ends else -1, loaded, warnings)
                self.outcomes.append(outcome)
                if not outcome.ok:
                    return
        except BaseException as exc:  # handed over to the writer's thread (WriteBehindSink._drain)
            self.error = exc
        finally:
            self.feed.stop()

    def _data(self, ends: list[End]) -> Iterator[T]:
        """Yield one statement's data: the feed's pieces up to the next :class:`End`."""
        while True:
            item = self.feed.get()
            if item is None:
                return
            if isinstance(item, End):
                ends.append(item)
                return
            yield item

    def failed(self) -> bool:
        """Return whether the thread stopped (a statement failed, or the writer closed it)."""
        return bool(self.outcomes and not self.outcomes[0].ok) or not self.thread.is_alive()

    def abort(self, seconds: float) -> bool:
        """End the statement in flight where it is (its rows go with the transaction) and the
        thread; return False when it did not end within ``seconds`` and was cut instead (the
        sink's :meth:`~WriteBehindSink._cut`)."""
        self.feed.abort()
        self.thread.join(seconds)
        if not self.thread.is_alive():
            return True
        try:
            self.cut()
        except Exception:
            log.debug("cutting a stalled statement failed", exc_info=True)
        self.thread.join()
        return False


class WriteBehindSink(SqlSink):
    """A SQL sink whose bulk statements run on a :class:`Loader` after :meth:`defer_writes`,
    while the caller reads the next batches.

    The sink provides :meth:`_behind_item` (a batch encoded for the loader, or None to write it
    at once), :meth:`_statement` (what the loader runs), :meth:`_cut` and :meth:`_redo`.
    """

    load_bytes: ClassVar[int] = LOAD_BYTES
    """Encoded bytes one statement takes at most (see ``LOAD_BYTES``)."""
    queue_bytes: ClassVar[int] = QUEUE_BYTES
    """Encoded bytes waiting for the server at most (see ``QUEUE_BYTES``)."""
    abort_seconds: ClassVar[float] = ABORT_SECONDS
    """Seconds an aborted statement may take to end (see ``ABORT_SECONDS``)."""
    loader_thread: ClassVar[str] = "exchangis-load"
    """Name of the loader's thread."""
    keeps_batches: ClassVar[bool] = True
    """Whether a statement's batches are kept until it has ended well, for :meth:`_redo` to
    write them again (False: a failed statement fails the write; no batch is kept)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._behind = False
        self._loader: Loader[Any] | None = None
        self._parts: deque[Part] = deque()
        """Batches of the statements in flight whose data has ended, in order."""
        self._part = Part()
        """Batches of the statement in flight whose data goes on."""

    # --- what the sink provides ---------------------------------------------------------------

    def _behind_item(self, batch: pa.RecordBatch) -> tuple[Any, int] | None:
        """Return ``batch`` encoded for the loader and its size in bytes; None: write it at once
        (after the statements in flight)."""
        raise NotImplementedError

    def _statement(self, pieces: Iterator[Any]) -> tuple[int, int]:
        """Run one statement over ``pieces`` on the loader's thread; return the rows it took
        and the warnings it raised."""
        raise NotImplementedError

    def _cut(self) -> None:
        """End a statement the server does not end: cancel it, or cut the session under it
        (then :meth:`_session_lost` says so)."""
        raise NotImplementedError

    def _redo(self, redo: list[Part], failed: Outcome | None, error: BaseException | None) -> int:
        """Handle the first statement that failed on a value (``failed``: it ended, short or
        with warnings; else ``error``) and the parts after it; return the rows written."""
        raise NotImplementedError

    def _session_lost(self) -> bool:
        """Return whether the sink's session is gone (its transaction with it)."""
        return False

    # --- the write path -----------------------------------------------------------------------

    def defer_writes(self) -> None:
        """Let :meth:`write` return before its batch is written, so that the caller reads and
        encodes the next batch while the server takes this one: its rows count in a later
        :meth:`write`, or in :meth:`flush`, which the caller calls after its last batch
        (:meth:`commit` flushes too, but then nobody gets the count and the refused rows)."""
        self._behind = True

    def write(self, batch: pa.RecordBatch) -> int:
        """Write ``batch`` inside the open transaction; return the rows this call wrote.

        After :meth:`defer_writes`, on the bulk path, the batch joins the statements in flight
        and its rows count once its statement has ended well: in a later call, or in
        :meth:`flush`. Other batches are written at once (after those in flight).
        """
        item = None
        if self._behind and self._in_txn and batch.num_rows:
            item = self._behind_item(batch)
        if item is None:
            return self._drain() + super().write(batch)
        data, size = item
        written = self._settle()
        if self._loader is None:
            self._loader = Loader(self._statement, self.queue_bytes, self.loader_thread, self._cut)
        if not self._loader.feed.put(data, size):  # a statement failed: undo and redo it
            return written + self._drain() + super().write(batch)
        part = self._part
        if self.keeps_batches:
            part.batches.append(batch)
        part.rows += batch.num_rows
        part.bytes += size
        if part.bytes >= self.load_bytes:
            self._end_part()
        return written

    def flush(self) -> int:
        """Wait for the statements in flight; return the rows they wrote (the rows they refused
        are in ``take_rejects``)."""
        return self._drain()

    def _end_part(self) -> None:
        """End the data of the statement that takes the batches written since the last end."""
        part = self._part
        if not part.rows:
            return
        self._part = Part()
        self._parts.append(part)
        if self._loader is not None:
            self._loader.feed.put(End(part.rows), 0)  # False: stopped (_drain redoes the part)

    def _settle(self) -> int:
        """Return the rows of the statements that ended well since the last call (no wait);
        after a failed statement, :meth:`_drain` everything in flight."""
        loader = self._loader
        if loader is None:
            return 0
        written = 0
        while loader.outcomes and loader.outcomes[0].ok:
            loader.outcomes.popleft()
            written += self._count(self._parts.popleft())
        if loader.failed():
            written += self._drain()
        return written

    def _count(self, part: Part) -> int:
        self._written += part.rows
        return part.rows

    def _drain(self) -> int:
        """End the statements in flight, wait for them; return the rows written.

        The parts from the first statement that failed on a value go to :meth:`_redo`; a
        statement's other errors are raised as connector errors.
        """
        loader = self._loader
        if loader is None:
            return 0
        self._end_part()
        loader.feed.close()
        loader.thread.join()
        self._loader = None
        written = 0
        redo: list[Part] = []
        for part in self._parts:
            if not redo and loader.outcomes and loader.outcomes[0].ok:
                loader.outcomes.popleft()
                written += self._count(part)
            else:
                redo.append(part)
        self._parts.clear()
        if loader.error is not None and self._classify(loader.error) is not RecordError:
            if self._session_lost():
                self._in_txn = False
            with self._errors(f"write {self.endpoint.describe()}"):
                raise loader.error
        if not redo:
            return written
        failed = loader.outcomes[0] if loader.outcomes else None
        return written + self._redo(redo, failed, loader.error)

    def _abort_load(self) -> None:
        """Stop the statement in flight (its rows go with the transaction) and its thread."""
        loader, self._loader = self._loader, None
        self._parts.clear()
        self._part = Part()
        if loader is not None and not loader.abort(self.abort_seconds):
            lost = self._session_lost()
            log.warning(
                "a bulk statement did not end within %ss of its abort: it was cut (%s) on %s",
                self.abort_seconds,
                "the session is gone, the server rolls its transaction back"
                if lost
                else "cancelled",
                self.endpoint.describe(),
            )
            if lost:
                self._in_txn = False  # nothing left to roll back on this side

    def commit(self) -> None:
        """Finish the statements in flight, then commit.

        The rows they refused are in ``take_rejects`` (call :meth:`flush` first to count them
        before committing).
        """
        if self._in_txn:
            self._drain()
        super().commit()

    def rollback(self) -> None:
        """Stop the statement in flight and roll the transaction back."""
        self._abort_load()
        super().rollback()

    def close(self) -> None:
        """Stop the statement in flight, roll back anything uncommitted and close."""
        try:
            self._abort_load()
        finally:
            super().close()
