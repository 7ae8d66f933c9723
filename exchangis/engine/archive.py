"""Copy a completed execution's logs from Redis to the SQL archive (they outlive the keys);
delete records, and what the retention settings say is too old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from exchangis.models import JobExecution, LogLine, TaskExecution
from exchangis.runtime import Runtime
from exchangis.state.logs import LiveLog
from exchangis.state.machine import EXECUTION_FINAL

CHUNK = 5000


def execution_owner(eid: str) -> str:
    """Return the archive owner name of an execution's job log."""
    return f"exec:{eid}"


def task_owner(tid: int | str) -> str:
    """Return the archive owner name of a task's log."""
    return f"task:{tid}"


def archive_logs(rt: Runtime, eid: str, task_ids: list[int]) -> int:
    """Close the job log and every task log, then write them to the archive (replacing any
    earlier copy). Lines a late writer sends after this are dropped, never half-archived.

    Returns the number of lines archived.
    """
    logs = [(execution_owner(eid), rt.keys.execution_log(eid))]
    logs += [(task_owner(tid), rt.keys.task_log(tid)) for tid in task_ids]
    for _, key in logs:
        LiveLog(rt.redis, key).close()
    written = 0
    with rt.sessions.begin() as session:
        for owner, key in logs:
            session.execute(delete(LogLine).where(LogLine.owner == owner))
            live = LiveLog(rt.redis, key)
            position = 1
            while lines := live.fetch(position, CHUNK):
                session.execute(
                    insert(LogLine),
                    [{"owner": owner, "line_no": number, "text": text} for number, text in lines],
                )
                written += len(lines)
                position = lines[-1][0] + 1
    return written


def delete_record(session: Session, row: JobExecution) -> None:
    """Delete an execution's rows, its tasks' rows and its archived logs (in ``session``)."""
    task_ids = [t.id for t in row.tasks]
    owners = [execution_owner(row.id), *(task_owner(tid) for tid in task_ids)]
    session.execute(delete(LogLine).where(LogLine.owner.in_(owners)))
    session.delete(row)  # its tasks go with it (cascade)


RETENTION_BATCH = 200
"""Most executions one retention step looks at (a pass does a bounded amount of work)."""


def apply_retention(rt: Runtime) -> tuple[int, int]:
    """Delete completed executions older than ``history_retention_days`` (rows, task rows,
    archived logs) and the archived logs of those older than ``log_retention_days`` (0: keep).
    Age counts from completion, by the store's clock. Return (executions, log owners) removed.
    """
    now = datetime.fromtimestamp(rt.store.now_ms() / 1000, UTC).replace(tzinfo=None)
    final = [str(s) for s in EXECUTION_FINAL]
    removed = logs = 0
    with rt.sessions.begin() as session:
        if rt.settings.history_retention_days > 0:
            cutoff = now - timedelta(days=rt.settings.history_retention_days)
            for row in session.scalars(
                select(JobExecution)
                .where(JobExecution.status.in_(final), JobExecution.completed_time < cutoff)
                .limit(RETENTION_BATCH)
            ):
                delete_record(session, row)
                removed += 1
        if rt.settings.log_retention_days > 0:
            cutoff = now - timedelta(days=rt.settings.log_retention_days)
            old = (
                select(JobExecution.id)
                .where(
                    JobExecution.status.in_(final),
                    JobExecution.completed_time < cutoff,
                    JobExecution.logs_dropped.is_(False),
                )
                .limit(RETENTION_BATCH)
            )
            for eid in list(session.scalars(old)):
                tids = session.scalars(
                    select(TaskExecution.id).where(TaskExecution.execution_id == eid)
                ).all()
                owners = [execution_owner(eid), *(task_owner(t) for t in tids)]
                session.execute(delete(LogLine).where(LogLine.owner.in_(owners)))
                session.get_one(JobExecution, eid).logs_dropped = True
                logs += 1
    return removed, logs
