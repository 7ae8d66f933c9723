"""Schemas of the released Exchangis server's dialect (the alias prefix): what its web UI sends
and reads, mapped onto our own fields (``docs/design/released-dialect.md``)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from exchangis.schemas.common import PROJECT_NAME, USER_NAME, BodySchema, QuerySchema, WireTime


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


class ProjectPageQuerySchema(QuerySchema):
    """Query of the UI's project list (``POST /projects?name=&current=&size=``)."""

    name = fields.String(validate=validate.Length(max=128))
    current = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=10, validate=validate.Range(min=1, max=500))


class LabelsBodySchema(BodySchema):
    """A body that carries only the UI's ``labels`` (and, for the list, maybe a ``name``)."""

    labels = fields.Raw(load_default=None)
    name = fields.String(load_default=None, validate=validate.Length(max=128))


class ProjectFormSchema(BodySchema):
    """Body of ``POST /createProject`` and ``PUT /updateProject`` (the UI's project dialog)."""

    id = fields.Raw(load_default=None)
    name = fields.String(data_key="projectName", required=True, validate=PROJECT_NAME)
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    tags = fields.String(load_default="", validate=validate.Length(max=200))
    view_users = CommaList(data_key="viewUsers", load_default=list)
    edit_users = CommaList(data_key="editUsers", load_default=list)
    exec_users = CommaList(data_key="execUsers", load_default=list)
    data_sources = fields.List(fields.Dict(), data_key="dataSources", load_default=list)
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
    data_sources = fields.Constant([], data_key="dataSources")
    source = fields.Constant({})
