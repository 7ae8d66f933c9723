"""Drills of the stores and clocks: the metadata database refusing connections as tasks end,
Redis paused and restarted mid-run, a worker whose clock is two minutes off."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchangis.settings import Settings
from exchangis.state.machine import TASK_FINAL
from tests.drills.conftest import Deployment, assert_exact, deployment
from tests.helpers import API, datasource, execute, ok
from tests.proxy import FlakyProxy
from tests.services import postgres_params

pytestmark = pytest.mark.drill

THREE_SECONDS = {"rows": 600, "batchSize": 20, "sleepPerBatch": 0.1}
"""A sub-job of about three seconds: 30 batches of 20 rows."""
OUTAGE = 10.0
"""Seconds the metadata database refuses connections."""


@pytest.fixture
def behind_proxy(migrated: Settings, tmp_path: Path) -> Iterator[tuple[Deployment, FlakyProxy]]:
    """A deployment whose PostgreSQL metadata database is reached through a proxy."""
    params = postgres_params()
    proxy = FlakyProxy((params["host"], int(params["port"])))
    try:
        for deploy in deployment(migrated, tmp_path, "postgresql", metadata_port=proxy.port):
            yield deploy, proxy
    finally:
        proxy.close()


def test_the_metadata_database_refusing_connections_as_tasks_end(
    behind_proxy: tuple[Deployment, FlakyProxy],
) -> None:
    """Drill 1: every connection to the metadata database is reset and new ones refused for
    10 s while the tasks end; they wait it out (store_outage_seconds) and the execution
    completes with its record written."""
    deploy, proxy = behind_proxy
    deploy.worker()
    job = deploy.memory_to_postgres("meta-down", {s: THREE_SECONDS for s in ("a", "b")})
    eid = execute(deploy.client, job)
    deploy.running(eid)
    time.sleep(1.5)  # half-way: the tasks end during the outage
    proxy.cut()
    ended = set()
    try:
        answer = deploy.client.get(f"{API}/job/execution/{eid}/status")
        assert answer.status_code == 503  # the API says so, in the envelope
        assert answer.get_json()["message"] == "the metadata database is unavailable"
        deadline = time.monotonic() + OUTAGE
        while time.monotonic() < deadline:
            ended |= {t["id"] for t in deploy.rt.store.tasks(eid) if t["status"] in TASK_FINAL}
            time.sleep(0.1)
    finally:
        proxy.restore()
    assert ended, "no task ended during the outage: the drill did not test what it says"
    bound = deploy.settings.heartbeat_timeout_seconds + 30
    assert deploy.final(eid, bound=bound)["status"] == "Success"
    for sub in ("a", "b"):
        assert_exact(deploy.table(job, sub), 600)


def test_redis_paused_then_restarted_mid_run_loses_nothing(deploy: Deployment) -> None:
    """Drill 5: Redis stops answering for 4 s (SIGSTOP), then restarts (its append-only file
    keeps the data) while tasks run."""
    deploy.worker()
    slow = {"rows": 1200, "batchSize": 20, "sleepPerBatch": 0.1}
    job = deploy.memory_to_postgres("redis-blip", {"a": slow, "b": slow})
    eid = execute(deploy.client, job)
    deploy.running(eid)
    process = deploy.redis.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)
    time.sleep(4)
    os.kill(process.pid, signal.SIGCONT)
    time.sleep(1)
    deploy.redis.stop()
    time.sleep(2)
    deploy.redis.start()
    assert deploy.final(eid, bound=90)["status"] == "Success"
    for sub in ("a", "b"):
        assert_exact(deploy.table(job, sub), 1200)


@pytest.fixture(scope="session")
def wallclock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the preload that shifts a process's wall clock (tests/drills/wallclock.c)."""
    library = tmp_path_factory.mktemp("wallclock") / "wallclock.so"
    source = Path(__file__).with_name("wallclock.c")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", library, source, "-ldl"], check=True)
    return library


@pytest.mark.parametrize("offset", [120, -120])
def test_a_worker_two_minutes_off_agrees_on_every_deadline(
    deploy: Deployment, wallclock: Path, offset: int
) -> None:
    """Drill 8: the only worker's wall clock is two minutes ahead (or behind): data source
    tests are answered, nothing is re-sent or reaped early, a kill still ends a blocked task."""
    deploy.worker(env={"LD_PRELOAD": str(wallclock), "WALLCLOCK_OFFSET": str(offset)})
    ds = datasource(deploy.client, "pg-clock", "POSTGRESQL", postgres_params())
    tested = ok(deploy.client, "POST", f"/datasources/{ds}/test")
    assert tested["ok"] is True, tested
    job = deploy.memory_to_postgres("clock", {"a": THREE_SECONDS, "b": THREE_SECONDS})
    eid = execute(deploy.client, job)
    assert deploy.final(eid, bound=60)["status"] == "Success"
    for task in deploy.rt.store.tasks(eid):
        assert task["attempts"] == "1", task  # no heartbeat taken as stale, no resend
    for sub in ("a", "b"):
        assert_exact(deploy.table(job, sub), 600)
    blocked = deploy.memory_to_postgres("clock-kill", {"a": {"rows": 40, "sleepPerBatch": 60}})
    doomed = execute(deploy.client, blocked)
    deploy.started(doomed)
    time.sleep(1)  # inside the source's first (60 s) batch
    assert ok(deploy.client, "POST", f"/job/execution/{doomed}/kill")["status"] == "Cancelled"
    settings = deploy.settings
    bound = settings.kill_grace_seconds + settings.heartbeat_timeout_seconds + 10
    assert deploy.final(doomed, bound=bound)["status"] == "Cancelled"
