"""Schedules and contexts over HTTP: plans made, read, listed, changed and removed; every bad
input refused with nothing changed; the cron preview (DST included); who may do what; contexts
(inserted here: runs with workers are tests/test_e2e_schedules.py's) and their logs and
results, which never keep a caller waiting for a run that cannot end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from exchangis.client import sub_job
from exchangis.models import Context, Plan, PlanItem
from exchangis.runtime import Runtime
from exchangis.services import user as users
from tests.conftest import OwnDeployment
from tests.helpers import DSS, call, ok, signed_in
from tests.schedule.test_cron import PREVIEWS

BERLIN = "Europe/Berlin"


@dataclass
class World:
    """An owner with a project and jobs; a viewer of the project; a stranger to it."""

    owner: FlaskClient
    owner_name: str
    viewer: FlaskClient
    viewer_name: str
    stranger: FlaskClient
    project: str
    jobs: list[int]
    make_job: Callable[[], int]


def _user(app: Flask, rt: Runtime, name: str) -> FlaskClient:
    users.create_user(rt, name, "a good long password")
    return signed_in(app, str(users.issue_token(rt, name)["token"]))


@pytest.fixture(scope="module")
def world(app: Flask, rt: Runtime, tmp_path_factory: pytest.TempPathFactory) -> World:
    run = uuid.uuid4().hex[:6]
    owner_name, viewer_name = f"sched-owner-{run}", f"sched-viewer-{run}"
    owner = _user(app, rt, owner_name)
    viewer = _user(app, rt, viewer_name)
    stranger = _user(app, rt, f"sched-stranger-{run}")
    project = ok(owner, "POST", "/projects", {"name": f"sched-{run}"}, expect=201)["name"]
    ok(owner, "PUT", f"/projects/{project}", {"viewUsers": [viewer_name]})
    tmp = tmp_path_factory.mktemp("schedules")
    sources = [
        ok(
            owner,
            "POST",
            "/datasources",
            {"name": f"{kind}-{run}", "projectName": project, "type": kind, "connectParams": p},
            expect=201,
        )["id"]
        for kind, p in (("MEMORY", {}), ("SQLITE", {"path": str(tmp / "s.db")}))
    ]
    made: list[int] = []

    def make_job() -> int:
        content = [sub_job("copy", ("MEMORY", sources[0], "gen"), ("SQLITE", sources[1], "t"))]
        body = {"jobName": f"nightly-{run}-{len(made)}", "projectName": project, "content": content}
        made.append(ok(owner, "POST", "/job", body, expect=201)["id"])
        return made[-1]

    jobs = [make_job() for _ in range(3)]
    return World(owner, owner_name, viewer, viewer_name, stranger, project, jobs, make_job)


def _cron(desc: str = "0 0 12 * * ?", **more: Any) -> dict[str, Any]:
    return {"triggerType": "CRON_JOB", "cronDesc": desc, **more}


def _plan_body(job: int, *items: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(job), "planItems": list(items), **more}


def _create(client: FlaskClient, job: int, *items: dict[str, Any], **more: Any) -> dict[str, Any]:
    return ok(client, "POST", "/schedules", _plan_body(job, *items, **more), expect=201)


def _row(rt: Runtime, plan_id: int) -> tuple[int, bool, dict[int, datetime | None]]:
    """Return a plan's version, enabled flag and items' next fires, from the database."""
    with rt.sessions() as session:
        plan = session.get(Plan, plan_id)
        assert plan is not None
        return plan.version, plan.enabled, {i.id: i.next_fire_at for i in plan.items}


def _wire(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _first_fire(client: FlaskClient, desc: str, zone: str) -> datetime:
    """Return the next fire of ``desc`` from now as naive UTC (through the preview)."""
    fire = ok(client, "POST", "/schedules/preview", {"cronDesc": desc, "timeZone": zone})
    return datetime.fromisoformat(fire["fireTimes"][0]).astimezone(UTC).replace(tzinfo=None)


def _context(rt: Runtime, plan_id: int, item_id: int | None, job_id: int, **fields: Any) -> int:
    """Insert a context as a scheduler would (skipped unless told otherwise); return its id."""
    now = datetime.now(UTC).replace(tzinfo=None)
    values: dict[str, Any] = {
        "plan_id": plan_id,
        "plan_item_id": item_id,
        "fire_key": f"test:{uuid.uuid4()}",
        "plan_item": {"id": item_id, "planId": plan_id, "triggerType": "CRON_JOB"},
        "trigger_type": "CRON_JOB",
        "job_id": job_id,
        "scheduled_at": now,
        "time_zone": "UTC",
        "origin": "test",
        "triggered_by": {"type": "CRON_JOB"},
        "exec_detail": {"jobParams": {}, "retryTimes": 0, "permitPartialFailures": False},
        "attempt": 1,
        "sent": False,
        "final": True,
        "job_status": "SKIPPED",
        "skip_reason": "MISFIRE",
        "created_by": "admin",
        "stop_at": now,
        "notify_tries": 0,
        **fields,
    }
    with rt.sessions.begin() as session:
        context = Context(**values)
        session.add(context)
        session.flush()
        return context.id


def _plan_count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count(Plan.id))) or 0)


# -- plans --------------------------------------------------------------------------------------
def test_a_plan_is_created_read_and_listed_under_both_prefixes(world: World, rt: Runtime) -> None:
    job, upstream = world.jobs[0], world.jobs[1]
    plan = _create(
        world.owner,
        job,
        _cron("0 0 12 * * ?", cronType="DAILY", timeZone=BERLIN),
        {
            "triggerType": "DEPENDENCY",
            "triggerByJobs": [{"entityGroup": "DB_BATCH_SYNC", "entityKey": str(upstream)}],
        },
        execDetail={"jobParams": {"region": "eu"}, "retryTimes": 2},
    )
    assert plan["entityGroup"] == "DB_BATCH_SYNC" and plan["entityKey"] == str(job)
    assert plan["title"].startswith("nightly-") and plan["enabled"] is True
    assert plan["createdBy"] == plan["updatedBy"] == world.owner_name
    assert plan["entityCreatedBy"] == plan["entityCreatedByName"] == world.owner_name
    assert plan["execDetail"] == {
        "jobParams": {"region": "eu"},
        "retryTimes": 2,
        "permitPartialFailures": False,
    }
    assert plan["notify"] is None and plan["execFrequency"] == "DAILY"
    assert plan["jobStatus"] == "NONE"
    assert plan["contextId"] is None and plan["startAt"] is None and plan["costTime"] is None
    cron_item, dependency = plan["planItems"]
    assert cron_item == {
        "id": cron_item["id"],
        "planId": plan["id"],
        "triggerType": "CRON_JOB",
        "cronDesc": "0 0 12 * * ?",
        "cronType": "DAILY",
        "timeZone": BERLIN,
        "triggerByJobs": None,
        "misfirePolicy": "FIRE_ONCE_NOW",
        "concurrencyPolicy": "FORBID",
    }
    assert dependency["triggerByJobs"] == [
        {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(upstream), "statuses": ["Success"]}
    ]
    assert dependency["cronDesc"] is None and dependency["cronType"] is None
    # the next start is the cron item's first fire after now, as the preview tells it
    expected = _first_fire(world.owner, "0 0 12 * * ?", BERLIN)  # a minute apart: the same
    assert plan["nextStartAt"] == _wire(expected)
    version, enabled, fires = _row(rt, plan["id"])
    assert (version, enabled) == (1, True)
    assert fires == {cron_item["id"]: expected, dependency["id"]: None}
    for prefix in ("", DSS):
        kwargs = {"prefix": prefix} if prefix else {}
        assert ok(world.owner, "GET", f"/schedules/{plan['id']}", **kwargs) == plan
    # lists and their filters
    listed = ok(world.owner, "GET", f"/schedules?entityKey={job}")
    assert listed["offset"] == 0 and plan["id"] in [p["id"] for p in listed["list"]]
    assert next(p for p in listed["list"] if p["id"] == plan["id"]) == plan
    queries = {
        f"q={plan['title']}": True,
        "q=no-such-job-name": False,
        f"entityCreatedByList=someone,{world.owner_name}": True,
        "entityCreatedByList=someone": False,
        "jobStatusList=NONE": True,
        "jobStatusList=SKIPPED,FAILED": False,
        "entityGroup=DB_BATCH_SYNC": True,
        "entityGroup=NOTEBOOK": False,
        f"entityKey={upstream}": False,
    }
    for query, found in queries.items():
        page = ok(world.owner, "GET", f"/schedules?{query}&limit=500")
        assert (plan["id"] in [p["id"] for p in page["list"]]) is found, query
    second = _create(world.owner, job, _cron())
    page = ok(world.owner, "GET", f"/schedules?entityKey={job}&limit=1")
    assert page["totalHits"] >= 2 and [p["id"] for p in page["list"]] == [second["id"]]
    page = ok(world.owner, "GET", f"/schedules?entityKey={job}&limit=1&offset=1")
    assert page["offset"] == 1 and [p["id"] for p in page["list"]] == [plan["id"]]
    call(world.owner, "GET", "/schedules?limit=501", expect=400)
    call(world.owner, "GET", "/schedules?jobStatusList=DONE", expect=400)
    for made in (plan, second):
        ok(world.owner, "DELETE", f"/schedules/{made['id']}")


def test_put_keeps_items_sent_with_their_id_and_deletes_the_others(
    world: World, rt: Runtime
) -> None:
    job = world.jobs[0]
    plan = _create(world.owner, job, _cron("0 0 12 * * ?"), _cron("0 0 6 * * ?"))
    kept, _ = plan["planItems"]
    history = _context(rt, plan["id"], kept["id"], job)
    sentinel = datetime(2099, 1, 1)
    with rt.sessions.begin() as session:  # a fire the scheduler moved: an unchanged item keeps it
        item = session.get(PlanItem, kept["id"])
        assert item is not None
        item.next_fire_at = sentinel
    same = ok(world.owner, "PUT", f"/schedules/{plan['id']}", {"planItems": [kept]})
    assert [i["id"] for i in same["planItems"]] == [kept["id"]]
    version, _, fires = _row(rt, plan["id"])
    assert version == 2 and fires == {kept["id"]: sentinel}
    # a changed expression fires from now; a new item gets a new id
    changed = {**kept, "cronDesc": "0 30 7 * * ?", "misfirePolicy": "DO_NOTHING"}
    new = _cron("0 0 0 1 * ?", cronType="MONTHLY", concurrencyPolicy="ALLOW")
    answer = ok(world.owner, "PUT", f"/schedules/{plan['id']}", {"planItems": [changed, new]})
    first, second = answer["planItems"]
    assert first == {**changed, "planId": plan["id"]}
    # (SQLite may give the dropped item's id again: its row is gone, its contexts let go of it)
    assert second["id"] != kept["id"] and second["cronType"] == "MONTHLY"
    version, _, fires = _row(rt, plan["id"])
    assert version == 3 and set(fires) == {kept["id"], second["id"]}
    assert fires[kept["id"]] == _first_fire(world.owner, "0 30 7 * * ?", "UTC")
    assert answer["nextStartAt"] == _wire(min(f for f in fires.values() if f))
    assert answer["execFrequency"] == "CRON"
    with rt.sessions() as session:  # the kept item's history is still its own
        context = session.get(Context, history)
        assert context is not None and context.plan_item_id == kept["id"]
    # enabled alone leaves the items; [] and null remove them all
    answer = ok(world.owner, "PUT", f"/schedules/{plan['id']}", {"enabled": False})
    assert [i["id"] for i in answer["planItems"]] == [kept["id"], second["id"]]
    assert answer["enabled"] is False and answer["nextStartAt"] is None
    for empty in ([], None):
        answer = ok(world.owner, "PUT", f"/schedules/{plan['id']}", {"planItems": empty})
        assert answer["planItems"] == [] and answer["execFrequency"] is None
    version, _, fires = _row(rt, plan["id"])
    assert version == 6 and fires == {}
    with rt.sessions() as session:  # contexts outlive their items
        context = session.get(Context, history)
        assert context is not None and context.plan_item_id is None
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


def test_enable_and_disable_bump_the_version_and_disabled_plans_have_no_next_start(
    world: World, rt: Runtime
) -> None:
    plan = _create(world.owner, world.jobs[0], _cron("0 0/5 * * * ?"))
    item = plan["planItems"][0]["id"]
    assert plan["nextStartAt"] is not None
    off = ok(world.owner, "POST", f"/schedules/{plan['id']}/disable")
    assert off["enabled"] is False and off["nextStartAt"] is None
    assert _row(rt, plan["id"]) == (2, False, {item: None})
    ok(world.owner, "POST", f"/schedules/{plan['id']}/disable", {})  # already: no change
    assert _row(rt, plan["id"])[0] == 2
    on = ok(world.owner, "POST", f"/schedules/{plan['id']}/enable", {})
    version, enabled, fires = _row(rt, plan["id"])
    assert (version, enabled) == (3, True) and fires[item] is not None
    assert on["enabled"] is True and on["nextStartAt"] == _wire(fires[item])
    assert fires[item] == _first_fire(world.owner, "0 0/5 * * * ?", "UTC")
    call(world.owner, "POST", f"/schedules/{plan['id']}/enable", {"now": True}, expect=400)
    # a plan created disabled has no next fire either
    idle = _create(world.owner, world.jobs[0], _cron(), enabled=False)
    assert idle["nextStartAt"] is None
    assert _row(rt, idle["id"])[2] == {idle["planItems"][0]["id"]: None}
    for made in (plan, idle):
        ok(world.owner, "DELETE", f"/schedules/{made['id']}")


def test_delete_removes_the_plan_with_its_items_and_contexts(world: World, rt: Runtime) -> None:
    plan = _create(world.owner, world.jobs[0], _cron())
    context = _context(rt, plan["id"], plan["planItems"][0]["id"], world.jobs[0])
    assert ok(world.owner, "DELETE", f"/schedules/{plan['id']}") == {"id": plan["id"]}
    call(world.owner, "GET", f"/schedules/{plan['id']}", expect=404)
    call(world.owner, "DELETE", f"/schedules/{plan['id']}", expect=404)
    call(world.owner, "GET", f"/contexts/{context}", expect=404)
    with rt.sessions() as session:
        assert session.get(PlanItem, plan["planItems"][0]["id"]) is None


def test_a_disabled_plans_once_item_records_a_skipped_context(world: World, rt: Runtime) -> None:
    plan = _create(world.owner, world.jobs[0], {"triggerType": "ONCE"}, enabled=False)
    assert plan["contextId"] is not None and plan["jobStatus"] == "SKIPPED"
    assert plan["execFrequency"] == "ONCE" and plan["planItems"][0]["cronType"] is None
    context = ok(world.owner, "GET", f"/contexts/{plan['contextId']}")
    assert context["skipReason"] == "DISABLED" and context["jobExecutionId"] is None
    assert context["triggeredBy"] == {"type": "ONCE", "user": world.owner_name}
    assert context["planItem"]["id"] == plan["planItems"][0]["id"]
    for what in ("logs", "results"):
        assert ok(world.owner, "GET", f"/contexts/{plan['contextId']}/{what}") == {
            "list": [],
            "done": True,
        }
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


# -- bad input ----------------------------------------------------------------------------------
BAD_CREATES: list[tuple[str, Callable[[World], dict[str, Any]], int, str]] = [
    ("group", lambda w: {**_plan_body(w.jobs[0]), "entityGroup": "NOTEBOOK"}, 400, "entityGroup"),
    ("no job", lambda w: _plan_body(2_000_000_000, _cron()), 404, "job 2000000000"),
    ("key", lambda w: {**_plan_body(w.jobs[0]), "entityKey": "one"}, 400, "entityKey"),
    ("dow 8", lambda w: _plan_body(w.jobs[0], _cron("0 0 12 ? * 8")), 400, "planItems[0].cronDesc"),
    ("#6", lambda w: _plan_body(w.jobs[0], _cron("0 0 12 ? * 6#6")), 400, "planItems[0].cronDesc"),
    ("32W", lambda w: _plan_body(w.jobs[0], _cron("0 0 12 32W * ?")), 400, "planItems[0].cronDesc"),
    (
        "minute 60",
        lambda w: _plan_body(w.jobs[0], _cron("0 60 * * * ?")),
        400,
        "planItems[0].cronDesc",
    ),
    (
        "past year",
        lambda w: _plan_body(w.jobs[0], _cron(), _cron("0 0 12 1 1 ? 2020")),
        400,
        "planItems[1].cronDesc",
    ),
    (
        "both days",
        lambda w: _plan_body(w.jobs[0], _cron("0 0 12 * * *")),
        400,
        "planItems[0].cronDesc",
    ),
    (
        "no cron",
        lambda w: _plan_body(w.jobs[0], {"triggerType": "CRON_JOB"}),
        400,
        "planItems[0].cronDesc",
    ),
    (
        "zone",
        lambda w: _plan_body(w.jobs[0], _cron(timeZone="Mars/Olympus")),
        400,
        "planItems[0].timeZone",
    ),
    (
        "offset",
        lambda w: _plan_body(w.jobs[0], _cron(timeZone="GMT+19:00")),
        400,
        "planItems[0].timeZone",
    ),
    (
        "cron type",
        lambda w: _plan_body(w.jobs[0], _cron(cronType="YEARLY")),
        400,
        "planItems[0].cronType",
    ),
    (
        "trigger",
        lambda w: _plan_body(w.jobs[0], {"triggerType": "ALWAYS"}),
        400,
        "planItems[0].triggerType",
    ),
    (
        "misfire",
        lambda w: _plan_body(w.jobs[0], _cron(misfirePolicy="SOMETIMES")),
        400,
        "planItems[0].misfirePolicy",
    ),
    (
        "concurrency",
        lambda w: _plan_body(w.jobs[0], _cron(concurrencyPolicy="QUEUE")),
        400,
        "planItems[0].concurrencyPolicy",
    ),
    (
        "cron on once",
        lambda w: _plan_body(w.jobs[0], {"triggerType": "ONCE", "cronDesc": "0 0 12 * * ?"}),
        400,
        "planItems[0].cronDesc",
    ),
    (
        "no upstream",
        lambda w: _plan_body(w.jobs[0], {"triggerType": "DEPENDENCY", "triggerByJobs": []}),
        400,
        "planItems[0].triggerByJobs",
    ),
    (
        "self-loop",
        lambda w: _plan_body(w.jobs[0], _upstreams(w.jobs[0])),
        400,
        "planItems[0].triggerByJobs",
    ),
    (
        "unknown upstream",
        lambda w: _plan_body(w.jobs[0], _upstreams(2_000_000_000)),
        400,
        "planItems[0].triggerByJobs[0].entityKey",
    ),
    (
        "upstream status",
        lambda w: _plan_body(w.jobs[0], _upstreams(w.jobs[1], statuses=["Running"])),
        400,
        "planItems[0].triggerByJobs[0].statuses",
    ),
    (
        "notify",
        lambda w: _plan_body(w.jobs[0], _cron(), notify={"url": "http://hooks.example/x"}),
        400,
        "notify.url",
    ),
    (
        "notify on",
        lambda w: _plan_body(w.jobs[0], notify={"url": "http://h.example/", "on": ["DONE"]}),
        400,
        "notify.on",
    ),
    (
        "retries",
        lambda w: _plan_body(w.jobs[0], execDetail={"retryTimes": 99}),
        400,
        "execDetail.retryTimes",
    ),
    ("unknown field", lambda w: _plan_body(w.jobs[0], owner="x"), 400, "owner"),
    ("sync", lambda w: _plan_body(w.jobs[0], syncTimeoutSeconds=-1), 400, "syncTimeoutSeconds"),
]


def _upstreams(*jobs: int, **more: Any) -> dict[str, Any]:
    listed = [{"entityGroup": "DB_BATCH_SYNC", "entityKey": str(j), **more} for j in jobs]
    return {"triggerType": "DEPENDENCY", "triggerByJobs": listed}


@pytest.mark.parametrize(("case", "body", "code", "field"), BAD_CREATES)
def test_a_bad_plan_is_refused_naming_the_field_and_nothing_is_saved(
    world: World,
    rt: Runtime,
    case: str,
    body: Callable[[World], dict[str, Any]],
    code: int,
    field: str,
) -> None:
    before = _plan_count(rt)
    reply = call(world.owner, "POST", "/schedules", body(world), expect=code)
    assert reply["message"].startswith(field), (case, reply)
    if code == 400:
        root = field.split("[", maxsplit=1)[0].split(".", maxsplit=1)[0]
        assert any(key.startswith(root) for key in reply["data"]["errors"]), (case, reply)
    assert _plan_count(rt) == before


def test_a_cron_error_names_the_rule(world: World) -> None:
    cases = {
        "0 0 12 ? * 8": "day-of-week",
        "0 0 12 ? * 6#6": "#",
        "0 0 12 32W * ?": "day-of-month",
        "0 60 * * * ?": "minute",
        "0 0 12 1 1 ? 2020": "past",
    }
    for desc, words in cases.items():
        reply = call(
            world.owner, "POST", "/schedules", _plan_body(world.jobs[0], _cron(desc)), expect=400
        )
        assert words in reply["message"], reply


def test_a_dependency_cycle_is_refused(world: World, rt: Runtime) -> None:
    a, b, c = (world.make_job() for _ in range(3))
    first = _create(world.owner, b, _upstreams(a))  # a → b
    second = _create(world.owner, c, _upstreams(b))  # b → c
    before = _plan_count(rt)
    reply = call(
        world.owner, "POST", "/schedules", _plan_body(a, _cron(), _upstreams(c)), expect=400
    )
    assert reply["message"].startswith("planItems[1].triggerByJobs")
    assert f"{a} → {b} → {c}" in reply["message"]
    # a PUT that would close the cycle is refused too, and changes nothing
    version = _row(rt, first["id"])[0]
    body = {"planItems": [*first["planItems"], _upstreams(c)]}
    call(world.owner, "PUT", f"/schedules/{first['id']}", body, expect=400)
    assert _row(rt, first["id"])[0] == version and _plan_count(rt) == before
    assert ok(world.owner, "GET", f"/schedules/{first['id']}")["planItems"] == first["planItems"]
    # with b → c gone, c may depend on a ... and a diamond is no cycle
    ok(world.owner, "DELETE", f"/schedules/{second['id']}")
    third = _create(world.owner, c, _upstreams(a, b))
    for made in (first, third):
        ok(world.owner, "DELETE", f"/schedules/{made['id']}")


def test_a_put_with_another_plans_item_id_or_bad_items_changes_nothing(
    world: World, rt: Runtime
) -> None:
    mine = _create(world.owner, world.jobs[0], _cron())
    other = _create(world.owner, world.jobs[1], _cron("0 0 6 * * ?"))
    before = _row(rt, mine["id"])
    foreign = other["planItems"][0]
    bad = {
        "planItems[1].planId": {"planItems": [mine["planItems"][0], foreign]},
        "planItems[1].id": {"planItems": [mine["planItems"][0], {**foreign, "planId": None}]},
        "planItems[0].id": {"planItems": [{**_cron(), "id": 2_000_000_000}]},
        "planItems[2].id": {"planItems": [*mine["planItems"], _cron(), mine["planItems"][0]]},
        "planItems[0].cronDesc": {"planItems": [_cron("0 0 25 * * ?")], "enabled": False},
        "planItems[0].timeZone": {"planItems": [_cron(timeZone="Nowhere")]},
        "enabled": {"enabled": "sometimes"},
        "execDetail": {"execDetail": {}},
    }
    for field, body in bad.items():
        reply = call(world.owner, "PUT", f"/schedules/{mine['id']}", body, expect=400)
        assert reply["message"].startswith(field), reply
        assert _row(rt, mine["id"]) == before
    assert ok(world.owner, "GET", f"/schedules/{mine['id']}") == mine
    assert ok(world.owner, "GET", f"/schedules/{other['id']}")["planItems"] == other["planItems"]
    for made in (mine, other):
        ok(world.owner, "DELETE", f"/schedules/{made['id']}")


def test_a_webhook_host_must_be_allowed(
    world: World, own_deployment: Callable[..., OwnDeployment]
) -> None:
    deployment = own_deployment(webhook_hosts="hooks.example")
    plan = ok(
        deployment.client,
        "POST",
        "/schedules",
        _plan_body(world.jobs[0], _cron(), notify={"url": "https://hooks.example/exg"}),
        expect=201,
    )
    assert plan["notify"] == {"url": "https://hooks.example/exg", "on": ["FAILED"]}
    for url in ("https://elsewhere.example/exg", "ftp://hooks.example/x"):
        body = _plan_body(world.jobs[0], notify={"url": url, "on": ["FAILED", "SKIPPED"]})
        reply = call(deployment.client, "POST", "/schedules", body, expect=400)
        assert reply["message"].startswith("notify.url"), reply
    ok(deployment.client, "DELETE", f"/schedules/{plan['id']}")


# -- preview ------------------------------------------------------------------------------------
def _preview(client: FlaskClient, desc: str, **more: Any) -> list[str]:
    body = {"cronDesc": desc, **more}
    return list(ok(client, "POST", "/schedules/preview", body)["fireTimes"])


def test_preview_shows_the_fires_in_the_zone_dst_included(world: World) -> None:
    client = world.stranger  # sign-in is all it needs
    spring = _preview(
        client, "0 30 2 * * ?", timeZone=BERLIN, startTime="2026-03-28T12:00:00", count=2
    )
    assert spring == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    autumn = _preview(
        client, "0 30 2 * * ?", timeZone=BERLIN, startTime="2026-10-24T12:00:00", count=2
    )
    assert autumn == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    interval = _preview(
        client, "0 0/30 * * * ?", timeZone=BERLIN, startTime="2026-10-25T01:45:00+02:00"
    )
    assert interval == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    midnight = _preview(
        client, "0 0 0 * * ?", timeZone=BERLIN, startTime="2026-03-28T12:00:00", count=3
    )
    assert midnight == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
        "2026-03-31T00:00:00+02:00",
    ]
    # a start without an offset is local to the zone; with one, it is that instant
    hourly = "0 0 * * * ?"
    local = _preview(client, hourly, timeZone=BERLIN, startTime="2026-03-28T12:00:00", count=1)
    utc = _preview(client, hourly, timeZone=BERLIN, startTime="2026-03-28T12:00:00Z", count=1)
    assert (local, utc) == (["2026-03-28T13:00:00+01:00"], ["2026-03-28T14:00:00+01:00"])
    assert _preview(
        client, "0 15 10 ? * *", timeZone="GMT+08:00", startTime="2026-01-01T00:00:00", count=1
    ) == ["2026-01-01T10:15:00+08:00"]
    assert _preview(
        client, "0 0 12 ? * 6#3", timeZone="UTC", startTime="2026-01-01T00:00:00", count=2
    ) == ["2026-01-16T12:00:00+00:00", "2026-02-20T12:00:00+00:00"]
    assert _preview(client, "0 12 * * 1-5", startTime="2026-01-02T12:00:00+00:00", count=2) == [
        "2026-01-05T12:00:00+00:00",
        "2026-01-06T12:00:00+00:00",
    ]
    # the server's zone by default (UTC here), now by default, strictly after the start
    now = datetime.now(UTC)
    [next_minute] = _preview(client, "0 * * * * ?", count=1)
    assert now < datetime.fromisoformat(next_minute) <= now + timedelta(seconds=61)
    assert next_minute.endswith("+00:00")
    assert _preview(client, "0 0 12 * * ?", startTime="2026-01-01T12:00:00Z", count=1) == [
        "2026-01-02T12:00:00+00:00"
    ]
    # no further fire: fewer, or none
    assert _preview(client, "0 0 12 1 1 ? 2030", timeZone=BERLIN, count=5) == [
        "2030-01-01T12:00:00+01:00"
    ]
    assert _preview(client, "0 0 12 1 1 ? 2030", startTime="2031-01-01T00:00:00Z") == []
    assert len(_preview(client, "* * * * * ?", count=100)) == 100


def test_preview_refuses_bad_input_naming_the_field(world: World) -> None:
    cases = {
        "count": {"cronDesc": "0 * * * * ?", "count": 101},
        "cronDesc": {"cronDesc": "0 0 12 ? * 8"},
        "timeZone": {"cronDesc": "0 * * * * ?", "timeZone": "Europe/Atlantis"},
        "startTime": {"cronDesc": "0 * * * * ?", "startTime": "yesterday"},
    }
    for field, body in cases.items():
        reply = call(world.owner, "POST", "/schedules/preview", body, expect=400)
        assert reply["message"].startswith(field), reply
    reply = call(world.owner, "POST", "/schedules/preview", {"count": 3}, expect=400)
    assert reply["message"].startswith("cronDesc")


# -- privileges ---------------------------------------------------------------------------------
def test_a_viewer_reads_plans_but_may_not_make_or_change_them(world: World, rt: Runtime) -> None:
    plan = _create(world.owner, world.jobs[0], _cron())
    context = _context(rt, plan["id"], plan["planItems"][0]["id"], world.jobs[0])
    viewer = world.viewer
    assert ok(viewer, "GET", f"/schedules/{plan['id']}") == ok(
        world.owner, "GET", f"/schedules/{plan['id']}"
    )
    assert plan["id"] in [p["id"] for p in ok(viewer, "GET", "/schedules?limit=500")["list"]]
    assert ok(viewer, "GET", f"/contexts/{context}")["id"] == context
    refused = [
        ("POST", "/schedules", _plan_body(world.jobs[0], _cron())),
        ("PUT", f"/schedules/{plan['id']}", {"enabled": False}),
        ("DELETE", f"/schedules/{plan['id']}", None),
        ("POST", f"/schedules/{plan['id']}/enable", None),
        ("POST", f"/schedules/{plan['id']}/disable", None),
        ("PUT", f"/schedules/{plan['id']}/cancel", None),
        (
            "POST",
            "/schedules/cancel",
            {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(world.jobs[0])},
        ),
    ]
    before = _plan_count(rt), _row(rt, plan["id"])
    for method, path, body in refused:
        reply = call(viewer, method, path, body, expect=403)
        assert reply["status"] == 3 and set(reply["data"]) <= {"errors"}
    assert (_plan_count(rt), _row(rt, plan["id"])) == before
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


def test_a_stranger_finds_nothing(world: World, rt: Runtime) -> None:
    plan = _create(world.owner, world.jobs[0], _cron())
    context = _context(rt, plan["id"], plan["planItems"][0]["id"], world.jobs[0])
    stranger = world.stranger
    hidden = [
        ("GET", f"/schedules/{plan['id']}", None),
        ("PUT", f"/schedules/{plan['id']}", {"enabled": False}),
        ("DELETE", f"/schedules/{plan['id']}", None),
        ("POST", f"/schedules/{plan['id']}/enable", {}),
        ("POST", f"/schedules/{plan['id']}/disable", {}),
        ("PUT", f"/schedules/{plan['id']}/cancel", {}),
        ("POST", "/schedules", _plan_body(world.jobs[0], _cron())),
        (
            "POST",
            "/schedules/cancel",
            {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(world.jobs[0])},
        ),
        ("GET", f"/contexts/{context}", None),
        ("GET", f"/contexts/{context}/logs?block=false", None),
        ("GET", f"/contexts/{context}/results", None),
    ]
    for method, path, body in hidden:
        reply = call(stranger, method, path, body, expect=404)
        assert "nightly" not in str(reply) and set(reply["data"]) <= {"errors"}
    for path in ("/schedules", "/contexts", "/schedules/users", "/contexts/users"):
        assert ok(stranger, "GET", path)["list"] == [], path
    assert ok(stranger, "GET", f"/schedules?entityKey={world.jobs[0]}")["totalHits"] == 0
    assert ok(stranger, "GET", f"/contexts?planId={plan['id']}")["totalHits"] == 0
    assert _row(rt, plan["id"])[:2] == (1, True)
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


def test_the_users_lists_hold_ids_and_names_only(
    world: World, rt: Runtime, client: FlaskClient
) -> None:
    plan = _create(world.owner, world.jobs[0], _cron())
    _context(rt, plan["id"], plan["planItems"][0]["id"], world.jobs[0], created_by=world.owner_name)
    for path in ("/schedules/users", "/contexts/users"):
        for who in (world.owner, world.viewer, client):
            listed = ok(who, "GET", f"{path}?entityKey={world.jobs[0]}")["list"]
            assert [u["name"] for u in listed] == [world.owner_name], (path, listed)
            assert all(set(u) == {"id", "name"} and isinstance(u["id"], int) for u in listed)
        assert ok(world.owner, "GET", f"{path}?q=no-such-job")["list"] == []
        assert (
            ok(world.owner, "GET", f"{path}?jobStatusList=FAILED&entityKey={world.jobs[0]}")["list"]
            == []
        )
    text = str(ok(client, "GET", "/schedules/users")) + str(ok(client, "GET", "/contexts/users"))
    assert "argon2" not in text and "password" not in text.lower()
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


# -- contexts -----------------------------------------------------------------------------------
def test_contexts_are_listed_newest_first_and_filtered(world: World, rt: Runtime) -> None:
    job = world.jobs[2]
    plan = _create(world.owner, job, _cron(), _cron("0 0 6 * * ?"))
    item = plan["planItems"][0]["id"]
    made = [
        _context(rt, plan["id"], item, job, skip_reason=reason)
        for reason in ("MISFIRE", "OVERLAP", "DST_GAP")
    ]
    pending = _context(
        rt,
        plan["id"],
        item,
        job,
        final=False,
        job_status="PENDING",
        skip_reason=None,
        stop_at=None,
        job_execution_id=str(uuid.uuid4()),
    )
    page = ok(world.owner, "GET", f"/contexts?planId={plan['id']}&limit=500")
    assert page["totalHits"] == 4 and page["offset"] == 0
    assert [c["id"] for c in page["list"]] == [pending, *reversed(made)]
    skipped = ok(world.owner, "GET", f"/contexts/{made[1]}")
    assert skipped == next(c for c in page["list"] if c["id"] == made[1])
    assert {k: skipped[k] for k in ("planId", "planItemId", "entityGroup", "entityKey")} == {
        "planId": plan["id"],
        "planItemId": item,
        "entityGroup": "DB_BATCH_SYNC",
        "entityKey": str(job),
    }
    assert skipped["jobStatus"] == "SKIPPED" and skipped["skipReason"] == "OVERLAP"
    assert skipped["executionStatus"] is None and skipped["title"] == plan["title"]
    assert skipped["heartbeatTime"] == skipped["stopAt"] and skipped["costTime"] is None
    assert skipped["attempt"] == 1 and skipped["notifications"] is None
    assert skipped["execDetail"]["retryTimes"] == 0 and skipped["planItem"]["id"] == item
    filters = {
        "jobStatus=SKIPPED": made,
        "jobStatus=PENDING": [pending],
        "jobStatusList=PENDING,SKIPPED": [pending, *made],
        "jobStatusList=FAILED": [],
        f"entityKey={job}": [pending, *made],
        f"entityKey={world.jobs[0]}": [],
        f"q={plan['title']}": [pending, *made],
        "q=nothing-like-it": [],
        f"entityCreatedByList={world.owner_name}": [pending, *made],
        "entityCreatedByList=nobody": [],
    }
    for query, expected in filters.items():
        got = ok(world.owner, "GET", f"/contexts?planId={plan['id']}&{query}&limit=500")
        assert sorted(c["id"] for c in got["list"]) == sorted(expected), query
    page = ok(world.owner, "GET", f"/contexts?planId={plan['id']}&offset=1&limit=2")
    assert [c["id"] for c in page["list"]] == [made[2], made[1]] and page["totalHits"] == 4
    call(world.owner, "GET", "/contexts?jobStatus=DONE", expect=400)
    call(world.owner, "GET", "/contexts/2000000000", expect=404)
    # the plan shows its last run
    shown = ok(world.owner, "GET", f"/schedules/{plan['id']}")
    assert shown["contextId"] == pending and shown["jobStatus"] == "PENDING"
    listed = ok(world.owner, "GET", f"/schedules?entityKey={job}&jobStatusList=PENDING")
    assert [p["id"] for p in listed["list"]] == [plan["id"]]
    # cancelling kills the unfinished run (this one was never sent: it ends CANCELLED)
    assert ok(world.owner, "PUT", f"/schedules/{plan['id']}/cancel", {}) == {"cancelled": 1}
    assert ok(world.owner, "GET", f"/contexts/{pending}")["jobStatus"] == "CANCELLED"
    body = {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(job)}
    assert ok(world.owner, "POST", "/schedules/cancel", body) == {"cancelled": 0}
    reply = call(world.owner, "POST", "/schedules/cancel", {**body, "entityGroup": "X"}, expect=400)
    assert reply["message"].startswith("entityGroup")
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


def test_logs_and_results_never_keep_a_caller_waiting_past_the_bounds(
    world: World, rt: Runtime, own_deployment: Callable[..., OwnDeployment]
) -> None:
    job = world.jobs[2]
    plan = _create(world.owner, job, _cron())
    item = plan["planItems"][0]["id"]
    skipped = _context(rt, plan["id"], item, job)
    unsent = {
        "final": False,
        "job_status": "PENDING",
        "skip_reason": None,
        "stop_at": None,
        "job_execution_id": str(uuid.uuid4()),
    }
    pending = _context(rt, plan["id"], item, job, **unsent)
    for what in ("logs", "results"):
        started = time.monotonic()  # a skipped context is final: at once, block or not
        assert ok(world.owner, "GET", f"/contexts/{skipped}/{what}") == {"list": [], "done": True}
        assert ok(world.owner, "GET", f"/contexts/{skipped}/{what}?block=false")["done"] is True
        # block=false answers at once, done=false while the run is not final
        answer = ok(world.owner, "GET", f"/contexts/{pending}/{what}?block=false")
        assert answer == {"list": [], "done": False}
        assert time.monotonic() - started < 2
        call(world.owner, "GET", f"/contexts/{pending}/{what}?block=maybe", expect=400)
    slow = own_deployment(context_block_seconds=1)
    started = time.monotonic()
    assert ok(slow.client, "GET", f"/contexts/{pending}/logs") == {"list": [], "done": False}
    assert 0.9 <= time.monotonic() - started < 5
    busy = own_deployment(context_block_seconds=30, context_block_waiters=0)
    started = time.monotonic()  # no waiting slot: an answer now
    assert ok(busy.client, "GET", f"/contexts/{pending}/results") == {"list": [], "done": False}
    assert time.monotonic() - started < 2
    ok(world.owner, "DELETE", f"/schedules/{plan['id']}")


@pytest.mark.parametrize(("expr", "zone", "start", "count", "expected"), PREVIEWS)
def test_the_preview_table_through_the_api(
    world: World, expr: str, zone: str, start: str, count: int, expected: list[str]
) -> None:
    body = {"timeZone": zone, "startTime": start, "count": count}
    assert _preview(world.stranger, expr, **body) == expected
