"""Retries with real workers: lost workers and transient errors retry; terminal errors do not."""

from __future__ import annotations

import json
import os
import signal
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from exchangis.services.access import Caller
from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import (
    create_job,
    data_log,
    execute,
    mysql_to_postgres_job,
    sub_job,
    tasks_by_name,
    wait_for,
    wait_until_done,
)
from tests.proxy import flaky_postgres

pytestmark = pytest.mark.e2e
RETRY_TWICE = {"setting.retry.times": 2}


def _statuses(client: FlaskClient, eid: str, name: str, seen: list[str]) -> bool:
    status = tasks_by_name(client, eid)[name]["status"]
    if not seen or seen[-1] != status:
        seen.append(status)
    return status in {"Success", "Failed", "Undefined", "Cancelled", "Timeout"}


def test_a_sigkilled_attempt_is_retried_and_the_sink_gets_each_row_once(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    rt: Any,
) -> None:
    job_id = mysql_to_postgres_job(
        client, sources, tables, "retried", 3000, {"setting.speed.record": 1000, **RETRY_TWICE}
    )
    eid = execute(client, job_id)
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
    wait_for(lambda: (rt.store.task(task["taskId"]) or {}).get("read_records", "0") != "0")
    os.kill(json.loads(task["linkisJobInfo"])["pid"], signal.SIGKILL)
    final = wait_until_done(client, eid, timeout=60)
    assert final["status"] == "Success"
    # at least one retry (a loaded machine may also lose the second attempt's heartbeat)
    assert int(rt.store.task(task["taskId"])["attempts"]) >= 2
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == data.checksum(
        data.mysql_rows(tables["my_src"])
    )
    task_log = data_log(client, eid, task["taskId"])
    assert "Attempt lost: worker lost" in task_log and "---- attempt 2 of 3 ----" in task_log


def test_a_sink_that_refuses_connections_twice_waits_and_then_succeeds(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    run_id: str,
    rt: Any,
) -> None:
    with flaky_postgres(client, f"flaky-{run_id}", refuse=2) as flaky:
        job_id = mysql_to_postgres_job(
            client, sources, tables, "flaky", 500, settings=RETRY_TWICE, sink=flaky
        )
        eid = execute(client, job_id)
        seen: list[str] = []
        wait_for(lambda: _statuses(client, eid, "copy", seen), timeout=60, interval=0.02)
    assert wait_until_done(client, eid)["status"] == "Success"
    assert seen[-1] == "Success"
    # what happened is read from the record, not from polls: a loaded machine may poll too
    # seldom to see each short WaitForRetry (one run saw only the first)
    tid = tasks_by_name(client, eid)["copy"]["taskId"]
    assert rt.store.task(tid)["attempts"] == "3"
    assert len(data.postgres_rows(tables["pg_dst"])) == 500
    assert data_log(client, eid).count("is WaitForRetry, next attempt in") == 2
    task_log = data_log(client, eid, tid)
    assert "---- attempt 2 of 3 ----" in task_log and "---- attempt 3 of 3 ----" in task_log


def test_retries_run_out_and_terminal_errors_never_retry(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    run_id: str,
    rt: Any,
) -> None:
    with flaky_postgres(client, f"down-{run_id}", refuse=100) as down:
        data.mysql_table(tables["my_src"], 100)
        data.postgres_table(
            tables["pg_dst"], 0, data.POSTGRES_COLUMNS + ", CONSTRAINT no_50 CHECK (id <> 50)"
        )
        job_id = create_job(
            client,
            "hopeless",
            [
                sub_job(
                    "down",
                    ("MYSQL", sources["MYSQL"], tables["my_src"]),
                    ("POSTGRESQL", down, tables["pg_dst"]),
                    settings={"setting.retry.times": 1},
                ),
                sub_job(
                    "violates",
                    ("MYSQL", sources["MYSQL"], tables["my_src"]),
                    ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                    settings=RETRY_TWICE,
                ),
            ],
        )
        eid = execute(client, job_id, permit=True)
        final = wait_until_done(client, eid, timeout=60)
    assert final["status"] == "Failed"
    tasks = tasks_by_name(client, eid)
    assert rt.store.task(tasks["down"]["taskId"])["attempts"] == "2"
    assert rt.store.task(tasks["violates"]["taskId"])["attempts"] == "1"
    assert data.postgres_rows(tables["pg_dst"]) == []


def test_a_task_whose_message_was_lost_is_sent_again(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], rt: Any
) -> None:
    from redis import Redis

    from exchangis.models import JobExecution
    from exchangis.runtime import Runtime
    from exchangis.services import execution

    lost_queue = f"nowhere-{uuid.uuid4().hex[:6]}"  # no worker listens: the messages are lost
    sender = Runtime(rt.settings.with_overrides({"task_queue": lost_queue}))
    job_id = create_job(
        client,
        "lost-message",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "lm"),
                sources={"rows": 20},
            )
        ],
    )
    eid = execution.submit_execution(sender, job_id, Caller("admin", admin=True), {})
    # the execution belongs where workers listen; only its messages went astray
    rt.store.update_execution(eid, {"queue": rt.settings.task_queue})
    with rt.sessions.begin() as session:
        session.get(JobExecution, eid).queue = rt.settings.task_queue
    assert wait_until_done(client, eid, timeout=60)["status"] == "Success"
    Redis.from_url(rt.settings.broker()).delete(lost_queue)
    sender.close()
