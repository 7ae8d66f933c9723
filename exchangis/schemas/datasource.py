"""Data source schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from exchangis.schemas.common import PROJECT_NAME, BodySchema, QuerySchema, WireTime

NAME = validate.Length(min=1, max=128)


class DataSourceCreateSchema(BodySchema):
    """Body of POST /datasources."""

    name = fields.String(required=True, validate=NAME)
    project_name = fields.String(
        data_key="projectName", load_default="default", validate=PROJECT_NAME
    )
    type = fields.String(required=True, validate=validate.Length(min=1, max=32))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    connect_params = fields.Dict(
        data_key="connectParams", required=True, keys=fields.String(validate=NAME)
    )


class DataSourceProbeSchema(DataSourceCreateSchema):
    """Body of POST /datasources/test: a data source to try before saving it (``name``
    optional, nothing saved)."""

    name = fields.String(load_default="", validate=validate.Length(max=128))


class DataSourceUpdateSchema(BodySchema):
    """Body of PUT /datasources/{id}: every field optional; ``******`` keeps a secret."""

    name = fields.String(validate=NAME)
    description = fields.String(validate=validate.Length(max=2000))
    connect_params = fields.Dict(data_key="connectParams", keys=fields.String(validate=NAME))


class DataSourceSchema(BodySchema):
    """A data source as returned (secrets masked)."""

    id = fields.Integer()
    name = fields.String()
    project_name = fields.String(data_key="projectName")
    type = fields.String()
    description = fields.String()
    connect_params = fields.Dict(data_key="connectParams")
    create_user = fields.String(data_key="createUser")
    create_time = WireTime(data_key="createTime")
    update_time = WireTime(data_key="updateTime")


class DataSourceTestSchema(BodySchema):
    """Result of POST /datasources/{id}/test."""

    ok = fields.Boolean()
    message = fields.String()
    elapsed_ms = fields.Integer(data_key="elapsedMs")


class DataSourceListQuerySchema(QuerySchema):
    """Query of GET /datasources."""

    project_name = fields.String(data_key="projectName", validate=validate.Length(max=128))


class CatalogQuerySchema(QuerySchema):
    """Query of GET /datasources/{id}/databases: a name filter (any case) and a page."""

    name = fields.String(load_default=None, validate=validate.Length(max=128))
    current = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=5000))


class TablesQuerySchema(CatalogQuerySchema):
    """Query of GET /datasources/{id}/tables: ``db`` (default: the data source's own)."""

    db = fields.String(load_default=None, validate=validate.Length(max=128))


class ColumnsQuerySchema(TablesQuerySchema):
    """Query of GET /datasources/{id}/columns: one table's columns, in their order."""

    table = fields.String(required=True, validate=validate.Length(min=1, max=512))
    size = fields.Integer(load_default=5000, validate=validate.Range(min=1, max=5000))


class ColumnSchema(BodySchema):
    """A column as its data source declares it."""

    name = fields.String()
    type = fields.String()
    nullable = fields.Boolean()
    key = fields.Boolean()
