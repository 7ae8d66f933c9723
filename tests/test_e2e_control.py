"""Pause, resume, restart and bulk actions with real workers and databases."""

from __future__ import annotations

import re
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
    mysql_to_postgres_job,
    ok,
    project,
    sub_job,
    tasks_by_name,
    wait_for,
    wait_until_done,
)
from tests.proxy import flaky_postgres

pytestmark = pytest.mark.e2e


def _status(client: FlaskClient, eid: str) -> str:
    return str(ok(client, "GET", f"/job/execution/{eid}/status")["status"])


def test_pause_mid_run_then_resume_moves_every_row_exactly_once(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    rt: Any,
) -> None:
    job_id = mysql_to_postgres_job(
        client, sources, tables, "pausable", 3000, {"setting.speed.record": 1000}
    )
    eid = execute(client, job_id)
    wait_for(lambda: ok(client, "GET", f"/job/execution/{eid}/status")["progress"] > 0.1)
    assert ok(client, "POST", f"/job/execution/{eid}/pause") == {
        "jobExecutionId": eid,
        "status": "Paused",
    }
    wait_for(lambda: tasks_by_name(client, eid)["copy"]["status"] == "Paused")
    assert _status(client, eid) == "Paused"
    assert data.postgres_rows(tables["pg_dst"]) == []  # the paused attempt rolled back
    call(client, "POST", f"/job/execution/{eid}/pause", expect=409)
    call(client, "POST", f"/job/execution/{eid}/restart", expect=409)
    assert ok(client, "POST", f"/job/execution/{eid}/resume")["status"] == "Scheduled"
    assert wait_until_done(client, eid, timeout=60)["status"] == "Success"
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == data.checksum(
        data.mysql_rows(tables["my_src"])
    )
    log = data_log(client, eid)
    assert "Pause requested by admin" in log and "Resume requested by admin" in log


def test_resume_reruns_only_what_failed_and_recomputes_the_status(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    run_id: str,
    rt: Any,
) -> None:
    with flaky_postgres(client, f"flaky-r-{run_id}", refuse=1) as flaky:
        data.mysql_table(tables["my_src"], 300)
        data.postgres_table(tables["pg_dst"], 0, data.KEYLESS_POSTGRES_COLUMNS)
        job_id = create_job(
            client,
            "resumable",
            [
                sub_job(
                    "flaky",
                    ("MYSQL", sources["MYSQL"], tables["my_src"]),
                    ("POSTGRESQL", flaky, tables["pg_dst"]),
                ),
                sub_job(
                    "fine",
                    ("MEMORY", sources["MEMORY"], "gen"),
                    ("SQLITE", sources["SQLITE"], "fine"),
                    sources={"rows": 10},
                ),
            ],
        )
        eid = execute(client, job_id, permit=True)
        assert wait_until_done(client, eid)["status"] == "Partial_Success"
        fine_launch = tasks_by_name(client, eid)["fine"]["launchTime"]
        assert (
            call(client, "POST", f"/job/execution/{eid}/resume", prefix=DSS)["data"]["status"]
            == "Scheduled"
        )
        final = wait_until_done(client, eid)
    assert final == {"status": "Success", "progress": 1.0, "allTaskStatus": True}
    tasks = tasks_by_name(client, eid)
    assert tasks["fine"]["launchTime"] == fine_launch  # kept its result, did not run again
    assert rt.store.task(tasks["flaky"]["taskId"])["attempts"] == "2"
    assert len(data.postgres_rows(tables["pg_dst"])) == 300
    task_log = data_log(client, eid, tasks["flaky"]["taskId"])
    first, retry, _ = task_log.partition("---- attempt 2 of 2 ----")
    assert retry, task_log
    # libpq words the proxy's RST one of two ways: "Connection reset by peer" when it lands
    # before libpq checks the finished connect, "server closed the connection unexpectedly"
    # when it lands after the startup packet went out (a race between two processes).
    reset = (
        r"ERROR Task flaky failed with a transient error: connect to postgresql "
        rf"127\.0\.0\.1:\d+ table={re.escape(tables['pg_dst'])} failed: .*"
        r'connection to server at "127\.0\.0\.1", port \d+ failed: '
        r"(Connection reset by peer|server closed the connection unexpectedly)\n"
    )
    assert re.search(reset, first), first
    assert "; the sink was rolled back" in first
    call(client, "POST", f"/job/execution/{eid}/resume", expect=409)  # nothing left to resume


