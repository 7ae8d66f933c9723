"""Schedules end to end: real workers run the schedulers and the runs they fire.

Each test runs a deployment of its own with schedulers on (fast ticks, a short misfire
threshold) and deletes its plans at the end: every deployment of the session shares one
metadata database, and a plan left enabled would fire into another test's deployment.
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from exchangis import faults
from exchangis.models import Context, JobExecution, PlanItem
from tests.conftest import OwnDeployment, WorkerProcess
from tests.helpers import call, create_job, datasource, execute, ok, sub_job, wait_for

pytestmark = pytest.mark.e2e

EVERY_2S = "*/2 * * * * ?"


class Schedules:
    """A deployment with schedulers, and helpers to make plans and read their contexts."""

    def __init__(self, own: OwnDeployment) -> None:
        self.own = own
        self.client: FlaskClient = own.client
        self.plans: list[int] = []
        self.lite = datasource(
            self.client, f"lite-{uuid.uuid4().hex[:6]}", "SQLITE", {"path": str(self.db)}
        )
        self.memory = datasource(self.client, f"mem-{uuid.uuid4().hex[:6]}", "MEMORY", {})

    @property
    def db(self) -> Path:
        return self.own.workdir / "sink.db"

    def job(self, table: str, rows: int = 5, **source: Any) -> int:
        """Save a job that moves ``rows`` generated rows into ``table`` (appended)."""
        options = {"rows": rows, "batchSize": 1, **source}
        return create_job(
            self.client,
            f"job-{uuid.uuid4().hex[:6]}",
            [sub_job("t", ("MEMORY", self.memory, "gen"), ("SQLITE", self.lite, table), options)],
        )

    def plan(self, job_id: int, items: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
        """Create a plan of ``job_id``; return it."""
        plan = ok(
            self.client,
            "POST",
            "/schedules",
            {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(job_id), "planItems": items, **body},
            expect=201,
        )
        self.plans.append(int(plan["id"]))
        return plan

    def disable(self, plan_id: int) -> None:
        ok(self.client, "POST", f"/schedules/{plan_id}/disable", {})

    def contexts(self, plan_id: int) -> list[Context]:
        """Return the plan's contexts from the metadata database, oldest first."""
        with self.own.rt.sessions() as session:
            return list(
                session.scalars(
                    select(Context).where(Context.plan_id == plan_id).order_by(Context.id)
                )
            )

    def settled(self, plan_id: int, timeout: float = 60) -> list[Context]:
        """Wait until every context of the plan is final; return them."""

        def final() -> list[Context] | None:
            found = self.contexts(plan_id)
            return found if found and all(c.final for c in found) else None

        result: list[Context] = wait_for(final, timeout, 0.3)
        return result

    def rows(self, table: str) -> list[int]:
        with sqlite3.connect(self.db) as conn:
            return [r[0] for r in conn.execute(f'SELECT id FROM "{table}"')]

    def close(self) -> None:
        for plan_id in self.plans:
            call(self.client, "DELETE", f"/schedules/{plan_id}", expect=200)


@pytest.fixture
def schedules(own_deployment: Callable[..., OwnDeployment]) -> Iterator[Callable[..., Schedules]]:
    """Make a deployment with schedulers (workers started by the test); delete its plans after."""
    made: list[Schedules] = []

    def make(workers: int = 1, **overrides: Any) -> Schedules:
        own = own_deployment(
            scheduler_enabled=True,
            scheduler_tick_seconds=0.2,
            misfire_threshold_seconds=4,
            webhook_hosts="127.0.0.1",
            **overrides,
        )
        for _ in range(workers):
            own.worker()
        made.append(Schedules(own))
        return made[-1]

    yield make
    for deployment in made:
        deployment.close()


def fire_times(found: list[Context]) -> list[datetime]:
    return [c.scheduled_at for c in found if c.trigger_type == "CRON_JOB"]


