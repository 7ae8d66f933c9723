"""Schedule schemas: plans, their trigger items, contexts, and the cron preview."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from exchangis.schemas.common import BodySchema, QuerySchema, WireTime
from exchangis.state.machine import EXECUTION_FINAL

ENTITY_GROUP = "DB_BATCH_SYNC"
"""The seed's "data batch sync": the only entity group, a plan's entity is one of our jobs."""
TRIGGER_TYPES = ("CRON_JOB", "DEPENDENCY", "ONCE")
CRON_TYPES = ("MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "CRON")
MISFIRE_POLICIES = ("FIRE_ONCE_NOW", "DO_NOTHING", "CATCH_UP_ALL")
CONCURRENCY_POLICIES = ("FORBID", "ALLOW", "REPLACE")
JOB_STATUSES = ("NONE", "PENDING", "RUNNING", "SUCCESSFUL", "FAILED", "CANCELLED", "SKIPPED")
"""A context's (and a plan's last run's) ``jobStatus``; NONE: a plan that never ran."""
NOTIFY_ON = ("SUCCESSFUL", "FAILED", "CANCELLED", "SKIPPED")
"""The final job statuses a webhook may be told of."""
UPSTREAM_STATUSES = sorted(str(s) for s in EXECUTION_FINAL)
MAX_ITEMS = 100
MAX_UPSTREAMS = 100
MAX_PAGE = 500
ENTITY_KEY = validate.Regexp(r"^[0-9]{1,10}\Z", error="must be a job id (digits)")
INT32 = validate.Range(min=0, max=2**31 - 1)


