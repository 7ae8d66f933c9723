"""Pause, resume, restart and discard executions, one at a time or in bulk."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from exchangis.engine import control
from exchangis.errors import ConflictError, InvalidInputError, NotFoundError
from exchangis.models import JobExecution
from exchangis.runtime import Runtime
from exchangis.services.execution import kill_execution, load_execution

BULK_LIMIT = 1000


def _discard(rt: Runtime, eid: str, user: str) -> str:
    return str(kill_execution(rt, eid, user)["status"])


ACTIONS: dict[str, Callable[[Runtime, str, str], str]] = {
    "PAUSE": control.pause,
    "RESUME": control.resume,
    "RESTART": control.restart,
    "DISCARD": _discard,
}
"""Bulk action names (the task-management center's) and what each does to one execution."""


def control_execution(rt: Runtime, eid: str, action: str, user: str) -> dict[str, Any]:
    """Apply one action to one execution; return ``{job_execution_id, status}``.

    Raises:
        NotFoundError: no such execution. ConflictError: its state does not allow the action.
    """
    if len(eid) > 64:
        raise NotFoundError(f"job execution {eid[:64]}... does not exist")
    if rt.store.execution(eid) is None:
        load_execution(rt, eid)  # 404 when it does not exist at all
    return {"job_execution_id": eid, "status": ACTIONS[action](rt, eid, user)}


def bulk_control(rt: Runtime, body: Mapping[str, Any], user: str) -> list[dict[str, Any]]:
    """Apply an action to executions named by id or by project; report each outcome."""
    ids = list(dict.fromkeys(body.get("job_execution_ids") or []))
    if not ids and not body.get("project_name"):
        raise InvalidInputError(
            "jobExecutionIds or projectName is required",
            errors={"jobExecutionIds": ["give ids or a projectName"]},
        )
    if not ids:
        with rt.sessions() as session:
            ids = list(
                session.scalars(
                    select(JobExecution.id)
                    .where(JobExecution.project_name == body["project_name"])
                    .order_by(JobExecution.create_time.desc())
                    .limit(BULK_LIMIT)
                )
            )
    wanted = set(body.get("statuses") or [])
    results = []
    for eid in ids[:BULK_LIMIT]:
        result: dict[str, Any] = {"job_execution_id": eid, "action": body["action"]}
        try:
            if wanted:
                execution, _ = load_execution(rt, eid)
                if execution["status"] not in wanted:
                    results.append(
                        {
                            **result,
                            "ok": False,
                            "status": execution["status"],
                            "message": f"skipped: it is {execution['status']}",
                        }
                    )
                    continue
            done = control_execution(rt, eid, body["action"], user)
            results.append({**result, "ok": True, "status": done["status"], "message": "done"})
        except (NotFoundError, ConflictError) as exc:
            results.append({**result, "ok": False, "status": None, "message": exc.message})
    return results
