"""``/schedules`` and ``/contexts``: plans of jobs (cron, dependency, once) and their runs."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import current_user, envelope, runtime
from exchangis.schemas.schedule import (
    BlockQuerySchema,
    CancelResultSchema,
    ContextFilterQuerySchema,
    ContextListQuerySchema,
    ContextListSchema,
    ContextLogsSchema,
    ContextResultsSchema,
    ContextSchema,
    EmptyBodySchema,
    PlanCreateSchema,
    PlanEntitySchema,
    PlanFilterQuerySchema,
    PlanListQuerySchema,
    PlanListSchema,
    PlanSchema,
    PlanUpdateSchema,
    PreviewBodySchema,
    PreviewSchema,
    UserListSchema,
)
from exchangis.services import context as contexts
from exchangis.services import schedule as service

blp = Blueprint("schedules", __name__, description="Schedules of jobs and their runs (contexts)")

PLAN = "/schedules/<int(max=2147483647):plan_id>"
CONTEXT = "/contexts/<int(max=2147483647):context_id>"


@blp.route("/schedules", methods=["POST"])
@blp.arguments(PlanCreateSchema)
def create_plan(body: dict[str, Any]) -> ResponseReturnValue:
    """Save a plan of a job; run its ONCE items now (with ``sync``, wait for the run)."""
    plan = service.create_plan(runtime(), current_user(), body)
    return envelope(PlanSchema().dump(plan), http_status=201)


@blp.route("/schedules", methods=["GET"])
@blp.arguments(PlanListQuerySchema, location="query")
def list_plans(query: dict[str, Any]) -> ResponseReturnValue:
    """List the plans the caller may view, newest first."""
    return envelope(PlanListSchema().dump(service.list_plans(runtime(), current_user(), query)))


@blp.route("/schedules/users", methods=["GET"])
@blp.arguments(PlanFilterQuerySchema, location="query")
def plan_users(query: dict[str, Any]) -> ResponseReturnValue:
    """List the users who created the plans the list shows (id and name)."""
    return envelope(UserListSchema().dump(service.plan_users(runtime(), current_user(), query)))


@blp.route("/schedules/preview", methods=["POST"])
@blp.arguments(PreviewBodySchema)
def preview(body: dict[str, Any]) -> ResponseReturnValue:
    """Show the next fire times of a cron expression in a zone."""
    return envelope(PreviewSchema().dump(service.preview(runtime(), body)))


@blp.route("/schedules/cancel", methods=["POST"])
@blp.arguments(PlanEntitySchema)
def cancel_job_plans(body: dict[str, Any]) -> ResponseReturnValue:
    """Kill the unfinished runs of every plan of a job."""
    result = service.cancel_job_plans(runtime(), current_user(), body)
    return envelope(CancelResultSchema().dump(result))


@blp.route(PLAN, methods=["GET"])
def get_plan(plan_id: int) -> ResponseReturnValue:
    """Read a plan."""
    return envelope(PlanSchema().dump(service.get_plan(runtime(), current_user(), plan_id)))


@blp.route(PLAN, methods=["PUT"])
@blp.arguments(PlanUpdateSchema)
def update_plan(body: dict[str, Any], plan_id: int) -> ResponseReturnValue:
    """Replace a plan's items as a whole, and/or enable or disable it."""
    plan = service.update_plan(runtime(), current_user(), plan_id, body)
    return envelope(PlanSchema().dump(plan))


@blp.route(PLAN, methods=["DELETE"])
def delete_plan(plan_id: int) -> ResponseReturnValue:
    """Delete a plan with its items and contexts."""
    return envelope(service.delete_plan(runtime(), current_user(), plan_id))


@blp.route(f"{PLAN}/enable", methods=["POST"])
@blp.arguments(EmptyBodySchema, required=False)
def enable_plan(_body: dict[str, Any], plan_id: int) -> ResponseReturnValue:
    """Enable a plan: its items fire from now on."""
    plan = service.set_enabled(runtime(), current_user(), plan_id, enabled=True)
    return envelope(PlanSchema().dump(plan))


@blp.route(f"{PLAN}/disable", methods=["POST"])
@blp.arguments(EmptyBodySchema, required=False)
def disable_plan(_body: dict[str, Any], plan_id: int) -> ResponseReturnValue:
    """Disable a plan: nothing of it fires until it is enabled again."""
    plan = service.set_enabled(runtime(), current_user(), plan_id, enabled=False)
    return envelope(PlanSchema().dump(plan))


@blp.route(f"{PLAN}/cancel", methods=["PUT"])
@blp.arguments(EmptyBodySchema, required=False)
def cancel_plan(_body: dict[str, Any], plan_id: int) -> ResponseReturnValue:
    """Kill the plan's unfinished runs."""
    result = service.cancel_plan(runtime(), current_user(), plan_id)
    return envelope(CancelResultSchema().dump(result))


@blp.route("/contexts", methods=["GET"])
@blp.arguments(ContextListQuerySchema, location="query")
def list_contexts(query: dict[str, Any]) -> ResponseReturnValue:
    """List the runs the caller may view, newest first."""
    result = contexts.list_contexts(runtime(), current_user(), query)
    return envelope(ContextListSchema().dump(result))


@blp.route("/contexts/users", methods=["GET"])
@blp.arguments(ContextFilterQuerySchema, location="query")
def context_users(query: dict[str, Any]) -> ResponseReturnValue:
    """List the users whose plans made the runs the list shows (id and name)."""
    return envelope(UserListSchema().dump(contexts.context_users(runtime(), current_user(), query)))


@blp.route(CONTEXT, methods=["GET"])
def get_context(context_id: int) -> ResponseReturnValue:
    """Read a run, its status live."""
    return envelope(
        ContextSchema().dump(contexts.get_context(runtime(), current_user(), context_id))
    )


@blp.route(f"{CONTEXT}/logs", methods=["GET"])
@blp.arguments(BlockQuerySchema, location="query")
def context_logs(query: dict[str, Any], context_id: int) -> ResponseReturnValue:
    """A run's job log and task logs (``block``: once it is final, or the wait ends)."""
    result = contexts.context_logs(runtime(), current_user(), context_id, query["block"])
    return envelope(ContextLogsSchema().dump(result))


@blp.route(f"{CONTEXT}/results", methods=["GET"])
@blp.arguments(BlockQuerySchema, location="query")
def context_results(query: dict[str, Any], context_id: int) -> ResponseReturnValue:
    """Each task's result of a run (``block``: once it is final, or the wait ends)."""
    result = contexts.context_results(runtime(), current_user(), context_id, query["block"])
    return envelope(ContextResultsSchema().dump(result))
