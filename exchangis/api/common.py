"""The envelope, the caller's identity and the runtime, shared by every view."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from exchangis.errors import ForbiddenError, UnauthenticatedError
from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.services.access import Caller

BASE = "/api/rest_j/v1"
PREFIXES = (f"{BASE}/exchangis", f"{BASE}/dss/exchangis/main")
"""Every route is served under both: the interface document's and the released server's."""
ALIAS_TAG = "dss_"
"""Starts the name of every blueprint registered under the alias (the released server's) prefix."""

USER_HEADER = "X-Exchangis-User"
"""Names the caller when the request comes from one of ``trusted_proxies``."""
COOKIE = "exchangis_token"
"""The session cookie: the bearer token of a login, HttpOnly."""

DOCS_ASSETS = "/docs/assets"
"""Where the API page's files are served, below the primary prefix."""
DOCS_ASSETS_ENDPOINT = "api_docs_assets"
PUBLIC_ENDPOINTS = frozenset(
    {"api-docs.openapi_json", "api-docs.openapi_swagger_ui", DOCS_ASSETS_ENDPOINT}
)
"""Endpoints that need no credentials: the API's description, its page and the page's files
(ours elsewhere are marked :func:`public`)."""

View = TypeVar("View", bound=Callable[..., Any])


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


def problem_at(errors: Mapping[Any, Any], path: str = "") -> tuple[str, str]:
    """Return the path (``content[0].dataSources.sink.type``) and the message of the first
    problem in marshmallow's nested error messages (``("", "invalid input")``: none)."""
    for key, value in errors.items():
        where = (
            f"{path}.{key}"
            if path and not str(key).isdigit()
            else (f"{path}[{key}]" if path else str(key))
        )
        if isinstance(value, Mapping):
            return problem_at(value, where)
        if isinstance(value, list) and value:
            first = value[0]
            if isinstance(first, Mapping):
                return problem_at(first, where)
            return where, str(first)
    return "", "invalid input"


def first_problem(errors: Mapping[Any, Any]) -> str:
    """Return ``"field: message"`` of the first problem in nested error messages."""
    where, message = problem_at(errors)
    return f"{where}: {message}" if where else message


def released_dialect() -> bool:
    """Return whether this request came under the alias prefix, which answers in the released
    Exchangis server's shapes where they differ from our primary contract (``docs/api.md``)."""
    return (request.blueprint or "").startswith(ALIAS_TAG)


def runtime() -> Runtime:
    """Return the app's runtime."""
    rt: Runtime = current_app.extensions["exchangis"]
    return rt


def public(view: View) -> View:
    """Mark a view as open to callers without credentials (sign-in, the OpenAPI document)."""
    view.exchangis_public = True  # type: ignore[attr-defined]
    return view


def _from_trusted_proxy(proxies: tuple[str, ...]) -> bool:
    if not proxies or not request.remote_addr:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def client_address(proxies: tuple[str, ...]) -> str:
    """Return the client's address: behind a trusted proxy, the last ``X-Forwarded-For`` hop
    (the address the proxy saw), else the TCP peer's."""
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and _from_trusted_proxy(proxies):
        return forwarded.split(",")[-1].strip()[:64]
    return request.remote_addr or ""


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _site_hosts(proxies: tuple[str, ...]) -> set[str]:
    """Return the host names (``host[:port]``) this site is reached by: the request's ``Host``,
    and, from a trusted proxy that rewrites it, the last ``X-Forwarded-Host`` (with
    ``X-Forwarded-Port`` when the proxy sends the port apart)."""
    hosts = {request.host.lower()}
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded and _from_trusted_proxy(proxies):
        host = forwarded.split(",")[-1].strip().lower()
        port = request.headers.get("X-Forwarded-Port", "").split(",")[-1].strip()
        hosts.add(f"{host}:{port}" if port and ":" not in host.rsplit("]", 1)[-1] else host)
    return hosts


def _refuse_cross_site(proxies: tuple[str, ...]) -> None:
    """Refuse a cookie-signed change sent from another site's page (CSRF): browsers name the
    page's origin in ``Origin``; it must be this site (scripts send no Origin, or no cookie)."""
    origin = request.headers.get("Origin")
    if not origin:
        return
    parts = urlsplit(origin)
    netloc = parts.netloc.lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    candidates = {netloc, f"{netloc}:{default}"} if parts.port is None and default else {netloc}
    if parts.port is not None and parts.port == default:  # "host:443" names the site as "host"
        candidates.add(netloc.rsplit(":", 1)[0])
    if not candidates & _site_hosts(proxies):
        raise ForbiddenError(
            f"a change signed by the session cookie must come from this site, not {origin[:100]}"
        )


def authenticate() -> None:
    """Find the caller of this request (``g.caller``) or refuse it with a 401.

    In order: the ``X-Exchangis-User`` header from a trusted proxy, ``Authorization: Basic``,
    ``Authorization: Bearer``, the session cookie. Views marked :func:`public` need none.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    if request.endpoint in PUBLIC_ENDPOINTS or getattr(view, "exchangis_public", False):
        return
    require_caller()


def require_caller() -> None:
    """Find the caller of this request (``g.caller``) or refuse it with a 401 (see
    :func:`authenticate`; a public view that needs a caller only sometimes calls it)."""
    rt = runtime()
    g.token = None
    proxied = request.headers.get(USER_HEADER)
    if proxied and _from_trusted_proxy(rt.settings.trusted_proxies):
        g.caller = users.proxy_caller(rt, proxied)
        return
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        address = client_address(rt.settings.trusted_proxies)
        g.caller = users.check_password(rt, auth.username or "", auth.password or "", address)
        return
    if auth is not None and auth.type == "bearer" and auth.token:
        g.token = auth.token
    elif request.headers.get("Authorization"):
        raise UnauthenticatedError("Authorization: expected Basic or Bearer credentials")
    else:
        g.token = request.cookies.get(COOKIE)
        if g.token and request.method not in SAFE_METHODS:
            _refuse_cross_site(rt.settings.trusted_proxies)
    if not g.token:
        raise UnauthenticatedError(
            f"authentication required: log in (POST {BASE}/user/login) and send the session "
            "cookie or 'Authorization: Bearer <token>', or use HTTP Basic"
        )
    g.caller = users.token_caller(rt, g.token)


def current_user() -> Caller:
    """Return the authenticated caller of this request."""
    caller: Caller = g.caller
    return caller
