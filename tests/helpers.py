"""Small helpers for API tests: call through the envelope, build jobs, poll executions."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from exchangis.client import sub_job
from exchangis.state.logs import LiveLog

BASE = "/api/rest_j/v1"
API = f"{BASE}/exchangis"
DSS = f"{BASE}/dss/exchangis/main"


def signed_in(app: Flask, token: str) -> FlaskClient:
    """Return a test client that sends ``Authorization: Bearer <token>`` on every call."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


def call(
    client: FlaskClient,
    method: str,
    path: str,
    body: Any = None,
    expect: int = 200,
    prefix: str = API,
    **kwargs: Any,
) -> dict[str, Any]:
    """Call the API; assert the HTTP code and the envelope; return the whole envelope."""
    response = client.open(prefix + path, method=method, json=body, **kwargs)
    reply: dict[str, Any] = response.get_json()
    assert reply is not None, response.data[:500]
    assert response.status_code == expect, reply
    assert reply["method"] == prefix + path.split("?", maxsplit=1)[0]
    assert set(reply) == {"method", "status", "message", "data"}
    assert (reply["status"] == 0) == (expect < 400), reply
    return reply


UI_ROUTE = {"labels": {"route": "dev"}}
"""What the released web UI adds to every body."""


def released(client: FlaskClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    """Call under the alias prefix as the released web UI does (``labels`` in the query, as in
    its bodies), expecting success; return ``data``."""
    sep = "&" if "?" in path else "?"
    return call(client, method, f"{path}{sep}labels=dev", body, prefix=DSS, **kwargs)["data"]


def ok(
    client: FlaskClient, method: str, path: str, body: Any = None, expect: int = 200, **kwargs: Any
) -> dict[str, Any]:
    """Call the API expecting success; return ``data``."""
    data: dict[str, Any] = call(client, method, path, body, expect, **kwargs)["data"]
    return data


def same_caller(client: FlaskClient, app: Flask) -> FlaskClient:
    """Return a client of ``app`` signed in as ``client`` is (another app, same user)."""
    return signed_in(app, client.environ_base["HTTP_AUTHORIZATION"].removeprefix("Bearer "))


def project(client: FlaskClient, name: str) -> str:
    """Create a project owned by the caller; return its name."""
    return str(ok(client, "POST", "/projects", {"name": name}, expect=201)["name"])


def datasource(
    client: FlaskClient,
    name: str,
    kind: str,
    params: dict[str, Any],
    project_name: str = "default",
) -> int:
    """Register a data source (in project ``project_name``); return its id."""
    return int(
        ok(
            client,
            "POST",
            "/datasources",
            {"name": name, "projectName": project_name, "type": kind, "connectParams": params},
            expect=201,
        )["id"]
    )


def create_job(client: FlaskClient, name: str, content: list[dict[str, Any]]) -> int:
    """Save a job; return its id."""
    return int(ok(client, "POST", "/job", {"jobName": name, "content": content}, expect=201)["id"])


def execute(client: FlaskClient, job_id: int, permit: bool = False) -> str:
    """Submit an execution; return its id."""
    return str(
        ok(client, "POST", f"/job/{job_id}/execute", {"permitPartialFailures": permit})[
            "jobExecutionId"
        ]
    )


def wait_until_done(
    client: FlaskClient, eid: str, timeout: float = 120, seen: list[float] | None = None
) -> dict[str, Any]:
    """Poll E2 until the execution and every task are completed; return the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = ok(client, "GET", f"/job/execution/{eid}/status")
        if seen is not None:
            seen.append(status["progress"])
        if status["allTaskStatus"]:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {eid} not done in {timeout}s: {status}")
        time.sleep(0.1)


def js_number(value: float) -> str:
    """Return the text JavaScript's ``String(value)`` gives for a number in 0..100: the shortest
    decimal that reads back as the same double (as Python's ``repr``), an integer without
    ``.0``."""
    return str(int(value)) if value.is_integer() else repr(value)


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.1) -> Any:
    """Return the first truthy value of ``predicate()`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def tasks_by_name(client: FlaskClient, eid: str) -> dict[str, dict[str, Any]]:
    """Return E3's tasks keyed by name."""
    return {t["name"]: t for t in ok(client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]}


def data_log(client: FlaskClient, eid: str, task_id: int | None = None) -> str:
    """Return the job log's (or a task log's) text straight from the live store."""
    rt = client.application.extensions["exchangis"]
    key = rt.keys.execution_log(eid) if task_id is None else rt.keys.task_log(task_id)
    return "\n".join(text for _, text in LiveLog(rt.redis, key).fetch(1, 1_000_000))


def mysql_to_postgres_job(
    client: FlaskClient,
    sources: dict[str, int],
    tables: dict[str, str],
    name: str,
    rows: int,
    settings: dict[str, Any] | None = None,
    sink: int | None = None,
) -> int:
    """Fill a MariaDB table with ``rows`` mixed rows, empty a PostgreSQL one without a key (a
    row written twice shows), and save a job
    with one sub-job ``copy`` between them (into data source ``sink``, default the PostgreSQL
    one); return the job id."""
    from tests import data

    data.mysql_table(tables["my_src"], rows)
    data.postgres_table(tables["pg_dst"], 0, data.KEYLESS_POSTGRES_COLUMNS)
    return create_job(
        client,
        name,
        [
            sub_job(
                "copy",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("POSTGRESQL", sink or sources["POSTGRESQL"], tables["pg_dst"]),
                settings=settings,
            ),
        ],
    )


def config_items(elements: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The released editor's saved form: each element's value under its ``key`` (``field`` for
    connector options, ``key`` for settings), every one sent, empty ones too."""
    return [
        {
            "config_key": e[key],
            "config_name": e["label"],
            "config_value": e["value"],
            "sort": e["sort"],
        }
        for e in elements
    ]


def bound_data_source(row: dict[str, Any]) -> dict[str, Any]:
    """The released project dialog's entry for a data source of the list it read."""
    return {
        "dataSourceType": row["type"],
        "dataSourceName": row["name"],
        "dataSourceDesc": row["desc"],
        "dataSourceId": row["id"],
        "modifyTime": row["modifyTime"],
        "createTime": row["createTime"],
        "createUser": row["createUser"],
    }
