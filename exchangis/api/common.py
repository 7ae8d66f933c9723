"""The envelope, the caller's identity and the runtime, shared by every view."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from exchangis.errors import InvalidInputError
from exchangis.runtime import Runtime

PREFIXES = ("/api/rest_j/v1/exchangis", "/api/rest_j/v1/dss/exchangis/main")
"""Every route is served under both: the interface document's and the released server's."""

USER_HEADER = "X-Exchangis-User"
_USER = re.compile(r"^[A-Za-z0-9_.@\-]{1,128}$")


def envelope(
    data: Any = None, message: str = "OK", status: int = 0, http_status: int = 200
) -> ResponseReturnValue:
    """Return the JSON envelope ``{method, status, message, data}``."""
    body = {
        "method": request.path,
        "status": status,
        "message": message,
        "data": {} if data is None else data,
    }
    return jsonify(body), http_status


def runtime() -> Runtime:
    """Return the app's runtime."""
    rt: Runtime = current_app.extensions["exchangis"]
    return rt


def current_user() -> str:
    """Return the calling user: the ``X-Exchangis-User`` header, else the default user."""
    user = request.headers.get(USER_HEADER)
    if user is None or user == "":
        return runtime().settings.default_user
    if not _USER.match(user):
        raise InvalidInputError(
            f"{USER_HEADER}: must be 1-128 letters, digits or _.@-",
            errors={USER_HEADER: ["invalid user name"]},
        )
    return user
