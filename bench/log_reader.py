"""Benchmark: log queries over HTTP on a 1,000,000-line log vs a 1,000-line log (ratios).

Run: ``make bench-logs`` (or ``.venv/bin/python bench/log_reader.py``). Needs a Redis at
``EXCHANGIS_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); keys use a private prefix and
are deleted at the end. The API runs in-process on a loopback port; requests go over HTTP.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable

from common import served, timed

from exchangis.models import JobExecution
from exchangis.runtime import Runtime

STAMP = "2026-11-22 10:00:00.000"


def fill(rt: Runtime, eid: str, lines: int) -> None:
    """Create a running execution whose job log has ``lines`` lines, 1 in 1,000 with ``needle``
    (its SQL row says which project it is of, for the access check)."""
    with rt.sessions.begin() as session:
        session.add(
            JobExecution(
                id=eid,
                job_name="bench",
                project_name="default",
                engine_type="EXCHANGIS",
                status="Running",
                job_params={},
                labels={},
                queue="bench",
                create_user="bench",
                execute_user="bench",
            )
        )
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


QUERIES: dict[str, Callable[[int], str]] = {
    "lastRows=100": lambda n: "lastRows=100",
    "page of 100 mid-log": lambda n: f"fromLine={n // 2}&pageSize=100",
    "onlyKeywords 1/1000, pageSize=10": lambda n: (
        f"fromLine={n // 2}&pageSize=10&onlyKeywords=needle"
    ),
}


def main() -> None:
    """Fill both logs, time the three queries on each, print p50s and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    redis_url = os.environ.get("EXCHANGIS_REDIS_URL", "redis://127.0.0.1:6379/0")
    sizes = {"small": args.small, "big": args.big}
    with served(redis_url, {"log_max_lines": 2 * args.big}) as (api, rt):
        eids = {name: str(uuid.uuid4()) for name in sizes}
        for name, lines in sizes.items():
            started = time.perf_counter()
            fill(rt, eids[name], lines)
            print(f"filled {name}: {lines} lines in {time.perf_counter() - started:.1f}s")
        print(f"{'query':36} {'small p50 ms':>13} {'big p50 ms':>11} {'ratio':>6}  big answer")
        for label, make in QUERIES.items():
            calls = {
                name: (api, f"/job/execution/{eids[name]}/log?{make(n)}")
                for name, n in sizes.items()
            }
            results = timed(calls, args.runs)
            (small, _), (big, answer) = results["small"], results["big"]
            shown = answer["logs"].get("all", "").count("\n") + 1 if answer["logs"] else 0
            print(
                f"{label:36} {small:13.2f} {big:11.2f} {big / small:6.2f}  "
                f"{shown} lines, endLine {answer['endLine']}"
            )


if __name__ == "__main__":
    main()