def assert_every_2s(times: list[datetime]) -> None:
    assert times == sorted(times)
    gaps = Counter((b - a).total_seconds() for a, b in itertools.pairwise(times))
    assert set(gaps) == {2.0}, gaps


def _group(worker: Any, sig: signal.Signals) -> None:
    os.killpg(worker.process.pid, sig)


def test_two_schedulers_fire_every_2_seconds_for_60_seconds_once_each(
    schedules: Callable[..., Schedules],
) -> None:
    # a run's task on the worker paused below is taken as lost (the pause outlasts the
    # heartbeat timeout) and runs again on the other: its rows still land once (the ledger)
    s = schedules(workers=2, task_retries=2)
    job = s.job("every2")
    created = time.monotonic()
    plan = s.plan(
        job, [{"triggerType": "CRON_JOB", "cronDesc": EVERY_2S, "concurrencyPolicy": "ALLOW"}]
    )
    started = time.monotonic()
    time.sleep(25)
    # the scheduler holding the lock is paused past it: the other takes over; resumed, the
    # paused one may commit a tick it began: the unique key refuses a second run of any fire
    for worker in s.own.workers:
        _group(worker, signal.SIGSTOP)
        time.sleep(7)
        _group(worker, signal.SIGCONT)
        time.sleep(3)
    time.sleep(max(0.0, 60 - (time.monotonic() - started)))
    asked = time.monotonic()
    s.disable(plan["id"])
    window = time.monotonic() - created  # every fire falls inside it (a loaded host stretches it)
    found = s.settled(plan["id"])
    count = len(found)
    times = fire_times(found)
    assert len(times) == len(set(times)) == count  # none twice
    assert (asked - started) // 2 - 2 <= count <= window // 2 + 2, (count, window)
    assert_every_2s(times)  # none missed
    assert all(c.job_status == "SUCCESSFUL" for c in found), [c.error for c in found]
    assert Counter(Counter(s.rows("every2")).values()) == {count: 5}  # every run's rows, once
    time.sleep(3)
    assert len(s.contexts(plan["id"])) == count  # disabled: no further fire


def test_a_scheduler_stopped_for_20_seconds_obeys_each_misfire_policy(
    schedules: Callable[..., Schedules],
) -> None:
    s = schedules()
    job = s.job("misfires")
    plans = {
        policy: s.plan(
            job,
            [
                {
                    "triggerType": "CRON_JOB",
                    "cronDesc": EVERY_2S,
                    "misfirePolicy": policy,
                    "concurrencyPolicy": "ALLOW",
                }
            ],
        )["id"]
        for policy in ("FIRE_ONCE_NOW", "DO_NOTHING", "CATCH_UP_ALL")
    }
    time.sleep(4)
    (worker,) = s.own.workers
    stopped_at = datetime.now(UTC).replace(tzinfo=None)
    _group(worker, signal.SIGSTOP)
    time.sleep(20)
    _group(worker, signal.SIGCONT)
    time.sleep(6)
    for plan_id in plans.values():
        s.disable(plan_id)
    once = s.settled(plans["FIRE_ONCE_NOW"])
    merged = [c for c in once if (c.triggered_by or {}).get("missedFires")]
    assert len(merged) == 1 and merged[0].triggered_by["missedFires"] >= 6, [
        c.triggered_by for c in once
    ]
    assert not [c for c in once if c.skip_reason]
    nothing = s.settled(plans["DO_NOTHING"])
    skipped = [c for c in nothing if c.skip_reason == "MISFIRE"]
    assert len(skipped) >= 6 and all(c.job_status == "SKIPPED" for c in skipped)
    assert_every_2s(fire_times(nothing))  # every fire is recorded: run or skipped
    catch_up = s.settled(plans["CATCH_UP_ALL"])
    assert_every_2s(fire_times(catch_up))
    # every catch-up runs; only a run caught in flight by the stop may end otherwise (its
    # heartbeat and the reaper come back together: it may be reaped as its worker lost)
    failed = [
        (c.scheduled_at, c.job_status, c.execution_status, c.error)
        for c in catch_up
        if c.job_status != "SUCCESSFUL"
    ]
    assert len(failed) <= 1 and all(at < stopped_at for at, *_ in failed), failed


