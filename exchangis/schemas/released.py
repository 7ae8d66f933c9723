"""Schemas of the released Exchangis server's dialect (the alias prefix): what its web UI sends
and reads, mapped onto our own fields (``docs/design/released-dialect.md``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from exchangis.schemas.common import PROJECT_NAME, USER_NAME, BodySchema, QuerySchema, WireTime
from exchangis.schemas.job import JOB_TYPES, TEXT, JobBasicsSchema


class CommaList(fields.Field):
    """A list of user names sent as one comma-separated string (``"a,b"``; empties dropped)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        items = value if isinstance(value, list) else str(value or "").split(",")
        names = [str(item).strip() for item in items if str(item).strip()]
        if len(names) > 1000:
            raise ValidationError("lists more than 1000 users")
        for name in names:
            USER_NAME(name)
        return names

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str:
        return ",".join(value or [])


class IdText(fields.Field):
    """An id the UI sends as text or as a number (``"12"``, ``12``); empty: none."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | None:
        if value in (None, ""):
            return None
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValidationError("must be an id (a whole number)") from None
        if not 1 <= number <= 2**31 - 1:
            raise ValidationError("must be an id (a whole number)")
        return number


TYPE_IDS = {"MYSQL": 1, "POSTGRESQL": 2, "SQLITE": 3, "FILE": 4, "MEMORY": 99}
"""The numbers the released UI knows our data source types by (Linkis numbers its types): fixed
once given; a new connector takes a new number."""
TYPE_NAMES = {number: name for name, number in TYPE_IDS.items()}


class TypeRef(fields.Field):
    """A data source type the UI names by its number (``"1"``, ``1``) or its name (``"MYSQL"``);
    loads as the name."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        if value in (None, ""):
            return None
        text = str(value).strip()
        name = TYPE_NAMES.get(int(text)) if text.isdigit() else text.upper()
        if name not in TYPE_IDS:
            raise ValidationError(f"unknown data source type {text[:32]!r}")
        return name


class ProjectPageQuerySchema(QuerySchema):
    """Query of the UI's project list (``POST /projects?name=&current=&size=``)."""

    name = fields.String(validate=validate.Length(max=128))
    current = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=10, validate=validate.Range(min=1, max=500))


class LabelsBodySchema(BodySchema):
    """A body that carries only the UI's ``labels`` (and, for the list, maybe a ``name``)."""

    labels = fields.Raw(load_default=None)
    name = fields.String(load_default=None, validate=validate.Length(max=128))


class BoundDataSourceSchema(BodySchema):
    """A data source the project dialog binds to the project (shares with it): its id counts,
    the rest is the list row the dialog read, sent back."""

    data_source_id = IdText(data_key="dataSourceId", required=True)
    data_source_type = fields.Raw(data_key="dataSourceType", load_default=None)
    data_source_name = fields.Raw(data_key="dataSourceName", load_default=None)
    data_source_desc = fields.Raw(data_key="dataSourceDesc", load_default=None)
    create_user = fields.Raw(data_key="createUser", load_default=None)
    create_time = fields.Raw(data_key="createTime", load_default=None)
    modify_time = fields.Raw(data_key="modifyTime", load_default=None)


class BoundDataSourceRowSchema(Schema):
    """A data source shared with a project, as the project dialog reads it."""

    id = fields.Integer(data_key="dataSourceId")
    name = fields.String(data_key="dataSourceName")
    type = fields.String(data_key="dataSourceType")
    description = fields.String(data_key="dataSourceDesc")
    create_user = fields.String(data_key="createUser")
    create_time = WireTime(data_key="createTime")
    update_time = WireTime(data_key="modifyTime")


class ProjectFormSchema(BodySchema):
    """Body of ``POST /createProject`` and ``PUT /updateProject`` (the UI's project dialog)."""

    id = IdText(load_default=None)
    name = fields.String(data_key="projectName", required=True, validate=PROJECT_NAME)
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    tags = fields.String(load_default="", validate=validate.Length(max=200))
    view_users = CommaList(data_key="viewUsers", load_default=list)
    edit_users = CommaList(data_key="editUsers", load_default=list)
    exec_users = CommaList(data_key="execUsers", load_default=list)
    data_sources = fields.List(
        fields.Nested(BoundDataSourceSchema),
        data_key="dataSources",
        load_default=list,
        validate=validate.Length(max=1000),
    )
    domain = fields.String(load_default=None, validate=validate.Length(max=32))
    labels = fields.Raw(load_default=None)


class ProjectInfoSchema(BodySchema):
    """A project as the released server answers it (``ExchangisProjectInfo``)."""

    id = fields.Function(lambda p: str(p["id"]))
    name = fields.String()
    description = fields.String()
    domain = fields.Constant("STANDALONE")
    tags = fields.Constant("")
    label = fields.Constant("")
    view_users = CommaList(data_key="viewUsers")
    edit_users = CommaList(data_key="editUsers")
    exec_users = CommaList(data_key="execUsers")
    owner = fields.String(data_key="createUser")
    create_time = WireTime(data_key="createTime")
    privileges = fields.List(fields.String())
    data_sources = fields.List(
        fields.Nested(BoundDataSourceRowSchema), data_key="dataSources", dump_default=list
    )
    source: fields.Constant[dict[str, Any]] = fields.Constant({})


class JobPageQuerySchema(QuerySchema):
    """Query of the UI's job list (``GET /job?projectId=&jobType=&name=&current=&size=``)."""

    project_id = IdText(data_key="projectId")
    job_type = fields.String(data_key="jobType", validate=validate.OneOf(JOB_TYPES))
    name = fields.String(validate=validate.Length(max=255))
    current = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=10, validate=validate.Range(min=1, max=500))


