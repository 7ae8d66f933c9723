"""E7 (the execution history list) and E8 (delete a completed execution)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select

from exchangis.engine import stages
from exchangis.engine.archive import delete_record
from exchangis.engine.finalize import execute_node, execution_progress, last_update_ms
from exchangis.errors import ConflictError, NotFoundError
from exchangis.models import JobExecution
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, require_execution, visible
from exchangis.state.machine import EXECUTION_FINAL, completed

TIME_FILTERS = {
    0: timedelta(days=1),
    1: timedelta(weeks=1),
    2: timedelta(days=31),
    3: timedelta(days=366),
}
"""``timeFilter``: 0 day, 1 week, 2 month, 3 year (4: all)."""

SORTS = {
    "createTime": JobExecution.create_time,
    "lastUpdateTime": JobExecution.last_update_time,
    "name": JobExecution.job_name,
    "status": JobExecution.status,
    "duration": JobExecution.duration_ms,
}


def _epoch(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def _filtered(query: Mapping[str, Any], now: datetime) -> Select[JobExecution]:
    stmt = select(JobExecution)
    if query.get("job_execution_id"):
        stmt = stmt.where(JobExecution.id == query["job_execution_id"])
    if query.get("job_name"):
        stmt = stmt.where(JobExecution.job_name.contains(query["job_name"], autoescape=True))
    if query.get("project_name"):
        stmt = stmt.where(JobExecution.project_name == query["project_name"])
    statuses = list(query.get("statuses") or [])
    if statuses:
        stmt = stmt.where(JobExecution.status.in_(statuses))
    if query.get("key"):
        key = query["key"]
        stmt = stmt.where(
            or_(JobExecution.id == key, JobExecution.job_name.contains(key, autoescape=True))
        )
    launched = func.coalesce(JobExecution.launch_time, JobExecution.create_time)
    if query.get("launch_start_time") is not None:
        stmt = stmt.where(launched >= _epoch(query["launch_start_time"]))
    if query.get("launch_end_time") is not None:
        stmt = stmt.where(launched <= _epoch(query["launch_end_time"]))
    span = TIME_FILTERS.get(query.get("time_filter", 4))
    if span is not None:
        stmt = stmt.where(JobExecution.create_time >= now - span)
    return stmt


def list_executions(rt: Runtime, caller: Caller, query: Mapping[str, Any]) -> dict[str, Any]:
    """E7: a page of the executions the caller may view, filtered and sorted in SQL; live
    status for running ones."""
    now = datetime.now(UTC).replace(tzinfo=None)
    stmt = _filtered(query, now)
    column = SORTS[query.get("sort_by", "createTime")]
    order = column.desc() if query.get("reverse", True) else column.asc()
    tiebreak = JobExecution.id.desc() if query.get("reverse", True) else JobExecution.id.asc()
    with rt.sessions() as session:
        stmt = stmt.where(visible(session, caller, JobExecution.project_name))
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(order.nulls_last(), tiebreak)
            .offset((query.get("current", 1) - 1) * query.get("size", 10))
            .limit(query.get("size", 10))
        ).all()
        items = [_item(rt, row, now) for row in rows]
    return {"job_list": items, "total": total}


def _item(rt: Runtime, row: JobExecution, now: datetime) -> dict[str, Any]:
    status, progress = row.status, row.progress
    duration = row.duration_ms or 0
    flow = row.flow or 0
    node, updated = row.execute_node or "", row.last_update_time
    if row.status not in EXECUTION_FINAL:  # live: Redis knows better than the row
        live = rt.store.execution(row.id)
        if live is not None:
            tasks = rt.store.tasks(row.id)
            status = live["status"]
            progress = execution_progress(tasks)
            flow = int(sum(float(t.get("flow") or 0) for t in tasks))
            node = execute_node(tasks) or node
            newest = last_update_ms(live, tasks)
            if newest:
                updated = max(updated, _epoch(newest)) if updated else _epoch(newest)
        if row.launch_time:
            duration = int((now - row.launch_time).total_seconds() * 1000)
    return {
        "job_execution_id": row.id,
        "job_id": row.job_id,
        "name": row.job_name,
        "project_name": row.project_name,
        "status": status,
        "progress": progress,
        "create_time": row.create_time,
        "last_update_time": updated,
        "launch_time": row.launch_time,
        "duration": duration,
        "flow": flow,
        "execute_node": node,
        "create_user": row.create_user,
        "execute_user": row.execute_user,
        "trigger_type": row.trigger_type,
    }


def delete_execution(rt: Runtime, caller: Caller, eid: str) -> dict[str, Any]:
    """E8: delete a completed execution: its rows, live keys and archived logs.

    Raises:
        NotFoundError: no such execution. ConflictError: it is not completed.
    """
    require_execution(rt, caller, eid, Privilege.EXECUTE)
    with rt.sessions.begin() as session:
        row = session.get(JobExecution, eid[:64])
        if row is None:
            raise NotFoundError(f"job execution {eid[:64]} does not exist")
        live = rt.store.execution(eid)
        status = live["status"] if live else row.status
        state = live or {"status": row.status, "persisted": "1"}
        tasks = rt.store.tasks(eid) if live else [{"status": t.status} for t in row.tasks]
        if not completed(state, tasks):
            raise ConflictError(
                f"job execution {eid} is {status}: only completed executions "
                "can be deleted (kill it first)"
            )
        task_ids = [t.id for t in row.tasks]
        plans = [dict(t.plan) for t in row.tasks]
        delete_record(session, row)
    rt.store.drop_execution(eid, task_ids)
    stages.request_cleanup(rt, eid, plans, published=True)  # a worker drops them
    return {"job_execution_id": eid}
