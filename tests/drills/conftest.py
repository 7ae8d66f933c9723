"""Fault drills: each runs a private deployment (its own Redis server, metadata database,
queue, workers and API), causes a fault for real, and checks that every execution ends final
within its documented bound, that the SQL record says what the API says, and that every sink
is exact (count, distinct keys, checksum) in a table without a key, or unchanged.

``make drills`` runs them all; ``.ci/run`` runs the same drills (``EXCHANGIS_DRILL_ROUNDS``
repeats the storm-like ones more often when set).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select

from exchangis.app import create_app
from exchangis.client import sub_job
from exchangis.connectors.memory import row_values
from exchangis.embedded import EmbeddedRedis, free_port
from exchangis.migrations import upgrade
from exchangis.models import JobExecution
from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.settings import Settings
from exchangis.state.machine import EXECUTION_FINAL, TASK_FINAL
from tests import data
from tests.conftest import ROOT, WorkerProcess, settings_file
from tests.helpers import API, create_job, datasource, ok, signed_in
from tests.metadata import drop_database, metadata_database
from tests.services import postgres_params

pytestmark = pytest.mark.drill

ROUNDS = int(os.environ.get("EXCHANGIS_DRILL_ROUNDS", "1"))
"""How many times the drills that repeat a fault repeat it (``make drills`` may raise it)."""

TIMERS: dict[str, Any] = {
    "heartbeat_seconds": 0.5,
    "heartbeat_timeout_seconds": 4,
    "reaper_interval_seconds": 0.5,
    "kill_grace_seconds": 2,
    "retry_backoff_seconds": 0.2,
    "resend_after_seconds": 3,
    "progress_interval_seconds": 0.2,
    "store_outage_seconds": 30,
    "worker_concurrency": 2,
}
"""The drills' timers: the bounds they check are written in terms of these."""


def adoption_bound(settings: Settings) -> float:
    """Return the longest a missing live state waits to be rebuilt: the grace, then a pass."""
    return settings.heartbeat_timeout_seconds + 2 * settings.reaper_interval_seconds


