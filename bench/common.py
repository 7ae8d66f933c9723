"""Shared bench helpers: serve the API in-process on loopback, time GETs (p50, alternating)."""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

from exchangis.app import create_app
from exchangis.embedded import free_port
from exchangis.migrations import upgrade
from exchangis.runtime import Runtime
from exchangis.settings import load_settings

API = "/api/rest_j/v1/exchangis"


@contextmanager
def served(
    redis_url: str, overrides: Mapping[str, Any] | None = None
) -> Iterator[tuple[str, Runtime]]:
    """Yield (API base URL, runtime) of an app on a fresh SQLite file and a private key prefix."""
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
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{API}", rt
    finally:
        server.shutdown()
        for key in rt.redis.scan_iter(rt.keys.pattern(), count=1000):
            rt.redis.delete(key)


def get(url: str) -> tuple[float, dict[str, Any]]:
    """Return the latency (ms) of GET ``url`` and its ``data``."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        answer = json.load(response)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer["status"] == 0, answer
    return elapsed, answer["data"]


def timed(urls: Mapping[str, str], runs: int) -> dict[str, tuple[float, dict[str, Any]]]:
    """Return each URL's p50 latency (ms) and last answer; the URLs alternate, so drift in
    the machine's speed hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in urls}
    answers: dict[str, dict[str, Any]] = {}
    for _ in range(runs):
        for name, url in urls.items():
            elapsed, answers[name] = get(url)
            samples[name].append(elapsed)
    return {name: (statistics.median(samples[name]), answers[name]) for name in urls}
