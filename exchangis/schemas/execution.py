"""Execution and task schemas (E1-E9, T1)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from exchangis.schemas.common import BodySchema, LabelsSchema, QuerySchema, WireTime
from exchangis.state.machine import ExecutionStatus


class ExecuteBodySchema(BodySchema):
    """Body of POST /job/{id}/execute (optional)."""

    permit_partial_failures = fields.Boolean(data_key="permitPartialFailures", load_default=False)
    job_params = fields.Dict(
        data_key="jobParams",
        load_default=dict,
        keys=fields.String(validate=validate.Length(min=1, max=128)),
        values=fields.Raw(),
    )
    labels = fields.Nested(LabelsSchema, load_default=dict)


class LabelsOnlyBodySchema(BodySchema):
    """Body of kill and the other execution calls: only ``labels`` (optional)."""

    labels = fields.Nested(LabelsSchema, load_default=dict)


class MetricsBodySchema(BodySchema):
    """Body of POST /task/execution/{taskId}/metrics."""

    job_execution_id = fields.String(
        data_key="jobExecutionId", required=True, validate=validate.Length(min=1, max=64)
    )
    labels = fields.Nested(LabelsSchema, load_default=dict)


class ExecuteResultSchema(BodySchema):
    """``data`` of E1."""

    job_execution_id = fields.String(data_key="jobExecutionId")


class ExecutionStatusSchema(BodySchema):
    """``data`` of E2."""

    status = fields.String()
    progress = fields.Float()
    all_task_status = fields.Boolean(data_key="allTaskStatus")


class TaskItemSchema(BodySchema):
    """One task in E3."""

    task_id = fields.Integer(data_key="taskId")
    name = fields.String()
    status = fields.String()
    create_time = WireTime(data_key="createTime")
    launch_time = WireTime(data_key="launchTime")
    last_update_time = WireTime(data_key="lastUpdateTime")
    engine_type = fields.String(data_key="engineType")
    linkis_job_id = fields.String(data_key="linkisJobId", allow_none=True)
    linkis_job_info = fields.String(data_key="linkisJobInfo", allow_none=True)
    execute_user = fields.String(data_key="executeUser")


class TaskListSchema(BodySchema):
    """``data`` of E3."""

    tasks = fields.List(fields.Nested(TaskItemSchema))


class TaskProgressSchema(BodySchema):
    """One task in E4 and E9."""

    task_id = fields.Integer(data_key="taskId")
    name = fields.String()
    status = fields.String()
    progress = fields.Float()


class JobProgressSchema(BodySchema):
    """``data.job`` of E4."""

    status = fields.String()
    progress = fields.Float()
    total = fields.Integer()
    tasks = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(TaskProgressSchema)))


class ProgressSchema(BodySchema):
    """``data`` of E4."""

    job = fields.Nested(JobProgressSchema)


class KillResultSchema(BodySchema):
    """``data`` of E6."""

    job_execution_id = fields.String(data_key="jobExecutionId")
    status = fields.String()


class AllTaskStatusSchema(BodySchema):
    """``data`` of E9: every task's status, and whether all of them are completed."""

    job_execution_id = fields.String(data_key="jobExecutionId")
    all_status = fields.List(fields.Nested(TaskProgressSchema), data_key="allStatus")
    completed = fields.Boolean()


class ResourceUsedSchema(BodySchema):
    """Resources a task uses."""

    cpu = fields.Float()
    memory = fields.Float()


class TrafficSchema(BodySchema):
    """Where a task moves data, and how fast."""

    source = fields.String()
    sink = fields.String()
    flow = fields.Float()


class IndicatorSchema(BodySchema):
    """Record counters of a task."""

    exchanged_records = fields.Integer(data_key="exchangedRecords")
    error_records = fields.Integer(data_key="errorRecords")
    ignored_records = fields.Integer(data_key="ignoredRecords")


class MetricsSchema(BodySchema):
    """T1 metrics."""

    resource_used = fields.Nested(ResourceUsedSchema, data_key="resourceUsed")
    traffic = fields.Nested(TrafficSchema)
    indicator = fields.Nested(IndicatorSchema)
    bytes = fields.Integer()
    read_records = fields.Integer(data_key="readRecords")
    elapsed_ms = fields.Integer(data_key="elapsedMs")


class TaskMetricsSchema(BodySchema):
    """``data.task`` of T1."""

    task_id = fields.Integer(data_key="taskId")
    name = fields.String()
    status = fields.String()
    metrics = fields.Nested(MetricsSchema)


class TaskMetricsResultSchema(BodySchema):
    """``data`` of T1."""

    task = fields.Nested(TaskMetricsSchema)


INT32 = validate.Range(min=-(2**31), max=2**31 - 1)


class LogQuerySchema(QuerySchema):
    """Query of E5 (job log); empty values count as absent."""

    from_line = fields.Integer(data_key="fromLine", load_default=1, validate=INT32)
    page_size = fields.Integer(
        data_key="pageSize", load_default=100, validate=validate.Range(min=1, max=5000)
    )
    ignore_keywords = fields.String(data_key="ignoreKeywords", validate=validate.Length(max=4000))
    only_keywords = fields.String(data_key="onlyKeywords", validate=validate.Length(max=4000))
    last_rows = fields.Integer(data_key="lastRows", validate=validate.Range(min=1, max=5000))


class TaskLogQuerySchema(LogQuerySchema):
    """Query of T2 (task log): the task's execution is required."""

    job_execution_id = fields.String(
        data_key="jobExecutionId", required=True, validate=validate.Length(min=1, max=64)
    )


class LogResultSchema(BodySchema):
    """``data`` of E5 and T2."""

    end_line = fields.Integer(data_key="endLine")
    is_end = fields.Boolean(data_key="isEnd")
    logs = fields.Dict(keys=fields.String(), values=fields.String())


