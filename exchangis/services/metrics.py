"""What ``/metrics`` reports, read from the stores: the counters and unfinished executions
from the metadata database, the live figures from Redis (api/metrics.py formats them)."""

from __future__ import annotations

from sqlalchemy import select

from exchangis.engine.finalize import NOT_FINAL
from exchangis.models import JobExecution, counter
from exchangis.runtime import Runtime
from exchangis.state.machine import TaskStatus
from exchangis.state.store import Gauges

WAITING = (TaskStatus.INITED.value, TaskStatus.SCHEDULED.value)
"""The statuses of a task sent (or about to be) and not yet taken by a worker."""

Counted = list[tuple[str, dict[str, str], float]]


def durable_figures(rt: Runtime) -> tuple[Counted, list[str]]:
    """Return every counter (name, labels, value) and the ids of the executions the durable
    record holds as not final."""

    def read() -> tuple[Counted, list[str]]:
        with rt.sessions() as session:
            rows = counter.read_all(session)
            unfinished = session.scalars(
                select(JobExecution.id).where(JobExecution.status.in_(list(NOT_FINAL)))
            ).all()
        return rows, list(unfinished)

    return rt.durable(read)


def live_figures(rt: Runtime, unfinished: list[str]) -> Gauges:
    """Return the live state's figures now (tasks of ``unfinished`` executions waiting)."""
    return rt.store.gauges(unfinished, WAITING)
