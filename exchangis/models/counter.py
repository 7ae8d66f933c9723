"""Monotonic counters of what the engine did, kept in the metadata database (``/metrics``).

A counter is written in the transaction of the record it counts (an execution's or a task's
first final status, a scheduler's fires): it counts each event once, whatever process dies and
whatever Redis loses, and equals what the durable record says. Deleting history never takes
anything off. Design: docs/design/metrics.md.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Double, Integer, String, TextClause, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from exchangis.db import Base

logger = logging.getLogger(__name__)

SHARDS = 16
"""Rows each counter is spread over (see ``Counter.shard``)."""


class Counter(Base):
    """One counter (a metric name and one set of label values) and its value."""

    __tablename__ = "exg_counter"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    labels: Mapped[str] = mapped_column(String(255), primary_key=True)
    """The label values as JSON with sorted keys (``{}``: none)."""
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    """One of ``SHARDS`` rows a counter is spread over (by the writing process), so that
    processes ending tasks at once do not queue for one row's lock; a read sums them."""
    value: Mapped[float] = mapped_column(Double, default=0.0)


@dataclass(frozen=True)
class Histogram:
    """A histogram's bucket bounds; each observation adds to one bucket row (``le`` its upper
    bound, ``+Inf`` past the last), its ``_sum`` and its ``_count``: the exposition makes the
    buckets cumulative."""

    name: str
    bounds: tuple[float, ...]

    def observe(self, seconds: float) -> list[tuple[str, dict[str, str], float]]:
        """Return the counter increments of one observation."""
        at = bisect.bisect_left(self.bounds, seconds)
        le = self.les()[at]
        return [
            (f"{self.name}_bucket", {"le": le}, 1.0),
            (f"{self.name}_sum", {}, max(seconds, 0.0)),
            (f"{self.name}_count", {}, 1.0),
        ]

    def les(self) -> list[str]:
        """Return the buckets' ``le`` label values, as Prometheus prints them (``0.25``,
        ``1.0``, ``+Inf``)."""
        return [*(repr(float(b)) for b in self.bounds), "+Inf"]


TASK_DURATION = Histogram(
    "exchangis_task_duration_seconds",
    (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0),
)
"""From a task's (last) launch to its final status."""
QUEUE_WAIT = Histogram(
    "exchangis_task_queue_wait_seconds", (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)
)
"""From a task's creation (its execution's submit) to its (last) launch by a worker."""

Increment = tuple[str, Mapping[str, str], float]
"""A metric name, its label values and how much to add."""


def label_key(labels: Mapping[str, str]) -> str:
    """Return the stored form of a label set."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def add(session: Session, increments: Iterable[Increment]) -> None:
    """Add to counters in ``session``'s transaction: one upsert statement of every row."""
    summed: dict[tuple[str, str], float] = {}
    for name, labels, amount in increments:
        key = (name, label_key(labels))
        summed[key] = summed.get(key, 0.0) + float(amount)
    if not summed:
        return
    shard = os.getpid() % SHARDS
    params: dict[str, Any] = {}
    for k, ((metric, labelled), value) in enumerate(sorted(summed.items())):
        params.update({f"n{k}": metric, f"l{k}": labelled, f"s{k}": shard, f"v{k}": value})
    session.execute(_upsert(len(summed)), params)


@functools.cache
def _upsert(rows: int) -> TextClause:
    """Return the statement that adds ``value`` to ``rows`` counter rows, inserting those
    missing: SQLite and PostgreSQL (the metadata databases) spell it alike. Plain SQL text:
    an expression statement was compiled anew on each call, which cost more than its
    writes."""
    values = ", ".join(f"(:n{k}, :l{k}, :s{k}, :v{k})" for k in range(rows))
    return text(
        f"INSERT INTO {Counter.__tablename__} (name, labels, shard, value) VALUES {values} "
        "ON CONFLICT (name, labels, shard) DO UPDATE "
        f"SET value = {Counter.__tablename__}.value + excluded.value"
    )


def read_all(session: Session) -> list[tuple[str, dict[str, str], float]]:
    """Return every counter: (name, labels, value), its shards summed."""
    rows = session.execute(
        select(Counter.name, Counter.labels, func.sum(Counter.value)).group_by(
            Counter.name, Counter.labels
        )
    ).all()
    return [(name, json.loads(labels), float(value)) for name, labels, value in rows]


def add_apart(sessions: sessionmaker[Session], increments: Iterable[Increment]) -> None:
    """Add to counters in a transaction of their own: for an event that writes no record of
    its own (a retry, a reaper's action). A failure is logged, not raised: the event happened
    whatever its count (the count may then miss it)."""
    try:
        with sessions.begin() as session:
            add(session, increments)
    except Exception:
        logger.warning("could not count %s", list(increments), exc_info=True)
