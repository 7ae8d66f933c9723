"""Shared schema bases and fields: strict bodies, lenient queries, wire times."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import EXCLUDE, RAISE, Schema, fields, pre_load, validate

wire_zone: ContextVar[ZoneInfo | None] = ContextVar("wire_zone", default=None)
"""Zone of wire times; the app sets it per request from settings (UTC when unset)."""

MAX_TEXT = 4096


class BodySchema(Schema):
    """Base of request bodies: unknown fields are rejected."""

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    """Base of query strings: unknown parameters (``_``, ``labels``) are ignored; empty = absent."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def drop_empty(self, data: Any, **_: Any) -> Any:
        """Treat ``name=`` as if the parameter were absent (as the web UI sends it)."""
        if hasattr(data, "items"):
            return {k: v for k, v in data.items() if v not in ("", None)}
        return data


class LabelsSchema(BodySchema):
    """``labels`` sent by the web UI on execution calls; ``route`` may name a worker queue."""

    class Meta:
        unknown = EXCLUDE

    route = fields.String(load_default=None, validate=lambda s: len(s) <= 128)


class WireTime(fields.Field):
    """A time as ``YYYY-MM-DD HH:MM:SS`` in the configured zone (from epoch ms or UTC datetime)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        else:
            moment = datetime.fromtimestamp(int(value) / 1000, UTC)
        zone = wire_zone.get() or UTC
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


PROJECT_NAME = validate.Regexp(
    r"^[A-Za-z0-9_.\-]{1,128}\Z", error="must be 1-128 letters, digits, '_', '-' or '.'"
)
USER_NAME = validate.Regexp(
    r"^[A-Za-z0-9_.@\-]{1,128}\Z", error="must be 1-128 letters, digits or _.@-"
)