class UpstreamJobSchema(BodySchema):
    """One of ``triggerByJobs``: a job whose final runs trigger the item."""

    entity_group = fields.String(
        data_key="entityGroup", required=True, validate=validate.OneOf([ENTITY_GROUP])
    )
    entity_key = fields.String(data_key="entityKey", required=True, validate=ENTITY_KEY)
    statuses = fields.List(
        fields.String(validate=validate.OneOf(UPSTREAM_STATUSES)),
        load_default=lambda: ["Success"],
        validate=validate.Length(min=1, max=len(UPSTREAM_STATUSES)),
    )

    @post_load
    def unique_statuses(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Drop repeated statuses, keeping their order."""
        data["statuses"] = list(dict.fromkeys(data["statuses"]))
        return data


class PlanItemBodySchema(BodySchema):
    """A trigger item as sent: with its ``id`` (PUT) it keeps its identity and history."""

    id = fields.Integer(strict=True, load_default=None, allow_none=True, validate=INT32)
    plan_id = fields.Integer(data_key="planId", strict=True, allow_none=True, validate=INT32)
    trigger_type = fields.String(
        data_key="triggerType", required=True, validate=validate.OneOf(TRIGGER_TYPES)
    )
    cron_desc = fields.String(
        data_key="cronDesc", allow_none=True, validate=validate.Length(min=1, max=255)
    )
    cron_type = fields.String(
        data_key="cronType", allow_none=True, validate=validate.OneOf(CRON_TYPES)
    )
    time_zone = fields.String(
        data_key="timeZone", allow_none=True, validate=validate.Length(min=1, max=64)
    )
    trigger_by_jobs = fields.List(
        fields.Nested(UpstreamJobSchema),
        data_key="triggerByJobs",
        allow_none=True,
        validate=validate.Length(max=MAX_UPSTREAMS),
    )
    misfire_policy = fields.String(
        data_key="misfirePolicy",
        load_default="FIRE_ONCE_NOW",
        validate=validate.OneOf(MISFIRE_POLICIES),
    )
    concurrency_policy = fields.String(
        data_key="concurrencyPolicy",
        load_default="FORBID",
        validate=validate.OneOf(CONCURRENCY_POLICIES),
    )

    @validates_schema
    def fits_trigger(self, data: dict[str, Any], **_: Any) -> None:
        """Require what the trigger type needs, and refuse what belongs to another type."""
        kind = data.get("trigger_type")
        if kind == "CRON_JOB" and not data.get("cron_desc"):
            raise ValidationError("a CRON_JOB item needs a cron expression", "cronDesc")
        if kind == "DEPENDENCY" and not data.get("trigger_by_jobs"):
            raise ValidationError(
                "a DEPENDENCY item needs at least one upstream job", "triggerByJobs"
            )
        if kind != "CRON_JOB":
            for name, key in (("cron_desc", "cronDesc"), ("cron_type", "cronType")):
                if data.get(name) is not None:
                    raise ValidationError(f"only a CRON_JOB item has a {key}", key)
        if kind != "DEPENDENCY" and data.get("trigger_by_jobs"):
            raise ValidationError("only a DEPENDENCY item has triggerByJobs", "triggerByJobs")

    @post_load
    def defaults(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Fill the type's defaults: a cron item's ``cronType`` is CRON unless given."""
        if data["trigger_type"] == "CRON_JOB":
            data["cron_type"] = data.get("cron_type") or "CRON"
        else:
            data["cron_desc"] = data["cron_type"] = None
        if data["trigger_type"] != "DEPENDENCY":
            data["trigger_by_jobs"] = None
        data.setdefault("time_zone", None)
        return data


class ExecDetailSchema(BodySchema):
    """``execDetail``: how every run of the plan runs its job."""

    job_params = fields.Dict(
        data_key="jobParams",
        load_default=dict,
        keys=fields.String(validate=validate.Length(min=1, max=128)),
        values=fields.Raw(),
        validate=validate.Length(max=200),
    )
    retry_times = fields.Integer(
        data_key="retryTimes", strict=True, load_default=0, validate=validate.Range(0, 10)
    )
    permit_partial_failures = fields.Boolean(data_key="permitPartialFailures", load_default=False)


class NotifySchema(BodySchema):
    """``notify``: the webhook told of final contexts."""

    url = fields.String(
        required=True,
        validate=[
            validate.Length(max=2048),
            validate.URL(schemes={"http", "https"}, require_tld=False),
        ],
    )
    on = fields.List(
        fields.String(validate=validate.OneOf(NOTIFY_ON)),
        load_default=lambda: ["FAILED"],
        validate=validate.Length(min=1, max=len(NOTIFY_ON)),
    )

    @post_load
    def unique_on(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Drop repeated statuses, keeping their order."""
        data["on"] = list(dict.fromkeys(data["on"]))
        return data


ITEMS = validate.Length(max=MAX_ITEMS)


class PlanCreateSchema(BodySchema):
    """Body of POST /schedules."""

    entity_group = fields.String(
        data_key="entityGroup", required=True, validate=validate.OneOf([ENTITY_GROUP])
    )
    entity_key = fields.String(data_key="entityKey", required=True, validate=ENTITY_KEY)
    plan_items = fields.List(
        fields.Nested(PlanItemBodySchema),
        data_key="planItems",
        load_default=list,
        allow_none=True,
        validate=ITEMS,
    )
    enabled = fields.Boolean(load_default=True)
    exec_detail = fields.Nested(
        ExecDetailSchema,
        data_key="execDetail",
        load_default=lambda: {"job_params": {}, "retry_times": 0, "permit_partial_failures": False},
    )
    notify = fields.Nested(NotifySchema, load_default=None, allow_none=True)
    sync = fields.Boolean(load_default=False)
    sync_timeout_seconds = fields.Integer(
        data_key="syncTimeoutSeconds",
        strict=True,
        load_default=300,
        validate=validate.Range(min=0, max=3600),
    )

    @post_load
    def no_items_is_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Read ``planItems: null`` as no items."""
        data["plan_items"] = data.get("plan_items") or []
        return data


class PlanUpdateSchema(BodySchema):
    """Body of PUT /schedules/{id}: ``planItems`` replaces every item (null or [] removes all);
    absent, the items stay as they are."""

    plan_items = fields.List(
        fields.Nested(PlanItemBodySchema), data_key="planItems", allow_none=True, validate=ITEMS
    )
    enabled = fields.Boolean()


class PlanEntitySchema(BodySchema):
    """Body of POST /schedules/cancel: the job whose plans' runs are killed."""

    entity_group = fields.String(
        data_key="entityGroup", required=True, validate=validate.OneOf([ENTITY_GROUP])
    )
    entity_key = fields.String(data_key="entityKey", required=True, validate=ENTITY_KEY)


class EmptyBodySchema(BodySchema):
    """Body of the calls that take none (``{}`` or nothing)."""


class PreviewBodySchema(BodySchema):
    """Body of POST /schedules/preview."""

    cron_desc = fields.String(
        data_key="cronDesc", required=True, validate=validate.Length(min=1, max=255)
    )
    time_zone = fields.String(
        data_key="timeZone", load_default=None, allow_none=True, validate=validate.Length(max=64)
    )
    start_time = fields.String(
        data_key="startTime", load_default=None, allow_none=True, validate=validate.Length(max=64)
    )
    count = fields.Integer(strict=True, load_default=5, validate=validate.Range(min=1, max=100))


class PreviewSchema(BodySchema):
    """``data`` of the preview: ISO 8601 local times with their offsets."""

    fire_times = fields.List(fields.String(), data_key="fireTimes")


def _words(text: str) -> list[str]:
    return list(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))


class WordList(fields.String):
    """A comma-separated query value, loaded as a list of its distinct non-empty words."""

    def __init__(self, *, choices: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = choices

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 4000:
            raise ValidationError("is longer than 4000 characters")
        words = _words(text)
        if len(words) > 100:
            raise ValidationError("at most 100 values")
        for word in words:
            if self.choices is not None and word not in self.choices:
                raise ValidationError(f"{word[:64]!r} is not one of {', '.join(self.choices)}")
            if len(word) > 128:
                raise ValidationError("a value is longer than 128 characters")
        return words


class PlanFilterQuerySchema(QuerySchema):
    """Filters of GET /schedules and GET /schedules/users."""

    entity_key = fields.String(data_key="entityKey", validate=validate.Length(max=64))
    entity_group = fields.String(data_key="entityGroup", validate=validate.Length(max=32))
    q = fields.String(validate=validate.Length(max=255))
    entity_created_by_list = WordList(data_key="entityCreatedByList")
    job_status_list = WordList(data_key="jobStatusList", choices=JOB_STATUSES)


class PageQuerySchema(QuerySchema):
    """``offset`` and ``limit`` of the lists."""

    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=MAX_PAGE))