def test_a_scheduler_killed_after_committing_a_fire_leaves_it_to_the_sweep(
    schedules: Callable[..., Schedules],
) -> None:
    s = schedules(workers=0)
    doomed = WorkerProcess(
        s.own.settings, s.own.workdir / "doomed", env={"EXCHANGIS_DIE_AT": faults.FIRE_COMMITTED}
    )
    s.own.workers.append(doomed)
    doomed.start()
    job = s.job("orphan")
    plan = s.plan(job, [{"triggerType": "CRON_JOB", "cronDesc": EVERY_2S}])
    orphan = wait_for(lambda: s.contexts(plan["id"]), 30, 0.2)[0]
    doomed.stop()  # it died at its first fire (and its restarted child at the next)
    assert not any(c.sent for c in s.contexts(plan["id"]))
    s.own.worker()  # a scheduler that lives: its sweep sends what the dead one committed
    wait_for(lambda: s.contexts(plan["id"])[0].final, 60, 0.3)
    s.disable(plan["id"])
    found = s.settled(plan["id"])
    assert found[0].id == orphan.id and found[0].job_status == "SUCCESSFUL"
    with s.own.rt.sessions() as session:
        executions = session.scalars(
            select(JobExecution.context_id).where(JobExecution.job_id == job)
        ).all()
    assert sorted(executions) == sorted(c.id for c in found if c.sent)  # one run each
    assert Counter(Counter(s.rows("orphan")).values()) == {len(executions): 5}


def test_forbid_records_overlap_skips_for_a_slow_job(schedules: Callable[..., Schedules]) -> None:
    s = schedules()
    job = s.job("slow", rows=5, sleepPerBatch=1)  # about 5 s a run
    plan = s.plan(job, [{"triggerType": "CRON_JOB", "cronDesc": EVERY_2S}])
    time.sleep(13)
    s.disable(plan["id"])
    found = s.settled(plan["id"])
    runs = [c for c in found if not c.skip_reason]
    overlaps = [c for c in found if c.skip_reason == "OVERLAP"]
    assert runs and len(overlaps) >= 2
    for earlier, later in itertools.pairwise(runs):  # never two at once
        assert earlier.stop_at is not None and later.start_at is not None
        assert later.start_at >= earlier.stop_at - timedelta(seconds=1)


def test_a_dependency_chain_runs_in_order_and_a_diamond_joins_once_per_upstream_run(
    schedules: Callable[..., Schedules],
) -> None:
    s = schedules()
    a, b, c, d, e = (s.job(f"dep_{name}") for name in "abcde")

    def on(*upstream: int) -> list[dict[str, Any]]:
        jobs = [{"entityGroup": "DB_BATCH_SYNC", "entityKey": str(u)} for u in upstream]
        return [{"triggerType": "DEPENDENCY", "triggerByJobs": jobs}]

    plans = {
        "b": s.plan(b, on(a))["id"],
        "c": s.plan(c, on(b))["id"],
        "d": s.plan(d, on(a))["id"],
        "e": s.plan(e, on(b, d))["id"],  # A → B → E and A → D → E: a diamond
    }
    for round_ in (1, 2):
        head = execute(s.client, a)
        wait_for(lambda n=round_: all(len(s.contexts(p)) == n for p in plans.values()), 90, 0.3)
        done = {name: s.settled(plan_id)[-1] for name, plan_id in plans.items()}
        assert all(x.job_status == "SUCCESSFUL" for x in done.values())
        assert all(x.origin == head for x in done.values())
        assert done["b"].triggered_by["jobExecutionId"] == head
        assert done["c"].triggered_by["jobExecutionId"] == done["b"].job_execution_id
        assert done["c"].start_at >= done["b"].stop_at - timedelta(seconds=1)
    time.sleep(3)  # the join's second upstream ended too: still one run per head run
    assert {name: len(s.contexts(p)) for name, p in plans.items()} == dict.fromkeys(plans, 2)
    for name in "bcde":
        assert len(s.rows(f"dep_{name}")) == 10


