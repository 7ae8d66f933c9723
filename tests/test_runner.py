"""The runner in-process (real Redis, SQLite metadata, MEMORY/SQLite connectors, no Celery)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pyarrow as pa
import pytest
from redis import Redis

from exchangis.connectors.memory import SCHEMA, row_values
from exchangis.engine.runner import Meter, Pace, TaskRunner
from exchangis.runtime import Runtime
from exchangis.services import datasource, execution, job
from exchangis.services.access import Caller
from exchangis.state.machine import TaskStatus
from tests.helpers import sub_job

ADMIN = Caller("t", admin=True)


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
        ADMIN,
        {
            "name": f"mem-{uuid.uuid4().hex[:8]}",
            "type": "MEMORY",
            "description": "",
            "project_name": "default",
            "connect_params": {},
        },
    )["id"]
    lite = datasource.create_datasource(
        rt,
        ADMIN,
        {
            "name": f"lite-{uuid.uuid4().hex[:8]}",
            "type": "SQLITE",
            "description": "",
            "project_name": "default",
            "connect_params": {"path": str(tmp_path / "out.db")},
        },
    )["id"]
    wire = sub_job(
        "only", ("MEMORY", mem, "gen"), ("SQLITE", lite, "out"), sources=sources, settings=settings
    )
    from exchangis.schemas.job import JobCreateSchema

    loaded = JobCreateSchema().load({"jobName": "runner", "content": [wire]})
    job_id = job.create_job(rt, ADMIN, loaded)["id"]
    eid = execution.submit_execution(rt, job_id, ADMIN, {})
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
    assert TaskRunner(quiet, tid).run() is TaskStatus.TIMEOUT
    task = quiet.store.task(tid) or {}
    assert task["error"] == "timed out after 1s"
    assert 0 < int(task["read_records"]) < 100  # it stopped at the batch past its limit
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
    execution.kill_execution(quiet, ADMIN, eid)
    assert TaskRunner(quiet, tid).run() is None
    assert quiet.store.task(tid)["status"] == "Cancelled"  # type: ignore[index]
    assert execution.get_status(quiet, ADMIN, eid)["all_task_status"] is True


def _batch(rows: int) -> pa.RecordBatch:
    columns = list(zip(*(row_values(i) for i in range(1, rows + 1)), strict=True))
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=True)], schema=SCHEMA
    )


def test_pace_keeps_the_schedule_and_does_not_burst_after_a_stall() -> None:
    meter = SimpleNamespace(started=100.0, read=0, bytes=0)
    pace = Pace(cast(Meter, meter), 1000, 0)
    meter.read = 250
    assert pace.charge(100.01) == pytest.approx(100.25)
    meter.read = 500  # woke 20 ms late: the next deadline keeps the schedule
    assert pace.charge(100.27) == pytest.approx(100.5)
    meter.read = 750  # a 2.5 s stall: no wait ...
    assert pace.charge(103.0) == pytest.approx(100.75)
    meter.read = 1000  # ... and no burst to make the time up
    assert pace.charge(103.01) == pytest.approx(103.25)
    meter.read = 250  # the meter was reset (a second pass): its rows are charged again
    assert pace.charge(103.3) == pytest.approx(103.5)
    both = Pace(cast(Meter, SimpleNamespace(started=0.0, read=0, bytes=0)), 100, 1000)
    both.meter.read, both.meter.bytes = 10, 500  # 0.1 s of records, 0.5 s of bytes
    assert both.charge(0.0) == pytest.approx(0.5)


def test_speed_limits_cut_batches_to_a_quarter_second(rt: Runtime) -> None:
    batch = _batch(1000)
    meter = cast(Meter, SimpleNamespace(started=0.0, read=0, bytes=0))
    per_row = batch.nbytes / batch.num_rows
    assert Pace(meter, 1000, 0).rows_per_batch(batch) == 250
    assert Pace(meter, 0, 4000).rows_per_batch(batch) == int(1000 / per_row)
    assert Pace(meter, 0, 1).rows_per_batch(batch) == 1
    assert Pace(meter, 100_000, 10**9).rows_per_batch(batch) == 1000
    runner = TaskRunner(rt, 0)
    pieces = list(runner._paced(iter([batch, _batch(3)]), meter, 0, 4000))
    assert sum(p.num_rows for p in pieces) == 1003
    assert max(p.nbytes for p in pieces) <= 4000 * 0.25 + 8  # a string offset over
    assert pa.Table.from_batches(pieces).equals(pa.Table.from_batches([batch, _batch(3)]))
    unlimited = [batch]
    assert list(TaskRunner(rt, 0)._paced(iter(unlimited), meter, 0, 0)) == unlimited
    settings = {"speed_record": 1000}
    endpoint = SimpleNamespace(options={"batchSize": 100})
    assert runner._batch_size_for(cast(Any, endpoint), settings) == 100
    endpoint.options = {}
    assert runner._batch_size_for(cast(Any, endpoint), settings) == 250
    assert runner._batch_size_for(cast(Any, endpoint), {"speed_record": 2}) == 1
