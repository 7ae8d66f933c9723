"""E7 (history list) and E8 (delete) over executions that really ran."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from exchangis.models import JobExecution, LogLine
from tests.conftest import WorkerProcess
from tests.helpers import (
    DSS,
    call,
    create_job,
    execute,
    ok,
    sub_job,
    wait_for,
    wait_until_done,
)

pytestmark = pytest.mark.e2e


def _memory_job(client: FlaskClient, sources: dict[str, int], name: str, **options: Any) -> int:
    return create_job(
        client,
        name,
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], name),
                sources={"rows": 100, **options},
                sinks={"writeMode": "overwrite"},
            )
        ],
    )


def test_history_filters_sorts_and_pages(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], run_id: str
) -> None:
    ok_job = _memory_job(client, sources, f"hist_ok_{run_id}")
    bad_job = _memory_job(client, sources, f"hist_bad_{run_id}", failAtRow=50)
    slow_job = _memory_job(
        client, sources, f"hist_slow_{run_id}", rows=1000, sleepPerBatch=1, batchSize=10
    )
    done = [execute(client, ok_job), execute(client, bad_job), execute(client, ok_job)]
    for eid in done:
        wait_until_done(client, eid)
    running = execute(client, slow_job)
    time.sleep(1)
    everything = ok(client, "GET", f"/job/listJobs?key={run_id}&size=50")
    assert everything["total"] == 4
    by_id = {item["jobExecutionId"]: item for item in everything["jobList"]}
    assert by_id[done[0]]["status"] == "Success" and by_id[done[0]]["progress"] == 1.0
    assert by_id[done[1]]["status"] == "Failed"
    assert by_id[running]["status"] in {"Scheduled", "Running"}
    assert set(by_id[done[0]]) >= {
        "jobId",
        "name",
        "projectName",
        "createTime",
        "launchTime",
        "duration",
        "flow",
        "executeNode",
        "createUser",
        "executeUser",
        "triggerType",
        "lastUpdateTime",
    }
    assert [i["jobExecutionId"] for i in everything["jobList"]] == [running, *reversed(done)]
    oldest_first = ok(client, "GET", f"/job/listJobs?key={run_id}&reverse=false&size=50")
    assert [i["jobExecutionId"] for i in oldest_first["jobList"]] == [*done, running]
    page2 = ok(client, "GET", f"/job/listJobs?key={run_id}&size=3&current=2")
    assert [i["jobExecutionId"] for i in page2["jobList"]] == [done[0]]
    failed = ok(client, "GET", f"/job/listJobs?key={run_id}&statuses=Failed,Cancelled")
    assert [i["jobExecutionId"] for i in failed["jobList"]] == [done[1]]
    named = ok(client, "GET", f"/job/listJobs?jobName=hist_ok_{run_id}&status=Success")
    assert named["total"] == 2
    exact = call(
        client, "GET", f"/job/listJobs?jobExecutionId={done[1]}&labels=x&_=3&status=", prefix=DSS
    )["data"]
    assert exact["total"] == 1
    by_name = ok(client, "GET", f"/job/listJobs?key={run_id}&sortBy=name&reverse=false")
    assert [i["name"] for i in by_name["jobList"]] == sorted(i["name"] for i in by_name["jobList"])
    future = int(time.time() * 1000) + 60_000
    assert ok(client, "GET", f"/job/listJobs?key={run_id}&launchStartTime={future}")["total"] == 0
    assert ok(client, "GET", f"/job/listJobs?key={run_id}&timeFilter=0")["total"] == 4
    for bad in ("statuses=Nope", "size=0", "sortBy=evil", "timeFilter=9", "current=x"):
        call(client, "GET", f"/job/listJobs?{bad}", expect=400)

    def live_row() -> Any:  # a running execution's row shows its node and its last progress
        row = ok(client, "GET", f"/job/listJobs?jobExecutionId={running}")["jobList"][0]
        return row["executeNode"] and row["lastUpdateTime"] > row["createTime"] and row

    row = wait_for(live_row, timeout=20)
    assert row["status"] == "Running" and row["executeNode"] == socket.gethostname()
    ok(client, "POST", f"/job/execution/{running}/kill")
    wait_until_done(client, running)


def test_delete_removes_a_completed_execution_and_refuses_a_running_one(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], run_id: str, rt: Any
) -> None:
    eid = execute(client, _memory_job(client, sources, f"del_{run_id}"))
    wait_until_done(client, eid)
    with rt.sessions() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(LogLine).where(LogLine.owner == f"exec:{eid}")
            )
            > 0
        )
    slow = execute(
        client, _memory_job(client, sources, f"del_slow_{run_id}", sleepPerBatch=30, batchSize=10)
    )
    reply = call(client, "POST", f"/job/{slow}/deleteJob", {"labels": {"route": "x"}}, expect=409)
    assert "Running" in reply["message"] or "Scheduled" in reply["message"]
    assert ok(client, "POST", f"/job/{eid}/deleteJob") == {"jobExecutionId": eid}
    call(client, "GET", f"/job/execution/{eid}/status", expect=404)
    call(client, "DELETE", f"/job/execution/{eid}", expect=404)
    with rt.sessions() as session:
        assert session.get(JobExecution, eid) is None
        assert (
            session.scalar(
                select(func.count()).select_from(LogLine).where(LogLine.owner == f"exec:{eid}")
            )
            == 0
        )
    assert not list(rt.redis.scan_iter(f"{rt.keys.prefix}exec:{eid}*"))
    ok(client, "POST", f"/job/execution/{slow}/kill")
    wait_until_done(client, slow)
    assert call(client, "DELETE", f"/job/execution/{slow}", prefix=DSS)["status"] == 0
