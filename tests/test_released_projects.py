"""The released UI's project calls on the alias prefix, with the bodies its project page and
dialog send and the fields they read (docs/design/exchangis-ui-calls.md §1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exchangis.runtime import Runtime
from exchangis.services import user as users
from tests.helpers import (
    BASE,
    DSS,
    UI_ROUTE,
    bound_data_source,
    call,
    datasource,
    ok,
    released,
    signed_in,
    sub_job,
    wait_until_done,
)


def dialog(name: str, **fields: object) -> dict[str, object]:
    """The body of the UI's project dialog (editModal.vue)."""
    return {
        "id": None,
        "projectName": name,
        "description": "made by the UI",
        "tags": "",
        "viewUsers": "",
        "execUsers": "",
        "editUsers": "",
        "dataSources": [],
        **UI_ROUTE,
        **fields,
    }


def test_the_project_page_lists_creates_opens_changes_and_deletes_by_id(
    client: FlaskClient, run_id: str
) -> None:
    name = f"ui{run_id}"
    made = released(client, "POST", "/createProject", dialog(name))
    assert made["projectName"] == name and isinstance(made["projectId"], str)
    pid = made["projectId"]

    page = released(client, "POST", f"/projects?name={name}&current=1&size=10", UI_ROUTE)
    assert page["total"] == 1 and [p["id"] for p in page["list"]] == [pid]
    item = page["list"][0]
    assert item["name"] == name and item["description"] == "made by the UI"
    assert item["tags"] == "" and item["tags"].split(",") == [""]  # the card splits it
    assert isinstance(item["viewUsers"], str) and item["domain"] == "STANDALONE"
    everything = released(client, "POST", "/projects?name=&current=1&size=1", UI_ROUTE)
    assert len(everything["list"]) == 1 and everything["total"] >= 1

    detail = released(client, "GET", f"/projects/{pid}")["item"]
    assert detail["id"] == pid and detail["createUser"] == "admin"

    changed = dialog(name, id=pid, description="changed", execUsers="alice,bob")
    assert released(client, "PUT", "/updateProject", changed)["projectId"] == pid
    detail = released(client, "GET", f"/projects/{pid}")["item"]
    assert detail["description"] == "changed"
    assert detail["execUsers"] == "alice,bob" and set(detail["viewUsers"].split(",")) >= {
        "alice",
        "bob",
    }

    # the dialog sends its disabled member inputs as "": an edit keeps the members
    released(client, "PUT", "/updateProject", dialog(name, id=pid, description="again"))
    detail = released(client, "GET", f"/projects/{pid}")["item"]
    assert detail["description"] == "again" and detail["execUsers"] == "alice,bob"

    permission = released(client, "GET", f"/getProjectPermission/{pid}")["exchangisProjectUser"]
    assert permission["projectId"] == pid  # compared with === to the route's string id

    # our primary prefix keeps its contract: POST /projects creates there
    other = ok(client, "POST", "/projects", {"name": f"own{run_id}"}, expect=201)
    assert other["name"] == f"own{run_id}"

    released(client, "DELETE", f"/projects/{pid}", UI_ROUTE)
    call(client, "GET", f"/projects/{pid}?labels=dev", prefix=DSS, expect=404)


def test_bad_project_dialogs_name_the_field_and_change_nothing(
    client: FlaskClient, run_id: str
) -> None:
    bad = call(client, "POST", "/createProject", dialog("9 bad name!"), prefix=DSS, expect=400)
    assert "projectName" in bad["data"]["errors"]
    missing = call(
        client, "PUT", "/updateProject", dialog(f"x{run_id}", id="x"), prefix=DSS, expect=400
    )
    assert missing["message"].startswith("id:")
    users_bad = dialog(f"y{run_id}", viewUsers="ok,not ok;")
    assert (
        "viewUsers"
        in call(client, "POST", "/createProject", users_bad, prefix=DSS, expect=400)["data"][
            "errors"
        ]
    )
    page = released(client, "POST", f"/projects?name={run_id}&current=1&size=10", UI_ROUTE)
    assert page["total"] == 0
    call(client, "GET", "/projects/2147483000?labels=dev", prefix=DSS, expect=404)


