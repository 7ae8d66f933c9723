"""Connector forms (``GET /connectors``): parameters, options and capabilities."""

from __future__ import annotations

from marshmallow import Schema, fields


class ParamFormSchema(Schema):
    """One connect parameter of a data source type."""

    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    secret = fields.Boolean()
    default = fields.Raw(allow_none=True)


class OptionFormSchema(Schema):
    """One option of a source or sink (``params.sources`` / ``params.sinks``)."""

    name = fields.String()
    type = fields.String(metadata={"description": "boolean, integer, number, duration, ..."})
    default = fields.Raw(allow_none=True)
    side = fields.String(metadata={"description": "source or sink"})
    required = fields.Boolean()
    secret = fields.Boolean()
    values = fields.List(fields.String(), metadata={"description": "an enum's values"})
    help = fields.String()


class CapabilitiesSchema(Schema):
    """What a connector can do."""

    read = fields.Boolean()
    write = fields.Boolean()
    browse = fields.Boolean(metadata={"description": "lists databases, tables and columns"})
    write_modes = fields.List(fields.String(), data_key="writeModes")
    upsert = fields.Boolean()
    create_table = fields.Boolean(data_key="createTable")
    atomic = fields.Boolean()
    ledger = fields.Boolean()
    channels = fields.Boolean()
    where = fields.Boolean()
    estimate = fields.Boolean()


class ConnectorSchema(Schema):
    """A connector: its type, label, sides, connect parameters, options and capabilities."""

    type = fields.String()
    label = fields.String()
    source = fields.Boolean()
    sink = fields.Boolean()
    params = fields.List(fields.Nested(ParamFormSchema))
    options = fields.List(fields.Nested(OptionFormSchema))
    capabilities = fields.Nested(CapabilitiesSchema)
