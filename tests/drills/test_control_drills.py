"""Drills of control and process loss: pause/resume storms, an API dying mid-submit, Redis
emptied after a kill or during a pause, a kill of a blocked task whose message was re-sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from exchangis import faults
from exchangis.engine.reaper import reap
from exchangis.models import JobExecution
from exchangis.settings import Settings
from tests.drills.conftest import (
    ROUNDS,
    Deployment,
    adoption_bound,
    assert_exact,
    assert_unchanged,
    deployment,
    job_log,
)
from tests.helpers import API, call, data_log, execute, ok

pytestmark = pytest.mark.drill

SLOW = {"rows": 600, "batchSize": 20, "sleepPerBatch": 0.1}
"""A sub-job of about three seconds: 30 batches of 20 rows."""
STORMED = {"rows": 1600, "batchSize": 20, "sleepPerBatch": 0.1}
"""About eight seconds: longer than 20 pause/resume pairs take even on a loaded machine, so
the storm always hits a running execution."""


def test_pause_resume_storm_ends_success_with_every_row_once(deploy: Deployment) -> None:
    """Drill 2: 20 pause/resume pairs 50 ms apart on a running execution."""
    deploy.worker()
    for _ in range(ROUNDS):
        job = deploy.memory_to_postgres("storm", {"a": STORMED, "b": STORMED})
        eid = execute(deploy.client, job)
        deploy.running(eid)
        for _ in range(20):
            assert ok(deploy.client, "POST", f"/job/execution/{eid}/pause")["status"] == "Paused"
            time.sleep(0.05)
            resumed = ok(deploy.client, "POST", f"/job/execution/{eid}/resume")
            assert resumed["status"] == "Scheduled"
            time.sleep(0.05)
        # a pause rolls a task back: the bound is its rerun plus a reaper pass or two
        assert deploy.final(eid, bound=60)["status"] == "Success"
        for sub in ("a", "b"):
            assert_exact(deploy.table(job, sub), 1600)


def _submitted_by_a_dying_api(deploy: Deployment, job: int) -> str:
    """Submit ``job`` through an API process that dies right after committing the execution's
    rows (before its live state); return the execution id SQL holds."""
    process, url = deploy.api_process({"EXCHANGIS_DIE_AT": faults.SUBMIT_COMMITTED})
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(
                f"{url}{API}/job/{job}/execute",
                json={},
                headers={"Authorization": f"Bearer {deploy.token}"},
                timeout=30,
            )
        assert process.wait(10) == -9  # SIGKILL, at that very step
    finally:
        if process.poll() is None:
            process.kill()
    with deploy.rt.sessions() as session:
        row = session.scalars(select(JobExecution).where(JobExecution.job_id == job)).one()
        assert row.status == "Inited"
        assert deploy.rt.store.execution(row.id) is None
        return row.id


def test_an_api_killed_after_the_submit_commit_leaves_nothing_stuck(
    deploy: Deployment,
) -> None:
    """Drill 3: the API dies between the submit's commit and the live state."""
    deploy.worker()
    adopted = deploy.memory_to_postgres("orphan", {"a": {"rows": 300}})
    killed = deploy.memory_to_postgres("orphan-killed", {"a": {"rows": 300}})
    eid = _submitted_by_a_dying_api(deploy, adopted)
    doomed = _submitted_by_a_dying_api(deploy, killed)
    # an orphan can be killed at once: it ends Cancelled and nothing runs
    assert ok(deploy.client, "POST", f"/job/execution/{doomed}/kill")["status"] == "Cancelled"
    assert deploy.final(doomed, bound=5)["status"] == "Cancelled"
    # the other is adopted by a reaper and runs
    bound = adoption_bound(deploy.settings) + 15
    assert deploy.final(eid, bound=bound)["status"] == "Success"
    assert "the live state was rebuilt from the durable record" in job_log(deploy, eid)
    assert_exact(deploy.table(adopted, "a"), 300)
    assert_unchanged(deploy.table(killed, "a"))
    call(deploy.client, "DELETE", f"/job/execution/{doomed}")
    call(deploy.client, "DELETE", f"/job/execution/{eid}")