class PlanListQuerySchema(PlanFilterQuerySchema, PageQuerySchema):
    """Query of GET /schedules."""


class ContextFilterQuerySchema(PlanFilterQuerySchema):
    """Filters of GET /contexts and GET /contexts/users: the plan list's, and more."""

    plan_id = fields.Integer(data_key="planId", validate=INT32)
    job_status = fields.String(data_key="jobStatus", validate=validate.OneOf(JOB_STATUSES))


class ContextListQuerySchema(ContextFilterQuerySchema, PageQuerySchema):
    """Query of GET /contexts."""


class BlockQuerySchema(QuerySchema):
    """Query of a context's logs and results: ``block`` (default true) waits for its end."""

    block = fields.Boolean(load_default=True)


# -- answers ------------------------------------------------------------------------------------
class PlanItemSchema(BodySchema):
    """A trigger item as answered."""

    id = fields.Integer()
    plan_id = fields.Integer(data_key="planId")
    trigger_type = fields.String(data_key="triggerType")
    cron_desc = fields.String(data_key="cronDesc", allow_none=True)
    cron_type = fields.String(data_key="cronType", allow_none=True)
    time_zone = fields.String(data_key="timeZone", allow_none=True)
    trigger_by_jobs = fields.List(fields.Dict(), data_key="triggerByJobs", allow_none=True)
    misfire_policy = fields.String(data_key="misfirePolicy")
    concurrency_policy = fields.String(data_key="concurrencyPolicy")


