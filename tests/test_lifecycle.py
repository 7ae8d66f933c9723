"""The lifecycle's races, made to happen in a fixed order with real Redis and SQL: a task paused
after its execution was resumed, a last task whose process died before completing the
execution, executions without live state (adopted), kill of one, idempotent store calls."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select

from exchangis.engine import control
from exchangis.engine.archive import apply_retention, execution_owner
from exchangis.engine.reaper import reap
from exchangis.models import JobExecution, LogLine, TaskExecution
from exchangis.runtime import Runtime
from exchangis.services.execution import cancel
from exchangis.settings import Settings
from exchangis.state.machine import ExecutionStatus, TaskStatus

GRACE = 1.0
"""heartbeat_timeout_seconds here: how long a missing live state or a quiet end waits."""


@pytest.fixture
def lrt(migrated: Settings) -> Iterator[Runtime]:
    """A runtime on a queue no worker consumes, with a short grace; cleans its keys."""
    run = uuid.uuid4().hex[:8]
    settings = migrated.with_overrides(
        {
            "redis_prefix": f"exglife-{run}:",
            "task_queue": f"life-{run}",
            "queues": (),
            "heartbeat_timeout_seconds": GRACE,
            "store_outage_seconds": 1,
        }
    )
    runtime = Runtime(settings)
    yield runtime
    for key in runtime.redis.scan_iter(runtime.keys.pattern(), count=1000):
        runtime.redis.delete(key)
    Redis.from_url(settings.broker()).delete(settings.task_queue)
    runtime.close()


PLAN = {"source": {"datasource_id": 0}, "sink": {"datasource_id": 0}, "settings": {}}
"""A task plan no worker runs here (these tests drive the engine's functions themselves)."""


def _record(rt: Runtime, tasks: int, status: str = "Running", task_status: str = "Inited") -> str:
    """Insert an execution row of ``tasks`` tasks on the runtime's queue; return its id."""
    eid = str(uuid.uuid4())
    with rt.sessions.begin() as session:
        row = JobExecution(
            id=eid,
            job_name="life",
            project_name="default",
            engine_type="EXCHANGIS",
            status=status,
            job_params={},
            labels={},
            queue=rt.settings.task_queue,
            create_user="admin",
            execute_user="admin",
        )
        row.tasks = [
            TaskExecution(
                name=f"t{i}", position=i, status=task_status, plan=PLAN, celery_id=str(uuid.uuid4())
            )
            for i in range(tasks)
        ]
        session.add(row)
    return eid


def _live(rt: Runtime, eid: str, execution: str, task_status: str) -> list[int]:
    """Write the live state of ``eid`` with every task in ``task_status``; return task ids."""
    with rt.sessions() as session:
        row = session.get(JobExecution, eid)
        assert row is not None
        ids = [t.id for t in row.tasks]
    tasks: list[dict[str, Any]] = [
        {"id": tid, "name": f"t{n}", "status": task_status, "claim": "c1", "attempts": 1}
        for n, tid in enumerate(ids)
    ]
    assert rt.store.create_execution(
        eid, {"status": execution, "queue": rt.settings.task_queue}, tasks
    )
    return ids


def _queued(rt: Runtime) -> int:
    return int(Redis.from_url(rt.settings.broker()).llen(rt.settings.task_queue))


def _sql_status(rt: Runtime, eid: str) -> tuple[str, list[str]]:
    with rt.sessions() as session:
        row = session.get(JobExecution, eid)
        assert row is not None
        session.refresh(row)
        return row.status, [t.status for t in row.tasks]


def test_a_task_paused_after_its_execution_was_resumed_sends_itself_again(lrt: Runtime) -> None:
    eid = _record(lrt, 1)
    (tid,) = _live(lrt, eid, "Running", "Running")
    assert control.pause(lrt, eid, "u") == "Paused"  # the running task has not stopped yet
    assert control.resume(lrt, eid, "u") == "Scheduled"  # finds it Running: leaves it
    assert lrt.store.task(tid)["status"] == "Running"
    # now the task obeys the pause it saw, rolls back and moves (runner.run does this)
    moved = lrt.store.transition_task(tid, TaskStatus.PAUSED, sources={TaskStatus.RUNNING})
    assert moved.moved
    assert control.send_if_resumed(lrt, eid, tid)
    assert lrt.store.task(tid)["status"] == "Scheduled"
    assert _queued(lrt) == 1


def test_a_reaper_pass_sends_the_paused_tasks_of_a_resumed_execution(lrt: Runtime) -> None:
    eid = _record(lrt, 2)
    first, second = _live(lrt, eid, "Running", "Running")
    control.pause(lrt, eid, "u")
    control.resume(lrt, eid, "u")
    for tid in (first, second):  # both end up Paused after the resume, neither sends itself
        lrt.store.transition_task(tid, TaskStatus.PAUSED, sources={TaskStatus.RUNNING})
    reap(lrt)
    assert [lrt.store.task(t)["status"] for t in (first, second)] == ["Scheduled"] * 2
    assert _queued(lrt) == 2


def test_a_reaper_pass_completes_an_execution_whose_last_task_ended_alone(lrt: Runtime) -> None:
    eid = _record(lrt, 2)
    ids = _live(lrt, eid, "Running", "Running")
    for tid in ids:  # final in Redis; the process died before finalize.task_finished ran
        lrt.store.transition_task(tid, TaskStatus.SUCCESS, sources={TaskStatus.RUNNING})
    reap(lrt)  # too soon: the ending process may still be completing it
    assert lrt.store.execution(eid)["status"] == "Running"
    time.sleep(GRACE + 0.2)
    reap(lrt)
    assert lrt.store.execution(eid)["status"] == "Success"
    assert lrt.store.execution(eid)["persisted"]
    assert _sql_status(lrt, eid) == ("Success", ["Success", "Success"])


def test_an_unfinished_execution_without_live_state_is_adopted_after_the_grace(
    lrt: Runtime,
) -> None:
    eid = _record(lrt, 2, status="Inited")  # the API died right after its commit
    reap(lrt)
    assert lrt.store.execution(eid) is None  # first seen missing: the API may be writing it
    time.sleep(GRACE + 0.2)
    reap(lrt)
    assert lrt.store.execution(eid)["status"] == "Scheduled"
    assert {t["status"] for t in lrt.store.tasks(eid)} == {"Scheduled"}
    assert _queued(lrt) == 2
    assert _sql_status(lrt, eid)[0] == "Scheduled"


def test_a_kill_of_an_execution_without_live_state_cancels_it_at_once(lrt: Runtime) -> None:
    eid = _record(lrt, 2, status="Inited")
    assert cancel(lrt, eid, "u")["status"] == "Cancelled"
    assert lrt.store.execution(eid)["status"] == "Cancelled"
    assert _sql_status(lrt, eid) == ("Cancelled", ["Cancelled", "Cancelled"])
    assert _queued(lrt) == 0


def test_redis_losing_an_execution_whose_tasks_all_succeeded_completes_it(
    lrt: Runtime,
) -> None:
    eid = _record(lrt, 2, status="Running", task_status="Success")
    reap(lrt)
    time.sleep(GRACE + 0.2)
    reap(lrt)
    assert _sql_status(lrt, eid) == ("Success", ["Success", "Success"])
    assert _queued(lrt) == 0  # nothing ran again


def test_a_paused_execution_that_redis_lost_comes_back_paused(lrt: Runtime) -> None:
    eid = _record(lrt, 1, status="Running", task_status="Running")
    with lrt.sessions.begin() as session:
        row = session.get(JobExecution, eid)
        assert row is not None
        row.control = "pause"
        row.status = ExecutionStatus.PAUSED
    reap(lrt)
    time.sleep(GRACE + 0.2)
    reap(lrt)
    assert lrt.store.execution(eid)["status"] == "Paused"
    assert [t["status"] for t in lrt.store.tasks(eid)] == ["Paused"]
    assert _queued(lrt) == 0


def test_a_transition_run_again_after_a_lost_reply_answers_as_the_first_run(
    lrt: Runtime,
) -> None:
    eid = _record(lrt, 1)
    (tid,) = _live(lrt, eid, "Running", "Running")
    keys = [lrt.keys.task(tid), lrt.keys.execution(eid), "h", "u"]
    args = ["Success", ",Running,", "1", "0", "rem", str(tid), "0", "move-1"]
    first = lrt.store._transition(keys=keys, args=args)
    again = lrt.store._transition(keys=keys, args=args)  # what a client retry sends
    assert first[0] == again[0] == 1 and first == again
    other = lrt.store._transition(keys=keys, args=[*args[:7], "move-2"])
    assert other[0] == 0  # a different move is refused: the task is final
    assert lrt.store.execution(eid)["n_final"] == "1"  # counted once


def test_a_lock_is_released_only_by_its_holder(lrt: Runtime) -> None:
    token = lrt.store.lock("x", 1)
    assert token and not lrt.store.lock("x", 1)
    time.sleep(1.2)  # expired: another caller takes it
    other = lrt.store.lock("x", 5)
    assert other
    lrt.store.unlock("x", token)  # the first holder's late release
    assert not lrt.store.lock("x", 5)  # still held by the other
    lrt.store.unlock("x", other)
    assert lrt.store.lock("x", 5)


def test_retention_drops_old_histories_and_old_logs_by_completion_time(lrt: Runtime) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    ages = {"ancient": 400, "old": 40, "recent": 1}
    ids = {}
    for name, days in ages.items():
        eid = _record(lrt, 1, status="Success", task_status="Success")
        with lrt.sessions.begin() as session:
            row = session.get_one(JobExecution, eid)
            row.completed_time = now - timedelta(days=days)
            session.add(LogLine(owner=execution_owner(eid), line_no=1, text=name))
        ids[name] = eid
    unfinished = _record(lrt, 1, status="Running")  # never deleted, whatever its age
    rt = Runtime(
        lrt.settings.with_overrides({"history_retention_days": 365, "log_retention_days": 30})
    )
    try:
        assert apply_retention(rt) == (1, 1)
        assert apply_retention(rt) == (0, 0)  # nothing left to do
    finally:
        rt.close()
    with lrt.sessions() as session:
        assert session.get(JobExecution, ids["ancient"]) is None
        assert session.get_one(JobExecution, ids["old"]).logs_dropped
        assert session.get(JobExecution, unfinished) is not None
        kept = session.scalars(
            select(LogLine.text).where(
                LogLine.owner.in_([execution_owner(e) for e in ids.values()])
            )
        ).all()
        assert kept == ["recent"]
        assert (
            session.scalar(
                select(func.count())
                .select_from(TaskExecution)
                .where(TaskExecution.execution_id == ids["ancient"])
            )
            == 0
        )


def test_late_writers_never_recreate_an_expired_live_state(lrt: Runtime) -> None:
    eid = _record(lrt, 1)
    (tid,) = _live(lrt, eid, "Success", "Success")
    lrt.store.drop_execution(eid, [tid])  # its time to live ran out
    lrt.store.update_task(tid, {"progress": 0.5})  # a throttled publish of a stale attempt
    lrt.store.update_execution(eid, {"progress": 1.0})
    lrt.store.set_control(eid, "kill")
    assert not lrt.store.first_time(eid, "summarized")
    assert lrt.redis.exists(lrt.keys.task(tid), lrt.keys.execution(eid)) == 0
