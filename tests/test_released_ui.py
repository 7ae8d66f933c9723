"""The released Exchangis web UI's calls replayed over real HTTP, in the order a user makes them
(``docs/design/exchangis-ui-calls.md``): sign-in, the data source page, the project page, a job
made, mapped, saved and run from the editor, watched, killed, found in the history and deleted.

The API runs as its own process (``exchangis api``) behind a reverse proxy that rewrites
``Host`` (as the UI's dev server and the usual nginx recipe do); the browser's session cookie
signs every call. Each answer is read with the fields the UI's code reads, status 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.settings import Settings
from tests import data
from tests.conftest import api_process
from tests.helpers import BASE, DSS, bound_data_source, config_items, ok
from tests.proxy import HostRewritingProxy
from tests.services import mysql_params, postgres_params

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

PROXY_ADDRESS = "127.0.0.2"
"""The address the trusted proxy connects from (any other peer is not trusted)."""
ROWS = 30_000
RATE = "3000"
"""Records per second the sub-job may move: a run of ~10 s, long enough to watch and kill."""


@pytest.fixture(scope="module")
def server(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API as a process of its own, trusting only the proxy's address; its URL."""
    trusting = migrated.with_overrides({"trusted_proxies": (PROXY_ADDRESS,)})
    with api_process(trusting, tmp_path_factory.mktemp("api")) as url:
        yield url


class Browser:
    """The UI in a browser: same-origin calls through the proxy, the session cookie, the
    ``labels`` the UI adds everywhere, and the envelope unwrapped as fes.js does."""

    def __init__(self, proxy: HostRewritingProxy) -> None:
        self.base = proxy.origin
        self.session = requests.Session()
        self.session.headers["Origin"] = proxy.origin  # a browser names the page's origin

    def raw(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        """Send one call under the alias prefix (``path`` absolute when it starts at /api)."""
        if path.startswith("/api/"):  # sign-in: Linkis's own calls, no labels
            return self.session.request(method, self.base + path, json=body, timeout=60, **kwargs)
        url = self.base + DSS + path
        if method == "GET":
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}labels=dev"
        elif isinstance(body, dict):
            body = {**body, "labels": {"route": "dev"}}
        return self.session.request(method, url, json=body, timeout=60, **kwargs)

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Send a call that must succeed; return ``data``."""
        response = self.raw(method, path, body, **kwargs)
        reply = response.json()
        assert response.status_code < 400 and reply["status"] == 0, (path, reply)
        return reply["data"]


def _sign_in(browser: Browser, name: str, password: str) -> None:
    browser("POST", f"{BASE}/user/login", {"userName": name, "password": password})
    assert browser("GET", f"{BASE}/user/userInfo")["userName"] == name


def _page_form(
    type_row: dict[str, Any], keys: list[dict[str, Any]], name: str, values: dict[str, Any]
) -> dict[str, Any]:
    """The data source dialog's body: one connect param per key definition, as text."""
    params = {
        k["key"]: str(values[k["key"]]) for k in keys if values.get(k["key"]) not in (None, "")
    }
    return {
        "dataSourceTypeId": type_row["id"],
        "createSystem": type_row["name"],
        "createIdentify": "",
        "dataSourceName": name,
        "dataSourceDesc": "",
        "label": "",
        "comment": "更新",
        "connectParams": params,
    }


