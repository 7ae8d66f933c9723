"""The released UI's job calls on the alias prefix: the dialog, the list per tab, the editor's
detail and save (view and save shapes), its config drawer, and execute
(docs/design/exchangis-ui-calls.md §2-3)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import WorkerProcess
from tests.helpers import (
    DSS,
    UI_ROUTE,
    call,
    config_items,
    datasource,
    ok,
    released,
    wait_until_done,
)

pytestmark = pytest.mark.e2e


def to_save_shape(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn the editor's view shape into what it saves, as jobDetail.vue does: params keyed by
    each element's ``field``, settings by its ``key``, every field sent, empty ones too."""
    return [
        {
            "subJobName": sub["subJobName"],
            "dataSources": sub["dataSourceIds"],
            "params": {
                "sources": config_items(sub["params"]["sources"], "field"),
                "sinks": config_items(sub["params"]["sinks"], "field"),
            },
            "transforms": sub["transforms"],
            "settings": config_items(sub["settings"], "key"),
        }
        for sub in view["subJobs"]
    ]


def test_a_job_made_opened_saved_and_run_as_the_released_ui_does(
    client: FlaskClient, worker: WorkerProcess, tmp_path: Path, run_id: str
) -> None:
    made = released(client, "POST", "/createProject", {"projectName": f"uj{run_id}", **UI_ROUTE})
    pid, name = made["projectId"], made["projectName"]
    memory = datasource(client, f"mem-{run_id}", "MEMORY", {}, name)
    db = tmp_path / "ui.db"
    lite = datasource(client, f"lite-{run_id}", "SQLITE", {"path": str(db)}, name)

    assert released(client, "GET", "/job/engineType")["result"] == ["EXCHANGIS"]
    dialog = {
        "id": "",
        "jobName": "ui-job",
        "jobType": "OFFLINE",
        "engineType": "EXCHANGIS",
        "jobLabels": "nightly,ui",
        "jobDesc": "made by the dialog",
        "projectId": pid,
        **UI_ROUTE,
    }
    result = released(client, "POST", "/job", dialog)["result"]
    assert result["jobLabels"] == "nightly,ui" and result["jobType"] == "OFFLINE"
    job_id = result["id"]

    offline = released(
        client, "GET", f"/job?projectId={pid}&jobType=OFFLINE&name=&current=1&size=10"
    )
    assert offline["total"] == 1 and offline["result"][0]["id"] == job_id
    card = offline["result"][0]
    assert card["engineType"].upper() == "EXCHANGIS" and card["jobName"] == "ui-job"
    assert (
        released(client, "GET", f"/job?projectId={pid}&jobType=STREAM&name=&current=1&size=10")[
            "total"
        ]
        == 0
    )
    call(client, "POST", f"/job/{job_id}/execute", UI_ROUTE, prefix=DSS, expect=400)  # no content

    fresh = released(client, "GET", f"/job/{job_id}")["result"]
    assert fresh["content"] == "" and json.loads(fresh["jobParams"]) == {}
    assert fresh["proxyUser"] == ""  # the drawer then picks Executor's first and saves it
    assert released(client, "GET", "/job/Executor")["result"] == ["admin"]
    for kind in ("verify", "transform"):  # no field functions: the mapping is by name
        assert released(client, "GET", f"/job/func/{kind}")["data"] == []
    call(client, "GET", "/job/func/other?labels=dev", prefix=DSS, expect=404)
    config = {
        "executeNode": "",
        "proxyUser": "admin",
        "syncType": "FULL",
        "jobParams": json.dumps({"run_for": "ui"}),
        "projectId": pid,
        **UI_ROUTE,
    }
    released(client, "PUT", f"/job/{job_id}/config", config)

    form = released(client, "GET", "/datasources/EXCHANGIS/MEMORY/params/ui?dir=source")["uis"]
    sink_form = released(client, "GET", "/datasources/EXCHANGIS/SQLITE/params/ui?dir=sink")["uis"]
    settings = released(client, "GET", "/jobs/engine/EXCHANGIS/settings/ui")["ui"]
    for element in form + sink_form + settings:
        element["value"] = element["defaultValue"]
    next(e for e in form if e["field"] == "rows")["value"] = "50"
    next(e for e in sink_form if e["field"] == "writeMode")["value"] = "overwrite"
    next(e for e in settings if e["key"] == "setting.speed.record")["value"] = "1000"
    sub = {
        "subJobName": "copy",
        "dataSourceIds": {
            "source": {"type": "MEMORY", "id": str(memory), "name": "m", "db": "", "table": "gen"},
            "sink": {"type": "SQLITE", "id": str(lite), "name": "l", "db": "", "table": "landed"},
        },
        "params": {"sources": form, "sinks": sink_form},
        "transforms": {"type": "MAPPING", "mapping": []},
        "settings": settings,
    }
    content = json.dumps(to_save_shape({"subJobs": [sub]}))
    body = {"projectId": pid, "content": content, **UI_ROUTE}
    released(client, "PUT", f"/job/{job_id}/content", body, headers={"save-from": "execute"})

    opened = released(client, "GET", f"/job/{job_id}")["result"]
    assert opened["proxyUser"] == "admin" and json.loads(opened["jobParams"]) == {"run_for": "ui"}
    view = json.loads(opened["content"])
    (shown,) = view["subJobs"]
    assert shown["dataSourceIds"]["source"]["id"] == str(memory)
    assert shown["dataSourceIds"]["sink"]["name"] == f"lite-{run_id}"
    assert next(e for e in shown["params"]["sources"] if e["field"] == "rows")["value"] == "50"
    speed = next(e for e in shown["settings"] if e["key"] == "setting.speed.record")
    assert speed["value"] == "1000"
    # saving what the editor shows changes nothing
    again = {"projectId": pid, "content": json.dumps(to_save_shape(view)), **UI_ROUTE}
    released(client, "PUT", f"/job/{job_id}/content", again)
    assert json.loads(released(client, "GET", f"/job/{job_id}")["result"]["content"]) == view
    # our primary prefix shows the same job in our shape
    ours = ok(client, "GET", f"/job/{job_id}")
    assert ours["jobLabels"] == "nightly,ui" and ours["content"][0]["subJobName"] == "copy"

    eid = released(client, "POST", f"/job/{job_id}/execute", UI_ROUTE)["jobExecutionId"]
    assert wait_until_done(client, eid)["status"] == "Success"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM landed").fetchone() == (50,)

    edited = dict(dialog, id=job_id, jobName="ui-job-2", jobLabels="ui")
    assert released(client, "PUT", f"/job/{job_id}", edited)["result"]["jobName"] == "ui-job-2"
    assert ok(client, "GET", f"/job/{job_id}")["content"][0]["subJobName"] == "copy"  # kept
    released(client, "DELETE", f"/job/{job_id}", UI_ROUTE)
    call(client, "GET", f"/job/{job_id}?labels=dev", prefix=DSS, expect=404)


