"""The released UI's project calls on the alias prefix, with the bodies its project page and
dialog send and the fields they read (docs/design/exchangis-ui-calls.md §1)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from exchangis.runtime import Runtime
from exchangis.services import user as users
from tests.helpers import BASE, DSS, UI_ROUTE, call, ok, released, signed_in


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
