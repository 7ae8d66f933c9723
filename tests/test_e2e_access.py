"""Two users in two projects: each sees and touches only their own jobs, data sources,
executions, logs and metrics; members hold what their privileges give; admins see all."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exchangis.runtime import Runtime
from exchangis.services import user as users
from tests.conftest import WorkerProcess
from tests.helpers import (
    API,
    BASE,
    DSS,
    call,
    ok,
    signed_in,
    sub_job,
    tasks_by_name,
    wait_until_done,
)

pytestmark = pytest.mark.e2e

PASSWORD = "a good long password"


@dataclass
class Owner:
    """A user who owns a project with a data source pair, a job and a finished execution."""

    name: str
    client: FlaskClient
    project: str = ""
    project_id: int = 0
    datasources: list[int] = field(default_factory=list)
    job: int = 0
    execution: str = ""
    task: int = 0
    plan: int = 0
    context: int = 0


def sign_up(app: Flask, rt: Runtime, name: str) -> FlaskClient:
    """Create user ``name``; return a client signed in as them (through the login endpoint)."""
    users.create_user(rt, name, PASSWORD)
    reply = ok(
        app.test_client(),
        "POST",
        "/user/login",
        {"userName": name, "password": PASSWORD},
    )
    return signed_in(app, reply["token"])


def set_up(owner: Owner, tmp: Path) -> Owner:
    """Create the owner's project, data sources and job, and run the job to the end."""
    client = owner.client
    made = ok(client, "POST", "/projects", {"name": owner.project}, expect=201)
    owner.project, owner.project_id = made["name"], made["id"]
    for kind, params in (("MEMORY", {}), ("SQLITE", {"path": str(tmp / f"{owner.name}.db")})):
        body = {
            "name": f"{kind.lower()}-{owner.name}",
            "projectName": owner.project,
            "type": kind,
            "connectParams": params,
        }
        owner.datasources.append(ok(client, "POST", "/datasources", body, expect=201)["id"])
    memory, lite = owner.datasources
    content = [
        sub_job("copy", ("MEMORY", memory, "gen"), ("SQLITE", lite, "rows"), sources={"rows": 20})
    ]
    body = {"jobName": f"job-{owner.name}", "projectName": owner.project, "content": content}
    owner.job = ok(client, "POST", "/job", body, expect=201)["id"]
    owner.execution = ok(client, "POST", f"/job/{owner.job}/execute")["jobExecutionId"]
    assert wait_until_done(client, owner.execution)["status"] == "Success"
    owner.task = tasks_by_name(client, owner.execution)["copy"]["taskId"]
    # a disabled plan whose run-once is recorded as skipped: a plan and a context, no execution
    plan = {
        "entityGroup": "DB_BATCH_SYNC",
        "entityKey": str(owner.job),
        "planItems": [{"triggerType": "ONCE"}],
        "enabled": False,
    }
    made = ok(client, "POST", "/schedules", plan, expect=201)
    owner.plan, owner.context = made["id"], made["contextId"]
    return owner


@dataclass
class World:
    """Alice and Bob own a project each; Carol may view Alice's, Dave may execute in it."""

    alice: Owner
    bob: Owner
    carol: FlaskClient
    dave: FlaskClient
    admin: FlaskClient


