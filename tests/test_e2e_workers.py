"""Worker processes that die or grow: the supervisor starts a new Celery worker, several reapers
retry a lost task once, and a pool process that grew past its memory limit is replaced."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from flask.testing import FlaskClient

from exchangis.connectors.memory import row_values
from tests import data
from tests.conftest import OwnDeployment, WorkerProcess
from tests.helpers import (
    create_job,
    data_log,
    datasource,
    execute,
    ok,
    sub_job,
    tasks_by_name,
    wait_for,
    wait_until_done,
)
from tests.services import postgres_params

pytestmark = pytest.mark.e2e


def _child(worker: WorkerProcess, flag: str) -> psutil.Process:
    """Return the child of the ``exchangis worker`` supervisor started with ``flag``."""
    assert worker.process is not None
    children = psutil.Process(worker.process.pid).children()
    found = [c for c in children if flag in c.cmdline()]
    assert len(found) == 1, children
    return found[0]


def _celery_child(worker: WorkerProcess) -> psutil.Process:
    """Return the Celery worker that the ``exchangis worker`` supervisor runs as its child."""
    return _child(worker, "--child")


def _pid(client: FlaskClient, eid: str, name: str) -> int:
    """Return the pid of the pool process that ran task ``name`` (E3's ``linkisJobInfo``)."""
    info = tasks_by_name(client, eid)[name]["linkisJobInfo"]
    return int(json.loads(info)["pid"])


def _memory_to_sqlite(own: OwnDeployment, rows: int, batch: int) -> int:
    """Save a job of one sub-job ``t``: ``rows`` generated rows into a new SQLite table."""
    run = uuid.uuid4().hex[:6]
    client = own.client
    memory = datasource(client, f"mem-{run}", "MEMORY", {})
    lite = datasource(client, f"lite-{run}", "SQLITE", {"path": str(own.workdir / f"{run}.db")})
    options = {"rows": rows, "batchSize": batch}
    return create_job(
        client,
        f"job-{run}",
        [sub_job("t", ("MEMORY", memory, "gen"), ("SQLITE", lite, "t"), options)],
    )


def test_the_supervisor_replaces_a_sigkilled_celery_worker_and_work_goes_on(
    own_deployment: Callable[..., OwnDeployment],
) -> None:
    own = own_deployment()
    worker = own.worker()
    first = _celery_child(worker)
    pool = first.children()
    assert pool  # its prefork pool processes
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)

    def replaced() -> psutil.Process | None:
        log = worker.logfile.read_text(errors="replace")
        if log.count(" ready.") < 2:  # the new Celery worker's own "ready"
            return None
        return _celery_child(worker)

    second = wait_for(replaced, timeout=60)
    assert second.pid != first.pid
    assert worker.process is not None and worker.process.poll() is None  # the supervisor lives
    assert "worker exited with code -9: starting a new one" in worker.logfile.read_text()
    # the dead worker's pool processes end too (nothing left holding memory or connections)
    _, alive = psutil.wait_procs(pool, timeout=30)
    assert not alive, alive

    job_id = _memory_to_sqlite(own, rows=50, batch=10)
    eid = execute(own.client, job_id)
    assert wait_until_done(own.client, eid, timeout=60)["status"] == "Success"
    # the task ran in a pool process of the new Celery worker
    assert _pid(own.client, eid, "t") in {p.pid for p in second.children()}


def test_two_workers_reapers_retry_a_task_lost_mid_run_once_and_the_sink_is_exact(
    own_deployment: Callable[..., OwnDeployment], tables: dict[str, str]
) -> None:
    own = own_deployment()
    workers = [own.worker(), own.worker()]  # each runs a reaper thread
    client, rows, table = own.client, 4000, tables["pg_dst"]
    data.postgres_table(table, 0, "id BIGINT, name TEXT, amount NUMERIC(12,2)")  # no key
    run = uuid.uuid4().hex[:6]
    memory = datasource(client, f"mem-{run}", "MEMORY", {})
    pg = datasource(client, f"pg-{run}", "POSTGRESQL", postgres_params())
    options = {"rows": rows, "batchSize": 200, "sleepPerBatch": 0.1}
    job_id = create_job(
        client,
        f"reaped-{run}",
        [
            sub_job(
                "copy",
                ("MEMORY", memory, "gen"),
                ("POSTGRESQL", pg, table),
                options,
                settings={"setting.retry.times": 3},
            )
        ],
    )
    eid = execute(client, job_id)

    def moving() -> dict[str, Any] | None:
        task = tasks_by_name(client, eid)["copy"]
        if task["status"] != "Running" or not task["linkisJobInfo"]:
            return None
        metrics = ok(
            client, "POST", f"/task/execution/{task['taskId']}/metrics", {"jobExecutionId": eid}
        )["task"]["metrics"]
        return task if metrics["readRecords"] else None

    task = wait_for(moving, timeout=30, interval=0.05)
    os.kill(json.loads(task["linkisJobInfo"])["pid"], signal.SIGKILL)
    assert wait_until_done(client, eid, timeout=90)["status"] == "Success"

    assert all("worker services started" in w.logfile.read_text(errors="replace") for w in workers)
    tid = task["taskId"]
    output = ok(client, "GET", f"/task/execution/{tid}/output?jobExecutionId={eid}")
    assert output["attempts"] == 2  # one retry, whichever reaper took the lost attempt
    task_log = data_log(client, eid, tid)
    assert task_log.count("Attempt lost: worker lost") == 1
    assert "---- attempt 2 of 4 ----" in task_log and "---- attempt 3 of 4 ----" not in task_log
    assert data_log(client, eid).count("is WaitForRetry, next attempt in") == 1
    got = data.postgres_rows(table)
    assert (len(got), len({r[0] for r in got})) == (rows, rows)
    assert data.checksum(got) == data.checksum(row_values(i) for i in range(1, rows + 1))


