"""E5 and T2: page, filter and tail job and task logs, live from Redis or from the archive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from exchangis.engine.archive import execution_owner, task_owner
from exchangis.errors import NotFoundError
from exchangis.models import JobExecution, LogLine, TaskExecution
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, require_execution
from exchangis.state.logs import Line, LiveLog, read_page
from exchangis.state.machine import EXECUTION_FINAL


class ArchiveLog:
    """A log read from the SQL archive (the same numbers and text as it had live)."""

    def __init__(self, rt: Runtime, owner: str) -> None:
        self.rt = rt
        self.owner = owner

    def last_line(self) -> int:
        """Return the number of the last archived line."""
        with self.rt.sessions() as session:
            last = session.scalar(
                select(func.max(LogLine.line_no)).where(LogLine.owner == self.owner)
            )
        return int(last or 0)

    def fetch(self, start: int, limit: int) -> list[Line]:
        """Return up to ``limit`` lines numbered ``start`` or more."""
        stmt = (
            select(LogLine.line_no, LogLine.text)
            .where(LogLine.owner == self.owner, LogLine.line_no >= start)
            .order_by(LogLine.line_no)
            .limit(limit)
        )
        with self.rt.sessions() as session:
            return [(int(n), str(t)) for n, t in session.execute(stmt)]

    def last(self, count: int) -> list[Line]:
        """Return the last ``count`` lines."""
        stmt = (
            select(LogLine.line_no, LogLine.text)
            .where(LogLine.owner == self.owner)
            .order_by(LogLine.line_no.desc())
            .limit(count)
        )
        with self.rt.sessions() as session:
            return [(int(n), str(t)) for n, t in reversed(session.execute(stmt).all())]


def _words(value: str | None) -> list[str]:
    return [word for word in (value or "").split(",") if word]


def _answer(rt: Runtime, source: Any, query: Mapping[str, Any], completed: bool) -> dict[str, Any]:
    page = read_page(
        source,
        from_line=query.get("from_line", 1),
        page_size=query.get("page_size", 100),
        only=_words(query.get("only_keywords")),
        ignore=_words(query.get("ignore_keywords")),
        last_rows=query.get("last_rows") or 0,
        completed=completed,
        scan_limit=rt.settings.log_scan_lines,
    )
    return {"end_line": page.end_line, "is_end": page.is_end, "logs": page.logs()}


def get_job_log(rt: Runtime, caller: Caller, eid: str, query: Mapping[str, Any]) -> dict[str, Any]:
    """E5: a page of an execution's job log (live until archived, then from the archive).

    Raises:
        NotFoundError: the id names no execution the caller may view.
    """
    require_execution(rt, caller, eid, Privilege.VIEW)
    execution = rt.store.execution(eid) if len(eid) <= 64 else None
    if execution is not None and not execution.get("persisted"):
        live = LiveLog(rt.redis, rt.keys.execution_log(eid))
        return _answer(rt, live, query, completed=False)
    with rt.sessions() as session:
        row = session.get(JobExecution, eid[:64])
        if row is None:
            raise NotFoundError(f"job execution {eid[:64]} does not exist")
        completed = row.status in EXECUTION_FINAL
    return _answer(rt, ArchiveLog(rt, execution_owner(eid)), query, completed)


def get_task_log(
    rt: Runtime, caller: Caller, tid: int, eid: str, query: Mapping[str, Any]
) -> dict[str, Any]:
    """T2: a page of a task's log; the task must belong to ``eid``.

    Raises:
        NotFoundError: no such task in an execution the caller may view.
    """
    require_execution(rt, caller, eid, Privilege.VIEW)
    task = rt.store.task(tid)
    if task is not None and task.get("execution_id") != eid:
        raise NotFoundError(f"task {tid} is not a task of job execution {eid}")
    execution = rt.store.execution(eid) if task is not None else None
    if execution is not None and not execution.get("persisted"):
        # a final task's log can still take a line or two until the execution is archived
        live = LiveLog(rt.redis, rt.keys.task_log(tid))
        return _answer(rt, live, query, completed=False)
    with rt.sessions() as session:
        row = session.get(TaskExecution, tid)
        if row is None or row.execution_id != eid:
            raise NotFoundError(f"task {tid} is not a task of job execution {eid}")
        completed = row.execution.status in EXECUTION_FINAL
    return _answer(rt, ArchiveLog(rt, task_owner(tid)), query, completed)