def test_sync_once_returns_the_final_status_and_blocking_reads_are_complete(
    schedules: Callable[..., Schedules],
) -> None:
    s = schedules()
    job = s.job("once", rows=20)
    plan = s.plan(job, [{"triggerType": "ONCE"}], sync=True)
    assert plan["jobStatus"] == "SUCCESSFUL" and plan["contextId"]
    context = ok(s.client, "GET", f"/contexts/{plan['contextId']}")
    assert context["executionStatus"] == "Success"
    # a run not waited for: blocking reads wait for its end and then hold all of it
    second = s.plan(job, [{"triggerType": "ONCE"}])
    logs = ok(s.client, "GET", f"/contexts/{second['contextId']}/logs?block=true")
    assert logs["done"] is True
    by_key = {entry["subKey"]: entry["logs"] for entry in logs["list"]}
    assert "job" in by_key and len(by_key) == 2
    assert any("Success" in line for line in by_key["job"]), by_key["job"][-3:]
    results = ok(s.client, "GET", f"/contexts/{second['contextId']}/results?block=true")
    assert results["done"] is True
    ((entry),) = results["list"]
    columns = [column["name"] for column in entry["result"]["schema"]]
    row = dict(zip(columns, entry["result"]["data"][0], strict=True))
    assert row["records_written"] == 20 and row["status"] == "Success"
    assert len(s.rows("once")) == 40


def test_a_scheduled_run_renders_run_date_from_its_fire_time(
    schedules: Callable[..., Schedules],
) -> None:
    s = schedules()
    job = s.job("t_${run_date}")
    plan = s.plan(
        job,
        [{"triggerType": "CRON_JOB", "cronDesc": "0 0 0 1 1 ?", "timeZone": "Asia/Shanghai"}],
    )
    # the scheduler was "down" since 2026-01-01 00:00 +08:00: one run now, for that fire
    with s.own.rt.sessions.begin() as session:
        session.execute(
            update(PlanItem)
            .where(PlanItem.plan_id == plan["id"])
            .values(next_fire_at=datetime(2025, 12, 31, 16, 0))
        )
    (context,) = wait_for(lambda: s.contexts(plan["id"]), 30, 0.3)
    assert context.scheduled_at == datetime(2025, 12, 31, 16, 0)
    s.settled(plan["id"])
    assert len(s.rows("t_20251231")) == 5  # run_date: the day before the fire, in its zone


class Hooks(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hooks.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


def test_a_webhook_is_called_once_per_failed_context_after_its_last_retry(
    schedules: Callable[..., Schedules],
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        s = schedules()
        job = s.job("failing", failAtRow=2)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        plan = s.plan(
            job,
            [{"triggerType": "ONCE"}],
            execDetail={"retryTimes": 1},
            notify={"url": url, "on": ["FAILED"]},
        )
        (context,) = s.settled(plan["id"], 90)
        assert context.job_status == "FAILED" and context.attempt == 2
        wait_for(lambda: Hooks.received, 30, 0.2)
        time.sleep(2)
        assert [(h["contextId"], h["jobStatus"], h["attempts"]) for h in Hooks.received] == [
            (context.id, "FAILED", 2)
        ]
        (sent,) = s.contexts(plan["id"])
        assert sent.notify_state == "SENT" and [n["status"] for n in sent.notifications] == [204]
    finally:
        server.shutdown()