MEMORY_LIMIT_MB = 200
"""The pool's memory limit in the test below: above a fresh pool process's size (110-120 MB),
far below what a one-batch transfer of a million generated rows reaches (past 400 MB)."""


def test_a_pool_process_that_grew_past_the_memory_limit_is_replaced_after_its_task(
    own_deployment: Callable[..., OwnDeployment],
) -> None:
    own = own_deployment(worker_concurrency=1, worker_max_memory_mb=MEMORY_LIMIT_MB)
    own.worker()
    client = own.client
    small = _memory_to_sqlite(own, rows=100, batch=100)
    big = _memory_to_sqlite(own, rows=1_000_000, batch=1_000_000)
    pids, sizes = [], []
    for job_id in (small, small, big, small):
        eid = execute(client, job_id)
        assert wait_until_done(client, eid, timeout=120)["status"] == "Success"
        pids.append(_pid(client, eid, "t"))
        tid = tasks_by_name(client, eid)["t"]["taskId"]
        metrics = ok(client, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})
        sizes.append(metrics["task"]["metrics"]["resourceUsed"]["memory"])
    first, second, grown, after = pids
    why = f"pool pids {pids}, MB after each task {sizes}, limit {MEMORY_LIMIT_MB} MB"
    assert first == second == grown, why  # small tasks stay under the limit: kept
    assert after != grown, why  # the process the big task grew was replaced


def test_pool_processes_forked_after_every_task_never_hang(
    own_deployment: Callable[..., OwnDeployment],
) -> None:
    """A pool process over ``worker_max_memory_mb`` is replaced after its task: the Celery main
    process forks a new one. A fork copies every lock a thread holds at that instant, so the
    forking process runs none of our threads: the reaper (here a pass every 20 ms, each reading
    SQL and Redis), the scheduler and the call server run in the services process. Before,
    a fork during a reaper pass left a pool process stuck in its first SQL query and its tasks
    reaped as Undefined (seen in a benchmark run)."""
    own = own_deployment(
        worker_concurrency=2,
        worker_max_memory_mb=1,  # every pool process is replaced after each task
        reaper_interval_seconds=0.02,
        scheduler_enabled=True,
    )
    worker = own.worker()
    celery, services = _celery_child(worker), _child(worker, "--services")
    assert celery.pid != services.pid
    run = uuid.uuid4().hex[:6]
    memory = datasource(own.client, f"mem-{run}", "MEMORY", {})
    lite = datasource(own.client, f"lite-{run}", "SQLITE", {"path": str(own.workdir / "f.db")})
    content = [
        sub_job(f"t{i}", ("MEMORY", memory, "gen"), ("SQLITE", lite, f"t{i}"), {"rows": 5})
        for i in range(40)
    ]
    eid = execute(own.client, create_job(own.client, f"forks-{run}", content))
    final = wait_until_done(own.client, eid, timeout=120)
    statuses = {t["status"] for t in tasks_by_name(own.client, eid).values()}
    assert final["status"] == "Success" and statuses == {"Success"}, statuses
    pids = {_pid(own.client, eid, f"t{i}") for i in range(40)}
    assert len(pids) > 20  # the pool was really replaced task after task
    # the services process lives on, and a SIGKILLed one is started again
    os.kill(services.pid, signal.SIGKILL)

    def restarted() -> bool:
        for child in psutil.Process(worker.process.pid).children():  # type: ignore[union-attr]
            try:
                if "--services" in child.cmdline() and child.pid != services.pid:
                    return True
            except psutil.Error:  # the killed one, not reaped yet
                continue
        return False

    assert wait_for(restarted, timeout=30)
