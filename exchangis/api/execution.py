"""Executions and their tasks (E1-E9, T1)."""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import current_user, envelope, released_dialect, runtime
from exchangis.schemas.execution import (
    AllTaskStatusSchema,
    BatchExecuteBodySchema,
    BatchExecuteResultSchema,
    BulkControlBodySchema,
    BulkResultSchema,
    ControlResultSchema,
    DeleteResultSchema,
    ExecuteBodySchema,
    ExecuteResultSchema,
    ExecutionStatusSchema,
    KillResultSchema,
    LabelsOnlyBodySchema,
    ListJobsQuerySchema,
    ListJobsSchema,
    LogQuerySchema,
    LogResultSchema,
    MetricsBodySchema,
    ProgressSchema,
    TaskListSchema,
    TaskLogQuerySchema,
    TaskMetricsResultSchema,
    TaskOutputQuerySchema,
    TaskOutputSchema,
)
from exchangis.services import control, history
from exchangis.services import execution as service
from exchangis.services import log as logs

blp = Blueprint("executions", __name__, description="Job executions and tasks")


@blp.route("/job/<int(max=2147483647):job_id>/execute", methods=["POST"])
@blp.arguments(ExecuteBodySchema, required=False)
def execute_job(body: dict[str, Any], job_id: int) -> ResponseReturnValue:
    """E1: submit an execution of a job."""
    eid = service.submit_execution(runtime(), job_id, current_user(), body)
    return envelope(
        ExecuteResultSchema().dump({"job_execution_id": eid}), message="Submitted succeed"
    )


@blp.route("/job/execution/<eid>/status", methods=["GET"])
def execution_status(eid: str) -> ResponseReturnValue:
    """E2: status and progress of an execution."""
    return envelope(
        ExecutionStatusSchema().dump(service.get_status(runtime(), current_user(), eid))
    )


@blp.route("/job/execution/<eid>/tasklist", methods=["GET"])
@blp.route("/job/execution/<eid>/taskList", methods=["GET"])
def execution_tasks(eid: str) -> ResponseReturnValue:
    """E3: every task of an execution."""
    return envelope(TaskListSchema().dump(service.list_tasks(runtime(), current_user(), eid)))


@blp.route("/job/execution/<eid>/progress", methods=["GET"])
def execution_progress(eid: str) -> ResponseReturnValue:
    """E4: progress of an execution, tasks grouped by status."""
    return envelope(ProgressSchema().dump(service.get_progress(runtime(), current_user(), eid)))


@blp.route("/job/execution/<eid>/kill", methods=["POST"])
@blp.arguments(LabelsOnlyBodySchema, required=False)
def kill_execution(_body: dict[str, Any], eid: str) -> ResponseReturnValue:
    """E6: kill an execution."""
    result = service.kill_execution(runtime(), current_user(), eid)
    return envelope(KillResultSchema().dump(result), message="Kill succeed")


@blp.route("/job/<eid>/allTaskStatus", methods=["GET"])
def all_task_status(eid: str) -> ResponseReturnValue:
    """E9: every task's status, and whether all are completed (the released server's dialect:
    ``allStatus`` is the list of the tasks' status strings)."""
    answer = AllTaskStatusSchema().dump(service.all_task_status(runtime(), current_user(), eid))
    if released_dialect():
        answer["allStatus"] = [task["status"] for task in answer["allStatus"]]
    return envelope(answer)


@blp.route("/task/execution/<int(max=2147483647):task_id>/metrics", methods=["POST"])
@blp.arguments(MetricsBodySchema)
def task_metrics(body: dict[str, Any], task_id: int) -> ResponseReturnValue:
    """T1: metrics of a task of an execution."""
    result = service.get_task_metrics(runtime(), current_user(), task_id, body["job_execution_id"])
    return envelope(TaskMetricsResultSchema().dump(result))


