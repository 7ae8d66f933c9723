"""``/connectors``: what each connector takes and can do, as forms a UI draws."""

from __future__ import annotations

from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import envelope, runtime
from exchangis.schemas.connector import ConnectorSchema

blp = Blueprint("connectors", __name__, description="Connectors: options and capabilities")


@blp.route("/connectors", methods=["GET"])
def list_connectors() -> ResponseReturnValue:
    """List every connector with its connect parameters, options and capabilities."""
    return envelope({"list": ConnectorSchema(many=True).dump(runtime().registry.describe_all())})


@blp.route("/connectors/<string(maxlength=64):kind>", methods=["GET"])
def get_connector(kind: str) -> ResponseReturnValue:
    """Read one connector (``MYSQL``, ``POSTGRESQL``, ``SQLITE``, ``FILE``...)."""
    return envelope(ConnectorSchema().dump(runtime().registry.describe(kind.upper())))
