"""Shared bench helpers: serve the API in-process on loopback (signed in as an admin of its own),
time GETs (p50, alternating)."""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

from exchangis.app import create_app
from exchangis.client import ApiClient
from exchangis.embedded import free_port
from exchangis.migrations import upgrade
from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.settings import load_settings

API = "/api/rest_j/v1/exchangis"


@contextmanager
def served(
    redis_url: str, overrides: Mapping[str, Any] | None = None
) -> Iterator[tuple[ApiClient, Runtime]]:
    """Yield (a client signed in as an admin, runtime) of an app on a fresh SQLite file and a
    private key prefix."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    workdir = tempfile.mkdtemp(prefix="exg-bench-")
    settings = load_settings(
        {
            "redis_url": redis_url,
            "redis_prefix": f"exgbench-{uuid.uuid4().hex[:6]}:",
            "database_url": f"sqlite:///{workdir}/meta.db",
            **(overrides or {}),
        },
        environ={},
    )
    upgrade(settings.database_url)
    app = create_app(settings)
    rt: Runtime = app.extensions["exchangis"]
    users.create_user(rt, "bench", uuid.uuid4().hex, admin=True)
    token = str(users.issue_token(rt, "bench")["token"])
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ApiClient(f"http://127.0.0.1:{server.server_port}{API}", token), rt
    finally:
        server.shutdown()
        for key in rt.redis.scan_iter(rt.keys.pattern(), count=1000):
            rt.redis.delete(key)


def get(api: ApiClient, path: str) -> tuple[float, dict[str, Any]]:
    """Return the latency (ms) of GET ``path`` and its ``data``."""
    started = time.perf_counter()
    data = api.get(path)
    return (time.perf_counter() - started) * 1000, data


def timed(
    calls: Mapping[str, tuple[ApiClient, str]], runs: int
) -> dict[str, tuple[float, dict[str, Any]]]:
    """Return the p50 latency (ms) and last answer of each (API, path); the calls alternate, so
    drift in the machine's speed hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    answers: dict[str, dict[str, Any]] = {}
    for _ in range(runs):
        for name, (api, path) in calls.items():
            elapsed, answers[name] = get(api, path)
            samples[name].append(elapsed)
    return {name: (statistics.median(samples[name]), answers[name]) for name in calls}