def test_restart_after_the_live_state_expired_runs_everything_again(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    rt: Any,
) -> None:
    job_id = create_job(
        client,
        "restartable",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "r"),
                sources={"rows": 50},
                sinks={"writeMode": "overwrite"},
            ),
        ],
    )
    eid = execute(client, job_id)
    wait_until_done(client, eid)
    before = data_log(client, eid).split("\n")
    task_key = rt.keys.task(tasks_by_name(client, eid)["a"]["taskId"])
    for key in list(rt.redis.scan_iter(f"{rt.keys.prefix}*")):
        if eid in key or key.startswith(task_key):
            rt.redis.delete(key)
    assert ok(client, "POST", f"/job/execution/{eid}/restart")["status"] == "Scheduled"
    assert wait_until_done(client, eid)["status"] == "Success"
    after = data_log(client, eid).split("\n")
    assert after[: len(before)] == before  # the archived lines came back, then the new run
    assert "Restart requested by admin" in after[len(before)]
    assert sum("finished Success" in line for line in after) == 2


def test_a_paused_task_shows_no_rows_and_a_paused_execution_can_be_killed(
    client: FlaskClient, worker: WorkerProcess, tmp_path: Path
) -> None:
    """A pause rolls the task's writes back: its metrics, progress and the history's flow say
    so; the released UI knows no Paused and offers kill, which ends it Cancelled."""
    name = project(client, f"pk{uuid.uuid4().hex[:6]}")
    memory = datasource(client, f"mem-{name}", "MEMORY", {}, name)
    lite = datasource(client, f"lite-{name}", "SQLITE", {"path": str(tmp_path / "p.db")}, name)
    slow = sub_job(
        "slow",
        ("MEMORY", memory, "gen"),
        ("SQLITE", lite, "p"),
        sources={"rows": 2000, "batchSize": 10, "sleepPerBatch": 0.02},
    )
    body = {"jobName": "pausekill", "projectName": name, "content": [slow]}
    eid = execute(client, int(ok(client, "POST", "/job", body, expect=201)["id"]))
    tid = wait_for(lambda: tasks_by_name(client, eid).get("slow", {}).get("taskId"))

    def metrics() -> dict[str, Any]:
        reply = ok(client, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})
        return dict(reply["task"]["metrics"])

    wait_for(lambda: metrics()["indicator"]["exchangedRecords"] > 0)
    ok(client, "POST", f"/job/execution/{eid}/pause")
    wait_for(lambda: tasks_by_name(client, eid)["slow"]["status"] == "Paused")
    paused = metrics()
    assert paused["indicator"] == {"exchangedRecords": 0, "errorRecords": 0, "ignoredRecords": 0}
    assert paused["traffic"]["flow"] == 0 and paused["readRecords"] == 0
    assert ok(client, "GET", f"/job/execution/{eid}/status")["progress"] == 0
    row = ok(client, "GET", f"/job/listJobs?jobExecutionId={eid}")["jobList"][0]
    assert row["status"] == "Paused" and row["flow"] == 0 and row["progress"] == 0
    killed = call(
        client, "POST", f"/job/execution/{eid}/kill", {"labels": {"route": "x"}}, prefix=DSS
    )
    assert killed["status"] == 0 and killed["data"]["status"] == "Cancelled"
    assert wait_until_done(client, eid)["status"] == "Cancelled"


def test_bulk_actions_report_each_execution(
    client: FlaskClient, worker: WorkerProcess, tmp_path: Path, rt: Any
) -> None:
    name = project(client, f"bulk{uuid.uuid4().hex[:6]}")
    memory = datasource(client, f"mem-{name}", "MEMORY", {}, name)
    lite = datasource(client, f"lite-{name}", "SQLITE", {"path": str(tmp_path / "b.db")}, name)
    job_id = int(
        ok(
            client,
            "POST",
            "/job",
            {
                "jobName": "bulk",
                "projectName": name,
                "content": [
                    sub_job(
                        "slow",
                        ("MEMORY", memory, "gen"),
                        ("SQLITE", lite, "b"),
                        sources={"rows": 1000, "batchSize": 10, "sleepPerBatch": 0.1},
                    )
                ],
            },
            expect=201,
        )["id"]
    )
    done = execute(client, job_id)
    ok(client, "POST", f"/job/execution/{done}/kill")
    wait_until_done(client, done)
    running = execute(client, job_id)
    wait_for(lambda: _status(client, running) == "Running")
    missing = str(uuid.uuid4())
    results = ok(
        client,
        "PUT",
        "/job/execution/status",
        {"action": "PAUSE", "jobExecutionIds": [running, done, missing]},
    )["results"]
    outcome = {r["jobExecutionId"]: r for r in results}
    assert outcome[running]["ok"] is True and outcome[running]["status"] == "Paused"
    assert outcome[done]["ok"] is False and "Cancelled" in outcome[done]["message"]
    assert outcome[missing]["ok"] is False and "does not exist" in outcome[missing]["message"]
    discard = ok(
        client,
        "PUT",
        "/job/execution/status",
        {"action": "DISCARD", "projectName": name, "statuses": ["Paused"]},
    )["results"]
    assert {r["jobExecutionId"]: r["ok"] for r in discard} == {running: True, done: False}
    assert wait_until_done(client, running)["status"] == "Cancelled"
    call(client, "PUT", "/job/execution/status", {"action": "PAUSE"}, expect=400)
    call(
        client,
        "PUT",
        "/job/execution/status",
        {"action": "EXPLODE", "projectName": "x"},
        expect=400,
    )
    call(client, "POST", f"/job/execution/{missing}/pause", expect=404)