@pytest.fixture(scope="module")
def world(
    app: Flask,
    rt: Runtime,
    admin_token: str,
    worker: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> World:
    """Two owners with a finished execution each, and two members of Alice's project."""
    run = uuid.uuid4().hex[:6]
    tmp = tmp_path_factory.mktemp("access")
    alice = Owner(f"alice-{run}", sign_up(app, rt, f"alice-{run}"), project=f"pa-{run}")
    bob = Owner(f"bob-{run}", sign_up(app, rt, f"bob-{run}"), project=f"pb-{run}")
    set_up(alice, tmp)
    set_up(bob, tmp)
    carol, dave = f"carol-{run}", f"dave-{run}"
    world = World(
        alice, bob, sign_up(app, rt, carol), sign_up(app, rt, dave), signed_in(app, admin_token)
    )
    members = {"viewUsers": [carol], "execUsers": [dave]}
    ok(alice.client, "PUT", f"/projects/{alice.project}", members)
    return world


def test_each_user_lists_only_their_own_things_and_an_admin_all(world: World) -> None:
    for me, other in ((world.alice, world.bob), (world.bob, world.alice)):
        projects = ok(me.client, "GET", "/projects")["result"]
        assert [p["name"] for p in projects] == [me.project]
        assert projects[0]["privileges"] == ["view", "edit", "execute"]
        listed = ok(me.client, "GET", "/datasources")["result"]
        assert sorted(d["id"] for d in listed) == sorted(me.datasources)
        assert [j["id"] for j in ok(me.client, "GET", "/job")["result"]] == [me.job]
        history = ok(me.client, "GET", "/job/listJobs?size=500")
        assert [e["jobExecutionId"] for e in history["jobList"]] == [me.execution]
        assert history["total"] == 1
        # asking for the other's project by name finds nothing either
        assert ok(me.client, "GET", f"/job?projectName={other.project}")["total"] == 0
        assert ok(me.client, "GET", f"/job/listJobs?projectName={other.project}")["total"] == 0
        assert (
            ok(me.client, "GET", f"/job/listJobs?jobExecutionId={other.execution}")["jobList"] == []
        )
    admin_history = ok(world.admin, "GET", "/job/listJobs?size=500")["jobList"]
    seen = {e["jobExecutionId"] for e in admin_history}
    assert {world.alice.execution, world.bob.execution} <= seen
    names = {p["name"] for p in ok(world.admin, "GET", "/projects")["result"]}
    assert {world.alice.project, world.bob.project} <= names
    ok(world.admin, "GET", f"/job/execution/{world.bob.execution}/log?lastRows=5")


def _operation(rule: str) -> str:
    """Return a route without its prefix and converters: ``/job/<job_id>``."""
    prefix = next((p for p in (API, DSS, BASE) if rule.startswith(p + "/")), "")  # /metrics
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule[len(prefix) :])


def _path(template: str, values: dict[str, Any]) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(values[m.group(1)]), template)


