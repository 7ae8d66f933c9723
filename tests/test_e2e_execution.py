"""End to end: real worker processes, real databases, driven through the HTTP API."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import (
    DSS,
    call,
    create_job,
    data_log,
    datasource,
    execute,
    ok,
    same_caller,
    sub_job,
    tasks_by_name,
    wait_for,
    wait_until_done,
)
from tests.services import mysql_params

pytestmark = pytest.mark.e2e
ROWS = 10_000


def _csv(path: Path, rows: int) -> list[list[str]]:
    lines = [["id", "name", "amount", "day", "flag", "note"]]
    for row in data.mixed_rows(rows):
        lines.append(
            [
                str(row[0]),
                row[1],
                str(row[2]),
                row[4].isoformat(),
                "true" if row[5] else "false",
                "" if row[6] is None else row[6],
            ]
        )
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(lines)
    return lines


def test_three_sub_jobs_move_every_row_value_for_value(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    tmp_path: Path,
) -> None:
    data.mysql_table(tables["my_src"], ROWS)
    data.postgres_table(tables["pg_src"], ROWS)
    data.postgres_table(tables["pg_dst"], 0)
    data.mysql_table(tables["my_dst"], 0)
    lines = _csv(tmp_path / "files" / "orders.csv", ROWS)
    slow = {"setting.speed.record": 4000}
    job_id = create_job(
        client,
        "three",
        [
            sub_job(
                "my-to-pg",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                sources={"batchSize": 500},
                settings=slow,
            ),
            sub_job(
                "pg-to-my",
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_src"]),
                ("MYSQL", sources["MYSQL"], tables["my_dst"]),
                settings=slow,
            ),
            sub_job(
                "csv-to-sqlite",
                ("FILE", sources["FILE"], "orders.csv"),
                ("SQLITE", sources["SQLITE"], "orders"),
            ),
        ],
    )
    eid = execute(client, job_id)
    first = ok(client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
    assert [t["name"] for t in first] == ["my-to-pg", "pg-to-my", "csv-to-sqlite"]
    seen: list[float] = []
    final = wait_until_done(client, eid, timeout=180, seen=seen)
    assert final["status"] == "Success", ok(client, "GET", f"/job/execution/{eid}/progress")
    assert final["progress"] == 1.0
    assert seen == sorted(seen), "progress went backwards"
    assert any(0 < p < 1 for p in seen), seen

    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == data.checksum(
        data.mysql_rows(tables["my_src"])
    )
    assert data.checksum(data.mysql_rows(tables["my_dst"])) == data.checksum(
        data.postgres_rows(tables["pg_src"])
    )
    with sqlite3.connect(tmp_path / "lite.db") as lite:
        copied = lite.execute("SELECT id, name, amount, day, flag, note FROM orders").fetchall()
    # A CSV source reads every column as text and the sink declares TEXT columns, so SQLite keeps
    # each value as the very string in the file (no number or boolean conversion); only the empty
    # note becomes NULL (the CSV source's default nullValue is ""). The ids are unique, so the
    # sort never compares a None.
    expected = [(*line[:5], line[5] or None) for line in lines[1:]]
    assert sorted(copied) == sorted(expected)

    progress = ok(client, "GET", f"/job/execution/{eid}/progress")["job"]
    assert progress == {
        "status": "Success",
        "progress": 1.0,
        "total": 3,
        "tasks": {"Success": progress["tasks"]["Success"]},
    }
    tasks = tasks_by_name(client, eid)
    assert all(t["status"] == "Success" and t["launchTime"] for t in tasks.values())
    info = json.loads(tasks["my-to-pg"]["linkisJobInfo"])
    assert info["pid"] > 0 and info["host"]
    metrics = ok(
        client,
        "POST",
        f"/task/execution/{tasks['my-to-pg']['taskId']}/metrics",
        {"jobExecutionId": eid},
    )["task"]["metrics"]
    assert metrics["indicator"]["exchangedRecords"] == ROWS
    assert metrics["traffic"]["source"] == "mysql"
    assert metrics["traffic"]["sink"] == "postgresql"
    dss = call(client, "GET", f"/job/execution/{eid}/taskList?labels=x&_=1", prefix=DSS)
    assert len(dss["data"]["tasks"]) == 3
    log = data_log(client, eid)
    assert "submitted by admin" in log and "finished Success" in log


def _run_faulty(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str], permit: bool
) -> tuple[str, tuple[int, str], dict[str, Any]]:
    """Run a job whose first sub-job fails at row 2500; return (eid, sink checksum, status)."""
    job_id = _memory_job(client, sources, tables, fail_at=2500)
    before = data.checksum(data.postgres_rows(tables["pg_dst"]))
    eid = execute(client, job_id, permit=permit)
    return eid, before, wait_until_done(client, eid, timeout=120)


def _memory_job(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str], fail_at: int
) -> int:
    data.postgres_table(tables["pg_dst"], 5, start=100_000)
    data.mysql_table(tables["my_dst"], 0)
    return create_job(
        client,
        "faulty",
        [
            sub_job(
                "fails",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                sources={
                    "rows": 5000,
                    "failAtRow": fail_at,
                    "sleepPerBatch": 0.02,
                    "batchSize": 100,
                },
                sinks={"batchSize": 100},
                mapping=[("id", "id"), ("name", "name"), ("amount", "amount")],
            ),
            sub_job(
                "slow",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("MYSQL", sources["MYSQL"], tables["my_dst"]),
                sources={"rows": 4000, "sleepPerBatch": 0.05, "batchSize": 100},
                mapping=[("id", "id"), ("name", "name"), ("amount", "amount")],
            ),
            sub_job(
                "queued",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "never"),
                sources={"rows": 10},
            ),
        ],
    )


def test_failure_without_partial_permission_fails_and_cancels_the_rest(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    eid, before, final = _run_faulty(client, sources, tables, permit=False)
    assert final["status"] == "Failed"
    tasks = tasks_by_name(client, eid)
    assert tasks["fails"]["status"] == "Failed"
    assert tasks["slow"]["status"] == "Cancelled"
    assert tasks["queued"]["status"] in {"Cancelled", "Success"}
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == before
    assert data.mysql_rows(tables["my_dst"]) == []
    log = data_log(client, eid)
    assert "partial failures are not permitted" in log
    assert "injected failure at row 2500" in log, log


def test_partial_failures_permitted_lets_the_others_finish(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    eid, before, final = _run_faulty(client, sources, tables, permit=True)
    assert final["status"] == "Partial_Success"
    assert final["progress"] < 1.0
    tasks = tasks_by_name(client, eid)
    assert [tasks[n]["status"] for n in ("fails", "slow", "queued")] == [
        "Failed",
        "Success",
        "Success",
    ]
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == before
    assert len(data.mysql_rows(tables["my_dst"])) == 4000


def test_constraint_violation_on_a_real_sink_rolls_back(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    data.mysql_table(tables["my_src"], 3000)
    data.postgres_table(
        tables["pg_dst"], 0, data.POSTGRES_COLUMNS + ", CONSTRAINT no_2000 CHECK (id <> 2000)"
    )
    with data.postgres() as conn:
        conn.execute(f"INSERT INTO \"{tables['pg_dst']}\" (id, name) VALUES (-1, 'kept')")
    job_id = create_job(
        client,
        "constraint",
        [
            sub_job(
                "violates",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                sources={"batchSize": 500},
            ),
            sub_job(
                "fine",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "fine"),
                sources={"rows": 100},
            ),
        ],
    )
    eid = execute(client, job_id, permit=True)
    final = wait_until_done(client, eid, timeout=120)
    assert final["status"] == "Partial_Success"
    assert data.postgres_rows(tables["pg_dst"])[0][:2] == (-1, "kept")
    assert len(data.postgres_rows(tables["pg_dst"])) == 1
    tasks = tasks_by_name(client, eid)
    task_log = data_log(client, eid, tasks["violates"]["taskId"])
    assert "no_2000" in task_log and "rolled back" in task_log


def _long_transfer(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str]
) -> tuple[str, tuple[int, str]]:
    """Start a speed-limited MariaDB → PostgreSQL transfer (~10 s); return (eid, sink checksum)."""
    data.mysql_table(tables["my_src"], 5000)
    data.postgres_table(tables["pg_dst"], 3, start=100_000)
    before = data.checksum(data.postgres_rows(tables["pg_dst"]))
    job_id = create_job(
        client,
        "long",
        [
            sub_job(
                "long",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                settings={"setting.speed.record": 500},
            ),
        ],
    )
    return execute(client, job_id), before


def test_kill_during_a_long_transfer_cancels_quickly_and_leaves_the_sink(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    eid, before = _long_transfer(client, sources, tables)
    wait_for(lambda: ok(client, "GET", f"/job/execution/{eid}/status")["progress"] > 0.05)
    tid = tasks_by_name(client, eid)["long"]["taskId"]
    result = ok(client, "POST", f"/job/execution/{eid}/kill", {"labels": {"route": "dev"}})
    assert result == {"jobExecutionId": eid, "status": "Cancelled"}
    final = wait_until_done(client, eid, timeout=30)
    assert final["status"] == "Cancelled"
    # it stopped at its next batch: well before the end, on its own (not terminated)
    task_log = data_log(client, eid, tid)
    assert "Task long stopped: execution kill requested; the sink was rolled back" in task_log
    assert "terminating its process" not in task_log
    output = ok(client, "GET", f"/task/execution/{tid}/output?jobExecutionId={eid}")
    assert 0 < output["readRecords"] < 5000
    assert all(t["status"] == "Cancelled" for t in tasks_by_name(client, eid).values())
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == before
    assert ok(client, "GET", f"/job/{eid}/allTaskStatus")["completed"] is True
    # the released server's dialect: allStatus is the tasks' status strings
    released = call(client, "GET", f"/job/{eid}/allTaskStatus?labels=x", prefix=DSS)["data"]
    assert released["allStatus"] == ["Cancelled"] and released["jobExecutionId"] == eid
    call(client, "POST", f"/job/execution/{eid}/kill", expect=409)


def test_sigkilled_worker_process_does_not_leave_the_execution_running(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    eid, before = _long_transfer(client, sources, tables)
    task = wait_for(
        lambda: next(
            (
                t
                for t in tasks_by_name(client, eid).values()
                if t["status"] == "Running" and t["linkisJobInfo"]
            ),
            None,
        )
    )
    os.kill(json.loads(task["linkisJobInfo"])["pid"], signal.SIGKILL)
    final = wait_until_done(client, eid, timeout=30)
    assert final["status"] == "Failed"
    assert tasks_by_name(client, eid)["long"]["status"] == "Undefined"
    assert "worker lost" in data_log(client, eid)
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == before


def test_execution_endpoints_reject_bad_input(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str], rt: Any
) -> None:
    job_id = create_job(
        client,
        "inputs",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "t"),
                sources={"rows": 1},
            )
        ],
    )
    call(client, "POST", "/job/999999/execute", {}, expect=404)
    call(client, "POST", f"/job/{job_id}/execute", {"permitPartialFailures": "maybe"}, expect=400)
    call(client, "POST", f"/job/{job_id}/execute", {"bogus": 1}, expect=400)
    call(client, "POST", f"/job/{job_id}/execute", {"jobParams": "x"}, expect=400)
    for path in ("status", "tasklist", "progress"):
        call(client, "GET", f"/job/execution/{uuid.uuid4()}/{path}", expect=404)
    call(client, "GET", f"/job/{uuid.uuid4()}/allTaskStatus", expect=404)
    call(client, "POST", f"/job/execution/{uuid.uuid4()}/kill", expect=404)
    call(client, "GET", "/job/execution/" + "x" * 300 + "/status", expect=404)
    eid = execute(client, job_id)
    task_id = ok(client, "GET", f"/job/execution/{eid}/tasklist")["tasks"][0]["taskId"]
    other = execute(client, job_id)
    call(
        client, "POST", f"/task/execution/{task_id}/metrics", {"jobExecutionId": other}, expect=404
    )
    call(client, "POST", f"/task/execution/{task_id}/metrics", {}, expect=400)
    call(
        client,
        "POST",
        f"/task/execution/{task_id}/metrics",
        {"jobExecutionId": eid, "junk": True},
        expect=400,
    )
    zero = ok(client, "POST", f"/task/execution/{task_id}/metrics", {"jobExecutionId": eid})
    assert set(zero["task"]["metrics"]) >= {"resourceUsed", "traffic", "indicator"}
    call(client, "POST", f"/job/execution/{other}/kill", {"force": True}, expect=400)
    call(client, "POST", f"/job/execution/{other}/kill", {"labels": "x"}, expect=400)
    call(client, "POST", f"/job/{job_id}/execute", {"labels": {"route": 5}}, expect=400)
    assert ok(client, "GET", f"/job/execution/{other}/status")["status"] != "Cancelled"


def test_unknown_variable_is_rejected_at_submit(
    client: FlaskClient, sources: dict[str, int]
) -> None:
    job_id = create_job(
        client,
        "vars",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "t_${undefined_thing}"),
            )
        ],
    )
    reply = call(client, "POST", f"/job/{job_id}/execute", {}, expect=400)
    assert "undefined_thing" in reply["message"]


def test_passwords_never_reach_logs_or_answers(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], run_id: str
) -> None:
    secret = f"Wr0ng-Secret-{run_id}"
    bad = datasource(client, f"badpw-{run_id}", "MYSQL", {**mysql_params(), "password": secret})
    job_id = create_job(
        client,
        "badpw",
        [sub_job("a", ("MYSQL", bad, "whatever"), ("SQLITE", sources["SQLITE"], "t"))],
    )
    eid = execute(client, job_id)
    final = wait_until_done(client, eid, timeout=60)
    assert final["status"] == "Failed"
    rt = client.application.extensions["exchangis"]
    task = next(iter(tasks_by_name(client, eid).values()))
    texts = [
        data_log(client, eid),
        data_log(client, eid, task["taskId"]),
        json.dumps(rt.store.task(task["taskId"]) or {}),
        json.dumps(ok(client, "GET", f"/datasources/{bad}")),
        json.dumps(ok(client, "GET", f"/job/execution/{eid}/tasklist")),
    ]
    assert "Access denied" in texts[1]
    assert all(secret not in text for text in texts)


def test_labels_route_sends_tasks_to_that_queue(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], rt: Any
) -> None:
    route = rt.settings.queues[0]
    job_id = create_job(
        client,
        "routed",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "r"),
                sources={"rows": 10},
            )
        ],
    )
    eid = str(
        call(client, "POST", f"/job/{job_id}/execute", {"labels": {"route": route}}, prefix=DSS)[
            "data"
        ]["jobExecutionId"]
    )
    assert rt.store.execution(eid)["queue"] == route
    assert wait_until_done(client, eid)["status"] == "Success"
    other = execute(client, job_id)
    assert rt.store.execution(other)["queue"] == rt.settings.task_queue
    wait_until_done(client, other)


def test_completed_execution_is_read_from_sql_after_live_keys_expire(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], rt: Any
) -> None:
    job_id = create_job(
        client,
        "durable",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "d"),
                sources={"rows": 1234},
            ),
            sub_job(
                "b",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "d2"),
                sources={"rows": 10, "failAtRow": 5},
            ),
        ],
    )
    eid = execute(client, job_id, permit=True)
    wait_until_done(client, eid)
    live = {
        p: ok(client, "GET", f"/job/execution/{eid}/{p}")
        for p in ("status", "tasklist", "progress")
    }
    task_id = live["tasklist"]["tasks"][0]["taskId"]
    live_metrics = ok(client, "POST", f"/task/execution/{task_id}/metrics", {"jobExecutionId": eid})
    assert live["status"]["status"] == "Partial_Success"
    for key in rt.redis.scan_iter(f"{rt.keys.prefix}*"):
        if eid in key or any(
            key.startswith(rt.keys.task(t["taskId"])) for t in live["tasklist"]["tasks"]
        ):
            rt.redis.delete(key)
    assert rt.store.execution(eid) is None
    for path, answer in live.items():
        assert ok(client, "GET", f"/job/execution/{eid}/{path}") == answer
    durable = ok(client, "POST", f"/task/execution/{task_id}/metrics", {"jobExecutionId": eid})
    assert durable["task"]["metrics"]["indicator"] == live_metrics["task"]["metrics"]["indicator"]
    assert durable["task"]["metrics"]["indicator"]["exchangedRecords"] == 1234


def test_submit_with_redis_down_fails_cleanly(
    app: Any, sources: dict[str, int], client: FlaskClient
) -> None:
    from exchangis.app import create_app
    from exchangis.embedded import free_port
    from exchangis.models import JobExecution

    job_id = create_job(
        client,
        "noredis",
        [sub_job("a", ("MEMORY", sources["MEMORY"], "gen"), ("SQLITE", sources["SQLITE"], "n"))],
    )
    settings = app.extensions["exchangis"].settings.with_overrides(
        {"redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    down = same_caller(client, create_app(settings))
    reply = call(down, "POST", f"/job/{job_id}/execute", {}, expect=503)
    assert "unavailable" in reply["message"]
    rt = app.extensions["exchangis"]
    with rt.sessions() as session:
        rows = session.query(JobExecution).filter_by(job_id=job_id).all()
    assert [r.status for r in rows] == ["Failed"]
    assert "live state unavailable" in (rows[0].error or "")
    call(down, "GET", f"/job/execution/{rows[0].id}/status", expect=503)


def test_task_that_ignores_a_kill_is_terminated_after_the_grace_period(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int]
) -> None:
    job_id = create_job(
        client,
        "stuck",
        [
            sub_job(
                "stuck",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "stuck"),
                sources={"rows": 10, "sleepPerBatch": 120},
            )
        ],
    )
    eid = execute(client, job_id)
    tid = wait_for(lambda: tasks_by_name(client, eid)["stuck"]["taskId"])
    wait_for(lambda: "Columns:" in data_log(client, eid, tid))
    time.sleep(0.5)  # past the check before the first batch: now it blocks in the source read
    ok(client, "POST", f"/job/execution/{eid}/kill")
    final = wait_until_done(client, eid, timeout=40)
    assert final["status"] == "Cancelled"
    assert tasks_by_name(client, eid)["stuck"]["status"] == "Cancelled"
    assert "ignored the kill request" in data_log(
        client, eid, tasks_by_name(client, eid)["stuck"]["taskId"]
    )