def test_bad_editor_saves_name_the_field_and_change_nothing(
    client: FlaskClient, tmp_path: Path, run_id: str
) -> None:
    made = released(client, "POST", "/createProject", {"projectName": f"ub{run_id}", **UI_ROUTE})
    pid, name = made["projectId"], made["projectName"]
    memory = datasource(client, f"mem-{run_id}", "MEMORY", {}, name)
    body = {"jobName": "bad", "projectId": pid, **UI_ROUTE}
    job_id = released(client, "POST", "/job", body)["result"]["id"]
    ends = {
        "source": {"type": "MEMORY", "id": str(memory), "table": "gen"},
        "sink": {"type": "SQLITE", "id": str(memory), "table": "t"},
    }
    cases = {
        "content[0].transforms.type": [
            {"subJobName": "a", "dataSources": ends, "transforms": {"type": "PROCESSOR"}}
        ],
        "content[0].dataSources.sink.type": [{"subJobName": "a", "dataSources": ends}],
        "content": "not json",
    }
    for field, content in cases.items():
        text = content if isinstance(content, str) else json.dumps(content)
        reply = call(
            client,
            "PUT",
            f"/job/{job_id}/content?labels=dev",
            {"projectId": pid, "content": text, **UI_ROUTE},
            prefix=DSS,
            expect=400,
        )
        assert field in reply["data"]["errors"], (field, reply)
    assert ok(client, "GET", f"/job/{job_id}")["content"] == []
    bad_type = dict(body, jobType="BATCH")
    assert (
        "jobType"
        in call(client, "POST", "/job?labels=dev", bad_type, prefix=DSS, expect=400)["data"][
            "errors"
        ]
    )
