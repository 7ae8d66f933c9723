"""Sign-in (``/user/login``, ``/user/logout``, ``/user/userInfo``) and ``/users`` (admins)."""

from __future__ import annotations

from typing import Any

from flask import g, make_response
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint

from exchangis.api.common import (
    BASE,
    COOKIE,
    client_address,
    current_user,
    envelope,
    public,
    runtime,
)
from exchangis.schemas.user import (
    LoginBodySchema,
    LoginResultSchema,
    UserCreateSchema,
    UserSchema,
    UserUpdateSchema,
)
from exchangis.services import user as service

session_blp = Blueprint("session", __name__, description="Sign-in and sign-out")
blp = Blueprint("users", __name__, description="Users (admins manage them)")


@session_blp.route("/user/login", methods=["POST"])
@session_blp.arguments(LoginBodySchema)
@session_blp.doc(security=[])
@public
def login(body: dict[str, Any]) -> ResponseReturnValue:
    """Sign in: returns a bearer token and sets it as the session cookie."""
    rt = runtime()
    address = client_address(rt.settings.trusted_proxies)
    result = service.login(rt, body["user_name"], body["password"], address)
    response = make_response(envelope(LoginResultSchema().dump(result), message="login successful"))
    response.set_cookie(
        COOKIE,
        result["token"],
        max_age=rt.settings.token_ttl_seconds,
        path=BASE,
        secure=rt.settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )
    return response


@session_blp.route("/user/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    """Sign out: the token (or cookie) of this request stops working."""
    if g.token:
        service.revoke_token(runtime(), g.token)
    response = make_response(envelope({"userName": current_user().name}, message="logged out"))
    response.delete_cookie(COOKIE, path=BASE)
    return response


@session_blp.route("/user/userInfo", methods=["GET"])
def user_info() -> ResponseReturnValue:
    """Who the caller is."""
    caller = current_user()
    return envelope({"userName": caller.name, "isAdmin": caller.admin})


@blp.route("/users", methods=["POST"])
@blp.arguments(UserCreateSchema)
def create_user(body: dict[str, Any]) -> ResponseReturnValue:
    """Create a user (admins)."""
    return envelope(
        UserSchema().dump(service.add_user(runtime(), current_user(), body)), http_status=201
    )


@blp.route("/users", methods=["GET"])
def list_users() -> ResponseReturnValue:
    """List users (admins: all; others: themselves)."""
    items = service.list_users(runtime(), current_user())
    return envelope({"result": UserSchema(many=True).dump(items), "total": len(items)})


@blp.route("/users/<name>", methods=["GET"])
def get_user(name: str) -> ResponseReturnValue:
    """Read a user."""
    return envelope(UserSchema().dump(service.get_user(runtime(), current_user(), name)))


@blp.route("/users/<name>", methods=["PUT"])
@blp.arguments(UserUpdateSchema)
def update_user(body: dict[str, Any], name: str) -> ResponseReturnValue:
    """Change a password (one's own, with oldPassword) or, as an admin, any user's flags."""
    result = service.update_user(runtime(), current_user(), name, body)
    return envelope(UserSchema().dump(result))


@blp.route("/users/<name>", methods=["DELETE"])
def delete_user(name: str) -> ResponseReturnValue:
    """Delete a user (admins)."""
    service.delete_user(runtime(), current_user(), name)
    return envelope({"userName": name})