class JobDialogSchema(BodySchema):
    """Body of ``POST /job`` and ``PUT /job/{id}`` as the UI's job dialog sends it."""

    id = fields.Raw(load_default=None)
    job_name = fields.String(data_key="jobName", required=True, validate=TEXT)
    job_type = fields.String(
        data_key="jobType", load_default="OFFLINE", validate=validate.OneOf(JOB_TYPES)
    )
    engine_type = fields.String(
        data_key="engineType", load_default="EXCHANGIS", validate=validate.Length(min=1, max=32)
    )
    job_labels = fields.String(
        data_key="jobLabels", load_default="", validate=validate.Length(max=200)
    )
    job_desc = fields.String(
        data_key="jobDesc", load_default="", validate=validate.Length(max=2000)
    )
    project_id = IdText(data_key="projectId", load_default=None)
    labels = fields.Raw(load_default=None)


class JobContentBodySchema(BodySchema):
    """Body of ``PUT /job/{id}/content``: ``content`` is the JSON text of the sub-jobs."""

    content = fields.Raw(required=True)
    project_id = IdText(data_key="projectId", load_default=None)
    labels = fields.Raw(load_default=None)


class JobConfigBodySchema(BodySchema):
    """Body of ``PUT /job/{id}/config`` (the editor's drawer)."""

    proxy_user = fields.String(data_key="proxyUser", required=True, validate=USER_NAME)
    job_params = fields.Raw(data_key="jobParams", load_default=None)
    execute_node = fields.String(data_key="executeNode", load_default="")
    sync_type = fields.String(data_key="syncType", load_default="")
    project_id = IdText(data_key="projectId", load_default=None)
    labels = fields.Raw(load_default=None)


class JobVoSchema(JobBasicsSchema):
    """A job as the released server answers it (``ExchangisJobVo``): ``content`` and
    ``jobParams`` are JSON text."""

    project_id = fields.Integer(data_key="projectId", allow_none=True)
    proxy_user = fields.String(data_key="proxyUser")
    execute_node = fields.Constant("", data_key="executeNode")
    sync_type = fields.Constant("FULL", data_key="syncType")
    job_params = fields.String(data_key="jobParams")
    content = fields.String(allow_none=True)
    modify_user = fields.String(data_key="modifyUser")
    modify_time = WireTime(data_key="modifyTime")
    source: fields.Constant[dict[str, Any]] = fields.Constant({})


class ParamsUiQuerySchema(QuerySchema):
    """Query of ``GET /datasources/{engine}/{type}/params/ui``: which side's form."""

    dir = fields.String(required=True, validate=validate.OneOf(["source", "sink"]))


class TypeQuerySchema(QuerySchema):
    """Query of ``GET /datasources/type``: the types that can be this side (``direct``)."""

    engine_type = fields.String(data_key="engineType", validate=validate.Length(max=32))
    direct = fields.String(validate=validate.OneOf(["source", "sink"]))
    source_type = fields.String(data_key="sourceType", validate=validate.Length(max=32))


class DataSourceQueryBodySchema(BodySchema):
    """Body of ``POST /datasources/query`` (the editor's picker and the project page)."""

    name = fields.String(load_default="", validate=validate.Length(max=128))
    type_id = TypeRef(data_key="typeId", load_default=None)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(
        data_key="pageSize", load_default=100, validate=validate.Range(min=1, max=500)
    )
    project_id = IdText(data_key="projectId", load_default=None)
    labels = fields.Raw(load_default=None)


class DataSourceFormSchema(BodySchema):
    """Body of the data source page's create, update and unsaved test (``POST /datasources``,
    ``PUT /datasources/{id}``, ``POST /datasources/op/connect``)."""

    data_source_type_id = TypeRef(data_key="dataSourceTypeId", load_default=None)
    create_system = TypeRef(data_key="createSystem", load_default=None)
    create_identify = fields.String(data_key="createIdentify", load_default="")
    data_source_name = fields.String(
        data_key="dataSourceName", load_default="", validate=validate.Length(max=128)
    )
    data_source_desc = fields.String(
        data_key="dataSourceDesc", load_default="", validate=validate.Length(max=2000)
    )
    label = fields.String(
        load_default="", validate=validate.Equal("", error="tags on data sources are not kept")
    )
    comment = fields.String(load_default="", validate=validate.Length(max=2000))
    connect_params = fields.Dict(data_key="connectParams", required=True)
    project_id = IdText(data_key="projectId", load_default=None)
    labels = fields.Raw(load_default=None)


class TransformSettingsBodySchema(BodySchema):
    """Body of ``POST /job/transform/settings``: the two tables whose fields the mapping
    editor shows (``…TblNotExist``: the table is to be created)."""

    source_type_id = fields.String(data_key="sourceTypeId", required=True)
    source_data_source_id = IdText(data_key="sourceDataSourceId", required=True)
    source_data_base = fields.String(data_key="sourceDataBase", load_default=None)
    source_table = fields.String(data_key="sourceTable", required=True)
    sink_type_id = fields.String(data_key="sinkTypeId", required=True)
    sink_data_source_id = IdText(data_key="sinkDataSourceId", required=True)
    sink_data_base = fields.String(data_key="sinkDataBase", load_default=None)
    sink_table = fields.String(data_key="sinkTable", required=True)
    engine = fields.String(load_default="EXCHANGIS", validate=validate.Length(max=32))
    src_tbl_not_exist = fields.Boolean(data_key="srcTblNotExist", load_default=False)
    sink_tbl_not_exist = fields.Boolean(data_key="sinkTblNotExist", load_default=False)
    operator = fields.String(load_default=None)
    labels = fields.Raw(load_default=None)
