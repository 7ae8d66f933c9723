"""Concurrency limits: extra tasks wait in Scheduled and start as slots free."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from exchangis.app import create_app
from exchangis.settings import Settings
from tests.conftest import WorkerProcess
from tests.helpers import create_job, data_log, datasource, execute, ok, signed_in, sub_job

pytestmark = pytest.mark.e2e


@pytest.fixture
def limited(
    migrated: Settings, tmp_path: Path, admin_token: str
) -> Iterator[tuple[FlaskClient, Settings]]:
    """An API and a worker on their own queue, at most one running task per user."""
    settings = migrated.with_overrides(
        {
            "task_queue": f"limited-{uuid.uuid4().hex[:6]}",
            "queues": (),
            "max_running_tasks_per_user": 1,
            "admission_retry_seconds": 0.3,
        }
    )
    process = WorkerProcess(settings, tmp_path)
    process.start()
    try:
        yield signed_in(create_app(settings), admin_token), settings
    finally:
        process.stop()


def test_tasks_over_the_per_user_limit_wait_in_scheduled(
    limited: tuple[FlaskClient, Settings], tmp_path: Path
) -> None:
    client, _ = limited
    memory = datasource(client, f"mem-lim-{uuid.uuid4().hex[:6]}", "MEMORY", {})
    lite = datasource(
        client, f"lite-lim-{uuid.uuid4().hex[:6]}", "SQLITE", {"path": str(tmp_path / "lim.db")}
    )
    job_id = create_job(
        client,
        "limited",
        [
            sub_job(
                f"t{i}",
                ("MEMORY", memory, "gen"),
                ("SQLITE", lite, f"t{i}"),
                sources={"rows": 40, "batchSize": 10, "sleepPerBatch": 0.2},
            )
            for i in range(3)
        ],
    )
    eid = execute(client, job_id)
    most = 0
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = ok(client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
        statuses = [t["status"] for t in tasks]
        seen.update(statuses)
        most = max(most, statuses.count("Running"))
        if ok(client, "GET", f"/job/execution/{eid}/status")["allTaskStatus"]:
            break
        time.sleep(0.05)
    assert ok(client, "GET", f"/job/execution/{eid}/status")["status"] == "Success"
    assert most == 1, "never more than one running task for the user"
    assert "Scheduled" in seen
    assert "waits in Scheduled for a free slot" in data_log(client, eid)
