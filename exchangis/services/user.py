"""Users, their passwords (argon2id), bearer tokens, and the limit on failed sign-ins."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from sqlalchemy import delete, select, update

from exchangis.db import utcnow
from exchangis.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TooManyRequestsError,
    UnauthenticatedError,
)
from exchangis.models import ApiToken, Project, ProjectMember, User
from exchangis.runtime import Runtime
from exchangis.services.access import Caller

USER_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,128}\Z")
"""What a user name may be (it is shown in logs and lists, and compared as it is)."""
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "exg_"
"""Tokens start with it, so secret scanners and people can tell what leaked."""

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
CHECKS_AT_ONCE = 2
"""Password checks one process runs at once (each argon2 hash takes 64 MiB)."""
_checking = threading.BoundedSemaphore(CHECKS_AT_ONCE)


@cache
def _decoy_hash() -> str:
    """A hash to verify against when the user does not exist: both answers take as long."""
    return _hasher.hash(secrets.token_hex(16))


def check_user_name(name: str, field: str = "userName") -> str:
    """Return ``name`` when it is a valid user name.

    Raises:
        InvalidInputError: naming ``field``.
    """
    if not USER_NAME.match(name):
        message = "must be 1-128 letters, digits or _.@-"
        raise InvalidInputError.of(field, message)
    return name


def _check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        message = f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        raise InvalidInputError.of("password", message)
    return password


def _dump(user: User) -> dict[str, Any]:
    return {
        "user_name": user.name,
        "admin": user.admin,
        "disabled": user.disabled,
        "create_time": user.create_time,
        "update_time": user.update_time,
    }


def _get(session: Any, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"user {name} does not exist")
    return user


def _require_admin(caller: Caller) -> None:
    if not caller.admin:
        raise ForbiddenError(f"{caller.name} may not manage users: only admins may")


def _require_reachable(caller: Caller, name: str) -> None:
    """Admins reach every user, others only themselves (anyone else does not exist to them)."""
    if not caller.admin and name != caller.name:
        raise NotFoundError(f"user {name[:128]} does not exist")


# -- users ----------------------------------------------------------------------------------------
def create_user(rt: Runtime, name: str, password: str, admin: bool = False) -> dict[str, Any]:
    """Create a user; return it (no hash).

    Raises:
        InvalidInputError: a bad name or a too short password. ConflictError: the name is taken.
    """
    check_user_name(name)
    hashed = _hasher.hash(_check_password(password))
    with rt.sessions.begin() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise ConflictError(f"user {name} exists already")
        user = User(name=name, password_hash=hashed, admin=admin)
        session.add(user)
        session.flush()
        return _dump(user)


def add_user(rt: Runtime, caller: Caller, data: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /users``: an admin creates a user."""
    _require_admin(caller)
    return create_user(rt, data["user_name"], data["password"], data["admin"])


def list_users(rt: Runtime, caller: Caller) -> list[dict[str, Any]]:
    """Every user (admins); a user who is not an admin sees only themselves."""
    stmt = select(User).order_by(User.name)
    if not caller.admin:
        stmt = stmt.where(User.name == caller.name)
    with rt.sessions() as session:
        return [_dump(user) for user in session.scalars(stmt)]


def get_user(rt: Runtime, caller: Caller, name: str) -> dict[str, Any]:
    """One user: admins see anyone, others themselves."""
    _require_reachable(caller, name)
    with rt.sessions() as session:
        return _dump(_get(session, name))


