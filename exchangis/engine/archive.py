"""Copy a completed execution's logs from Redis to the SQL archive: they outlive the keys."""

from __future__ import annotations

from sqlalchemy import delete, insert

from exchangis.models import LogLine
from exchangis.runtime import Runtime
from exchangis.state.logs import LiveLog

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
