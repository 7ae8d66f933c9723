"""Benchmark: log queries over HTTP on a 1,000,000-line log vs a 1,000-line log (ratios).

Run: ``make bench-logs`` (or ``.venv/bin/python bench/log_reader.py``). Needs a Redis at
``EXCHANGIS_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); keys use a private prefix and
are deleted at the end. The API runs in-process on a loopback port; requests go over HTTP.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug.serving import make_server

from exchangis.app import create_app
from exchangis.embedded import free_port
from exchangis.migrations import upgrade
from exchangis.runtime import Runtime
from exchangis.settings import load_settings

STAMP = "2026-11-22 10:00:00.000"


def fill(rt: Runtime, eid: str, lines: int) -> None:
    """Create a live execution whose job log has ``lines`` lines, 1 in 1,000 with ``needle``."""
    rt.store.create_execution(eid, {"job_name": "bench"}, [])
    log = rt.job_log(eid)
    batch: list[str] = []
    for i in range(1, lines + 1):
        word = "needle" if i % 1000 == 500 else "hay"
        batch.append(f"{STAMP} INFO line {i} {word} Total 123 records | Speed 456 rec/s")
        if len(batch) == 10_000:
            log.append_lines(batch)
            batch = []
    if batch:
        log.append_lines(batch)


def get(url: str) -> tuple[float, dict[str, Any]]:
    """Return the latency (ms) of GET ``url`` and its ``data``."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        answer = json.load(response)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer["status"] == 0, answer
    return elapsed, answer["data"]


def timed(urls: dict[str, str], runs: int) -> dict[str, tuple[float, dict[str, Any]]]:
    """Return each URL's p50 latency (ms) and last answer; the URLs alternate, so drift in
    the machine's speed hits both alike."""
    samples: dict[str, list[float]] = {name: [] for name in urls}
    answers: dict[str, dict[str, Any]] = {}
    for _ in range(runs):
        for name, url in urls.items():
            elapsed, answers[name] = get(url)
            samples[name].append(elapsed)
    return {name: (statistics.median(samples[name]), answers[name]) for name in urls}


def main() -> None:
    """Fill both logs, time the three queries on each, print p50s and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="exg-bench-")
    settings = load_settings(
        {
            "redis_url": os.environ.get("EXCHANGIS_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "redis_prefix": f"exgbench-{uuid.uuid4().hex[:6]}:",
            "database_url": f"sqlite:///{workdir}/meta.db",
            "log_max_lines": 2 * args.big,
        },
        environ={},
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    upgrade(settings.database_url)
    app = create_app(settings)
    rt: Runtime = app.extensions["exchangis"]
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}/api/rest_j/v1/exchangis/job/execution"
    sizes = {"small": args.small, "big": args.big}
    eids = {name: str(uuid.uuid4()) for name in sizes}
    try:
        for name, lines in sizes.items():
            started = time.perf_counter()
            fill(rt, eids[name], lines)
            print(f"filled {name}: {lines} lines in {time.perf_counter() - started:.1f}s")
        queries: dict[str, Callable[[int], str]] = {
            "lastRows=100": lambda n: "lastRows=100",
            "page of 100 mid-log": lambda n: f"fromLine={n // 2}&pageSize=100",
            "onlyKeywords 1/1000, pageSize=10": lambda n: (
                f"fromLine={n // 2}&pageSize=10&onlyKeywords=needle"
            ),
        }
        print(f"{'query':36} {'small p50 ms':>13} {'big p50 ms':>11} {'ratio':>6}  big answer")
        for label, make in queries.items():
            urls = {name: f"{base}/{eids[name]}/log?{make(n)}" for name, n in sizes.items()}
            results = timed(urls, args.runs)
            (small, _), (big, answer) = results["small"], results["big"]
            shown = answer["logs"].get("all", "").count("\n") + 1 if answer["logs"] else 0
            print(
                f"{label:36} {small:13.2f} {big:11.2f} {big / small:6.2f}  "
                f"{shown} lines, endLine {answer['endLine']}"
            )
    finally:
        server.shutdown()
        for key in rt.redis.scan_iter(rt.keys.pattern(), count=1000):
            rt.redis.delete(key)


if __name__ == "__main__":
    main()