# Every operation of the API: what it is called with (the other user's ids) and the answer.
# 404 for an id the caller may not view; 403 for what only admins may do; bodies that name
# the other's things are refused as bad input or get per-item refusals.
REFUSALS: dict[tuple[str, str], tuple[int, Any]] = {
    ("POST", "/datasources"): (400, "ds_in_other_project"),
    ("POST", "/datasources/test"): (400, "ds_in_other_project"),
    ("GET", "/datasources/<ds_id>"): (404, None),
    ("PUT", "/datasources/<ds_id>"): (404, {"description": "mine now"}),
    ("DELETE", "/datasources/<ds_id>"): (404, None),
    ("POST", "/datasources/<ds_id>/test"): (404, None),
    ("GET", "/datasources/<ds_id>/databases"): (404, None),
    ("GET", "/datasources/<ds_id>/tables"): (404, None),
    ("GET", "/datasources/<ds_id>/columns"): (404, "?table=t"),
    ("POST", "/job"): (400, "job_with_other_datasource"),
    ("GET", "/job/<job_id>"): (404, None),
    ("PUT", "/job/<job_id>"): (404, "job_body"),
    ("DELETE", "/job/<job_id>"): (404, None),
    ("POST", "/job/<job_id>/execute"): (404, {}),
    ("GET", "/job/<eid>/allTaskStatus"): (404, None),
    ("POST", "/job/<eid>/deleteJob"): (404, {}),
    ("DELETE", "/job/execution/<eid>"): (404, None),
    ("POST", "/job/execution/<eid>/kill"): (404, {}),
    ("GET", "/job/execution/<eid>/log"): (404, None),
    ("POST", "/job/execution/<eid>/pause"): (404, {}),
    ("GET", "/job/execution/<eid>/progress"): (404, None),
    ("POST", "/job/execution/<eid>/restart"): (404, {}),
    ("POST", "/job/execution/<eid>/resume"): (404, {}),
    ("GET", "/job/execution/<eid>/status"): (404, None),
    ("GET", "/job/execution/<eid>/taskList"): (404, None),
    ("GET", "/job/execution/<eid>/tasklist"): (404, None),
    ("GET", "/task/execution/<task_id>/log"): (404, "?jobExecutionId={eid}"),
    ("POST", "/task/execution/<task_id>/metrics"): (404, "metrics_body"),
    ("GET", "/task/execution/<task_id>/output"): (404, "?jobExecutionId={eid}"),
    ("GET", "/projects/<name>"): (404, None),
    ("PUT", "/projects/<name>"): (404, {"description": "mine now"}),
    ("DELETE", "/projects/<name>"): (404, None),
    ("GET", "/users/<name>"): (404, None),
    ("PUT", "/users/<name>"): (404, {"password": "taken over!"}),
    ("DELETE", "/users/<name>"): (403, None),
    ("POST", "/users"): (403, {"userName": "intruder", "password": "x" * 12}),
    ("POST", "/job/execute"): (200, "batch_body"),
    ("PUT", "/job/execution/status"): (200, "bulk_body"),
    # lists and sign-in: filtered to the caller (test above) or about the caller only
    ("GET", "/datasources"): (200, None),
    ("GET", "/job"): (200, None),
    ("GET", "/job/listJobs"): (200, None),
    ("GET", "/projects"): (200, None),
    ("POST", "/projects"): (409, "same_project_name"),
    ("GET", "/users"): (200, None),
    ("POST", "/user/login"): (401, {"userName": "x", "password": "y"}),
    ("POST", "/user/logout"): (200, "skip"),
    ("GET", "/user/userInfo"): (200, None),
    ("GET", "/openapi.json"): (200, "skip"),  # not in the envelope: the public spec
    ("GET", "/docs"): (200, "skip"),  # the API page and its files, public
    ("GET", "/docs/assets/<filename>"): (200, "skip"),
    ("GET", "/metrics"): (200, "skip"),  # no ids; who may read it: tests/test_metrics.py
    ("GET", "/connectors"): (200, None),  # forms of the connectors: the same for everyone
    ("GET", "/connectors/<kind>"): (200, None),
    ("POST", "/schedules"): (404, "plan_body"),
    ("GET", "/schedules"): (200, None),
    ("GET", "/schedules/users"): (200, None),
    ("POST", "/schedules/preview"): (200, {"cronDesc": "0 0 12 * * ?"}),
    ("POST", "/schedules/cancel"): (404, "plan_body"),
    ("GET", "/schedules/<plan_id>"): (404, None),
    ("PUT", "/schedules/<plan_id>"): (404, {"enabled": True}),
    ("DELETE", "/schedules/<plan_id>"): (404, None),
    ("POST", "/schedules/<plan_id>/enable"): (404, {}),
    ("POST", "/schedules/<plan_id>/disable"): (404, {}),
    ("PUT", "/schedules/<plan_id>/cancel"): (404, {}),
    ("GET", "/contexts"): (200, None),
    ("GET", "/contexts/users"): (200, None),
    ("GET", "/contexts/<context_id>"): (404, None),
    ("GET", "/contexts/<context_id>/logs"): (404, "?block=false"),
    ("GET", "/contexts/<context_id>/results"): (404, "?block=false"),
}


