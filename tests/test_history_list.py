"""E7 on 10,000 executions: every filter and sort agrees with the same rule applied in Python."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, insert

from exchangis.models import JobExecution
from exchangis.runtime import Runtime
from tests.helpers import ok

STATUSES = ["Success", "Failed", "Partial_Success", "Cancelled", "Timeout", "Undefined"]
COUNT = 10_000


@pytest.fixture(scope="module")
def history(rt: Runtime) -> Any:
    """10,000 completed executions of one project, spread over 400 days."""
    rng = random.Random(11)
    now = datetime.now(UTC).replace(tzinfo=None)
    project = f"hist{uuid.uuid4().hex[:8]}"
    rows = []
    for i in range(COUNT):
        created = now - timedelta(minutes=rng.randint(1, 400 * 24 * 60))
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "job_id": None,
                "job_name": f"job-{i % 997}-{rng.randint(0, 9)}",
                "project_name": project,
                "engine_type": "EXCHANGIS",
                "status": rng.choice(STATUSES),
                "progress": 1.0,
                "permit_partial_failures": False,
                "job_params": {},
                "labels": {},
                "queue": "q",
                "create_user": "admin",
                "execute_user": "admin",
                "trigger_type": "MANUAL",
                "create_time": created,
                "launch_time": created + timedelta(seconds=rng.randint(0, 60)),
                "last_update_time": created + timedelta(seconds=rng.randint(60, 9000)),
                "completed_time": created,
                "duration_ms": rng.randint(0, 10**7),
                "flow": rng.randint(0, 1000),
            }
        )
    with rt.sessions.begin() as session:
        for start in range(0, COUNT, 2000):
            session.execute(insert(JobExecution), rows[start : start + 2000])
    yield project, rows, now
    with rt.sessions.begin() as session:
        session.execute(delete(JobExecution).where(JobExecution.project_name == project))


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


FIELD = {
    "createTime": "create_time",
    "lastUpdateTime": "last_update_time",
    "name": "job_name",
    "status": "status",
    "duration": "duration_ms",
}


def _expected(
    rows: list[dict[str, Any]],
    keep: Callable[[dict[str, Any]], bool],
    sort_by: str,
    reverse: bool,
    current: int,
    size: int,
) -> tuple[int, list[str]]:
    chosen = [r for r in rows if keep(r)]
    field = FIELD[sort_by]
    # ties broken by id in the same direction, as the service does
    chosen.sort(key=lambda r: (r[field], r["id"]), reverse=reverse)
    return len(chosen), [r["id"] for r in chosen[(current - 1) * size : current * size]]


def test_every_filter_and_sort_agrees_with_python(client: FlaskClient, history: Any) -> None:
    project, rows, now = history
    start, end = now - timedelta(days=30), now - timedelta(days=10)
    cases: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        ("", lambda r: True),
        ("statuses=Failed,Timeout", lambda r: r["status"] in {"Failed", "Timeout"}),
        ("status=Success", lambda r: r["status"] == "Success"),
        ("jobName=job-12-", lambda r: "job-12-" in r["job_name"]),
        ("key=job-3", lambda r: "job-3" in r["job_name"]),
        (f"key={rows[17]['id']}", lambda r: r["id"] == rows[17]["id"]),
        (f"jobExecutionId={rows[5]['id']}", lambda r: r["id"] == rows[5]["id"]),
        ("timeFilter=0", lambda r: r["create_time"] >= now - timedelta(days=1)),
        ("timeFilter=1", lambda r: r["create_time"] >= now - timedelta(weeks=1)),
        ("timeFilter=2", lambda r: r["create_time"] >= now - timedelta(days=31)),
        ("timeFilter=3", lambda r: r["create_time"] >= now - timedelta(days=366)),
        (
            f"launchStartTime={_ms(start)}&launchEndTime={_ms(end)}",
            lambda r: start <= r["launch_time"] <= end,
        ),
    ]
    for query, keep in cases:
        for sort_by in FIELD:
            for reverse in (True, False):
                for current, size in ((1, 10), (3, 50)):
                    url = (
                        f"/job/listJobs?projectName={project}&{query}&sortBy={sort_by}"
                        f"&reverse={str(reverse).lower()}&current={current}&size={size}"
                    )
                    page = ok(client, "GET", url.replace("&&", "&"))
                    total, ids = _expected(rows, keep, sort_by, reverse, current, size)
                    assert page["total"] == total, url
                    assert [i["jobExecutionId"] for i in page["jobList"]] == ids, url
