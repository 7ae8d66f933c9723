"""The Flask application factory: blueprints under both prefixes, envelope, error mapping."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, make_response, request, send_from_directory
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from exchangis import process_log
from exchangis.api import (
    connector,
    datasource,
    execution,
    job,
    metrics,
    project,
    released,
    schedule,
    user,
)
from exchangis.api.common import (
    ALIAS_TAG,
    BASE,
    DOCS_ASSETS,
    DOCS_ASSETS_ENDPOINT,
    PREFIXES,
    authenticate,
    envelope,
    first_problem,
)
from exchangis.errors import (
    ExchangisError,
    InvalidInputError,
    TooManyRequestsError,
    UnauthenticatedError,
    install_log_masking,
    mask_secrets,
)
from exchangis.runtime import Runtime
from exchangis.schemas.common import wire_zone
from exchangis.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def _schema_errors(exc: HTTPException) -> dict[str, Any]:
    """Flatten webargs' ``{location: {field: [msgs]}}`` into ``{field: [msgs]}``."""
    messages = (getattr(exc, "data", None) or {}).get("messages") or {}
    flat: dict[str, Any] = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            flat.update(location_errors)
    return flat


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def check_json_body() -> None:
    """Reject a JSON body that does not parse, or that holds NaN/Infinity, with a clear 400."""
    if not request.is_json or not request.get_data(cache=True):
        return
    try:
        json.loads(
            request.get_data(cache=True),
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        message = f"invalid JSON body: {exc}"
        raise InvalidInputError(message, errors={"json": [message]}) from None


def register_error_handlers(app: Flask) -> None:
    """Map every error to the envelope and its HTTP code, in one place."""

    @app.errorhandler(ExchangisError)
    def domain_error(exc: ExchangisError) -> ResponseReturnValue:
        if exc.http_status >= 500:
            logger.error("internal error: %s", exc.message)
        data = {"errors": exc.errors} if exc.errors else None
        response = make_response(
            envelope(
                data, message=exc.message, status=exc.envelope_status, http_status=exc.http_status
            )
        )
        if isinstance(exc, UnauthenticatedError):
            response.headers["WWW-Authenticate"] = 'Bearer realm="exchangis"'
        if isinstance(exc, TooManyRequestsError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(RedisError)
    def redis_down(exc: RedisError) -> ResponseReturnValue:
        logger.error("live-state store error: %s", exc)
        return envelope(
            None, message="the live-state store (Redis) is unavailable", status=1, http_status=503
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_down(exc: Exception) -> ResponseReturnValue:
        logger.error("metadata database error: %s", exc)
        return envelope(
            None, message="the metadata database is unavailable", status=1, http_status=503
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        if code == 422 or (code == 400 and _schema_errors(exc)):
            errors = _schema_errors(exc)
            return envelope(
                {"errors": errors}, message=first_problem(errors), status=1, http_status=400
            )
        status = {401: -1, 403: 3}.get(code, 1)
        message = exc.description or exc.name
        if code == 413:
            message = (
                f"request body too large: the limit is {app.config['MAX_CONTENT_LENGTH']} bytes"
            )
        return envelope(None, message=message, status=status, http_status=code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        logger.error("unhandled error: %s", mask_secrets(traceback.format_exc()))
        return envelope(
            None, message=f"internal error: {type(exc).__name__}", status=1, http_status=500
        )


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "basic": {"type": "http", "scheme": "basic"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "exchangis_token"},
}
SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
"""Every operation takes any one of them, but the sign-in (marked ``security: []``)."""


def docs_asset(filename: str) -> ResponseReturnValue:
    """Serve a file of the API page (Swagger UI, from the ``swagger-ui-bundle`` package)."""
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, filename, max_age=3600)


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the API app; ``config`` is a Settings object or setting overrides."""
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask("exchangis", static_folder=None)
    app.config.update(
        API_TITLE="exchangis",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIXES[0],
        OPENAPI_JSON_PATH="openapi.json",
        # the interactive page, its assets served by us from a PyPI package: it works offline
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"{PREFIXES[0]}{DOCS_ASSETS}/",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # workers connect for the API (engine/calls.py); a store outage is a 503, not a wait
    rt = Runtime(settings, decrypts=False, patient=False)
    app.extensions["exchangis"] = rt
    api = Api(app, spec_kwargs={"security": SECURITY})
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    api.register_blueprint(user.session_blp, url_prefix=BASE, name="linkis_session")
    # the released server's dialect first: its routes win over shared ones under the alias
    api.register_blueprint(released.blp, url_prefix=PREFIXES[1], name=ALIAS_TAG + "released")
    for prefix in PREFIXES:
        tag = ALIAS_TAG if "dss" in prefix else ""
        for module in (user, project, datasource, connector, job, execution, schedule):
            api.register_blueprint(module.blp, url_prefix=prefix, name=tag + module.blp.name)
        api.register_blueprint(user.session_blp, url_prefix=prefix, name=tag + "session")
    app.add_url_rule(
        f"{PREFIXES[0]}{DOCS_ASSETS}/<path:filename>", DOCS_ASSETS_ENDPOINT, docs_asset
    )
    app.add_url_rule(metrics.PATH, "metrics", metrics.metrics_view)
    register_error_handlers(app)
    install_log_masking()

    @app.before_request
    def set_zone() -> None:
        wire_zone.set(rt.zone)
        named = request.view_args or {}  # the process's log lines name what the request does
        process_log.only(execution=named.get("eid"), task=named.get("task_id"))

    app.before_request(authenticate)

    @app.before_request
    def strict_json() -> None:
        check_json_body()

    return app