def _mapping(deductions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The editor's mapping rows made from the default mapping (jobDetail.convertDeductions)."""
    return [
        {
            "source_field_name": d["source"]["name"],
            "source_field_type": d["source"]["type"],
            "source_field_index": d["source"]["fieldIndex"],
            "source_field_editable": d["source"]["fieldEditable"],
            "sink_field_name": d["sink"]["name"],
            "sink_field_type": d["sink"]["type"],
            "sink_field_index": d["sink"]["fieldIndex"],
            "sink_field_editable": d["sink"]["fieldEditable"],
            "deleteEnable": d["deleteEnable"],
            "validator": [],
            "transformer": {},
        }
        for d in deductions
    ]


def test_the_released_ui_end_to_end_through_a_host_rewriting_proxy(
    server: str, client: FlaskClient, rt: Runtime, run_id: str
) -> None:
    user, password = f"ui-{run_id}", "a long password 1"
    users.create_user(rt, user, password)
    editors = ok(client, "GET", "/projects/default")["editUsers"]
    ok(client, "PUT", "/projects/default", {"editUsers": [*editors, user]})  # the page's home
    data.mysql_table(f"ui_src_{run_id}", ROWS)
    data.postgres_table(f"ui_dst_{run_id}")
    target = server.removeprefix("http://").split(":")
    proxy = HostRewritingProxy((target[0], int(target[1])), source=PROXY_ADDRESS)
    try:
        ui = Browser(proxy)
        _sign_in(ui, user, password)
        _replay(ui, run_id)
    finally:
        proxy.close()
        data.drop([f"ui_src_{run_id}"], [f"ui_dst_{run_id}"])


def _replay(ui: Browser, run_id: str) -> None:
    # the data source page: types, the form, create, list, test
    types = {t["name"]: t for t in ui("GET", "/datasources/type?t=_1")["list"]}
    made: dict[str, int] = {}
    for kind, params in (("MYSQL", mysql_params()), ("POSTGRESQL", postgres_params())):
        keys = ui("GET", f"/datasources/types/{types[kind]['id']}/keydefines")["list"]
        form = _page_form(types[kind], keys, f"{kind.lower()}-{run_id}", params)
        ui("POST", "/datasources/op/connect?_=1", form)
        ui("POST", "/datasources", form)
    page = ui("POST", "/datasources/query", {"page": 1, "pageSize": 10, "name": run_id})
    assert page["total"] == 2
    for row in page["list"]:
        assert row["versionId"]  # else the page disables edit and test
        ui("PUT", f"/datasources/{row['id']}/{row['versionId']}/connect", {})
        made[row["createSystem"]] = row["id"]

    # the project page: list, create (binding the data sources), permission, the job tabs
    ui("POST", "/projects?name=&current=1&size=10", {})
    bound = [bound_data_source(row) for row in page["list"]]
    project = {
        "id": None,
        "projectName": f"ui{run_id}",
        "description": "",
        "tags": "",
        "viewUsers": "",
        "execUsers": "",
        "editUsers": "",
        "dataSources": bound,
    }
    ui("POST", "/createProject", project)
    listed = ui("POST", f"/projects?name=ui{run_id}&current=1&size=10", {})["list"]
    pid = listed[0]["id"]
    assert isinstance(pid, str)
    permission = ui("GET", f"/getProjectPermission/{pid}")["exchangisProjectUser"]
    assert permission["projectId"] == pid  # compared with === to the route's string id
    for tab in ("OFFLINE", "STREAM"):
        jobs = ui("GET", f"/job?projectId={pid}&jobType={tab}&name=&current=1&size=10")
        assert jobs == {"result": [], "total": 0}

    # the job dialog, then the editor
    assert "EXCHANGIS" in ui("GET", "/job/engineType")["result"]
    dialog = {
        "jobType": "OFFLINE",
        "engineType": "EXCHANGIS",
        "jobName": f"copy-{run_id}",
        "jobLabels": "",
        "jobDesc": "",
        "projectId": pid,
    }
    job_id = ui("POST", "/job", dialog)["result"]["id"]
    opened = ui("GET", f"/job/{job_id}")["result"]
    assert opened["jobName"] == f"copy-{run_id}" and isinstance(opened["jobParams"], str)
    ui("GET", "/job/Executor")
    settings = ui("GET", "/jobs/engine/EXCHANGIS/settings/ui")["ui"]
    for func in ("verify", "transform"):
        assert ui("GET", f"/job/func/{func}?_=1")["data"] == []

    ends = {}
    for side, kind, db, table in (
        ("source", "MYSQL", "test", f"ui_src_{run_id}"),
        ("sink", "POSTGRESQL", "test", f"ui_dst_{run_id}"),
    ):
        extra = "&sourceType=MYSQL" if side == "sink" else ""
        picker = ui("GET", f"/datasources/type?engineType=EXCHANGIS&direct={side}{extra}")["list"]
        type_row = next(t for t in picker if t["name"] == kind)
        query = {"name": "", "typeId": type_row["id"], "page": 1, "pageSize": 100, "projectId": pid}
        (ds,) = [
            r for r in ui("POST", "/datasources/query", query)["list"] if r["id"] == made[kind]
        ]
        assert ds["readAble" if side == "source" else "writeAble"]
        assert db in ui("GET", f"/datasources/{ds['type']}/{ds['id']}/dbs")["dbs"]
        assert table in ui("GET", f"/datasources/{ds['type']}/{ds['id']}/dbs/{db}/tables")["tbs"]
        form = ui("GET", f"/datasources/EXCHANGIS/{kind}/params/ui?dir={side}")["uis"]
        ends[side] = {
            "ids": {
                "type": ds["type"],
                "id": str(ds["id"]),
                "name": ds["name"],
                "db": db,
                "table": table,
                "creator": ds["createUser"],
            },
            "form": form,
        }
    fields = ui(
        "POST",
        "/job/transform/settings",
        {
            "sourceTypeId": "MYSQL",
            "sourceDataSourceId": ends["source"]["ids"]["id"],
            "sourceDataBase": "test",
            "sourceTable": f"ui_src_{run_id}",
            "sinkTypeId": "POSTGRESQL",
            "sinkDataSourceId": ends["sink"]["ids"]["id"],
            "sinkDataBase": "test",
            "sinkTable": f"ui_dst_{run_id}",
            "engine": "EXCHANGIS",
            "srcTblNotExist": False,
            "sinkTblNotExist": False,
        },
    )
    assert fields["types"] == ["MAPPING"] and len(fields["deductions"]) == 8
    for element in ends["source"]["form"] + ends["sink"]["form"] + settings:
        element["value"] = element["defaultValue"]
    next(e for e in settings if e["key"] == "setting.speed.record")["value"] = RATE
    content = [
        {
            "subJobName": "orders",
            "dataSources": {"source": ends["source"]["ids"], "sink": ends["sink"]["ids"]},
            "params": {
                "sources": config_items(ends["source"]["form"], "field"),
                "sinks": config_items(ends["sink"]["form"], "field"),
            },
            "transforms": {"type": "MAPPING", "mapping": _mapping(fields["deductions"]), "sql": ""},
            "settings": config_items(settings, "key"),
        }
    ]
    body = {"projectId": pid, "content": json.dumps(content)}
    ui("PUT", f"/job/{job_id}/content", body, headers={"save-from": "execute"})
    reopened = json.loads(ui("GET", f"/job/{job_id}")["result"]["content"])
    assert len(reopened["subJobs"][0]["transforms"]["mapping"]) == 8

    # execute, watch it move, kill it
    eid = ui("POST", f"/job/{job_id}/execute", {})["jobExecutionId"]
    seen: list[float] = []
    deadline = time.monotonic() + 60
    task_id = None
    while time.monotonic() < deadline:
        status = ui("GET", f"/job/execution/{eid}/status")
        tasks = ui("GET", f"/job/execution/{eid}/taskList")["tasks"]
        progress = ui("GET", f"/job/execution/{eid}/progress")["job"]
        if tasks and tasks[0]["status"] == "Running":
            task_id = tasks[0]["taskId"]
            metrics = ui("POST", f"/task/execution/{task_id}/metrics", {"jobExecutionId": eid})
            moved = metrics["task"]["metrics"]["readRecords"]
            seen.append(progress["progress"])
            if moved > 3000 and len(set(seen)) >= 3:
                break
        assert status["status"] not in ("Failed", "Success"), status
        time.sleep(0.5)
    assert task_id is not None and 0 < seen[-1] < 1 and seen == sorted(seen), seen
    log = ui("GET", f"/job/execution/{eid}/log?fromLine=1&pageSize=100")
    assert log["endLine"] >= 1 and log["logs"]["all"]
    task_log = ui(
        "GET", f"/task/execution/{task_id}/log?jobExecutionId={eid}&fromLine=1&pageSize=100"
    )
    assert task_log["logs"]["all"]
    ui("POST", f"/job/execution/{eid}/kill", {})
    deadline = time.monotonic() + 30
    while (
        ui("GET", f"/job/execution/{eid}/status")["status"],
        ui("GET", f"/job/{eid}/allTaskStatus")["allStatus"],
    ) != ("Cancelled", ["Cancelled"]):  # the task stops within the kill grace
        assert time.monotonic() < deadline, "the kill did not end the execution"
        time.sleep(0.3)

    # the sync history finds it; it is deleted, then the job
    history = ui("GET", f"/job/listJobs?jobExecutionId={eid}&current=1&size=10")
    (row,) = history["jobList"]
    assert row["status"] == "Cancelled" and row["name"] == f"copy-{run_id}"
    ui("POST", f"/job/{eid}/deleteJob", {})
    assert ui("GET", f"/job/listJobs?jobExecutionId={eid}&current=1&size=10")["jobList"] == []
    ui("DELETE", f"/job/{job_id}", {})
    assert ui("GET", f"/job?projectId={pid}&jobType=OFFLINE&name=&current=1&size=10")["total"] == 0


def test_cookie_changes_through_an_untrusted_proxy_or_from_another_site_are_refused(
    server: str, rt: Runtime, run_id: str
) -> None:
    user, password = f"uo-{run_id}", "a long password 1"
    users.create_user(rt, user, password)
    target = server.removeprefix("http://").split(":")
    for source, accepted in ((PROXY_ADDRESS, True), ("127.0.0.1", False)):
        proxy = HostRewritingProxy((target[0], int(target[1])), source=source)
        try:
            ui = Browser(proxy)
            ui.session.headers.pop("Origin")  # signing in is not a cookie-signed change
            _sign_in(ui, user, password)
            ui.session.headers["Origin"] = proxy.origin
            answer = ui.raw("POST", "/createProject", {"projectName": f"p{source[-1]}{run_id}"})
            assert (answer.status_code == 200) is accepted, answer.text
            if not accepted:
                assert answer.status_code == 403 and "this site" in answer.json()["message"]
            # straight to the API with the proxy's origin: another site
            direct = ui.session.post(
                f"{server}{DSS}/createProject",
                json={"projectName": f"d{run_id}", "labels": {"route": "dev"}},
                timeout=30,
            )
            assert direct.status_code == 403
        finally:
            proxy.close()
