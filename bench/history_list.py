"""Benchmark: the execution history list (E7) over HTTP with 10,000 executions vs 100.

Run: ``make bench-history``. Target: a page under 50 ms p50 with 10,000 executions (the
SQLite metadata file of the embedded default); the 100-execution run gives the ratio.
Needs a Redis at ``EXCHANGIS_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import argparse
import os
import random
import uuid
from datetime import UTC, datetime, timedelta

from common import served, timed
from sqlalchemy import insert

from exchangis.models import JobExecution
from exchangis.runtime import Runtime

STATUSES = ["Success", "Failed", "Partial_Success", "Cancelled", "Running", "Scheduled"]
QUERIES = {
    "default page (newest first)": "",
    "statuses=Failed,Cancelled": "statuses=Failed,Cancelled",
    "key=<name substring>": "key=job-7",
    "sortBy=duration, page 5": "sortBy=duration&current=5",
    "timeFilter=1 + project": "timeFilter=1&projectName=p3",
}


def fill(rt: Runtime, count: int, tag: str) -> None:
    """Insert ``count`` completed-looking executions spread over 60 days."""
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for i in range(count):
        created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "job_id": None,
                "job_name": f"{tag}-job-{i}",
                "project_name": f"p{i % 10}",
                "engine_type": "EXCHANGIS",
                "status": rng.choice(STATUSES[:4]),
                "progress": 1.0,
                "permit_partial_failures": False,
                "job_params": {},
                "labels": {},
                "queue": "exchangis",
                "create_user": "admin",
                "execute_user": "admin",
                "trigger_type": "MANUAL",
                "create_time": created,
                "launch_time": created,
                "last_update_time": created,
                "completed_time": created,
                "duration_ms": rng.randint(1000, 10**7),
                "flow": rng.randint(0, 10**6),
            }
        )
    with rt.sessions.begin() as session:
        for start in range(0, len(rows), 2000):
            session.execute(insert(JobExecution), rows[start : start + 2000])


def main() -> None:
    """Fill two metadata databases, time the list queries on each, print p50s and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    redis_url = os.environ.get("EXCHANGIS_REDIS_URL", "redis://127.0.0.1:6379/0")
    with served(redis_url) as (small_api, small_rt), served(redis_url) as (big_api, big_rt):
        fill(small_rt, args.small, "s")
        fill(big_rt, args.big, "b")
        print(f"{'query':30} {args.small:>6} p50 ms {args.big:>7} p50 ms {'ratio':>6}  total")
        for label, query in QUERIES.items():
            calls = {
                "small": (small_api, f"/job/listJobs?{query}"),
                "big": (big_api, f"/job/listJobs?{query}"),
            }
            results = timed(calls, args.runs)
            (small, _), (big, answer) = results["small"], results["big"]
            print(f"{label:30} {small:13.2f} {big:14.2f} {big / small:6.2f}  {answer['total']}")


if __name__ == "__main__":
    main()
