"""The API's calls to a worker: answered by a call server, errors by class, junk survived."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from exchangis.connectors import mysql, postgres
from exchangis.connectors.base import MAX_CONNECT_TIMEOUT
from exchangis.engine import calls
from exchangis.errors import ConflictError, ExchangisError, UnavailableError
from exchangis.runtime import Runtime
from exchangis.settings import Settings


@pytest.fixture
def server(migrated: Settings) -> Iterator[Runtime]:
    """A call server on a private key prefix; yields the API-side runtime."""
    settings = migrated.with_overrides(
        {"redis_prefix": f"exgcalls-{uuid.uuid4().hex[:6]}:", "worker_call_timeout_seconds": 5}
    )

    def echo(_rt: Runtime, args: Any) -> Any:
        return {"echo": args}

    def busy(_rt: Runtime, _args: Any) -> Any:
        raise ConflictError("busy")

    def broken(_rt: Runtime, _args: Any) -> Any:
        raise KeyError("secret=hunter2")

    thread = calls.CallServer(Runtime(settings), {"echo": echo, "busy": busy, "broken": broken})
    thread.start()
    api = Runtime(settings, decrypts=False)
    yield api
    thread.stop()
    thread.join(5)
    for key in api.redis.scan_iter(api.keys.pattern()):
        api.redis.delete(key)
    api.close()


def test_a_call_is_answered_and_errors_keep_their_class(server: Runtime) -> None:
    assert calls.ask(server, "echo", {"a": 1}) == {"echo": {"a": 1}}
    with pytest.raises(ConflictError, match="busy"):
        calls.ask(server, "busy", {})
    with pytest.raises(ExchangisError) as caught:  # a bug: a 500, its text not passed on
        calls.ask(server, "broken", {})
    assert type(caught.value) is ExchangisError and "hunter2" not in caught.value.message


def test_junk_on_the_request_list_does_not_stop_the_server(server: Runtime) -> None:
    for junk in ("not json", json.dumps([1, 2]), json.dumps({"deadline": "soon"})):
        server.redis.rpush(server.keys.calls(), junk)
    assert calls.ask(server, "echo", {"b": 2}) == {"echo": {"b": 2}}
    with pytest.raises(ExchangisError, match="unknown worker call"):
        calls.ask(server, "nope", {})


def test_without_a_server_the_caller_hears_503_and_nothing_piles_up(
    migrated: Settings,
) -> None:
    settings = migrated.with_overrides(
        {"redis_prefix": f"exgnocalls-{uuid.uuid4().hex[:6]}:", "worker_call_timeout_seconds": 1}
    )
    api = Runtime(settings, decrypts=False)
    with pytest.raises(UnavailableError, match="no worker answered"):
        calls.ask(api, "echo", {})
    assert 0 < api.redis.ttl(api.keys.calls()) <= calls.REPLY_TTL_SECONDS + 1
    api.redis.delete(api.keys.calls())
    api.close()


def test_a_data_source_cannot_ask_for_a_long_connect_timeout() -> None:
    params = postgres.libpq_params({"params": {"connect_timeout": 10**9}})
    assert params["connect_timeout"] == str(MAX_CONNECT_TIMEOUT)
    assert postgres.libpq_params({"params": {"connect_timeout": "x"}})["connect_timeout"] == "10"
    assert mysql.connect_timeout(0) == 1 and mysql.connect_timeout(None) == 10