@blp.route("/job/execution/<eid>/log", methods=["GET"])
@blp.arguments(LogQuerySchema, location="query")
def execution_log(query: dict[str, Any], eid: str) -> ResponseReturnValue:
    """E5: a page (or the tail) of an execution's job log."""
    return envelope(LogResultSchema().dump(logs.get_job_log(runtime(), current_user(), eid, query)))


@blp.route("/task/execution/<int(max=2147483647):task_id>/log", methods=["GET"])
@blp.arguments(TaskLogQuerySchema, location="query")
def task_log(query: dict[str, Any], task_id: int) -> ResponseReturnValue:
    """T2: a page (or the tail) of a task's log."""
    result = logs.get_task_log(runtime(), current_user(), task_id, query["job_execution_id"], query)
    return envelope(LogResultSchema().dump(result))


@blp.route("/job/listJobs", methods=["GET"])
@blp.arguments(ListJobsQuerySchema, location="query")
def list_jobs(query: dict[str, Any]) -> ResponseReturnValue:
    """E7: the execution history, filtered, sorted and paged."""
    return envelope(
        ListJobsSchema().dump(history.list_executions(runtime(), current_user(), query))
    )


@blp.route("/job/<eid>/deleteJob", methods=["POST"])
@blp.route("/job/execution/<eid>", methods=["DELETE"])
@blp.arguments(LabelsOnlyBodySchema, required=False)
def delete_execution(_body: dict[str, Any], eid: str) -> ResponseReturnValue:
    """E8: delete a completed execution with its tasks and logs."""
    return envelope(
        DeleteResultSchema().dump(history.delete_execution(runtime(), current_user(), eid))
    )


def _control(eid: str, action: str) -> ResponseReturnValue:
    result = control.control_execution(runtime(), current_user(), eid, action)
    return envelope(ControlResultSchema().dump(result))


@blp.route("/job/execution/<eid>/pause", methods=["POST"])
@blp.arguments(LabelsOnlyBodySchema, required=False)
def pause_execution(_body: dict[str, Any], eid: str) -> ResponseReturnValue:
    """Pause a Scheduled or Running execution."""
    return _control(eid, "PAUSE")


@blp.route("/job/execution/<eid>/resume", methods=["POST"])
@blp.arguments(LabelsOnlyBodySchema, required=False)
def resume_execution(_body: dict[str, Any], eid: str) -> ResponseReturnValue:
    """Resume a Paused execution, or re-run what did not succeed in a completed one."""
    return _control(eid, "RESUME")


@blp.route("/job/execution/<eid>/restart", methods=["POST"])
@blp.arguments(LabelsOnlyBodySchema, required=False)
def restart_execution(_body: dict[str, Any], eid: str) -> ResponseReturnValue:
    """Run every task of a completed execution again."""
    return _control(eid, "RESTART")


@blp.route("/job/execution/status", methods=["PUT"])
@blp.arguments(BulkControlBodySchema)
def bulk_control(body: dict[str, Any]) -> ResponseReturnValue:
    """Apply PAUSE, RESUME, DISCARD or RESTART to executions by id or project."""
    results = control.bulk_control(runtime(), current_user(), body)
    return envelope(BulkResultSchema().dump({"results": results}))


@blp.route("/job/execute", methods=["POST"])
@blp.arguments(BatchExecuteBodySchema)
def execute_jobs(body: dict[str, Any]) -> ResponseReturnValue:
    """Submit one execution for each of several jobs."""
    results = service.submit_batch(runtime(), current_user(), body)
    return envelope(BatchExecuteResultSchema().dump({"executions": results}))


@blp.route("/task/execution/<int(max=2147483647):task_id>/output", methods=["GET"])
@blp.arguments(TaskOutputQuerySchema, location="query")
def task_output(query: dict[str, Any], task_id: int) -> ResponseReturnValue:
    """A task's result summary."""
    result = service.get_task_output(runtime(), current_user(), task_id, query["job_execution_id"])
    return envelope(TaskOutputSchema().dump(result))
