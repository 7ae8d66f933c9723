"""Pause, resume, restart and discard executions, one at a time or in bulk."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from exchangis.engine import control
from exchangis.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from exchangis.models import JobExecution
from exchangis.runtime import Runtime
from exchangis.services.access import Caller, Privilege, require, require_execution
from exchangis.services.execution import cancel, load_execution

BULK_LIMIT = 1000


def _discard(rt: Runtime, eid: str, user: str) -> str:
    return str(cancel(rt, eid, user)["status"])


ACTIONS: dict[str, Callable[[Runtime, str, str], str]] = {
    "PAUSE": control.pause,
    "RESUME": control.resume,
    "RESTART": control.restart,
    "DISCARD": _discard,
}
"""Bulk action names (the task-management center's) and what each does to one execution."""


def control_execution(rt: Runtime, caller: Caller, eid: str, action: str) -> dict[str, Any]:
    """Apply one action to one execution; return ``{job_execution_id, status}``.

    Raises:
        NotFoundError: no such execution (or not one the caller may view). ForbiddenError: the
        caller lacks execute on its project. ConflictError: its state does not allow the action.
    """
    require_execution(rt, caller, eid, Privilege.EXECUTE)  # 404 when it does not exist
    return {"job_execution_id": eid, "status": ACTIONS[action](rt, eid, caller.name)}


def bulk_control(rt: Runtime, caller: Caller, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Apply an action to executions named by id or by project; report each outcome (an
    execution the caller may not control is one more outcome, not an error of the request).

    Raises:
        NotFoundError / ForbiddenError: ``projectName`` names a project the caller may not
        view / execute in.
    """
    ids = list(dict.fromkeys(body.get("job_execution_ids") or []))
    if not ids and not body.get("project_name"):
        raise InvalidInputError(
            "jobExecutionIds or projectName is required",
            errors={"jobExecutionIds": ["give ids or a projectName"]},
        )
    if not ids:
        project = body["project_name"]
        with rt.sessions() as session:
            require(session, caller, project, Privilege.EXECUTE, f"project {project}")
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
                require_execution(rt, caller, eid, Privilege.VIEW)
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
            done = control_execution(rt, caller, eid, body["action"])
            results.append({**result, "ok": True, "status": done["status"], "message": "done"})
        except (NotFoundError, ForbiddenError, ConflictError) as exc:
            results.append({**result, "ok": False, "status": None, "message": exc.message})
    return results
