"""Project schemas (Exchangis' shape: view, edit and execute user lists)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from exchangis.schemas.common import PROJECT_NAME, USER_NAME, BodySchema, WireTime

DESCRIPTION = validate.Length(max=2000)


def _users(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(validate=USER_NAME), validate=validate.Length(max=1000), **kwargs
    )


class ProjectCreateSchema(BodySchema):
    """Body of POST /projects; the caller becomes its owner (every privilege)."""

    name = fields.String(required=True, validate=PROJECT_NAME)
    description = fields.String(load_default="", validate=DESCRIPTION)
    view_users = _users(data_key="viewUsers", load_default=list)
    edit_users = _users(data_key="editUsers", load_default=list)
    exec_users = _users(data_key="execUsers", load_default=list)


class ProjectUpdateSchema(BodySchema):
    """Body of PUT /projects/{name}: each field given replaces the stored one."""

    description = fields.String(validate=DESCRIPTION)
    view_users = _users(data_key="viewUsers")
    edit_users = _users(data_key="editUsers")
    exec_users = _users(data_key="execUsers")


class ProjectSchema(BodySchema):
    """A project as returned, with the caller's own privileges on it."""

    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    owner = fields.String()
    view_users = fields.List(fields.String(), data_key="viewUsers")
    edit_users = fields.List(fields.String(), data_key="editUsers")
    exec_users = fields.List(fields.String(), data_key="execUsers")
    privileges = fields.List(fields.String())
    create_time = WireTime(data_key="createTime")
    update_time = WireTime(data_key="updateTime")