# The released server's dialect (alias prefix only): its own operations, and those it answers
# in its own way where the path and method are shared.
RELEASED: dict[tuple[str, str], tuple[int, Any]] = {
    ("POST", "/projects"): (200, {"labels": {"route": "x"}}),  # the UI's list: the caller's
    ("GET", "/projects/<project_id>"): (404, None),
    ("DELETE", "/projects/<project_id>"): (404, {}),
    ("GET", "/getProjectPermission/<project_id>"): (404, None),
    ("PUT", "/updateProject"): (404, "released_project_form"),
    ("POST", "/createProject"): (409, "released_same_project"),
    ("GET", "/job"): (200, None),  # the UI's list: the caller's jobs
    ("POST", "/job"): (404, "released_job_in_other_project"),
    ("GET", "/job/<job_id>"): (404, None),
    ("PUT", "/job/<job_id>"): (404, {"jobName": "stolen"}),
    ("PUT", "/job/<job_id>/content"): (404, {"content": "[]"}),
    ("PUT", "/job/<job_id>/config"): (404, {"proxyUser": "admin"}),
    ("GET", "/job/engineType"): (200, None),
    ("GET", "/job/Executor"): (200, None),
    ("GET", "/job/func/<func_type>"): (200, None),
    ("GET", "/jobs/engine/<engine>/settings/ui"): (200, None),
    ("GET", "/datasources/<engine>/<ds_type>/params/ui"): (200, "?dir=source"),
    ("GET", "/datasources/type"): (200, None),
    ("POST", "/datasources/query"): (404, "released_query_other_project"),
    ("POST", "/datasources"): (404, "released_ds_in_other_project"),
    ("PUT", "/datasources/<ds_id>"): (404, "released_ds_form"),
    ("POST", "/datasources/op/connect"): (404, "released_ds_in_other_project"),
    ("PUT", "/datasources/<ds_id>/<version>/connect"): (404, {}),
    ("PUT", "/datasources/<ds_id>/<version>/publish"): (404, {}),
    ("PUT", "/datasources/<ds_id>/expire"): (404, {}),
    ("GET", "/datasources/<ds_id>/versions"): (404, None),
    ("GET", "/datasources/types/<type_id>/keydefines"): (200, None),
    ("GET", "/datasources/<ds_type>/<ds_id>/dbs"): (404, None),
    ("GET", "/datasources/<ds_type>/<ds_id>/dbs/<db>/tables"): (404, None),
    ("POST", "/job/transform/settings"): (404, "released_transform_other"),
}
ONLY_RELEASED = set(RELEASED) - set(REFUSALS)


def _body(kind: Any, me: Owner, other: Owner) -> tuple[Any, str]:
    """Return the JSON body and query string a table entry stands for."""
    if isinstance(kind, str) and kind.startswith("?"):
        return None, kind.format(eid=other.execution)
    other_ds = other.datasources
    job = {
        "jobName": "stolen",
        "projectName": me.project,
        "content": [sub_job("s", ("MEMORY", other_ds[0], "gen"), ("SQLITE", other_ds[1], "x"))],
    }
    bodies = {
        "ds_in_other_project": {
            "name": "sneaky",
            "projectName": other.project,
            "type": "MEMORY",
            "connectParams": {},
        },
        "job_with_other_datasource": job,
        "job_body": {**job, "projectName": other.project},
        "metrics_body": {"jobExecutionId": other.execution},
        "batch_body": {"jobIds": [other.job]},
        "bulk_body": {"action": "RESTART", "jobExecutionIds": [other.execution]},
        "same_project_name": {"name": other.project},
        "plan_body": {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(other.job)},
        "released_project_form": {
            "id": str(other.project_id),
            "projectName": other.project,
            "description": "mine now",
        },
        "released_same_project": {"projectName": other.project},
        "released_job_in_other_project": {"jobName": "stolen", "projectId": other.project_id},
        "released_query_other_project": {"projectId": str(other.project_id)},
        "released_ds_in_other_project": {
            "dataSourceTypeId": "99",
            "dataSourceName": "sneaky",
            "projectId": other.project_id,
            "connectParams": {},
        },
        "released_ds_form": {"dataSourceName": "mine now", "connectParams": {}},
        "released_transform_other": {
            "sourceTypeId": "MEMORY",
            "sourceDataSourceId": other_ds[0],
            "sourceTable": "gen",
            "sinkTypeId": "SQLITE",
            "sinkDataSourceId": other_ds[1],
            "sinkTable": "x",
        },
    }
    return (bodies[kind] if isinstance(kind, str) else kind), ""