class ListJobsQuerySchema(QuerySchema):
    """Query of E7 (the execution history); empty values count as absent."""

    job_execution_id = fields.String(data_key="jobExecutionId", validate=validate.Length(max=64))
    job_name = fields.String(data_key="jobName", validate=validate.Length(max=255))
    status = fields.String(validate=validate.Length(max=32))
    statuses = fields.String(validate=validate.Length(max=400))
    launch_start_time = fields.Integer(
        data_key="launchStartTime", validate=validate.Range(min=0, max=2**53)
    )
    launch_end_time = fields.Integer(
        data_key="launchEndTime", validate=validate.Range(min=0, max=2**53)
    )
    time_filter = fields.Integer(
        data_key="timeFilter", load_default=4, validate=validate.Range(min=0, max=4)
    )
    project_name = fields.String(data_key="projectName", validate=validate.Length(max=128))
    key = fields.String(validate=validate.Length(max=255))
    sort_by = fields.String(
        data_key="sortBy",
        load_default="createTime",
        validate=validate.OneOf(["createTime", "lastUpdateTime", "name", "status", "duration"]),
    )
    reverse = fields.Boolean(load_default=True)
    current = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=10, validate=validate.Range(min=1, max=500))

    @post_load
    def merge_statuses(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Merge ``status`` and the comma list ``statuses`` into one checked list."""
        words = [data.pop("status", ""), *data.pop("statuses", "").split(",")]
        statuses = [w.strip() for w in words if w.strip()]
        unknown = [s for s in statuses if s not in ExecutionStatus.__members__.values()]
        if unknown:
            raise ValidationError(f"unknown status {unknown[0]!r}", "statuses")
        data["statuses"] = statuses
        return data


class ExecutionItemSchema(BodySchema):
    """One execution in E7."""

    job_execution_id = fields.String(data_key="jobExecutionId")
    job_id = fields.Integer(data_key="jobId", allow_none=True)
    name = fields.String()
    project_name = fields.String(data_key="projectName")
    status = fields.String()
    progress = fields.Float()
    create_time = WireTime(data_key="createTime")
    last_update_time = WireTime(data_key="lastUpdateTime")
    launch_time = WireTime(data_key="launchTime")
    duration = fields.Integer()
    flow = fields.Integer()
    execute_node = fields.String(data_key="executeNode")
    create_user = fields.String(data_key="createUser")
    execute_user = fields.String(data_key="executeUser")
    trigger_type = fields.String(data_key="triggerType")


class ListJobsSchema(BodySchema):
    """``data`` of E7."""

    job_list = fields.List(fields.Nested(ExecutionItemSchema), data_key="jobList")
    total = fields.Integer()


class DeleteResultSchema(BodySchema):
    """``data`` of E8."""

    job_execution_id = fields.String(data_key="jobExecutionId")


class ControlResultSchema(BodySchema):
    """``data`` of pause, resume and restart."""

    job_execution_id = fields.String(data_key="jobExecutionId")
    status = fields.String()


class BulkControlBodySchema(BodySchema):
    """Body of PUT /job/execution/status."""

    action = fields.String(
        required=True, validate=validate.OneOf(["PAUSE", "RESUME", "DISCARD", "RESTART"])
    )
    job_execution_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        data_key="jobExecutionIds",
        validate=validate.Length(max=1000),
    )
    project_name = fields.String(data_key="projectName", validate=validate.Length(min=1, max=128))
    statuses = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in ExecutionStatus])),
        validate=validate.Length(max=20),
    )
    labels = fields.Nested(LabelsSchema, load_default=dict)


class BulkItemSchema(BodySchema):
    """The outcome of a bulk action on one execution."""

    job_execution_id = fields.String(data_key="jobExecutionId")
    action = fields.String()
    ok = fields.Boolean()
    status = fields.String(allow_none=True)
    message = fields.String()


class BulkResultSchema(BodySchema):
    """``data`` of PUT /job/execution/status."""

    results = fields.List(fields.Nested(BulkItemSchema))


class TaskOutputQuerySchema(QuerySchema):
    """Query of GET /task/execution/{taskId}/output."""

    job_execution_id = fields.String(
        data_key="jobExecutionId", required=True, validate=validate.Length(min=1, max=64)
    )


class TaskOutputSchema(BodySchema):
    """``data`` of GET /task/execution/{taskId}/output: a task's result summary."""

    task_id = fields.Integer(data_key="taskId")
    name = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    read_records = fields.Integer(data_key="readRecords")
    written_records = fields.Integer(data_key="writtenRecords")
    error_records = fields.Integer(data_key="errorRecords")
    bytes = fields.Integer()
    elapsed_ms = fields.Integer(data_key="elapsedMs")
    sink = fields.String()
    error = fields.String(allow_none=True)


class BatchExecuteBodySchema(BodySchema):
    """Body of POST /job/execute: several jobs at once."""

    job_ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=2**31 - 1)),
        data_key="jobIds",
        required=True,
        validate=validate.Length(min=1, max=100),
    )
    permit_partial_failures = fields.Boolean(data_key="permitPartialFailures", load_default=False)
    labels = fields.Nested(LabelsSchema, load_default=dict)


class BatchExecuteItemSchema(BodySchema):
    """One job of a batch execute."""

    job_id = fields.Integer(data_key="jobId")
    job_execution_id = fields.String(data_key="jobExecutionId", allow_none=True)
    message = fields.String()


class BatchExecuteResultSchema(BodySchema):
    """``data`` of POST /job/execute."""

    executions = fields.List(fields.Nested(BatchExecuteItemSchema))
