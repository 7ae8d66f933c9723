"""The scheduler's decisions against the real metadata database: misfire policies, DST gap
skips, and exactly one context per fire however many schedulers race."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from exchangis.models import Context, Plan, PlanItem
from exchangis.runtime import Runtime
from exchangis.schedule import contexts, scheduler
from exchangis.schedule.scheduler import Due, plan_fires
from tests.conftest import ADMIN
from tests.helpers import create_job, datasource, sub_job

T0 = datetime(2026, 6, 1, 12, 0, 0)


@pytest.fixture
def fast(rt: Runtime) -> Runtime:
    """A runtime whose fires are missed after 4 s and whose catch-ups hold at most 5."""
    return Runtime(rt.settings.with_overrides({"misfire_threshold_seconds": 4, "catch_up_max": 5}))


def item(cron: str, policy: str = "FIRE_ONCE_NOW", zone: str = "UTC", **fields: object) -> PlanItem:
    return PlanItem(
        trigger_type="CRON_JOB",
        cron_desc=cron,
        time_zone=zone,
        misfire_policy=policy,
        concurrency_policy=fields.pop("concurrency_policy", "ALLOW"),
        next_fire_at=fields.pop("next_fire_at", T0),
        **fields,
    )


def shape(dues: list[Due]) -> list[tuple[int, str | None, int]]:
    """(seconds after T0, skip, missed) of each due fire."""
    base = T0.replace(tzinfo=UTC)
    return [(int((d.at - base).total_seconds()), d.skip, d.missed) for d in dues]


def test_fire_once_now_makes_one_run_of_the_missed_fires_and_keeps_the_on_time_ones(
    fast: Runtime,
) -> None:
    dues = plan_fires(fast, item("*/2 * * * * ?"), T0 + timedelta(seconds=20))
    # 0..14 are more than 4 s late: one run, the last missed fire's, for all 8
    assert shape(dues) == [(14, None, 8), (16, None, 0), (18, None, 0), (20, None, 0)]


def test_do_nothing_records_each_missed_fire_as_skipped(fast: Runtime) -> None:
    dues = plan_fires(fast, item("*/2 * * * * ?", "DO_NOTHING"), T0 + timedelta(seconds=20))
    skipped = [s for s, skip, _ in shape(dues) if skip == "MISFIRE"]
    assert skipped == [6, 8, 10, 12, 14]  # the newest catch_up_max of the 8 missed
    assert [s for s, skip, _ in shape(dues) if skip is None] == [16, 18, 20]


def test_catch_up_all_runs_the_newest_missed_fires_up_to_the_cap(fast: Runtime) -> None:
    last = T0 - timedelta(seconds=2)
    dues = plan_fires(
        fast, item("*/2 * * * * ?", "CATCH_UP_ALL", last_fire_at=last), T0 + timedelta(seconds=20)
    )
    assert shape(dues) == [(s, None, 0) for s in (6, 8, 10, 12, 14, 16, 18, 20)]
    assert [d.catch_up for d in dues] == [True] * 5 + [False] * 3


def test_a_day_whose_only_fires_fall_in_the_spring_gap_is_a_dst_gap_skip(rt: Runtime) -> None:
    berlin = item("0 0/30 2 * * ?", zone="Europe/Berlin", next_fire_at=None)
    first = contexts.first_fire(rt, berlin, datetime(2026, 3, 28, 12, 0))
    assert first == datetime(2026, 3, 29, 1, 0)  # 03:00+02:00, the first instant after the gap
    berlin.next_fire_at = first
    (due,) = plan_fires(rt, berlin, first + timedelta(seconds=1))
    assert due.skip == "DST_GAP"
    assert contexts.first_fire(rt, berlin, first) == datetime(2026, 3, 30, 0, 0)  # 02:00+02:00


def test_windows_run_from_the_last_run_so_skips_and_gap_markers_lose_no_data(
    rt: Runtime,
) -> None:
    plan = Plan(id=1, job_id=1, exec_detail={}, created_by=ADMIN)
    row = item("*/2 * * * * ?", id=1)
    made = [
        contexts.new_context(rt, plan, row, str(s), T0, window_end=T0 + timedelta(seconds=s))
        for s in (0, 2, 4, 6)
    ]
    contexts.skip(rt, plan, made[1], "OVERLAP")
    contexts.skip(rt, plan, made[2], "DST_GAP")
    last = scheduler.windows(made, T0 - timedelta(seconds=2))
    assert [(c.window_start, c.window_end) for c in made if not c.skip_reason] == [
        (T0 - timedelta(seconds=2), T0),
        (T0, T0 + timedelta(seconds=6)),  # the skipped fires' data moves with the next run
    ]
    assert last == T0 + timedelta(seconds=6)


def test_forbid_skips_fires_while_a_run_is_unfinished_but_queues_a_catch_up(
    rt: Runtime,
) -> None:
    plan = Plan(id=1, job_id=1, exec_detail={}, created_by=ADMIN)
    row = item("*/2 * * * * ?", id=1, concurrency_policy="FORBID")
    earlier = contexts.new_context(rt, plan, row, "earlier", T0)

    def batch() -> list[Context]:
        return [contexts.new_context(rt, plan, row, str(s), T0) for s in range(3)]

    overlap = batch()
    scheduler.admit(rt, plan, overlap, [earlier], [False, False, False])
    assert [c.skip_reason for c in overlap] == ["OVERLAP"] * 3
    catch_up = batch()
    scheduler.admit(rt, plan, catch_up, [earlier], [True, True, False])
    assert [c.skip_reason for c in catch_up] == [None, None, "OVERLAP"]
    assert [c.triggered_by.get("queued") for c in catch_up[:2]] == [True, True]
    idle = batch()
    scheduler.admit(rt, plan, idle, [], [False, False, False])
    assert [(c.skip_reason, c.triggered_by.get("queued")) for c in idle] == [
        (None, None),
        (None, True),
        (None, True),
    ]


@pytest.fixture
def job(client: FlaskClient) -> int:
    """A job of one tiny MEMORY → MEMORY sub-job."""
    name = uuid.uuid4().hex[:6]
    memory = datasource(client, f"mem-{name}", "MEMORY", {})
    options = {"rows": 1}
    content = [sub_job("t", ("MEMORY", memory, "gen"), ("MEMORY", memory, f"t{name}"), options)]
    return create_job(client, f"job-{name}", content)


def make_plan(rt: Runtime, job: int, cron: str, next_fire_at: datetime) -> tuple[int, int]:
    with rt.sessions.begin() as session:
        plan = Plan(
            entity_group="DB_BATCH_SYNC",
            entity_key=str(job),
            job_id=job,
            enabled=True,
            exec_detail={},
            created_by=ADMIN,
            updated_by=ADMIN,
        )
        plan.items = [item(cron, next_fire_at=next_fire_at)]
        session.add(plan)
        session.flush()
        return plan.id, plan.items[0].id


def fire_keys(rt: Runtime, plan_id: int) -> list[str]:
    with rt.sessions() as session:
        return list(session.scalars(select(Context.fire_key).where(Context.plan_id == plan_id)))


def test_racing_schedulers_make_exactly_one_context_per_fire(
    rt: Runtime, job: int, worker: object
) -> None:
    now = contexts.clock(rt).replace(microsecond=0)
    plan_id, item_id = make_plan(rt, job, "* * * * * ?", now - timedelta(seconds=2))
    for tick in range(3):  # eight schedulers at once, three times, the clock moving on
        at = now + timedelta(seconds=tick)
        threads = [
            threading.Thread(target=scheduler.fire_item, args=(rt, plan_id, item_id, at))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    keys = fire_keys(rt, plan_id)
    assert Counter(Counter(keys).values()) == {1: 5}  # now-2 .. now+2, each once
    with rt.sessions() as session:
        (row,) = session.scalars(select(PlanItem).where(PlanItem.id == item_id))
        assert row.next_fire_at == now + timedelta(seconds=3)
        sent = session.scalars(select(Context.sent).where(Context.plan_id == plan_id))
        assert all(sent)


def test_a_disabled_plan_never_fires_under_its_old_state(rt: Runtime, job: int) -> None:
    now = contexts.clock(rt)
    plan_id, item_id = make_plan(rt, job, "* * * * * ?", now - timedelta(seconds=5))
    with rt.sessions.begin() as session:
        plan = session.get(Plan, plan_id)
        assert plan is not None
        plan.enabled = False
    scheduler.fire_item(rt, plan_id, item_id, now)
    assert fire_keys(rt, plan_id) == []


def test_the_metadata_database_refuses_a_second_context_of_one_fire(rt: Runtime, job: int) -> None:
    plan_id, item_id = make_plan(rt, job, "0 0 0 1 1 ? 2099", T0)
    with rt.sessions() as session:
        plan = session.get(Plan, plan_id)
        row = session.get(PlanItem, item_id)
        assert plan is not None and row is not None
        first = contexts.new_context(rt, plan, row, "2030-01-01T00:00:00", T0)
        second = contexts.new_context(rt, plan, row, "2030-01-01T00:00:00", T0)
    with rt.sessions.begin() as session:
        session.add(first)
    with pytest.raises(IntegrityError), rt.sessions.begin() as session:
        session.add(second)
    assert fire_keys(rt, plan_id) == ["2030-01-01T00:00:00"]


@pytest.mark.e2e
def test_a_scheduler_stopped_while_holding_a_plan_loses_it_and_the_fire_runs_once(
    rt: Runtime, job: int
) -> None:
    """PostgreSQL: a scheduler stopped inside its transaction (here: a session that took the
    plan's row and never goes on) blocks others for 5 s at a time only, loses its session
    after 30 s idle, and then cannot commit what it began; the fire runs once."""
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: a stopped writer holds the whole database")
    now = contexts.clock(rt).replace(microsecond=0)
    plan_id, item_id = make_plan(rt, job, "* * * * * ?", now)
    stopped = rt.sessions()
    stopped.begin()
    assert contexts.take_plan(stopped, plan_id) is not None
    started = time.monotonic()
    scheduler.fire_item(rt, plan_id, item_id, now)  # waits 5 s for the row, then gives up
    assert 4.5 < time.monotonic() - started < 15
    assert fire_keys(rt, plan_id) == []
    time.sleep(31)  # the stopped one's session is ended by the server
    scheduler.fire_item(rt, plan_id, item_id, now)
    assert fire_keys(rt, plan_id) == [now.isoformat()]
    with pytest.raises(DBAPIError):  # what the stopped one began goes nowhere
        stopped.execute(select(Plan.id))
    stopped.close()
    assert fire_keys(rt, plan_id) == [now.isoformat()]
