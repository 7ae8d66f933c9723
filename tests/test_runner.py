"""The runner in-process (real Redis, SQLite metadata, MEMORY/SQLite connectors, no Celery)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from exchangis.engine.runner import TaskRunner
from exchangis.engine.states import TaskStatus
from exchangis.runtime import Runtime
from exchangis.services import datasource, execution, job
from tests.helpers import sub_job


@pytest.fixture
def quiet(rt: Runtime) -> Iterator[Runtime]:
    """A runtime whose tasks go to a queue no worker consumes: the test runs them itself."""
    queue = f"unconsumed-{uuid.uuid4().hex[:8]}"
    runtime = Runtime(rt.settings.with_overrides({"task_queue": queue}))
    yield runtime
    Redis.from_url(runtime.settings.broker()).delete(queue)
    runtime.close()


def _submit(
    rt: Runtime, tmp_path: Path, sources: dict[str, Any], settings: dict[str, Any] | None = None
) -> tuple[str, int]:
    mem = datasource.create_datasource(
        rt,
        "t",
        {
            "name": f"mem-{uuid.uuid4().hex[:8]}",
            "type": "MEMORY",
            "description": "",
            "connect_params": {},
        },
    )["id"]
    lite = datasource.create_datasource(
        rt,
        "t",
        {
            "name": f"lite-{uuid.uuid4().hex[:8]}",
            "type": "SQLITE",
            "description": "",
            "connect_params": {"path": str(tmp_path / "out.db")},
        },
    )["id"]
    wire = sub_job(
        "only", ("MEMORY", mem, "gen"), ("SQLITE", lite, "out"), sources=sources, settings=settings
    )
    from exchangis.schemas.job import JobCreateSchema

    loaded = JobCreateSchema().load({"jobName": "runner", "content": [wire]})
    job_id = job.create_job(rt, "t", loaded)["id"]
    eid = execution.submit_execution(rt, job_id, "t", {})
    return eid, rt.store.task_ids(eid)[0]


def test_runner_moves_rows_and_finishes_the_execution(quiet: Runtime, tmp_path: Path) -> None:
    eid, tid = _submit(quiet, tmp_path, {"rows": 2500, "batchSize": 1000})
    assert TaskRunner(quiet, tid).run() is TaskStatus.SUCCESS
    assert TaskRunner(quiet, tid).run() is None  # a duplicate delivery is refused by the claim
    assert quiet.store.execution(eid)["status"] == "Success"  # type: ignore[index]
    with sqlite3.connect(tmp_path / "out.db") as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM out").fetchone() == (2500, 3126250)
    task = quiet.store.task(tid) or {}
    assert task["written_records"] == "2500" and task["source_type"] == "memory"


def test_timeout_setting_stops_the_task_as_timeout(quiet: Runtime, tmp_path: Path) -> None:
    eid, tid = _submit(
        quiet,
        tmp_path,
        {"rows": 100, "batchSize": 10, "sleepPerBatch": 0.3},
        {"setting.timeout.seconds": 1},
    )
    started = time.monotonic()
    assert TaskRunner(quiet, tid).run() is TaskStatus.TIMEOUT
    assert time.monotonic() - started < 3
    # a task's timeout fails the execution (Timeout is for an execution-level limit)
    assert quiet.store.execution(eid)["status"] == "Failed"  # type: ignore[index]
    with sqlite3.connect(tmp_path / "out.db") as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'out'").fetchall()
    assert tables == []  # the sink (even its new table) was rolled back


def test_byte_speed_limit_throttles(quiet: Runtime, tmp_path: Path) -> None:
    _, tid = _submit(quiet, tmp_path, {"rows": 400, "batchSize": 100}, {"setting.speed.byte": 4000})
    started = time.monotonic()
    assert TaskRunner(quiet, tid).run() is TaskStatus.SUCCESS
    task = quiet.store.task(tid) or {}
    expected = int(task["bytes"]) / 4000
    assert time.monotonic() - started >= expected * 0.9 > 0.5


def test_cancelled_task_is_not_run(quiet: Runtime, tmp_path: Path) -> None:
    eid, tid = _submit(quiet, tmp_path, {"rows": 10})
    execution.kill_execution(quiet, eid, "t")
    assert TaskRunner(quiet, tid).run() is None
    assert quiet.store.task(tid)["status"] == "Cancelled"  # type: ignore[index]
    assert execution.get_status(quiet, eid)["all_task_status"] is True