def update_user(rt: Runtime, caller: Caller, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Change a password, the admin flag or the disabled flag.

    Admins change anyone (but not their own admin or disabled flag: an installation keeps an
    admin). Others may change only their own password. Whoever changes their own password
    gives the current one (a stolen token alone does not take the account). A new password or
    a disabled flag revokes every token of the user.
    """
    _require_reachable(caller, name)
    flags = {k for k in ("admin", "disabled") if data.get(k) is not None}
    if flags and not caller.admin:
        raise ForbiddenError(f"{caller.name} may not change {', '.join(sorted(flags))}")
    if flags and name == caller.name:
        raise ConflictError("an admin may not change their own admin or disabled flag")
    with rt.sessions.begin() as session:
        user = _get(session, name)
        if data.get("password") is not None:
            if name == caller.name:
                old = data.get("old_password") or ""
                if not _verify(user.password_hash, old):
                    raise ForbiddenError("oldPassword: does not match the current password")
            user.password_hash = _hasher.hash(_check_password(data["password"]))
        if data.get("admin") is not None:
            user.admin = bool(data["admin"])
        if data.get("disabled") is not None:
            user.disabled = bool(data["disabled"])
        if data.get("password") is not None or user.disabled:
            session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        session.flush()
        return _dump(user)


def delete_user(rt: Runtime, caller: Caller, name: str) -> None:
    """An admin deletes a user (not themselves): their tokens and memberships go with them,
    and the projects they owned pass to that admin (a later user of the same name inherits
    nothing)."""
    _require_admin(caller)
    if name == caller.name:
        raise ConflictError("an admin may not delete themselves")
    with rt.sessions.begin() as session:
        session.delete(_get(session, name))
        session.execute(delete(ProjectMember).where(ProjectMember.user_name == name))
        session.execute(update(Project).where(Project.owner == name).values(owner=caller.name))


# -- signing in -----------------------------------------------------------------------------------
def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password(rt: Runtime, name: str, password: str, address: str) -> Caller:
    """Return the caller whose name and password these are.

    Failed attempts are counted per client address and per user name (``login_rate_limit``);
    once either is used up, every attempt of it is refused until the window moves, right
    password or not. A process checks :data:`CHECKS_AT_ONCE` passwords at a time (each hash
    takes tens of MiB), limit test and count included, so parallel guesses cannot slip past
    the limit together.

    Raises:
        TooManyRequestsError: too many failures lately. UnauthenticatedError: wrong name or
        password, or a disabled user (the same answer for each, in the same time).
    """
    limit = parse(rt.settings.login_rate_limit)
    limiter = rt.sign_in_limiter
    counted = (("address", address or "-"), ("user", name[:128]))
    with _checking:
        for kind, value in counted:
            if not limiter.test(limit, kind, value):
                reset = limiter.get_window_stats(limit, kind, value).reset_time
                wait = max(1, int(reset - time.time()) + 1)
                raise TooManyRequestsError(
                    f"too many failed sign-ins for this {kind}: try again in {wait} s",
                    retry_after=wait,
                )
        caller = _verify_user(rt, name, password)
        if caller is None:
            for kind, value in counted:
                limiter.hit(limit, kind, value)
            raise UnauthenticatedError("wrong user name or password")
    return caller


def _verify_user(rt: Runtime, name: str, password: str) -> Caller | None:
    """Return the caller when the password is theirs (rehashing an outdated hash), else None."""
    with rt.sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        hashed = user.password_hash if user is not None else _decoy_hash()
        if not _verify(hashed, password) or user is None or user.disabled:
            return None
        if _hasher.check_needs_rehash(hashed):
            user.password_hash = _hasher.hash(password)
            session.commit()
        return Caller(user.name, user.admin)


def token_hash(token: str) -> str:
    """Return what is stored of a token: its SHA-256 (a leaked table gives no usable token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(rt: Runtime, name: str) -> dict[str, Any]:
    """Return a new bearer token of user ``name`` and when it expires (expired ones are
    dropped on the way)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(seconds=rt.settings.token_ttl_seconds)
    with rt.sessions.begin() as session:
        user = _get(session, name)
        session.execute(delete(ApiToken).where(ApiToken.expire_time <= now))
        session.add(ApiToken(token_hash=token_hash(token), user_id=user.id, expire_time=expires))
        return {"user_name": user.name, "admin": user.admin, "token": token, "expire_time": expires}


def login(rt: Runtime, name: str, password: str, address: str) -> dict[str, Any]:
    """``POST /user/login``: check the password, return a new token."""
    caller = check_password(rt, name, password, address)
    return issue_token(rt, caller.name)


def token_caller(rt: Runtime, token: str) -> Caller:
    """Return the caller holding ``token``.

    Raises:
        UnauthenticatedError: the token is unknown, expired or revoked, or its user disabled.
    """
    with rt.sessions() as session:
        row = session.execute(
            select(User.name, User.admin)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_hash == token_hash(token),
                ApiToken.expire_time > utcnow(),
                User.disabled.is_(False),
            )
        ).first()
    if row is None:
        raise UnauthenticatedError("the token is invalid, expired or revoked: log in again")
    return Caller(row.name, row.admin)


def revoke_token(rt: Runtime, token: str) -> None:
    """``POST /user/logout``: the token stops working at once."""
    with rt.sessions.begin() as session:
        session.execute(delete(ApiToken).where(ApiToken.token_hash == token_hash(token)))


def proxy_caller(rt: Runtime, name: str) -> Caller:
    """Return the caller a trusted proxy names: an admin if a user of that name is one.

    Raises:
        InvalidInputError: not a user name. UnauthenticatedError: the user is disabled.
    """
    check_user_name(name, "X-Exchangis-User")
    with rt.sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
    if user is not None and user.disabled:
        raise UnauthenticatedError(f"user {name} is disabled")
    return Caller(name, bool(user is not None and user.admin))
