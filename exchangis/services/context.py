"""Contexts (runs) of plans: read, list, and wait until one is final.

A context's logs and results may wait for its end (``block``), as a plan's creation with
``sync`` does (``services.schedule``): both wait through ``wait_final``, which holds no worker
and lets at most ``context_block_waiters`` calls of this process wait at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from exchangis.errors import NotFoundError
from exchangis.models import Context, Job, JobExecution, Plan, TaskExecution, User
from exchangis.runtime import Runtime
from exchangis.schedule import contexts
from exchangis.schedule.contexts import RUNNING, clock
from exchangis.services import log as logs
from exchangis.services.access import Caller, Privilege, require, visible
from exchangis.services.execution import get_task_output

Row = TypeVarTuple("Row")

POLL_SECONDS = 0.5
"""How often a waiting call settles and re-reads its context."""
LOG_LINES = 10_000
"""Most lines of one log a context's logs answer carries: its first and last halves, with a
marker line between (the execution's log endpoints page through all of it)."""
LOG_PAGE = 5_000
RESULT_COLUMNS = (
    ("records_read", "integer"),
    ("records_written", "integer"),
    ("records_error", "integer"),
    ("bytes", "integer"),
    ("sink", "string"),
    ("status", "string"),
    ("error", "string"),
)
"""The columns of a task's result row (the seed's dataset shape)."""


# -- waiting for a context to end ---------------------------------------------------------------
class _Waiters:
    """The calls of this process waiting for a context to end, at most ``limit`` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def slot(self, limit: int) -> Iterator[bool]:
        """Yield whether a waiting slot was free (and hold it until the block ends)."""
        with self._lock:
            got = self._count < limit
            self._count += got
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self._count -= 1


_WAITERS = _Waiters()


def _is_final(rt: Runtime, context_id: int) -> bool:
    with rt.sessions() as session:
        return bool(session.scalar(select(Context.final).where(Context.id == context_id)))


def wait_final(rt: Runtime, context_id: int, seconds: float) -> bool:
    """Wait (settling it every ``POLL_SECONDS``) until the context is final, at most
    ``seconds``; return whether it is. Holds no worker, and answers at once when
    ``context_block_waiters`` calls of this process wait already."""
    if _is_final(rt, context_id) or seconds <= 0:
        return _is_final(rt, context_id)
    with _WAITERS.slot(rt.settings.context_block_waiters) as got:
        if not got:
            return False
        deadline = time.monotonic() + seconds
        while True:
            contexts.settle(rt, context_id)
            if _is_final(rt, context_id):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_SECONDS, left))


# -- shared with plans: filters, users, live status ---------------------------------------------
def shared_filters(session: Session, caller: Caller, query: Mapping[str, Any]) -> list[Any]:
    """The filters plans and contexts share: on the job (visible, ``q``, its creators), then on
    the plan (``entityKey``, ``entityGroup``)."""
    where: list[ColumnElement[bool]] = [visible(session, caller, Job.project_name)]
    if query.get("q"):
        where.append(Job.job_name.contains(query["q"], autoescape=True))
    if query.get("entity_created_by_list"):
        where.append(Job.create_user.in_(query["entity_created_by_list"]))
    if query.get("entity_key"):
        where.append(Plan.entity_key == query["entity_key"])
    if query.get("entity_group"):
        where.append(Plan.entity_group == query["entity_group"])
    return where


def named_users(session: Session, names: Select[Any]) -> list[dict[str, Any]]:
    """Return ``{id, name}`` of each named user (id None: a name no local user holds, such as
    one a trusted proxy named), ordered by name."""
    subquery = names.subquery()
    name = subquery.c[0]
    rows = session.execute(
        select(User.id, name)
        .select_from(subquery)
        .outerjoin(User, User.name == name)
        .order_by(name)
    ).all()
    return [{"id": user_id, "name": user_name} for user_id, user_name in rows]


def run_json(rt: Runtime, context: Context, now: datetime) -> dict[str, Any]:
    """A context's live status and times: ``heartbeatTime`` is now while it runs."""
    job_status, execution_status = contexts.view(rt, context)
    running = job_status == RUNNING
    end = context.stop_at or (now if running else None)
    cost = int((end - context.start_at).total_seconds()) if end and context.start_at else None
    return {
        "job_status": job_status,
        "execution_status": execution_status,
        "start_at": context.start_at,
        "stop_at": context.stop_at,
        "heartbeat_time": now if running else context.stop_at,
        "cost_time": max(cost, 0) if cost is not None else None,
    }


# -- contexts -----------------------------------------------------------------------------------
def _context_filters(session: Session, caller: Caller, query: Mapping[str, Any]) -> list[Any]:
    where = shared_filters(session, caller, query)
    if query.get("job_status_list"):
        where.append(Context.job_status.in_(query["job_status_list"]))
    if query.get("job_status"):
        where.append(Context.job_status == query["job_status"])
    if query.get("plan_id") is not None:
        where.append(Context.plan_id == query["plan_id"])
    return where


def _joined(stmt: Select[*Row]) -> Select[*Row]:
    """Join a statement on contexts to their plans and jobs."""
    return stmt.join(Plan, Plan.id == Context.plan_id).join(Job, Job.id == Context.job_id)


def list_contexts(rt: Runtime, caller: Caller, query: Mapping[str, Any]) -> dict[str, Any]:
    """A page of the contexts the caller may view, newest first."""
    with rt.sessions() as session:
        where = _context_filters(session, caller, query)
        total = session.scalar(_joined(select(func.count(Context.id))).where(*where)) or 0
        rows = session.execute(
            _joined(select(Context, Plan, Job))
            .where(*where)
            .order_by(Context.id.desc())
            .offset(query.get("offset", 0))
            .limit(query.get("limit", 10))
        ).all()
        now = clock(rt)
        items = [_context_json(rt, c, p, j, now) for c, p, j in rows]
    return {"list": items, "total_hits": total, "offset": query.get("offset", 0)}


def context_users(rt: Runtime, caller: Caller, query: Mapping[str, Any]) -> dict[str, Any]:
    """The users whose plans made the contexts the list would show: id and name only."""
    with rt.sessions() as session:
        names = (
            _joined(select(Context.created_by))
            .where(*_context_filters(session, caller, query))
            .distinct()
        )
        return {"list": named_users(session, names)}


def _context_row(session: Session, caller: Caller, context_id: int) -> tuple[Context, Plan, Job]:
    """Return a context the caller may view, with its plan and job (404 otherwise)."""
    row = session.execute(
        _joined(select(Context, Plan, Job)).where(Context.id == context_id)
    ).first()
    if row is None:
        raise NotFoundError(f"context {context_id} does not exist")
    context, plan, job = row
    require(session, caller, job.project_name, Privilege.VIEW, f"context {context_id}")
    return context, plan, job


def get_context(rt: Runtime, caller: Caller, context_id: int) -> dict[str, Any]:
    """Return a context the caller may view, its status live."""
    with rt.sessions() as session:
        context, plan, job = _context_row(session, caller, context_id)
        return _context_json(rt, context, plan, job, clock(rt))


def _context_json(
    rt: Runtime, context: Context, plan: Plan, job: Job, now: datetime
) -> dict[str, Any]:
    return {
        "id": context.id,
        "plan_id": context.plan_id,
        "plan_item_id": context.plan_item_id,
        "plan_item": context.plan_item,
        "entity_group": plan.entity_group,
        "entity_key": plan.entity_key,
        "title": job.job_name,
        "job_execution_id": context.job_execution_id,
        "scheduled_at": context.scheduled_at,
        "created_at": context.created_at,
        "created_by": context.created_by,
        "exec_detail": context.exec_detail,
        "skip_reason": context.skip_reason,
        "triggered_by": context.triggered_by,
        "attempt": context.attempt,
        "error": context.error,
        "notifications": context.notifications,
        **run_json(rt, context, now),
    }


def _awaited(
    rt: Runtime, caller: Caller, context_id: int, block: bool
) -> tuple[str | None, list[int], bool]:
    """Check the caller may view the context; wait for its end when ``block``; return its
    execution id (None: it never ran), its task ids, and whether it is final."""
    with rt.sessions() as session:
        _context_row(session, caller, context_id)
    if block:
        wait_final(rt, context_id, rt.settings.context_block_seconds)
    with rt.sessions() as session:
        context = session.get(Context, context_id)
        if context is None:
            raise NotFoundError(f"context {context_id} does not exist")
        done, eid = context.final, context.job_execution_id
        if context.skip_reason or eid is None or session.get(JobExecution, eid) is None:
            return None, [], done
        tasks = session.scalars(
            select(TaskExecution.id)
            .where(TaskExecution.execution_id == eid)
            .order_by(TaskExecution.position, TaskExecution.id)
        )
        return eid, list(tasks), done


def _lines(read: Callable[[dict[str, Any]], dict[str, Any]]) -> list[str]:
    """Return a log's lines through its log endpoint's service: all of them, or the first and
    last ``LOG_LINES / 2`` of a longer log with a marker line between."""

    def page(start: int, size: int) -> tuple[list[str], int]:
        answer = read({"from_line": start, "page_size": size})
        text = answer["logs"].get("all")
        return (text.split("\n") if text is not None else []), int(answer["end_line"])

    last = int(read({"last_rows": 1})["end_line"])
    half = LOG_LINES // 2
    lines: list[str] = []
    start, end = 1, last if last <= LOG_LINES else half
    while start <= end:
        got, end_line = page(start, min(LOG_PAGE, end - start + 1))
        if end_line < start:
            break
        lines += got
        start = end_line + 1
    if last > LOG_LINES:
        tail = read({"last_rows": half})
        text = tail["logs"].get("all")
        first_tail = int(tail["end_line"]) - half + 1
        lines.append(f"... lines {half + 1}-{first_tail - 1} are left out here ...")
        lines += text.split("\n") if text is not None else []
    return lines


def context_logs(rt: Runtime, caller: Caller, context_id: int, block: bool) -> dict[str, Any]:
    """The job log (``job``) and each task's log (its id) of a context's execution."""
    eid, tasks, done = _awaited(rt, caller, context_id, block)
    if eid is None:
        return {"list": [], "done": done}
    found = [{"sub_key": "job", "logs": _lines(_log_reader(rt, caller, eid, None))}]
    for tid in tasks:
        found.append({"sub_key": str(tid), "logs": _lines(_log_reader(rt, caller, eid, tid))})
    return {"list": found, "done": done}


def _log_reader(
    rt: Runtime, caller: Caller, eid: str, tid: int | None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Return a reader of the execution's job log (``tid`` None) or of one task's log."""
    if tid is None:
        return lambda query: logs.get_job_log(rt, caller, eid, query)
    return lambda query: logs.get_task_log(rt, caller, tid, eid, query)


def context_results(rt: Runtime, caller: Caller, context_id: int, block: bool) -> dict[str, Any]:
    """Each task's result of a context's execution, as a one-row dataset."""
    eid, tasks, done = _awaited(rt, caller, context_id, block)
    if eid is None:
        return {"list": [], "done": done}
    found = []
    for tid in tasks:
        out = get_task_output(rt, caller, tid, eid)
        row = [
            out["read_records"],
            out["written_records"],
            out["error_records"],
            out["bytes"],
            out["sink"],
            out["status"],
            out["error"],
        ]
        schema = [{"name": name, "type": kind} for name, kind in RESULT_COLUMNS]
        found.append({"sub_key": str(tid), "result": {"schema": schema, "data": [row]}})
    return {"list": found, "done": done}