def test_every_endpoint_refuses_the_other_users_ids(app: Flask, world: World) -> None:
    operations = {
        (method, _operation(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert operations == set(REFUSALS) | ONLY_RELEASED  # a new endpoint needs its line here
    for me, other in ((world.bob, world.alice), (world.alice, world.bob)):
        values = {
            "ds_id": other.datasources[0],
            "job_id": other.job,
            "eid": other.execution,
            "task_id": other.task,
            "name": other.project,
            "plan_id": other.plan,
            "context_id": other.context,
            "project_id": other.project_id,
            "kind": "FILE",
            "engine": "EXCHANGIS",
            "ds_type": "MEMORY",
            "func_type": "verify",
            "version": 1,
            "type_id": 1,
            "db": "main",
        }
        cases = [(API, op, answer) for op, answer in REFUSALS.items()]
        cases += [(DSS, op, RELEASED.get(op, answer)) for op, answer in REFUSALS.items()]
        cases += [(DSS, op, RELEASED[op]) for op in sorted(ONLY_RELEASED)]
        for prefix, (method, template), (code, kind) in cases:
            if kind == "skip":
                continue
            values["name"] = other.name if template.startswith("/users/") else other.project
            body, query = _body(kind, me, other)
            reply = call(
                me.client,
                method,
                _path(template, values) + query,
                body,
                expect=code,
                prefix=prefix,
            )
            text = str(reply)
            assert f"job-{other.name}" not in text and "stolen" not in text
            if code == 200 and method == "POST" and template == "/projects":  # the UI's list
                assert other.project not in text and me.project in text
            if code >= 400:  # a refusal carries no data of the other's
                assert set(reply["data"]) <= {"errors"}, reply
            if code == 403:
                assert reply["status"] == 3
        batch = ok(me.client, "POST", "/job/execute", {"jobIds": [other.job]})["executions"]
        assert batch == [
            {
                "jobId": other.job,
                "jobExecutionId": None,
                "message": f"job {other.job} does not exist",
            }
        ]
        bulk = ok(
            me.client,
            "PUT",
            "/job/execution/status",
            {"action": "DISCARD", "jobExecutionIds": [other.execution]},
        )["results"]
        assert [r["ok"] for r in bulk] == [False] and "does not exist" in bulk[0]["message"]
        by_project = {"action": "RESTART", "projectName": other.project}
        call(me.client, "PUT", "/job/execution/status", by_project, expect=404)
    # nothing of either changed: every execution still ran once, jobs and sources are whole
    for owner in (world.alice, world.bob):
        status = ok(owner.client, "GET", f"/job/execution/{owner.execution}/status")
        assert status == {"status": "Success", "progress": 1.0, "allTaskStatus": True}
        assert ok(owner.client, "GET", f"/job/{owner.job}")["jobName"] == f"job-{owner.name}"
        for ds in owner.datasources:
            assert ok(owner.client, "GET", f"/datasources/{ds}")["description"] == ""
        history = ok(owner.client, "GET", "/job/listJobs")
        assert [e["jobExecutionId"] for e in history["jobList"]] == [owner.execution]
    assert ok(world.admin, "GET", "/job?jobName=stolen")["total"] == 0


def test_a_viewer_reads_but_may_not_run_change_or_control(world: World) -> None:
    carol, alice = world.carol, world.alice
    eid, tid = alice.execution, alice.task
    assert ok(carol, "GET", f"/job/execution/{eid}/status")["status"] == "Success"
    ok(carol, "GET", f"/job/execution/{eid}/log?lastRows=10")
    ok(carol, "GET", f"/task/execution/{tid}/log?jobExecutionId={eid}&lastRows=10")
    metrics = ok(carol, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})
    assert metrics["task"]["metrics"]["indicator"]["exchangedRecords"] == 20
    assert ok(carol, "GET", f"/job/{alice.job}")["id"] == alice.job
    assert [p["privileges"] for p in ok(carol, "GET", "/projects")["result"]] == [["view"]]
    refused = [
        ("POST", f"/job/{alice.job}/execute", {}),
        ("POST", f"/job/execution/{eid}/restart", {}),
        ("POST", f"/job/execution/{eid}/kill", {}),
        ("POST", f"/job/{eid}/deleteJob", {}),
        ("DELETE", f"/job/{alice.job}", None),
        ("DELETE", f"/datasources/{alice.datasources[0]}", None),
        ("POST", f"/datasources/{alice.datasources[1]}/test", None),
        ("PUT", f"/projects/{alice.project}", {"viewUsers": []}),
        ("DELETE", f"/projects/{alice.project}", None),
    ]
    for method, path, body in refused:
        assert call(carol, method, path, body, expect=403)["status"] == 3, path
    job = ok(carol, "GET", f"/job/{alice.job}")
    update = {k: job[k] for k in ("jobName", "projectName", "content")}
    call(carol, "PUT", f"/job/{alice.job}", update, expect=403)
    new_job = {**update, "jobName": "carols"}
    call(carol, "POST", "/job", new_job, expect=403)
    bulk = {"action": "RESTART", "jobExecutionIds": [eid]}
    assert not ok(carol, "PUT", "/job/execution/status", bulk)["results"][0]["ok"]


def test_a_member_with_execute_runs_the_projects_job_as_themselves(world: World) -> None:
    dave, alice = world.dave, world.alice
    eid = ok(dave, "POST", f"/job/{alice.job}/execute")["jobExecutionId"]
    assert wait_until_done(dave, eid)["status"] == "Success"
    item = ok(dave, "GET", f"/job/listJobs?jobExecutionId={eid}")["jobList"][0]
    dave_name = ok(dave, "GET", "/user/userInfo")["userName"]
    assert item["createUser"] == dave_name and item["executeUser"] == dave_name
    assert [
        t["executeUser"] for t in ok(dave, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
    ] == [dave_name]
    # the owner sees it too (view on the project), and may delete it
    assert ok(alice.client, "GET", f"/job/execution/{eid}/status")["status"] == "Success"
    ok(alice.client, "POST", f"/job/{eid}/deleteJob")
    call(dave, "GET", f"/job/execution/{eid}/status", expect=404)
    job = ok(dave, "GET", f"/job/{alice.job}")
    update = {k: job[k] for k in ("jobName", "projectName", "content")}
    assert call(dave, "PUT", f"/job/{alice.job}", update, expect=403)["status"] == 3


def test_only_admins_name_another_execute_user(world: World, run_id: str) -> None:
    alice = world.alice
    job = ok(alice.client, "GET", f"/job/{alice.job}")
    body = {k: job[k] for k in ("projectName", "content")} | {"jobName": f"as-{run_id}"}
    refused = call(alice.client, "POST", "/job", {**body, "executeUser": "etl"}, expect=403)
    assert refused["data"]["errors"] == {"executeUser": ["only admins may name another user"]}
    mine = ok(alice.client, "POST", "/job", {**body, "executeUser": alice.name}, expect=201)
    assert mine["executeUser"] == alice.name
    made = ok(world.admin, "POST", "/job", {**body, "executeUser": "etl"}, expect=201)
    eid = ok(alice.client, "POST", f"/job/{made['id']}/execute")["jobExecutionId"]
    wait_until_done(alice.client, eid)
    item = ok(alice.client, "GET", f"/job/listJobs?jobExecutionId={eid}")["jobList"][0]
    assert item["executeUser"] == "etl" and item["createUser"] == alice.name
    # an owner may keep the admin's choice when changing the job, not pick another one
    kept = ok(alice.client, "PUT", f"/job/{made['id']}", {**body, "executeUser": "etl"})
    assert kept["executeUser"] == "etl"
    call(alice.client, "PUT", f"/job/{made['id']}", {**body, "executeUser": "root"}, expect=403)


def test_a_restart_never_reads_a_data_source_that_now_belongs_elsewhere(
    world: World, rt: Runtime
) -> None:
    from exchangis.models import DataSource

    bob, alice = world.bob, world.alice
    # the id of bob's source comes to name a data source of alice's project (SQLite hands a
    # deleted row's id out again)
    with rt.sessions.begin() as session:
        session.get(DataSource, bob.datasources[0]).project_name = alice.project
    try:
        ok(bob.client, "POST", f"/job/execution/{bob.execution}/restart")
        status = wait_until_done(bob.client, bob.execution)
        assert status["status"] == "Failed"
        log = ok(bob.client, "GET", f"/job/execution/{bob.execution}/log?lastRows=50")
        assert f"was deleted from project {bob.project}" in log["logs"]["all"]
    finally:
        with rt.sessions.begin() as session:
            session.get(DataSource, bob.datasources[0]).project_name = bob.project


def test_nothing_is_made_in_a_project_that_does_not_exist_even_by_an_admin(
    world: World, run_id: str
) -> None:
    ghost = f"ghost-{run_id}"
    body = {"name": "x", "projectName": ghost, "type": "MEMORY", "connectParams": {}}
    reply = call(world.admin, "POST", "/datasources", body, expect=400)
    assert list(reply["data"]["errors"]) == ["projectName"]
    job = ok(world.admin, "GET", f"/job/{world.alice.job}")
    moved = {k: job[k] for k in ("jobName", "content")} | {"projectName": ghost}
    call(world.admin, "PUT", f"/job/{world.alice.job}", moved, expect=400)