class PlanSchema(BodySchema):
    """A plan as answered: the seed's fields; user fields are user names."""

    id = fields.Integer()
    entity_group = fields.String(data_key="entityGroup")
    entity_key = fields.String(data_key="entityKey")
    title = fields.String()
    enabled = fields.Boolean()
    plan_items = fields.List(fields.Nested(PlanItemSchema), data_key="planItems")
    exec_detail = fields.Dict(data_key="execDetail")
    """``{jobParams, retryTimes, permitPartialFailures}``."""
    notify = fields.Dict(allow_none=True)
    """``{url, on}``, or null."""
    created_at = WireTime(data_key="createdAt")
    created_by = fields.String(data_key="createdBy")
    updated_at = WireTime(data_key="updatedAt")
    updated_by = fields.String(data_key="updatedBy")
    entity_created_by = fields.String(data_key="entityCreatedBy")
    entity_created_by_name = fields.String(data_key="entityCreatedByName")
    exec_frequency = fields.String(data_key="execFrequency", allow_none=True)
    next_start_at = WireTime(data_key="nextStartAt")
    start_at = WireTime(data_key="startAt")
    stop_at = WireTime(data_key="stopAt")
    job_status = fields.String(data_key="jobStatus")
    cost_time = fields.Integer(data_key="costTime", allow_none=True)
    context_id = fields.Integer(data_key="contextId", allow_none=True)


class PlanListSchema(BodySchema):
    """``data`` of GET /schedules."""

    list = fields.List(fields.Nested(PlanSchema))
    total_hits = fields.Integer(data_key="totalHits")
    offset = fields.Integer()


class UserRefSchema(BodySchema):
    """A user in the users lists: id and name, nothing else."""

    id = fields.Integer(allow_none=True)
    name = fields.String()


class UserListSchema(BodySchema):
    """``data`` of GET /schedules/users and GET /contexts/users."""

    list = fields.List(fields.Nested(UserRefSchema))


class CancelResultSchema(BodySchema):
    """``data`` of the cancel calls: how many unfinished runs were killed."""

    cancelled = fields.Integer()


class ContextSchema(BodySchema):
    """A context (one run of a plan) as answered."""

    id = fields.Integer()
    plan_id = fields.Integer(data_key="planId")
    plan_item_id = fields.Integer(data_key="planItemId", allow_none=True)
    plan_item = fields.Dict(data_key="planItem")
    entity_group = fields.String(data_key="entityGroup")
    entity_key = fields.String(data_key="entityKey")
    title = fields.String()
    job_status = fields.String(data_key="jobStatus")
    execution_status = fields.String(data_key="executionStatus", allow_none=True)
    job_execution_id = fields.String(data_key="jobExecutionId", allow_none=True)
    scheduled_at = WireTime(data_key="scheduledAt")
    created_at = WireTime(data_key="createdAt")
    created_by = fields.String(data_key="createdBy")
    start_at = WireTime(data_key="startAt")
    stop_at = WireTime(data_key="stopAt")
    heartbeat_time = WireTime(data_key="heartbeatTime")
    cost_time = fields.Integer(data_key="costTime", allow_none=True)
    exec_detail = fields.Dict(data_key="execDetail")
    skip_reason = fields.String(data_key="skipReason", allow_none=True)
    triggered_by = fields.Dict(data_key="triggeredBy")
    attempt = fields.Integer()
    error = fields.String(allow_none=True)
    notifications = fields.List(fields.Dict(), allow_none=True)


class ContextListSchema(BodySchema):
    """``data`` of GET /contexts."""

    list = fields.List(fields.Nested(ContextSchema))
    total_hits = fields.Integer(data_key="totalHits")
    offset = fields.Integer()


class ContextLogSchema(BodySchema):
    """One log of a context's logs: the job's (``job``) or a task's (its id)."""

    sub_key = fields.String(data_key="subKey")
    logs = fields.List(fields.String())


class ContextLogsSchema(BodySchema):
    """``data`` of GET /contexts/{id}/logs."""

    list = fields.List(fields.Nested(ContextLogSchema))
    done = fields.Boolean()


class ResultColumnSchema(BodySchema):
    """A column of a task's result."""

    name = fields.String()
    type = fields.String()


class ResultSetSchema(BodySchema):
    """A task's result as a dataset: its columns, and one row."""

    schema = fields.List(fields.Nested(ResultColumnSchema))
    data = fields.List(fields.List(fields.Raw()))


class ContextResultSchema(BodySchema):
    """One task's result."""

    sub_key = fields.String(data_key="subKey")
    result = fields.Nested(ResultSetSchema)


class ContextResultsSchema(BodySchema):
    """``data`` of GET /contexts/{id}/results."""

    list = fields.List(fields.Nested(ContextResultSchema))
    done = fields.Boolean()