@dataclass
class Deployment:
    """A private deployment: settings, its Redis server, an admin client, workers."""

    settings: Settings
    redis: EmbeddedRedis
    client: FlaskClient
    rt: Runtime
    workdir: Path
    token: str
    workers: list[WorkerProcess] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    def worker(
        self, wrapper: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> WorkerProcess:
        """Start one more worker process (under ``wrapper``, with ``env`` added)."""
        process = WorkerProcess(
            self.settings, self.workdir / f"worker-{len(self.workers)}", wrapper, env
        )
        self.workers.append(process)
        process.start()
        return process

    def api_process(self, env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], str]:
        """Start the API as a process of its own (``exchangis api``); return it and its URL."""
        port = free_port()
        config = settings_file(
            self.settings.with_overrides({"port": port}), self.workdir / "api.json"
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
        log = (self.workdir / "api.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "exchangis.cli", "api"],
            cwd=ROOT,
            env={**base, "EXCHANGIS_CONFIG": str(config), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}{API}/openapi.json", timeout=1)
                return process, url
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the API process did not answer")

    def memory_to_postgres(self, name: str, specs: Mapping[str, Mapping[str, Any]]) -> int:
        """Save a job of MEMORY → PostgreSQL sub-jobs, one per ``specs`` item (name → source
        options); each sink is a new table without a key; return the job id."""
        run = uuid.uuid4().hex[:6]
        memory = datasource(self.client, f"mem-{name}-{run}", "MEMORY", {})
        pg = datasource(self.client, f"pg-{name}-{run}", "POSTGRESQL", postgres_params())
        content = []
        for sub, options in specs.items():
            table = f"drill_{sub}_{run}"
            self.tables.append(table)
            content.append(
                sub_job(sub, ("MEMORY", memory, "gen"), ("POSTGRESQL", pg, table), sources=options)
            )
        return create_job(self.client, f"{name}-{run}", content)

    def table(self, job_id: int, sub: str) -> str:
        """Return the sink table of sub-job ``sub`` of a job made by :meth:`memory_to_postgres`."""
        job = ok(self.client, "GET", f"/job/{job_id}")
        for item in job["content"]:
            if item["subJobName"] == sub:
                return str(item["dataSources"]["sink"]["table"])
        raise KeyError(sub)

    def started(self, eid: str, timeout: float = 30) -> None:
        """Wait until every task of ``eid`` is Running."""
        self.running(eid, timeout, reading=False)

    def running(self, eid: str, timeout: float = 30, reading: bool = True) -> None:
        """Wait until every task of ``eid`` is Running and (``reading``) has read a row."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = ok(self.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
            if tasks and all(t["status"] == "Running" for t in tasks):
                if not reading:
                    return
                reads = [
                    ok(
                        self.client,
                        "POST",
                        f"/task/execution/{t['taskId']}/metrics",
                        {"jobExecutionId": eid},
                    )["task"]["metrics"]["readRecords"]
                    for t in tasks
                ]
                if all(reads):
                    return
            time.sleep(0.05)
        raise AssertionError(f"execution {eid} did not get running in {timeout}s")

    def final(self, eid: str, bound: float) -> dict[str, Any]:
        """Wait until ``eid`` and all its tasks are completed, at most ``bound`` seconds; check
        that the SQL record says what the API says; return the API's status answer."""
        deadline = time.monotonic() + bound
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self.client.get(f"{API}/job/execution/{eid}/status")
            if response.status_code == 200:
                status = response.get_json()["data"]
                if status["allTaskStatus"]:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"execution {eid} not final within {bound:g}s: {status}")
        tasks = ok(self.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
        with self.rt.sessions() as session:
            row = session.scalar(select(JobExecution).where(JobExecution.id == eid))
            assert row is not None
            assert row.status == status["status"] and row.status in EXECUTION_FINAL
            assert {t.id: t.status for t in row.tasks} == {t["taskId"]: t["status"] for t in tasks}
            assert all(t.status in TASK_FINAL for t in row.tasks)
        return status


def generated(rows: int) -> list[tuple[Any, ...]]:
    """Return the MEMORY source's rows 1..``rows``."""
    return [row_values(i) for i in range(1, rows + 1)]


def assert_rows(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Check rows against the expected ones: count, distinct ids, checksum."""
    ids = [r[0] for r in got]
    want = len(expected)
    assert (len(got), len(set(ids))) == (want, want), f"{len(got)} rows, {len(set(ids))} ids"
    assert data.checksum(got) == data.checksum(expected)


def assert_exact(table: str, rows: int, kind: str = "POSTGRESQL") -> None:
    """Check that a PostgreSQL (or MariaDB) table holds generated rows 1..``rows`` exactly
    once each."""
    got = data.mysql_rows(table) if kind == "MYSQL" else data.postgres_rows(table)
    assert_rows(got, generated(rows))


def csv_rows(path: Path) -> list[tuple[Any, ...]]:
    """Return the rows of a CSV file the MEMORY source's columns were written to."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["id", "name", "amount"]
        return [(int(i), name, Decimal(amount)) for i, name, amount in reader]


def assert_unchanged(table: str) -> None:
    """Check that a sink table the drill's tasks never committed to is absent or empty."""
    with data.postgres() as conn:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{table}"',)).fetchone()
        if found and found[0]:
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,)


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata(request: pytest.FixtureRequest) -> str:
    """Which metadata database a drill's deployment uses."""
    return str(request.param)


def deployment(
    migrated: Settings,
    workdir: Path,
    metadata: str,
    overrides: Mapping[str, Any] | None = None,
    metadata_port: int | None = None,
) -> Iterator[Deployment]:
    """Yield a private deployment (no worker started yet); tear it down afterwards.

    ``metadata_port``: reach the PostgreSQL metadata database at this port (a proxy's).
    """
    run = uuid.uuid4().hex[:8]
    redis = EmbeddedRedis(workdir / "redis", free_port())
    redis.start()
    database = f"exgdrill_{run}"
    url = (
        metadata_database(database)
        if metadata == "postgresql"
        else f"sqlite:///{workdir / 'meta.db'}"
    )
    if metadata_port is not None:
        url = url.replace(f":{postgres_params()['port']}/", f":{metadata_port}/")
    settings = migrated.with_overrides(
        {
            **TIMERS,
            "redis_url": redis.url,
            "redis_prefix": f"exgdrill-{run}:",
            "task_queue": f"drill-{run}",
            "queues": (),
            "database_url": url,
            **(overrides or {}),
        }
    )
    upgrade(settings.database_url)
    rt = Runtime(settings)
    password = uuid.uuid4().hex
    users.create_user(rt, "admin", password, admin=True)
    token = str(users.issue_token(rt, "admin")["token"])
    deploy = Deployment(settings, redis, signed_in(create_app(settings), token), rt, workdir, token)
    try:
        yield deploy
    finally:
        for process in deploy.workers:
            process.stop()
        rt.close()
        deploy.client.application.extensions["exchangis"].close()
        redis.stop()
        data.drop(postgres_tables=deploy.tables)
        if metadata == "postgresql":
            drop_database(database)


@pytest.fixture
def deploy(migrated: Settings, tmp_path: Path, metadata: str) -> Iterator[Deployment]:
    """A private deployment on each metadata database (no worker started yet)."""
    yield from deployment(migrated, tmp_path, metadata)


def job_log(deploy: Deployment, eid: str) -> str:
    """Return an execution's whole job log as the API serves it."""
    return str(ok(deploy.client, "GET", f"/job/execution/{eid}/log?pageSize=5000")["logs"]["all"])