def _controlled(deploy: Deployment, action: str, status: str) -> tuple[int, str]:
    """Run a job of two slow sub-jobs, ``action`` it (kill, pause) while they run and check
    the answer's ``status``; return the job and execution ids."""
    deploy.worker()
    job = deploy.memory_to_postgres(f"flush-{action}", {"a": SLOW, "b": SLOW})
    eid = execute(deploy.client, job)
    deploy.running(eid)
    assert ok(deploy.client, "POST", f"/job/execution/{eid}/{action}")["status"] == status
    return job, eid


def test_redis_emptied_after_a_kill_does_not_resurrect_it(deploy: Deployment) -> None:
    """Drill 6a: Redis loses everything right after a kill."""
    job, eid = _controlled(deploy, "kill", "Cancelled")
    deploy.rt.redis.flushall()
    bound = adoption_bound(deploy.settings) + 10
    assert deploy.final(eid, bound=bound)["status"] == "Cancelled"
    for sub in ("a", "b"):
        assert_unchanged(deploy.table(job, sub))


def test_redis_emptied_during_a_pause_keeps_it_paused_until_resumed(deploy: Deployment) -> None:
    """Drill 6b: Redis loses everything while an execution is paused."""
    job, eid = _controlled(deploy, "pause", "Paused")
    time.sleep(1)  # the running tasks stop at their next batch and roll back
    deploy.rt.redis.flushall()
    deadline = time.monotonic() + adoption_bound(deploy.settings) + 10
    while deploy.rt.store.execution(eid) is None:  # until a reaper rebuilds it
        assert time.monotonic() < deadline, "the paused execution was never adopted"
        time.sleep(0.1)
    time.sleep(2 * deploy.settings.reaper_interval_seconds)
    status = ok(deploy.client, "GET", f"/job/execution/{eid}/status")
    assert status == {"status": "Paused", "progress": 0.0, "allTaskStatus": False}
    statuses = {
        t["status"] for t in ok(deploy.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
    }
    assert statuses == {"Paused"}
    for sub in ("a", "b"):
        assert_unchanged(deploy.table(job, sub))
    assert ok(deploy.client, "POST", f"/job/execution/{eid}/resume")["status"] == "Scheduled"
    assert deploy.final(eid, bound=30)["status"] == "Success"
    for sub in ("a", "b"):
        assert_exact(deploy.table(job, sub), 600)


@pytest.fixture
def single(migrated: Settings, tmp_path: Path, metadata: str) -> Iterator[Deployment]:
    """A private deployment whose worker runs one task at a time (messages in queue order)."""
    yield from deployment(migrated, tmp_path, metadata, {"worker_concurrency": 1})


def test_a_kill_terminates_a_blocked_task_claimed_from_its_first_message(
    single: Deployment,
) -> None:
    """Drill 7: a task re-sent while it waited, claimed from the older message, then blocked:
    a kill still terminates the process that runs it."""
    deploy = single
    blocked = {"rows": 40, "batchSize": 20, "sleepPerBatch": 60}  # never reaches a check
    job = deploy.memory_to_postgres("blocked", {"a": blocked})
    eid = execute(deploy.client, job)  # no worker yet: the message waits
    tid = ok(deploy.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"][0]["taskId"]
    first = deploy.rt.store.task(tid)["celery_id"]
    time.sleep(deploy.settings.resend_after_seconds + 0.5)
    reap(deploy.rt)  # a reaper re-sends the task: a new message id
    assert deploy.rt.store.task(tid)["celery_id"] != first
    deploy.worker()
    deadline = time.monotonic() + 30
    while deploy.rt.store.task(tid)["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert deploy.rt.store.task(tid)["message_id"] == first  # the older message claimed it
    while "Error records:" not in data_log(deploy.client, eid, tid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # past its last check: asleep inside the source's first batch
    assert ok(deploy.client, "POST", f"/job/execution/{eid}/kill")["status"] == "Cancelled"
    settings = deploy.settings
    bound = settings.kill_grace_seconds + settings.heartbeat_timeout_seconds + 10
    assert deploy.final(eid, bound=bound)["status"] == "Cancelled"
    task = ok(deploy.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"][0]
    assert task["status"] == "Cancelled"
    log = data_log(deploy.client, eid, tid)
    assert "Task ignored the kill request: terminating its process" in log
    assert_unchanged(deploy.table(job, "a"))
