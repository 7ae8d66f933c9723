"""Redis restarted (its data lost) mid-run: the execution still finishes, rows exact."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from exchangis.app import create_app
from exchangis.embedded import EmbeddedRedis, free_port
from exchangis.settings import Settings
from tests.conftest import WorkerProcess
from tests.helpers import API, create_job, datasource, execute, signed_in, sub_job

pytestmark = pytest.mark.e2e


@pytest.fixture
def private(
    migrated: Settings, tmp_path: Path, admin_token: str
) -> Iterator[tuple[FlaskClient, Callable[[], None], Settings]]:
    """An API and a worker on a Redis of their own, and a function that replaces that Redis
    with an empty one on the same port (every one is stopped at the end)."""
    port = free_port()
    servers = [EmbeddedRedis(tmp_path / "redis-1", port)]
    servers[0].start()

    def restart_empty() -> None:
        servers[-1].stop()
        servers.append(EmbeddedRedis(tmp_path / f"redis-{len(servers) + 1}", port))
        servers[-1].start()

    settings = migrated.with_overrides(
        {
            "redis_url": servers[0].url,
            "redis_prefix": f"exgloss-{uuid.uuid4().hex[:6]}:",
            "task_queue": f"loss-{uuid.uuid4().hex[:6]}",
            "queues": (),
        }
    )
    process = WorkerProcess(settings, tmp_path)
    process.start()
    try:
        yield signed_in(create_app(settings), admin_token), restart_empty, settings
    finally:
        process.stop()
        for server in servers:
            server.stop()


def _status(client: FlaskClient, eid: str) -> dict[str, Any] | None:
    response = client.get(f"{API}/job/execution/{eid}/status")
    return response.get_json()["data"] if response.status_code == 200 else None


def _final(client: FlaskClient, eid: str) -> dict[str, Any] | None:
    """Return the status of an execution once it is completed (or the last one after 90 s)."""
    final = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        final = _status(client, eid)
        if final and final["allTaskStatus"]:
            break
        time.sleep(0.2)
    return final


def test_an_execution_survives_a_redis_restart_that_lost_everything(
    private: tuple[FlaskClient, Callable[[], None], Settings], tmp_path: Path
) -> None:
    client, restart_empty, _ = private
    memory = datasource(client, "mem-loss", "MEMORY", {})
    lite = datasource(client, "lite-loss", "SQLITE", {"path": str(tmp_path / "loss.db")})
    job_id = create_job(
        client,
        "survivor",
        [
            sub_job(
                "fast", ("MEMORY", memory, "gen"), ("SQLITE", lite, "fast"), sources={"rows": 10}
            ),
            sub_job(
                "slow",
                ("MEMORY", memory, "gen"),
                ("SQLITE", lite, "slow"),
                sources={"rows": 60, "batchSize": 5, "sleepPerBatch": 0.5},
            ),
        ],
    )
    eid = execute(client, job_id, permit=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the slow task has moved some rows
        tasks = client.get(f"{API}/job/execution/{eid}/tasklist").get_json()["data"]["tasks"]
        slow = tasks[1]
        metrics = client.post(
            f"{API}/task/execution/{slow['taskId']}/metrics", json={"jobExecutionId": eid}
        ).get_json()["data"]
        if slow["status"] == "Running" and metrics["task"]["metrics"]["readRecords"] > 0:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the slow task never got going")
    restart_empty()  # everything in Redis is gone: live state, logs, queued messages
    final = _final(client, eid)
    assert final == {"status": "Success", "progress": 1.0, "allTaskStatus": True}
    with sqlite3.connect(tmp_path / "loss.db") as conn:
        assert conn.execute("SELECT count(*) FROM fast").fetchone()[0] == 10
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM slow").fetchone() == (60, 60)
    log = client.get(f"{API}/job/execution/{eid}/log?pageSize=500").get_json()["data"]
    assert "Live state missing" in log["logs"]["all"]
    assert "the live state was rebuilt from the durable record" in log["logs"]["all"]
    assert log["isEnd"] is True


def _until(client: FlaskClient, eid: str, done: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = client.get(f"{API}/job/execution/{eid}/tasklist").get_json()["data"]["tasks"][0]
        metrics = client.post(
            f"{API}/task/execution/{task['taskId']}/metrics", json={"jobExecutionId": eid}
        ).get_json()["data"]["task"]["metrics"]
        if done({**task, **metrics}):
            return
        time.sleep(0.05)
    raise AssertionError(f"execution {eid}: not there in 30 s")


def test_a_restarted_execution_survives_a_redis_restart_that_lost_everything(
    private: tuple[FlaskClient, Callable[[], None], Settings], tmp_path: Path
) -> None:
    """A restart makes its tasks' durable rows unfinished again: an adoption runs them (it ran
    none, and ended the run Failed, while they still read Cancelled from the first run)."""
    client, restart_empty, _ = private
    memory = datasource(client, "mem-again", "MEMORY", {})
    lite = datasource(client, "lite-again", "SQLITE", {"path": str(tmp_path / "again.db")})
    options = {"rows": 60, "batchSize": 5, "sleepPerBatch": 0.3}
    job_id = create_job(
        client,
        "again",
        [sub_job("slow", ("MEMORY", memory, "gen"), ("SQLITE", lite, "t"), sources=options)],
    )
    eid = execute(client, job_id)
    _until(client, eid, lambda t: t["status"] == "Running" and t["readRecords"] > 0)
    assert client.post(f"{API}/job/execution/{eid}/kill").status_code == 200
    assert (_final(client, eid) or {}).get("status") == "Cancelled"
    assert client.post(f"{API}/job/execution/{eid}/restart").status_code == 200
    _until(client, eid, lambda t: t["status"] == "Running" and t["readRecords"] > 0)
    restart_empty()
    final = _final(client, eid)
    assert final == {"status": "Success", "progress": 1.0, "allTaskStatus": True}
    with sqlite3.connect(tmp_path / "again.db") as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (60, 60)