def test_project_permission_is_empty_for_a_viewer(
    app: Flask, client: FlaskClient, rt: Runtime, run_id: str
) -> None:
    viewer = f"v-{run_id}"
    users.create_user(rt, viewer, "a long password 1")
    pid = released(client, "POST", "/createProject", dialog(f"pv{run_id}", viewUsers=viewer))[
        "projectId"
    ]
    credentials = {"userName": viewer, "password": "a long password 1"}
    token = call(app.test_client(), "POST", "/user/login", credentials, prefix=BASE)["data"][
        "token"
    ]
    them = signed_in(app, token)
    assert released(them, "GET", f"/getProjectPermission/{pid}") == {"exchangisProjectUser": {}}
    listed = released(them, "POST", f"/projects?name=pv{run_id}&current=1&size=10", UI_ROUTE)
    assert [p["id"] for p in listed["list"]] == [pid]


@pytest.mark.e2e
@pytest.mark.usefixtures("worker")
def test_data_sources_bound_in_the_dialog_are_shared_with_the_project(
    app: Flask, client: FlaskClient, rt: Runtime, run_id: str, tmp_path: Path
) -> None:
    home = f"home{run_id}"
    ok(client, "POST", "/projects", {"name": home}, expect=201)
    gen = datasource(client, f"gen-{run_id}", "MEMORY", {}, project_name=home)
    out = datasource(client, f"out-{run_id}", "SQLITE", {"path": str(tmp_path / "o.db")})
    editor = f"e-{run_id}"
    users.create_user(rt, editor, "a long password 1")

    # the dialog sends back the rows it read from the data source list
    rows = released(
        client, "POST", "/datasources/query", {"page": 1, "pageSize": 100, "name": f"gen-{run_id}"}
    )["list"]
    row = next(r for r in rows if r["id"] == gen)
    bound = [bound_data_source(row)]
    name = f"uses{run_id}"
    made = released(
        client,
        "POST",
        "/createProject",
        dialog(name, editUsers=editor, execUsers=editor, dataSources=bound),
    )
    pid = made["projectId"]
    item = released(client, "GET", f"/projects/{pid}")["item"]
    assert [(d["dataSourceId"], d["dataSourceName"]) for d in item["dataSources"]] == [
        (gen, f"gen-{run_id}")
    ]

    # a member of the project only: the picker lists it, a job uses it and runs
    token = call(
        app.test_client(),
        "POST",
        "/user/login",
        {"userName": editor, "password": "a long password 1"},
        prefix=BASE,
    )["data"]["token"]
    them = signed_in(app, token)
    picked = released(them, "POST", "/datasources/query", {"projectId": pid, "page": 1})["list"]
    assert [r["id"] for r in picked] == [gen]
    content = [sub_job("s", ("MEMORY", gen, "gen"), ("SQLITE", out, "t"), sources={"rows": 5})]
    job = call(
        them,
        "POST",
        "/job",
        {"jobName": f"j{run_id}", "projectName": name, "content": content},
        400,
    )
    assert "sink.id" in str(job["data"]["errors"])  # the sink is not shared with it
    released(
        client,
        "PUT",
        "/updateProject",
        dialog(name, id=pid, dataSources=[*bound, {"dataSourceId": out}]),
    )
    body = {"jobName": f"j{run_id}", "projectName": name, "content": content}
    job_id = ok(them, "POST", "/job", body, expect=201)["id"]
    eid = ok(them, "POST", f"/job/{job_id}/execute", {})["jobExecutionId"]
    assert wait_until_done(them, eid)["status"] == "Success"

    # the owner of a project sends back what an admin shared with it: nothing more is needed
    mine = released(them, "POST", "/createProject", dialog(f"mine{run_id}"))["projectId"]
    released(client, "PUT", "/updateProject", dialog(f"mine{run_id}", id=mine, dataSources=bound))
    again = dialog(f"mine{run_id}", id=mine, description="d", dataSources=bound)
    released(them, "PUT", "/updateProject", again)
    # the editor may not share what they cannot change; nothing used is unshared or deleted
    reply = call(
        them, "PUT", "/updateProject", dialog(name, id=pid, dataSources=[]), 409, prefix=DSS
    )
    assert "used by job" in reply["message"]
    taken = dialog(f"take{run_id}", dataSources=bound)
    reply = call(them, "POST", "/createProject", taken, 400, prefix=DSS)
    assert "dataSources" in reply["data"]["errors"]
    assert not [p for p in ok(them, "GET", "/projects")["result"] if p["name"] == f"take{run_id}"]
    call(client, "DELETE", f"/datasources/{gen}", expect=409)