def test_batch_execute_and_task_output(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int]
) -> None:
    good = create_job(
        client,
        "batch-good",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "bt"),
                sources={"rows": 42},
            )
        ],
    )
    bad = create_job(
        client,
        "batch-bad",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "t_${nope}"),
            )
        ],
    )
    executions = ok(
        client,
        "POST",
        "/job/execute",
        {"jobIds": [good, bad, 999_999], "permitPartialFailures": True},
    )["executions"]
    assert [e["jobId"] for e in executions] == [good, bad, 999_999]
    assert executions[0]["message"] == "submitted"
    assert executions[1]["jobExecutionId"] is None and "nope" in executions[1]["message"]
    assert "does not exist" in executions[2]["message"]
    eid = executions[0]["jobExecutionId"]
    wait_until_done(client, eid)
    tid = tasks_by_name(client, eid)["a"]["taskId"]
    output = ok(client, "GET", f"/task/execution/{tid}/output?jobExecutionId={eid}")
    assert output["status"] == "Success" and output["attempts"] == 1
    assert output["readRecords"] == output["writtenRecords"] == 42
    assert output["sink"].startswith("sqlite datasource=") and output["sink"].endswith("table=bt")
    assert output["error"] is None
    call(client, "GET", f"/task/execution/{tid}/output", expect=400)
    call(client, "GET", f"/task/execution/{tid}/output?jobExecutionId={uuid.uuid4()}", expect=404)
    call(client, "POST", "/job/execute", {"jobIds": []}, expect=400)
    call(client, "POST", "/job/execute", {"jobIds": ["1"]}, expect=400)


def test_an_execution_over_its_timeout_ends_timeout_and_rolls_back(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    data.mysql_table(tables["my_src"], 2000)
    data.postgres_table(tables["pg_dst"], 0, data.KEYLESS_POSTGRES_COLUMNS)
    job_id = int(
        ok(
            client,
            "POST",
            "/job",
            {
                "jobName": "bounded",
                "jobParams": {"execution.timeout.seconds": 2},
                "content": [
                    sub_job(
                        "slow",
                        ("MYSQL", sources["MYSQL"], tables["my_src"]),
                        ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                        settings={"setting.speed.record": 200},
                    ),
                    sub_job(
                        "queued",
                        ("MEMORY", sources["MEMORY"], "gen"),
                        ("SQLITE", sources["SQLITE"], "q"),
                        sources={"rows": 10, "sleepPerBatch": 30},
                    ),
                    sub_job(
                        "third",
                        ("MEMORY", sources["MEMORY"], "gen"),
                        ("SQLITE", sources["SQLITE"], "q3"),
                        sources={"rows": 10},
                    ),
                ],
            },
            expect=201,
        )["id"]
    )
    eid = execute(client, job_id, permit=True)
    final = wait_until_done(client, eid, timeout=40)
    assert final["status"] == "Timeout"
    assert tasks_by_name(client, eid)["slow"]["status"] == "Timeout"
    assert data.postgres_rows(tables["pg_dst"]) == []
    assert "Execution timed out" in data_log(client, eid)
    bad = int(
        ok(
            client,
            "POST",
            "/job",
            {
                "jobName": "badtimeout",
                "jobParams": {"execution.timeout.seconds": "soon"},
                "content": [
                    sub_job(
                        "a",
                        ("MEMORY", sources["MEMORY"], "gen"),
                        ("SQLITE", sources["SQLITE"], "x"),
                    )
                ],
            },
            expect=201,
        )["id"]
    )
    reply = call(client, "POST", f"/job/{bad}/execute", {}, expect=400)
    assert "execution.timeout.seconds" in reply["message"]
