"""Data source passwords are encrypted at rest and reach no store in clear during a run: not the
metadata database (records, plans, archived logs), not Redis (any key of any database the run
used), not the Celery messages, not the worker's process log, not any API answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.signals import before_task_publish
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from exchangis.db import Base
from exchangis.runtime import Runtime
from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import (
    create_job,
    datasource,
    ok,
    sub_job,
    tasks_by_name,
    wait_until_done,
)
from tests.services import mysql_params, postgres_params

pytestmark = pytest.mark.e2e


class RecordingClient(FlaskClient):
    """A test client that keeps the body of every answer it gets."""

    answers: list[bytes]

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """Send the request; keep the answer's body."""
        response = super().open(*args, **kwargs)
        self.answers.append(response.get_data())
        return response


@pytest.fixture
def recording(app: Flask, client: FlaskClient) -> FlaskClient:
    """A client signed in as ``client`` that records every answer."""
    recorder = RecordingClient(app, app.response_class)
    recorder.answers = []
    recorder.environ_base["HTTP_AUTHORIZATION"] = client.environ_base["HTTP_AUTHORIZATION"]
    return recorder


@pytest.fixture
def messages() -> Iterator[list[str]]:
    """Every Celery message this process publishes meanwhile (body and headers, as text)."""
    seen: list[str] = []

    def keep(body: Any = None, headers: Any = None, **_: Any) -> None:
        seen.append(repr((body, headers)))

    before_task_publish.connect(keep, weak=False)
    yield seen
    before_task_publish.disconnect(keep)


def redis_text(url: str) -> str:
    """Return every key and value of the Redis database at ``url``, as one text."""
    redis = Redis.from_url(url)
    parts: list[str] = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key)
        reader = {
            b"string": redis.get,
            b"hash": redis.hgetall,
            b"list": lambda k: redis.lrange(k, 0, -1),
            b"set": redis.smembers,
            b"zset": lambda k: redis.zrange(k, 0, -1),
        }.get(kind)
        parts.append(repr((key, reader(key) if reader else kind)))
    redis.close()
    return "\n".join(parts)


def metadata_text(rt: Runtime) -> str:
    """Return every row of every table of the metadata database, as one text."""
    with rt.sessions() as session:
        return "\n".join(
            repr(row)
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table)).all()
        )


def test_no_store_and_no_answer_holds_a_password_in_clear(
    recording: FlaskClient,
    worker: WorkerProcess,
    messages: list[str],
    tables: dict[str, str],
    tmp_path: Path,
    run_id: str,
) -> None:
    client = recording
    rt: Runtime = client.application.extensions["exchangis"]
    password = f"Pw-{run_id}-clear"  # PostgreSQL trusts local connections: any password works
    wrong = f"Wrong-{run_id}-mysql"  # MariaDB refuses it: the error paths see it too
    pg = datasource(
        client, f"pg-secret-{run_id}", "POSTGRESQL", {**postgres_params(), "password": password}
    )
    bad = datasource(client, f"my-bad-{run_id}", "MYSQL", {**mysql_params(), "password": wrong})
    lite = datasource(client, f"lite-{run_id}", "SQLITE", {"path": str(tmp_path / "s.db")})
    data.postgres_table(tables["pg_src"], 40)
    job = create_job(
        client,
        f"secret-{run_id}",
        [
            sub_job("copy", ("POSTGRESQL", pg, tables["pg_src"]), ("SQLITE", lite, "copied")),
            sub_job("refused", ("MYSQL", bad, "nothing"), ("SQLITE", lite, "never")),
        ],
    )
    eid = ok(client, "POST", f"/job/{job}/execute", {"permitPartialFailures": True})[
        "jobExecutionId"
    ]
    assert wait_until_done(client, eid)["status"] == "Partial_Success"
    # read everything a UI would read
    tasks = tasks_by_name(client, eid)
    for path in ("status", "tasklist", "progress", "log?fromLine=1&pageSize=5000"):
        ok(client, "GET", f"/job/execution/{eid}/{path}")
    for task in tasks.values():
        tid = task["taskId"]
        ok(client, "GET", f"/task/execution/{tid}/log?jobExecutionId={eid}&pageSize=5000")
        ok(client, "GET", f"/task/execution/{tid}/output?jobExecutionId={eid}")
        ok(client, "POST", f"/task/execution/{tid}/metrics", {"jobExecutionId": eid})
    ok(client, "GET", f"/job/listJobs?jobExecutionId={eid}")
    ok(client, "GET", "/datasources")
    for ds in (pg, bad):
        ok(client, "GET", f"/datasources/{ds}")
        ok(client, "POST", f"/datasources/{ds}/test")
    ok(client, "GET", f"/job/{job}")
    refused_log = ok(
        client, "GET", f"/task/execution/{tasks['refused']['taskId']}/log?jobExecutionId={eid}"
    )
    assert "Access denied" in refused_log["logs"]["all"]  # the failure really ran

    everything = {
        "metadata database (every row: records, plans, archived logs)": metadata_text(rt),
        "metadata database files (WAL included)": "".join(
            path.read_bytes().decode("latin-1")
            for path in Path(rt.settings.database_url.removeprefix("sqlite:///")).parent.glob(
                "meta.db*"
            )
        ),
        "redis: live state and logs": redis_text(rt.settings.redis_url),
        "redis: Celery broker": redis_text(rt.settings.broker()),
        "celery messages": "\n".join(messages),
        "worker process log": worker.logfile.read_text(errors="replace"),
        "API answers": b"\n".join(client.answers).decode(),  # type: ignore[attr-defined]
    }
    assert messages and client.answers  # type: ignore[attr-defined]
    for where, text in everything.items():
        for secret in (password, wrong):
            assert secret not in text, f"{secret} in clear in the {where}"
    stored = metadata_text(rt)
    assert "enc:v1:" in stored  # the passwords are there, encrypted
