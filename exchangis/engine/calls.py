"""Connector work the API hands to a worker, so that only workers decrypt data source secrets.

The API process needs a database's answer twice: to test a data source, and to cut a
channelled sub-job's table into key ranges at submit. It pushes a request ``{id, kind, args,
deadline}`` (ids and plans, never a secret) on the Redis list ``<prefix>calls`` and waits up
to ``worker_call_timeout_seconds`` on ``<prefix>call:<id>``. Each worker's services process runs a
:class:`CallServer` thread beside the Celery pool, so a call never waits behind transfers: it
takes a request, decrypts what it needs, connects, and pushes ``{ok: true, value}`` or
``{ok: false, error, message, errors}``. A request found after its deadline is dropped (its
caller has answered 503 already).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from redis.exceptions import RedisError

from exchangis.connectors.base import DataSourceType
from exchangis.connectors.catalog import page
from exchangis.errors import (
    ConflictError,
    ConnectorError,
    ExchangisError,
    InvalidInputError,
    NotFoundError,
    TransientConnectorError,
    UnavailableError,
    mask_secrets,
)
from exchangis.models import DataSource
from exchangis.runtime import Runtime

logger = logging.getLogger(__name__)

PROBE = "probe"
"""Test a data source: ``{datasource_id}``, or params not saved yet ``{type, connect}`` (sealed
by the API as a saved data source's are), → ``{ok, message, elapsed_ms}``."""
SPLIT = "split"
"""Cut a channelled sub-job's table: ``{plan, channels}`` → ``[key, bounds]``."""
CATALOG = "catalog"
"""List what a data source holds: ``{datasource_id, what: databases|tables|columns, db, table,
name, offset, limit}`` → ``{total, items}`` (names, or columns ``{name, type, nullable, key}``)."""

WAIT_STEP_SECONDS = 1.0
"""Longest single blocking read (under any Redis client socket timeout)."""
REPLY_TTL_SECONDS = 60
"""How long an answer waits for a caller that may have given up."""
ANSWERABLE: dict[str, type[ExchangisError]] = {
    cls.__name__: cls for cls in (InvalidInputError, NotFoundError, ConflictError, UnavailableError)
}
"""Errors a call may answer with; the API raises the same class (the same HTTP code)."""

Handler = Callable[[Runtime, Mapping[str, Any]], Any]


def ask(rt: Runtime, kind: str, args: Mapping[str, Any]) -> Any:
    """Have a worker run call ``kind`` with ``args``; return its value.

    Raises:
        UnavailableError: no worker answered in time.
        ExchangisError: the worker's error (its class when answerable, else a 500).
    """
    timeout = rt.settings.worker_call_timeout_seconds
    call_id = uuid.uuid4().hex
    deadline = rt.store.now_ms() + int(timeout * 1000)
    request = {"id": call_id, "kind": kind, "args": dict(args), "deadline": deadline}
    with rt.redis.pipeline() as pipe:  # with no worker at all, requests do not pile up
        pipe.rpush(rt.keys.calls(), json.dumps(request))
        pipe.expire(rt.keys.calls(), REPLY_TTL_SECONDS + int(timeout))
        pipe.execute()
    reply_key = rt.keys.call_reply(call_id)
    give_up = time.monotonic() + timeout
    popped = None
    while popped is None and (left := give_up - time.monotonic()) > 0:
        # short waits: a blocking read longer than the client's socket timeout would fail
        popped = rt.redis.blpop([reply_key], timeout=min(left, WAIT_STEP_SECONDS))
    if popped is None:
        raise UnavailableError(
            f"no worker answered within {timeout:g} s: is a worker of this deployment running?"
        )
    reply = json.loads(popped[1])
    if reply["ok"]:
        return reply["value"]
    error = ANSWERABLE.get(reply["error"], ExchangisError)
    raise error(reply["message"], errors=reply.get("errors"))


def answer(rt: Runtime, handlers: Mapping[str, Handler], request: Mapping[str, Any]) -> dict:
    """Run one request (worker side); return the reply (errors become replies, masked)."""
    handler = handlers.get(str(request.get("kind")))
    try:
        if handler is None:
            raise InvalidInputError(f"unknown worker call {request.get('kind')!r}")
        return {"ok": True, "value": handler(rt, request.get("args") or {})}
    except ExchangisError as exc:
        name = type(exc).__name__ if type(exc).__name__ in ANSWERABLE else "ExchangisError"
        return {
            "ok": False,
            "error": name,
            "message": mask_secrets(exc.message),
            "errors": exc.errors,
        }
    except Exception as exc:
        logger.exception("worker call %s failed", request.get("kind"))
        return {
            "ok": False,
            "error": "ExchangisError",
            "message": f"worker call {request.get('kind')} failed: {type(exc).__name__}",
        }


class CallServer(threading.Thread):
    """Answer the API's calls in a worker's services process, a few at a time."""

    def __init__(self, rt: Runtime, handlers: Mapping[str, Handler], at_once: int = 4) -> None:
        super().__init__(name="exchangis-calls", daemon=True)
        self.rt = rt
        self.handlers = dict(handlers)
        self.slots = threading.BoundedSemaphore(at_once)
        self.stopped = threading.Event()

    def run(self) -> None:
        """Take requests until stopped (one free slot first: the rest wait for other workers)."""
        while not self.stopped.is_set():
            self.slots.acquire()
            request = self._take()
            if request is None:
                self.slots.release()
                continue
            threading.Thread(target=self._serve, args=(request,), daemon=True).start()

    def _take(self) -> dict[str, Any] | None:
        """Return the next request still awaited (None: none within a second, junk, or one
        whose caller gave up)."""
        try:
            popped = self.rt.redis.blpop([self.rt.keys.calls()], timeout=1)
        except RedisError as exc:
            logger.warning("worker calls: live-state store unavailable: %s", exc)
            self.stopped.wait(1)
            return None
        if popped is None:
            return None
        try:
            request: dict[str, Any] = json.loads(popped[1])
            if int(request.get("deadline") or 0) >= self.rt.store.now_ms():
                return request
        except (ValueError, TypeError, AttributeError, RedisError):
            logger.warning("worker calls: dropped a request that is not one")
        return None

    def _serve(self, request: Mapping[str, Any]) -> None:
        try:
            reply = answer(self.rt, self.handlers, request)
            key = self.rt.keys.call_reply(str(request.get("id")))
            with self.rt.redis.pipeline() as pipe:
                pipe.rpush(key, json.dumps(reply, default=str))
                pipe.expire(key, REPLY_TTL_SECONDS)
                pipe.execute()
        except RedisError as exc:
            logger.warning("worker calls: cannot answer %s: %s", request.get("kind"), exc)
        finally:
            self.slots.release()

    def stop(self) -> None:
        """Stop taking requests (those in hand are answered)."""
        self.stopped.set()


def _opened(rt: Runtime, args: Mapping[str, Any]) -> tuple[DataSource, DataSourceType]:
    """Return the data source ``args`` name and its type (NotFoundError when it is gone)."""
    ds_id = int(args["datasource_id"])
    with rt.sessions() as session:
        ds = session.get(DataSource, ds_id)
        if ds is None:
            raise NotFoundError(f"data source {ds_id} does not exist")
    return ds, rt.registry.type(ds.type)


def probe(rt: Runtime, args: Mapping[str, Any]) -> dict[str, Any]:
    """Connect to a data source; report ``{ok, message, elapsed_ms}`` (never a secret)."""
    ds = _opened(rt, args)[0] if "datasource_id" in args else None
    ds_type = rt.registry.type(ds.type if ds is not None else str(args["type"]))
    started = time.monotonic()
    secrets: list[str] = []
    try:  # a key that does not open them, a path now out of bounds: a failed test
        if ds is not None:
            params = rt.connect_params(ds)
        else:
            params = rt.open_connect(ds_type, args["connect"], "connect params")
        secrets = ds_type.secret_values(params)
        if ds_type.tester is not None:
            ds_type.tester(params)
        ok, message = True, "connection succeeded"
    except ConnectorError as exc:
        ok, message = False, mask_secrets(exc.message, secrets)
    except Exception as exc:
        ok, message = False, mask_secrets(f"{type(exc).__name__}: {exc}", secrets)
    return {"ok": ok, "message": message, "elapsed_ms": int((time.monotonic() - started) * 1000)}


def catalog(rt: Runtime, args: Mapping[str, Any]) -> dict[str, Any]:
    """List a data source's databases, a database's tables or a table's columns, one page.

    Raises:
        InvalidInputError: the type cannot be browsed, or the data source refuses (bad
            credentials, a root that is not a directory).
        NotFoundError: no such data source, database or table.
        UnavailableError: the data source cannot be reached now.
    """
    ds, ds_type = _opened(rt, args)
    if ds_type.catalog is None:
        raise InvalidInputError(f"a {ds.type} data source cannot be browsed")
    what, db = str(args["what"]), args.get("db") or None
    secrets: list[str] = []
    try:
        params = rt.connect_params(ds)
        secrets = ds_type.secret_values(params)
        found: list[Any]
        if what == "databases":
            found = ds_type.catalog.databases(params)
        elif what == "tables":
            found = ds_type.catalog.tables(params, db)
        else:
            columns = ds_type.catalog.columns(params, db, str(args["table"]))
            found = [column.as_dict() for column in columns]
    except ConnectorError as exc:
        unreachable = isinstance(exc, TransientConnectorError)
        error = UnavailableError if unreachable else InvalidInputError
        raise error(f"data source {ds.name}: {mask_secrets(exc.message, secrets)}") from None
    return page(found, args.get("name"), int(args.get("offset") or 0), int(args["limit"]))
