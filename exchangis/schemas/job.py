"""Job definition schemas (the Exchangis sub-job shape, strict)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from exchangis.engine.planner import SETTING_KEYS, setting_problem
from exchangis.schemas.common import PROJECT_NAME, USER_NAME, BodySchema, QuerySchema, WireTime

TEXT = validate.Length(min=1, max=255)
JOB_TYPES = ("OFFLINE", "STREAM")
"""The released UI's two job tabs (both run as batch transfers here)."""


class EndpointRefSchema(BodySchema):
    """``dataSources.source`` / ``dataSources.sink``: a data source id plus db and table."""

    type = fields.String(required=True, validate=validate.Length(min=1, max=32))
    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))
    db = fields.String(allow_none=True, validate=validate.Length(max=128))
    table = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class DataSourcesSchema(BodySchema):
    """Source and sink of a sub-job."""

    source = fields.Nested(EndpointRefSchema, required=True)
    sink = fields.Nested(EndpointRefSchema, required=True)


class ConfigItemSchema(BodySchema):
    """One connector option."""

    config_key = fields.String(required=True, validate=validate.Length(min=1, max=64))
    config_value = fields.Raw(required=True, allow_none=True)

    @validates_schema
    def check_value(self, data: dict[str, Any], **_: Any) -> None:
        """Accept scalars and lists of scalars only, of bounded size."""
        value = data.get("config_value")
        items = value if isinstance(value, list) else [value]
        if len(items) > 1000 or not all(
            v is None or isinstance(v, str | int | float | bool) for v in items
        ):
            raise ValidationError(
                "must be a string, number, boolean or a list of them", "config_value"
            )
        if sum(len(v) for v in items if isinstance(v, str)) > 65536:
            raise ValidationError("is longer than 65536 characters", "config_value")


class ParamsSchema(BodySchema):
    """Connector options of each side."""

    sources = fields.List(fields.Nested(ConfigItemSchema), load_default=list)
    sinks = fields.List(fields.Nested(ConfigItemSchema), load_default=list)


class MappingItemSchema(BodySchema):
    """One column mapping."""

    source_field_name = fields.String(required=True, validate=TEXT)
    sink_field_name = fields.String(required=True, validate=TEXT)


class TransformsSchema(BodySchema):
    """Transforms of a sub-job: a column mapping."""

    type = fields.String(load_default="MAPPING", validate=validate.OneOf(["MAPPING"]))
    mapping = fields.List(fields.Nested(MappingItemSchema), load_default=list)


class SettingItemSchema(BodySchema):
    """One sub-job setting (DataX/Exchangis names)."""

    config_key = fields.String(required=True, validate=validate.OneOf(sorted(SETTING_KEYS)))
    config_value = fields.Raw(required=True)

    @validates_schema
    def check_value(self, data: dict[str, Any], **_: Any) -> None:
        """Check the value's type and range for its key."""
        key = data.get("config_key")
        if key in SETTING_KEYS:
            problem = setting_problem(key, data.get("config_value"))
            if problem:
                raise ValidationError(f"{key} {problem}", "config_value")


class SubJobSchema(BodySchema):
    """One sub-job: moves one table or file."""

    sub_job_name = fields.String(data_key="subJobName", required=True, validate=TEXT)
    data_sources = fields.Nested(DataSourcesSchema, data_key="dataSources", required=True)
    params = fields.Nested(ParamsSchema, load_default=lambda: {"sources": [], "sinks": []})
    transforms = fields.Nested(
        TransformsSchema, load_default=lambda: {"type": "MAPPING", "mapping": []}
    )
    settings = fields.List(fields.Nested(SettingItemSchema), load_default=list)

    @post_load
    def to_wire(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Return the sub-job in its wire form (camelCase), as stored and as the planner reads."""
        wire: dict[str, Any] = self.dump(data)
        return wire


class JobCreateSchema(BodySchema):
    """Body of POST /job."""

    job_name = fields.String(data_key="jobName", required=True, validate=TEXT)
    job_desc = fields.String(
        data_key="jobDesc", load_default="", validate=validate.Length(max=2000)
    )
    project_name = fields.String(
        data_key="projectName",
        load_default="default",
        validate=PROJECT_NAME,
    )
    engine_type = fields.String(
        data_key="engineType", load_default="EXCHANGIS", validate=validate.Length(min=1, max=32)
    )
    job_type = fields.String(
        data_key="jobType", load_default="OFFLINE", validate=validate.OneOf(JOB_TYPES)
    )
    job_labels = fields.String(
        data_key="jobLabels", load_default="", validate=validate.Length(max=200)
    )
    job_params = fields.Dict(
        data_key="jobParams",
        load_default=dict,
        keys=fields.String(validate=validate.Length(min=1, max=128)),
        values=fields.Raw(),
    )
    execute_user = fields.String(
        data_key="executeUser",
        load_default=None,
        allow_none=True,
        validate=USER_NAME,
    )
    content = fields.List(
        fields.Nested(SubJobSchema), required=True, validate=validate.Length(min=1, max=200)
    )


class JobUpdateSchema(JobCreateSchema):
    """Body of PUT /job/{id}: the whole definition, as for create."""


class JobBasicsSchema(BodySchema):
    """What every answer about a job says, in our dialect and the released server's."""

    id = fields.Integer()
    job_name = fields.String(data_key="jobName")
    job_desc = fields.String(data_key="jobDesc")
    engine_type = fields.String(data_key="engineType")
    job_type = fields.String(data_key="jobType")
    job_labels = fields.String(data_key="jobLabels")
    create_user = fields.String(data_key="createUser")
    create_time = WireTime(data_key="createTime")


class JobSchema(JobBasicsSchema):
    """A job as returned."""

    project_name = fields.String(data_key="projectName")
    job_params = fields.Dict(data_key="jobParams")
    execute_user = fields.String(data_key="executeUser", allow_none=True)
    content = fields.List(fields.Dict())
    update_time = WireTime(data_key="updateTime")


class JobListQuerySchema(QuerySchema):
    """Query of GET /job."""

    project_name = fields.String(data_key="projectName", validate=validate.Length(max=128))
    job_name = fields.String(data_key="jobName", validate=validate.Length(max=255))
    current = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=10, validate=validate.Range(min=1, max=500))
