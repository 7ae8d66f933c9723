"""Sign-in and user schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from exchangis.schemas.common import USER_NAME, BodySchema, WireTime

PASSWORD = validate.Length(min=1, max=1024)


class LoginBodySchema(BodySchema):
    """Body of POST /user/login."""

    user_name = fields.String(data_key="userName", required=True, validate=validate.Length(1, 128))
    password = fields.String(required=True, validate=PASSWORD)


class LoginResultSchema(BodySchema):
    """A sign-in: who, and the bearer token (also set as the session cookie)."""

    user_name = fields.String(data_key="userName")
    admin = fields.Boolean(data_key="isAdmin")
    token = fields.String()
    expire_time = WireTime(data_key="expireTime")


class UserCreateSchema(BodySchema):
    """Body of POST /users (admins)."""

    user_name = fields.String(data_key="userName", required=True, validate=USER_NAME)
    password = fields.String(required=True, validate=PASSWORD)
    admin = fields.Boolean(load_default=False)


class UserUpdateSchema(BodySchema):
    """Body of PUT /users/{name}: a new password (with ``oldPassword`` for one's own), flags."""

    password = fields.String(validate=PASSWORD)
    old_password = fields.String(data_key="oldPassword", validate=PASSWORD)
    admin = fields.Boolean()
    disabled = fields.Boolean()


class UserSchema(BodySchema):
    """A user as returned (never the password hash)."""

    user_name = fields.String(data_key="userName")
    admin = fields.Boolean(data_key="isAdmin")
    disabled = fields.Boolean()
    create_time = WireTime(data_key="createTime")
    update_time = WireTime(data_key="updateTime")
