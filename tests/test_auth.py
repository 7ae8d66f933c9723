"""Sign-in: login, tokens, cookies, HTTP Basic, logout, expiry, the failed sign-in limit, the
trusted proxy header, users and the CLI that creates the first admin."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from exchangis.api.common import PUBLIC_ENDPOINTS
from exchangis.app import create_app
from exchangis.db import utcnow
from exchangis.models import ApiToken, User
from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.settings import Settings
from tests.conftest import ROOT
from tests.helpers import BASE, call, ok, signed_in

PASSWORD = "correct horse battery"


@pytest.fixture
def person(rt: Runtime, run_id: str) -> str:
    """A user (not an admin) with password PASSWORD."""
    name = f"u-{run_id}"
    users.create_user(rt, name, PASSWORD)
    return name


def basic(name: str, password: str) -> dict[str, str]:
    """Return an HTTP Basic Authorization header."""
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def login(client: FlaskClient, name: str, password: str, expect: int = 200) -> dict:
    """POST /api/rest_j/v1/user/login; return the envelope."""
    return call(
        client,
        "POST",
        "/user/login",
        {"userName": name, "password": password},
        expect=expect,
        prefix=BASE,
    )


def test_login_returns_a_token_and_a_cookie_that_each_identify_the_user(
    app: Flask, person: str
) -> None:
    anonymous = app.test_client()
    reply = login(anonymous, person, PASSWORD)
    assert reply["data"]["userName"] == person and reply["data"]["isAdmin"] is False
    token = reply["data"]["token"]
    assert token.startswith("exg_") and len(token) > 40
    cookie = anonymous.get_cookie("exchangis_token", path=BASE)
    assert cookie is not None and cookie.value == token and cookie.http_only
    assert cookie.same_site == "Lax"
    # the cookie alone
    assert ok(anonymous, "GET", "/user/userInfo") == {"userName": person, "isAdmin": False}
    # the bearer token alone
    assert ok(signed_in(app, token), "GET", "/user/userInfo")["userName"] == person
    # HTTP Basic alone, as scripts (and the Kylin API) do
    fresh = app.test_client()
    assert ok(fresh, "GET", "/user/userInfo", headers=basic(person, PASSWORD))["userName"] == (
        person
    )


def test_the_stored_password_is_an_argon2id_hash(rt: Runtime, person: str) -> None:
    with rt.sessions() as session:
        hashed = session.scalar(select(User.password_hash).where(User.name == person))
    assert hashed is not None and hashed.startswith("$argon2id$") and PASSWORD not in hashed


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer exg_not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Digest username=x"},
        {"Authorization": "Basic !!!not-base64"},
        {"Cookie": "exchangis_token=exg_forged"},
        {"X-Exchangis-User": "admin"},  # no trusted proxy configured: not believed
    ],
)
def test_missing_or_bad_credentials_are_a_401_in_the_envelope(
    app: Flask, headers: dict[str, str]
) -> None:
    reply = call(app.test_client(), "GET", "/job", expect=401, headers=headers)
    assert reply["status"] == -1 and reply["data"] == {}


def test_a_wrong_password_is_a_401_with_a_challenge(app: Flask, person: str) -> None:
    response = app.test_client().post(
        BASE + "/user/login", json={"userName": person, "password": "wrong password!"}
    )
    assert response.status_code == 401 and response.get_json()["status"] == -1
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = login(app.test_client(), f"nobody-{uuid.uuid4().hex[:6]}", PASSWORD, 401)
    assert unknown["message"] == response.get_json()["message"]  # no hint which one was wrong


def test_logout_revokes_the_token_and_clears_the_cookie(app: Flask, person: str) -> None:
    browser = app.test_client()
    token = login(browser, person, PASSWORD)["data"]["token"]
    script = signed_in(app, token)
    ok(browser, "POST", "/user/logout", prefix=BASE)
    assert browser.get_cookie("exchangis_token", path=BASE) is None
    assert call(script, "GET", "/user/userInfo", expect=401)["status"] == -1
    # the other login of the same user is untouched
    other = login(app.test_client(), person, PASSWORD)["data"]["token"]
    assert ok(signed_in(app, other), "GET", "/user/userInfo")["userName"] == person


def test_an_expired_token_is_refused(app: Flask, rt: Runtime, person: str) -> None:
    token = login(app.test_client(), person, PASSWORD)["data"]["token"]
    with rt.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == users.token_hash(token))
            .values(expire_time=utcnow() - timedelta(minutes=1))
        )
    reply = call(signed_in(app, token), "GET", "/job", expect=401)
    assert "expired" in reply["message"]


def test_a_new_password_or_a_disabled_user_ends_every_session(
    app: Flask, client: FlaskClient, person: str
) -> None:
    first = login(app.test_client(), person, PASSWORD)["data"]["token"]
    ok(client, "PUT", f"/users/{person}", {"password": "another password"})
    call(signed_in(app, first), "GET", "/job", expect=401)
    login(app.test_client(), person, PASSWORD, expect=401)
    second = login(app.test_client(), person, "another password")["data"]["token"]
    ok(client, "PUT", f"/users/{person}", {"disabled": True})
    call(signed_in(app, second), "GET", "/job", expect=401)
    login(app.test_client(), person, "another password", expect=401)
    call(app.test_client(), "GET", "/job", expect=401, headers=basic(person, "another password"))


def test_users_change_their_own_password_only_with_the_current_one(app: Flask, person: str) -> None:
    me = signed_in(app, login(app.test_client(), person, PASSWORD)["data"]["token"])
    wrong = call(
        me, "PUT", f"/users/{person}", {"password": "new password 1", "oldPassword": "guess"}, 403
    )
    assert wrong["status"] == 3
    call(me, "PUT", f"/users/{person}", {"password": "new password 1"}, expect=403)
    ok(me, "PUT", f"/users/{person}", {"password": "new password 1", "oldPassword": PASSWORD})
    login(app.test_client(), person, "new password 1")


def test_only_admins_manage_users(
    app: Flask, client: FlaskClient, person: str, run_id: str
) -> None:
    me = signed_in(app, login(app.test_client(), person, PASSWORD)["data"]["token"])
    body = {"userName": f"new-{run_id}", "password": "a fine password"}
    assert call(me, "POST", "/users", body, expect=403)["status"] == 3
    created = ok(client, "POST", "/users", body, expect=201)
    assert created == {**created, "userName": f"new-{run_id}", "isAdmin": False}
    assert "password" not in str(created).lower()
    assert [u["userName"] for u in ok(me, "GET", "/users")["result"]] == [person]
    assert f"new-{run_id}" in [u["userName"] for u in ok(client, "GET", "/users")["result"]]
    call(me, "GET", f"/users/new-{run_id}", expect=404)
    call(me, "PUT", f"/users/{person}", {"admin": True}, expect=403)
    call(me, "DELETE", f"/users/new-{run_id}", expect=403)
    call(client, "POST", "/users", body, expect=409)
    call(client, "POST", "/users", {**body, "userName": "bad name!"}, expect=400)
    call(
        client,
        "POST",
        "/users",
        {**body, "userName": f"s-{run_id}", "password": "short"},
        expect=400,
    )
    ok(client, "DELETE", f"/users/new-{run_id}")
    login(app.test_client(), f"new-{run_id}", "a fine password", expect=401)


@pytest.fixture
def strict_app(migrated: Settings, rt: Runtime) -> Iterator[Flask]:
    """The API with a limit of 3 failed sign-ins a minute, on its own Redis prefix."""
    settings = migrated.with_overrides(
        {"login_rate_limit": "3/minute", "redis_prefix": f"exgrate-{uuid.uuid4().hex[:6]}:"}
    )
    application = create_app(settings)
    yield application
    strict = application.extensions["exchangis"]
    for key in strict.redis.scan_iter(strict.keys.pattern()):
        strict.redis.delete(key)
    strict.close()


def from_address(app: Flask, address: str) -> FlaskClient:
    """Return a client whose requests come from ``address``."""
    test_client = app.test_client()
    test_client.environ_base["REMOTE_ADDR"] = address
    return test_client


def test_failed_sign_ins_are_limited_per_address_and_per_user(
    strict_app: Flask, rt: Runtime, person: str, run_id: str
) -> None:
    attacker = from_address(strict_app, "10.9.0.1")
    for attempt in range(3):
        login(attacker, person, f"guess {attempt}!", expect=401)
    response = attacker.post(BASE + "/user/login", json={"userName": person, "password": PASSWORD})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["status"] == 1 and "too many" in response.get_json()["message"]
    # HTTP Basic from that address is refused as well, even with the right password
    call(attacker, "GET", "/job", expect=429, headers=basic(person, PASSWORD))
    # the user name is limited from any address, so a spread-out guesser gains nothing
    again = from_address(strict_app, "10.9.0.2")
    call(again, "GET", "/job", expect=429, headers=basic(person, PASSWORD))
    # another user from another address signs in as usual
    other = f"o-{run_id}"
    users.create_user(rt, other, PASSWORD)
    login(from_address(strict_app, "10.9.0.3"), other, PASSWORD)
    # failed Basic attempts count like failed logins
    guesser = from_address(strict_app, "10.9.0.4")
    for _ in range(3):
        call(guesser, "GET", "/job", expect=401, headers=basic(other, "not it at all"))
    login(from_address(strict_app, "10.9.0.5"), other, PASSWORD, expect=429)


def test_the_user_header_is_believed_from_a_trusted_proxy_only(
    migrated: Settings, rt: Runtime, person: str, client: FlaskClient
) -> None:
    proxied = create_app(migrated.with_overrides({"trusted_proxies": "10.1.0.0/16"}))
    header = {"X-Exchangis-User": person}
    gateway = from_address(proxied, "10.1.2.3")
    assert ok(gateway, "GET", "/user/userInfo", headers=header) == {
        "userName": person,
        "isAdmin": False,
    }
    assert ok(gateway, "GET", "/user/userInfo", headers={"X-Exchangis-User": "admin"})["isAdmin"]
    call(from_address(proxied, "10.2.0.1"), "GET", "/user/userInfo", expect=401, headers=header)
    call(gateway, "GET", "/job", expect=400, headers={"X-Exchangis-User": "bad user; drop"})
    ok(client, "PUT", f"/users/{person}", {"disabled": True})
    call(gateway, "GET", "/job", expect=401, headers=header)
    proxied.extensions["exchangis"].close()


def test_every_endpoint_but_the_sign_in_and_the_api_description_needs_credentials(
    app: Flask,
) -> None:
    anonymous = app.test_client()
    anonymous.environ_base["REMOTE_ADDR"] = "192.0.2.10"  # /metrics is open from loopback only
    checked = 0
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = rule.rule
            for name, value in (("<int(max=2147483647):", "1"), ("<", "x")):
                while name in path:
                    start = path.index(name)
                    path = path[:start] + value + path[path.index(">", start) + 1 :]
            response = anonymous.open(path, method=method, json={})
            public = rule.endpoint.endswith("session.login") or rule.endpoint in PUBLIC_ENDPOINTS
            if public:
                assert response.status_code != 401, path
                continue
            assert response.status_code == 401, (method, path, response.data[:200])
            assert response.get_json()["status"] == -1
            checked += 1
    assert checked > 80  # both prefixes, every operation


def test_the_cli_creates_the_first_admin(tmp_path: Path, migrated: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    env.update(EXCHANGIS_DATABASE_URL=url, EXCHANGIS_REDIS_URL=migrated.redis_url)
    command = [sys.executable, "-m", "exchangis.cli"]
    subprocess.run([*command, "db", "upgrade"], env=env, cwd=ROOT, check=True)
    made = subprocess.run(
        [*command, "users", "create", "boss", "--admin", "--password-stdin"],
        env=env,
        cwd=ROOT,
        input="the boss password\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert "admin boss created" in made.stdout and "the boss password" not in made.stdout
    generated = subprocess.run(
        [*command, "users", "create", "helper"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    password = generated.stdout.strip().rsplit("password: ", 1)[1]
    listed = subprocess.run(
        [*command, "users", "list"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert listed.stdout.split("\n")[:2] == ["boss admin", "helper"]
    app = create_app(migrated.with_overrides({"database_url": url}))
    anonymous = app.test_client()
    assert login(anonymous, "boss", "the boss password")["data"]["isAdmin"] is True
    assert login(anonymous, "helper", password)["data"]["isAdmin"] is False
    app.extensions["exchangis"].close()


def test_parallel_guesses_do_not_slip_past_the_limit(strict_app: Flask, person: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def guess(i: int) -> int:
        attacker = from_address(strict_app, "10.9.1.1")
        headers = basic(person, f"parallel guess {i}")
        return attacker.get(f"{BASE}/exchangis/job", headers=headers).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(guess, range(24)))
    checked = codes.count(401)
    # 3 a minute; two checks may run at once, so at most one more slips in
    assert 3 <= checked <= 3 + users.CHECKS_AT_ONCE - 1, codes
    assert codes.count(429) == len(codes) - checked


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(
    migrated: Settings, person: str
) -> None:
    settings = migrated.with_overrides(
        {
            "login_rate_limit": "2/minute",
            "redis_prefix": f"exgfwd-{uuid.uuid4().hex[:6]}:",
            "trusted_proxies": "10.1.0.0/16",
        }
    )
    proxied = create_app(settings)
    gateway = from_address(proxied, "10.1.0.1")
    first = {"X-Forwarded-For": "198.51.100.1"}
    for _ in range(2):
        call(gateway, "GET", "/job", expect=401, headers={**first, **basic("nobody-x", "guess!")})
    call(gateway, "GET", "/job", expect=429, headers={**first, **basic("nobody-y", "guess!")})
    # another client behind the same proxy is not locked out by the first one's failures
    second = {"X-Forwarded-For": "198.51.100.2"}
    assert ok(gateway, "GET", "/user/userInfo", headers={**second, **basic(person, PASSWORD)})
    limited = proxied.extensions["exchangis"]
    for key in limited.redis.scan_iter(limited.keys.pattern()):
        limited.redis.delete(key)
    limited.close()


def test_whoever_changes_their_own_password_gives_the_current_one(
    app: Flask, client: FlaskClient, rt: Runtime, run_id: str
) -> None:
    boss = f"boss-{run_id}"
    users.create_user(rt, boss, PASSWORD, admin=True)
    stolen = signed_in(app, login(app.test_client(), boss, PASSWORD)["data"]["token"])
    call(stolen, "PUT", f"/users/{boss}", {"password": "taken over now"}, expect=403)
    ok(stolen, "PUT", f"/users/{boss}", {"password": "taken over now", "oldPassword": PASSWORD})


def test_a_deleted_users_rights_do_not_pass_to_a_new_user_of_that_name(
    app: Flask, client: FlaskClient, rt: Runtime, run_id: str
) -> None:
    name = f"gone-{run_id}"
    users.create_user(rt, name, PASSWORD)
    mine = signed_in(app, login(app.test_client(), name, PASSWORD)["data"]["token"])
    owned = ok(mine, "POST", "/projects", {"name": f"own-{run_id}"}, expect=201)["name"]
    shared = ok(client, "POST", "/projects", {"name": f"shared-{run_id}"}, expect=201)["name"]
    ok(client, "PUT", f"/projects/{shared}", {"execUsers": [name]})
    ok(client, "DELETE", f"/users/{name}")
    assert ok(client, "GET", f"/projects/{owned}")["owner"] == "admin"  # the deleting admin
    assert ok(client, "GET", f"/projects/{shared}")["execUsers"] == []
    users.create_user(rt, name, PASSWORD)
    again = signed_in(app, login(app.test_client(), name, PASSWORD)["data"]["token"])
    assert ok(again, "GET", "/projects")["result"] == []


def test_a_cookie_signed_change_from_another_site_is_refused(app: Flask, person: str) -> None:
    browser = app.test_client()
    login(browser, person, PASSWORD)
    body = {"name": f"csrf-{uuid.uuid4().hex[:6]}"}
    evil = {"Origin": "https://evil.example"}
    reply = call(browser, "POST", "/projects", body, expect=403, headers=evil)
    assert reply["status"] == 3 and "this site" in reply["message"]
    ok(browser, "GET", "/projects", headers=evil)  # reads are harmless (and not readable)
    ok(browser, "POST", "/projects", body, expect=201, headers={"Origin": "http://localhost"})
    # a script with a token sends no cookie: no Origin rule applies
    token = login(app.test_client(), person, PASSWORD)["data"]["token"]
    script = signed_in(app, token)
    ok(script, "PUT", f"/projects/{body['name']}", {"description": "x"}, headers=evil)


def test_a_cookie_signed_change_through_a_proxy_that_rewrites_host_is_accepted(
    migrated: Settings, person: str
) -> None:
    """The UI's dev proxy and the nginx recipe send ``Host: <backend>`` and name the browser's
    host in ``X-Forwarded-Host``: believed from a trusted proxy only."""
    proxied = create_app(migrated.with_overrides({"trusted_proxies": "10.1.0.0/16"}))
    page = {"Origin": "http://ui.example:8080", "X-Forwarded-Host": "ui.example:8080"}
    gateway = from_address(proxied, "10.1.2.3")
    login(gateway, person, PASSWORD)
    name = f"fwd-{uuid.uuid4().hex[:6]}"
    ok(gateway, "POST", "/projects", {"name": name}, expect=201, headers=page)
    # nginx: the host without its port, the port apart; https on its default port
    split = {"X-Forwarded-Host": "ui.example", "X-Forwarded-Port": "8080"}
    ok(gateway, "PUT", f"/projects/{name}", {"description": "a"}, headers=page | split)
    tls = {"Origin": "https://ui.example", "X-Forwarded-Host": "ui.example"}
    ok(gateway, "PUT", f"/projects/{name}", {"description": "b"}, headers=tls)
    # another site's page is refused even through the proxy
    evil = page | {"Origin": "http://evil.example:8080"}
    call(gateway, "PUT", f"/projects/{name}", {"description": "c"}, expect=403, headers=evil)
    # the header from anywhere but a trusted proxy changes nothing
    stranger = from_address(proxied, "10.2.0.1")
    login(stranger, person, PASSWORD)
    call(stranger, "PUT", f"/projects/{name}", {"description": "d"}, expect=403, headers=page)
    proxied.extensions["exchangis"].close()
