"""The UI's log and metrics polling against real workers, live and from the archive."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from exchangis.models import LogLine
from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import (
    DSS,
    call,
    create_job,
    data_log,
    datasource,
    execute,
    ok,
    sub_job,
    tasks_by_name,
    wait_for,
    wait_until_done,
)
from tests.services import mysql_params, postgres_params

pytestmark = pytest.mark.e2e


def log_page(client: FlaskClient, path: str, prefix: str | None = None, **query: Any) -> Any:
    """GET a log endpoint with a query string; return ``data``."""
    url = f"{path}?{urlencode(query)}"
    if prefix:
        return call(client, "GET", url, prefix=prefix)["data"]
    return ok(client, "GET", url)


def follow(
    client: FlaskClient, path: str, extra: dict[str, Any], page_size: int, timeout: float = 90
) -> tuple[list[str], list[dict[str, Any]]]:
    """Poll like the UI (fromLine = endLine + 1) until isEnd; return the lines and answers."""
    lines: list[str] = []
    answers: list[dict[str, Any]] = []
    end = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = log_page(client, path, fromLine=end + 1, pageSize=page_size, **extra)
        answers.append(answer)
        text = answer["logs"].get("all")
        if text:
            lines += text.split("\n")
        assert answer["endLine"] >= end
        end = answer["endLine"]
        if answer["isEnd"]:
            return lines, answers
        time.sleep(0.05)
    raise AssertionError("the log never ended")


def _job(client: FlaskClient, sources: dict[str, int], tables: dict[str, str]) -> int:
    data.mysql_table(tables["my_src"], 3000)
    data.postgres_table(
        tables["pg_dst"], 0, data.POSTGRES_COLUMNS + ", CONSTRAINT no_2000 CHECK (id <> 2000)"
    )
    return create_job(
        client,
        "logged",
        [
            sub_job(
                "slow",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("SQLITE", sources["SQLITE"], "copy"),
                settings={"setting.speed.record": 1500},
            ),
            sub_job(
                "violates",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
            ),
        ],
    )


def test_ui_polling_collects_every_line_once_and_ends(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], tables: dict[str, str]
) -> None:
    eid = execute(client, _job(client, sources, tables), permit=True)
    job_lines, answers = follow(
        client, f"/job/execution/{eid}/log", {"labels": "prod", "_": 1}, page_size=2
    )
    assert wait_until_done(client, eid)["status"] == "Partial_Success"
    assert job_lines == data_log(client, eid).split("\n")
    assert answers[-1]["isEnd"] is True
    assert any(not a["isEnd"] and a["logs"] for a in answers[:-1])
    assert "finished Partial_Success" in job_lines[-1]

    tasks = tasks_by_name(client, eid)
    tid = tasks["violates"]["taskId"]
    task_lines, _ = follow(client, f"/task/execution/{tid}/log", {"jobExecutionId": eid}, 3)
    assert task_lines == data_log(client, eid, tid).split("\n")
    continuation = [line for line in task_lines if not line[:4].isdigit()]
    assert continuation, "the PostgreSQL error's DETAIL arrives as continuation lines"

    errors = log_page(
        client, f"/task/execution/{tid}/log", jobExecutionId=eid, onlyKeywords="failed"
    )
    assert "no_2000" in errors["logs"]["error"]
    assert all(line in errors["logs"]["all"] for line in continuation)
    assert set(errors["logs"]) <= {"all", "error", "warn"}  # warn: the bulk write replayed
    ignored = log_page(
        client,
        f"/job/execution/{eid}/log",
        ignoreKeywords="[main],[SpringContextShutdownHook],Scheduled",
    )
    assert "Scheduled" not in ignored["logs"]["all"]

    tail = log_page(
        client,
        f"/job/execution/{eid}/log",
        prefix=DSS,
        lastRows=2,
        fromLine=1,
        onlyKeywords="zzz",
        labels="",
        _="9",
    )
    assert tail["endLine"] == len(job_lines) and tail["isEnd"] is True
    assert tail["logs"]["all"].split("\n") == job_lines[-2:]
    ui = log_page(
        client,
        f"/job/execution/{eid}/log",
        prefix=DSS,
        fromLine=0,
        pageSize=50,
        lastRows="",
        onlyKeywords="",
        ignoreKeywords="[main],[SpringContextShutdownHook]",
        labels="",
        _="1",
    )
    assert ui["logs"]["all"].split("\n") == job_lines[:50]


def test_logs_read_the_same_after_the_live_keys_expire(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
    rt: Any,
) -> None:
    eid = execute(client, _job(client, sources, tables), permit=True)
    wait_until_done(client, eid)
    wait_for(lambda: rt.store.execution(eid).get("persisted"))
    tid = tasks_by_name(client, eid)["violates"]["taskId"]
    queries: list[tuple[str, dict[str, Any]]] = [
        (f"/job/execution/{eid}/log", {}),
        (f"/job/execution/{eid}/log", {"fromLine": 3, "pageSize": 2}),
        (f"/job/execution/{eid}/log", {"lastRows": 3}),
        (f"/job/execution/{eid}/log", {"onlyKeywords": "Task", "ignoreKeywords": "Running"}),
        (f"/task/execution/{tid}/log", {"jobExecutionId": eid}),
        (f"/task/execution/{tid}/log", {"jobExecutionId": eid, "onlyKeywords": "failed"}),
        (f"/task/execution/{tid}/log", {"jobExecutionId": eid, "lastRows": 2}),
    ]
    live = [log_page(client, path, **query) for path, query in queries]
    assert [answer["isEnd"] for answer in live] == [True, False, True, True, True, True, True]
    for key in list(rt.redis.scan_iter(f"{rt.keys.prefix}*")):
        if eid in key or key.startswith(rt.keys.task(tid)):
            rt.redis.delete(key)
    assert not rt.redis.exists(rt.keys.execution_log(eid))
    archived = [log_page(client, path, **query) for path, query in queries]
    assert archived == live


def test_passwords_never_reach_log_answers_or_the_archive(
    client: FlaskClient,
    worker: WorkerProcess,
    tables: dict[str, str],
    run_id: str,
    rt: Any,
    tmp_path: Any,
) -> None:
    secret = f"PgSecret-{run_id}"  # trust auth: PostgreSQL accepts any password
    pg = datasource(
        client, f"pg-secret-{run_id}", "POSTGRESQL", {**postgres_params(), "password": secret}
    )
    bad = datasource(client, f"my-bad-{run_id}", "MYSQL", {**mysql_params(), "password": secret})
    my = datasource(client, f"my-ok-{run_id}", "MYSQL", mysql_params())
    data.mysql_table(tables["my_src"], 10)
    with data.mysql() as conn, conn.cursor() as cur:  # the secret as a source value
        cur.execute(f"UPDATE `{tables['my_src']}` SET name = %s WHERE id = 5", (secret,))
    data.postgres_table(
        tables["pg_dst"],
        0,
        data.POSTGRES_COLUMNS + f", CONSTRAINT no_secret CHECK (name <> '{secret}')",
    )
    job_id = create_job(
        client,
        "secrets",
        [
            sub_job(
                "value",
                ("MYSQL", my, tables["my_src"]),
                ("POSTGRESQL", pg, tables["pg_dst"]),
                sources={"where": f"name <> 'x{secret}'"},
            ),  # the secret in the job itself
            sub_job(
                "driver", ("MYSQL", bad, tables["my_src"]), ("POSTGRESQL", pg, tables["pg_dst"])
            ),
        ],
    )
    eid = execute(client, job_id, permit=True)
    assert wait_until_done(client, eid)["status"] == "Failed"
    wait_for(lambda: rt.store.execution(eid).get("persisted"))
    tasks = tasks_by_name(client, eid)
    texts = [data_log(client, eid)]
    for task in tasks.values():
        texts.append(data_log(client, eid, task["taskId"]))
        texts.append(
            str(
                log_page(
                    client,
                    f"/task/execution/{task['taskId']}/log",
                    jobExecutionId=eid,
                    pageSize=5000,
                )
            )
        )
    texts.append(str(log_page(client, f"/job/execution/{eid}/log", pageSize=5000)))
    with rt.sessions() as session:
        texts += session.scalars(select(LogLine.text)).all()
    joined = "\n".join(texts)
    assert "Access denied" in joined and "no_secret" in joined and "options=" in joined
    assert secret not in joined
    assert "******" in joined  # it was there, and masked


def test_metrics_move_during_a_long_transfer_and_freeze_at_the_end(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], tmp_path: Any
) -> None:
    rows = 500_000
    job_id = create_job(
        client,
        "metrics",
        [
            sub_job(
                "big",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "big"),
                sources={"rows": rows, "batchSize": 20_000},
                settings={"setting.speed.record": 150_000},
            ),
        ],
    )
    eid = execute(client, job_id)
    tid = wait_for(lambda: next(iter(tasks_by_name(client, eid).values()))["taskId"])
    samples: list[dict[str, Any]] = []
    while not ok(client, "GET", f"/job/execution/{eid}/status")["allTaskStatus"]:
        answer = ok(client, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})
        samples.append(answer["task"]["metrics"])
        time.sleep(0.3)
    final = ok(client, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})["task"][
        "metrics"
    ]
    exchanged = [s["indicator"]["exchangedRecords"] for s in samples]
    assert any(0 < e < rows for e in exchanged), exchanged
    assert exchanged == sorted(exchanged)
    assert any(s["traffic"]["flow"] > 0 for s in samples)
    assert any(s["resourceUsed"]["memory"] > 0 for s in samples)
    assert final["indicator"]["exchangedRecords"] == rows == final["readRecords"]
    assert final["traffic"] == {**final["traffic"], "source": "memory", "sink": "sqlite"}
    import sqlite3

    with sqlite3.connect(tmp_path / "lite.db") as conn:
        assert conn.execute("SELECT count(*) FROM big").fetchone()[0] == rows
    again = ok(client, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})
    assert again["task"]["metrics"] == final


def test_bad_log_queries_get_clear_errors(client: FlaskClient, sources: dict[str, int]) -> None:
    job_id = create_job(
        client,
        "q",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], "q"),
                sources={"rows": 1},
            )
        ],
    )
    eid = execute(client, job_id)
    tid = next(iter(tasks_by_name(client, eid).values()))["taskId"]
    for query, field in [
        ("pageSize=-1", "pageSize"),
        ("pageSize=100000", "pageSize"),
        ("fromLine=abc", "fromLine"),
        ("lastRows=-5", "lastRows"),
        ("lastRows=999999", "lastRows"),
        ("pageSize=1.5", "pageSize"),
    ]:
        reply = call(client, "GET", f"/job/execution/{eid}/log?{query}", expect=400)
        assert field in reply["message"] and field in reply["data"]["errors"]
    reply = call(client, "GET", f"/task/execution/{tid}/log", expect=400)
    assert "jobExecutionId" in reply["message"]
    other = execute(client, job_id)
    call(client, "GET", f"/task/execution/{tid}/log?jobExecutionId={other}", expect=404)
    call(client, "GET", "/job/execution/nope/log", expect=404)
    empty = ok(client, "GET", f"/job/execution/{eid}/log?fromLine=100000")
    assert empty["endLine"] == 99_999 and empty["logs"] == {}
