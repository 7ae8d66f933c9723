"""Drills of the sinks' exactly-once promise: an ambiguous commit, a process stopped inside its
commit past the heartbeat, and SIGKILL mid-write for every sink kind and write mode."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from exchangis.client import sub_job
from tests import data
from tests.drills.conftest import (
    Deployment,
    assert_exact,
    assert_rows,
    csv_rows,
    generated,
)
from tests.helpers import call, create_job, data_log, datasource, execute, ok
from tests.proxy import CommitProxy
from tests.services import mysql_params, postgres_params

pytestmark = pytest.mark.drill

RETRY = {"setting.retry.times": 2}
PLAIN = {
    "POSTGRESQL": {"params": {"sslmode": "disable", "gssencmode": "disable"}},
    "MYSQL": {"params": {"ssl_disabled": True}},
}
"""Connect in clear, so that the proxy sees the COMMIT."""
EARLIER = "the sink's ledger says an earlier attempt committed"


def _server(kind: str) -> dict[str, Any]:
    return postgres_params() if kind == "POSTGRESQL" else mysql_params()


def _through(deploy: Deployment, kind: str, proxy: CommitProxy) -> int:
    """Register a data source of ``kind`` reached through ``proxy``; return its id."""
    params = {**_server(kind), "port": proxy.port, **PLAIN[kind]}
    return datasource(deploy.client, f"{kind.lower()}-{uuid.uuid4().hex[:6]}", kind, params)


def _job(
    deploy: Deployment,
    sink: tuple[str, int, str],
    rows: int,
    sinks: dict[str, Any] | None = None,
    sleep: float = 0.0,
) -> int:
    memory = datasource(deploy.client, f"mem-{uuid.uuid4().hex[:6]}", "MEMORY", {})
    options = {"rows": rows, "batchSize": 500, "sleepPerBatch": sleep}
    return create_job(
        deploy.client,
        f"sink-drill-{uuid.uuid4().hex[:6]}",
        [sub_job("a", ("MEMORY", memory, "gen"), sink, options, sinks, RETRY)],
    )


def _task(deploy: Deployment, eid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = ok(deploy.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
        if tasks and tasks[0]["status"] == "Running" and tasks[0]["linkisJobInfo"]:
            return dict(tasks[0])
        time.sleep(0.05)
    raise AssertionError("the task never ran")


@pytest.mark.parametrize("kind", ["POSTGRESQL", "MYSQL"])
def test_an_ambiguous_commit_is_resolved_from_the_ledger_not_written_twice(
    deploy: Deployment, kind: str
) -> None:
    """Drill 4a: the connection is cut right after COMMIT went out (the server committed)."""
    deploy.worker()
    server = _server(kind)
    proxy = CommitProxy((server["host"], int(server["port"])), "cut")
    table = f"drill_amb_{uuid.uuid4().hex[:8]}"
    try:
        job = _job(deploy, (kind, _through(deploy, kind, proxy), table), 3000)
        eid = execute(deploy.client, job)
        assert deploy.final(eid, bound=60)["status"] == "Success"
        assert proxy.cut_done.is_set()  # the fault happened
        assert_exact(table, 3000, kind)
    finally:
        proxy.close()
        data.drop(*(([table], []) if kind == "MYSQL" else ([], [table])))
    tid = ok(deploy.client, "GET", f"/job/execution/{eid}/tasklist")["tasks"][0]["taskId"]
    assert EARLIER in data_log(deploy.client, eid, tid)


def test_an_attempt_stopped_inside_its_commit_past_the_heartbeat_writes_once(
    deploy: Deployment,
) -> None:
    """Drill 4b: the process is SIGSTOPped while its COMMIT is on the way, the reaper gives
    the attempt up and a new one starts; then the old one resumes and its COMMIT lands."""
    deploy.worker()
    server = _server("POSTGRESQL")
    proxy = CommitProxy((server["host"], int(server["port"])), "hold")
    table = f"drill_stop_{uuid.uuid4().hex[:8]}"
    deploy.tables.append(table)
    try:
        job = _job(deploy, ("POSTGRESQL", _through(deploy, "POSTGRESQL", proxy), table), 3000)
        eid = execute(deploy.client, job)
        task = _task(deploy, eid)
        assert proxy.held.wait(30), "the commit never came"
        pid = json.loads(task["linkisJobInfo"])["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 30
            while "---- attempt 2 of 3 ----" not in data_log(deploy.client, eid, task["taskId"]):
                assert time.monotonic() < deadline, "the stopped attempt was never given up"
                time.sleep(0.1)
            time.sleep(1)  # attempt 2 is at its fence, waiting for attempt 1's ledger row
        finally:
            os.kill(pid, signal.SIGCONT)
            proxy.release.set()
        assert deploy.final(eid, bound=60)["status"] == "Success"
    finally:
        proxy.close()
    assert_exact(table, 3000)
    assert EARLIER in data_log(deploy.client, eid, task["taskId"])


def _sigkill_mid_write(deploy: Deployment, eid: str, rows_before_kill: int = 1) -> None:
    """SIGKILL the worker process running ``eid``'s first task once it has read rows."""
    task = _task(deploy, eid)
    deadline = time.monotonic() + 30
    while int((deploy.rt.store.task(task["taskId"]) or {}).get("read_records") or 0) < (
        rows_before_kill
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(json.loads(task["linkisJobInfo"])["pid"], signal.SIGKILL)


OLD = [(-1, "old-1", None), (-2, "old-2", None)]


@pytest.mark.parametrize("kind", ["POSTGRESQL", "MYSQL"])
def test_sigkill_mid_overwrite_replaces_the_table_once(deploy: Deployment, kind: str) -> None:
    """Drill 9a/b: PostgreSQL and MariaDB overwrite, the writer SIGKILLed mid-write."""
    deploy.worker()
    table = f"drill_ow_{uuid.uuid4().hex[:8]}"
    columns = "id BIGINT, name VARCHAR(64), amount DECIMAL(12,2)"
    if kind == "POSTGRESQL":
        data.postgres_table(table, 0, columns)
        with data.postgres() as conn:
            conn.cursor().executemany(f'INSERT INTO "{table}" VALUES (%s, %s, %s)', OLD)
    else:
        data.mysql_table(table, 0, columns)
        with data.mysql() as conn, conn.cursor() as cur:
            cur.executemany(f"INSERT INTO `{table}` VALUES (%s, %s, %s)", OLD)
    ds = datasource(deploy.client, f"ow-{uuid.uuid4().hex[:6]}", kind, _server(kind))
    try:
        job = _job(deploy, (kind, ds, table), 4000, {"writeMode": "overwrite"}, sleep=0.3)
        eid = execute(deploy.client, job)
        _sigkill_mid_write(deploy, eid)
        assert deploy.final(eid, bound=60)["status"] == "Success"
        assert_exact(table, 4000, kind)
    finally:
        data.drop(*(([table], []) if kind == "MYSQL" else ([], [table])))


CHANNEL_ROWS = [(i, f"name-{i}", None) for i in range(1, 4001)]
"""The MariaDB source of the channel drills (ids 1..4000, a primary key to cut by)."""
KEYLESS = "id BIGINT, name VARCHAR(64), amount DECIMAL(12,2)"


def _channel_job(
    deploy: Deployment, run: str, source: str, sink: tuple[str, int, str], retries: int
) -> int:
    """Fill MariaDB table ``source`` and save a 4-channel overwrite of it into ``sink``
    (2,000 rows/s, ``retries`` retries)."""
    data.mysql_table(source, 0, KEYLESS.replace("id BIGINT", "id BIGINT PRIMARY KEY"))
    with data.mysql() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO `{source}` VALUES (%s, %s, %s)", CHANNEL_ROWS)
    my = datasource(deploy.client, f"my-src-{run}", "MYSQL", mysql_params())
    return create_job(
        deploy.client,
        f"channels-{run}",
        [
            sub_job(
                "a",
                ("MYSQL", my, source),
                sink,
                {"batchSize": 100, "splitPk": "id"},
                {"writeMode": "overwrite", "batchSize": 100},
                {
                    "setting.speed.channel": 4,
                    "setting.speed.record": 2000,
                    "setting.retry.times": retries,
                },
            )
        ],
    )


def test_sigkill_of_a_channel_mid_overwrite_leaves_no_stage(deploy: Deployment) -> None:
    """Drill 9c: a 4-channel overwrite, one channel's process SIGKILLed mid-write."""
    deploy.worker()
    run = uuid.uuid4().hex[:8]
    source, sink = f"drill_chs_{run}", f"drill_chd_{run}"
    data.postgres_table(sink, 0, KEYLESS)
    pg = datasource(deploy.client, f"pg-{run}", "POSTGRESQL", postgres_params())
    job = _channel_job(deploy, run, source, ("POSTGRESQL", pg, sink), retries=2)
    try:
        eid = execute(deploy.client, job)
        _sigkill_mid_write(deploy, eid, 200)
        assert deploy.final(eid, bound=90)["status"] == "Success"
        assert_rows(data.postgres_rows(sink), CHANNEL_ROWS)
        token = eid.replace("-", "")[:12]  # engine/channels.py names the stages after it
        with data.postgres() as conn:
            stages = conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (f"exg_{token}_%",)
            ).fetchall()
        assert stages == []
    finally:
        data.drop([source], [sink])


def _file_job(deploy: Deployment, root: Path, name: str, subs: int) -> int:
    memory = datasource(deploy.client, f"mem-{uuid.uuid4().hex[:6]}", "MEMORY", {})
    files = datasource(deploy.client, f"files-{uuid.uuid4().hex[:6]}", "FILE", {"root": str(root)})
    return create_job(
        deploy.client,
        f"csv-{uuid.uuid4().hex[:6]}",
        [
            sub_job(
                f"s{n}",
                ("MEMORY", memory, "gen"),
                ("FILE", files, name),
                {"rows": 2000, "batchSize": 100, "sleepPerBatch": 0.05},
                {"writeMode": "append"},
                RETRY,
            )
            for n in range(subs)
        ],
    )


@pytest.mark.parametrize("writers", [1, 2])
def test_sigkill_mid_csv_append_appends_once_and_leaves_no_temp_file(
    deploy: Deployment, tmp_path: Path, writers: int
) -> None:
    """Drill 9d/e: CSV append, and two concurrent appends to one file, one SIGKILLed."""
    deploy.worker()
    root = tmp_path / "files"
    root.mkdir()
    target = root / "out.csv"
    target.write_text("id,name,amount\n-1,old,0.01\n")
    eid = execute(deploy.client, _file_job(deploy, root, "out.csv", writers))
    _sigkill_mid_write(deploy, eid, 100)
    assert deploy.final(eid, bound=60)["status"] == "Success"
    expected = [(-1, "old", generated(1)[0][2])] + generated(2000) * writers
    got = csv_rows(target)
    assert len(got) == len(expected)
    assert sorted(got) == sorted(expected)
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []


def _mysql_stages(eid: str) -> list[str]:
    token = eid.replace("-", "")[:12]  # engine/channels.py names the stages after it
    with data.mysql() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name LIKE %s",
            (f"exg_{token}_%",),
        )
        return sorted(str(r[0]) for r in cur.fetchall())


def _no_stages_left(eid: str, work_only: bool, timeout: float = 30) -> list[str]:
    """Wait until a reaper dropped ``eid``'s work stages (or all of them); return the rest."""
    deadline = time.monotonic() + timeout
    while True:
        left = _mysql_stages(eid)
        wanted = [t for t in left if t.endswith("_w")] if work_only else left
        if not wanted:
            return left
        assert time.monotonic() < deadline, f"stages left: {left}"
        time.sleep(0.2)


def test_stages_of_a_failed_channelled_overwrite_are_dropped_when_nothing_needs_them(
    deploy: Deployment,
) -> None:
    """Drill 9f: a MariaDB channelled overwrite whose channel is SIGKILLed with no retry left
    (MySQL commits its stage tables at once): its work stages go when the execution ends, its
    published ones stay for a resume (which then succeeds exactly) or go with a delete."""
    deploy.worker()
    run = uuid.uuid4().hex[:8]
    source, sink = f"drill_mcs_{run}", f"drill_mcd_{run}"
    data.mysql_table(sink, 0, KEYLESS)
    my = datasource(deploy.client, f"my-{run}", "MYSQL", mysql_params())
    job = _channel_job(deploy, run, source, ("MYSQL", my, sink), retries=0)
    try:
        for then in ("delete", "resume"):
            eid = execute(deploy.client, job)
            _sigkill_mid_write(deploy, eid, 100)
            assert deploy.final(eid, bound=60)["status"] == "Failed"
            if then == "delete":
                call(deploy.client, "DELETE", f"/job/execution/{eid}")
                assert _no_stages_left(eid, work_only=False) == []
                continue
            assert all(not t.endswith("_w") for t in _no_stages_left(eid, work_only=True))
            assert (
                ok(deploy.client, "POST", f"/job/execution/{eid}/resume")["status"] == "Scheduled"
            )
            assert deploy.final(eid, bound=60)["status"] == "Success"
            assert_rows(data.mysql_rows(sink), CHANNEL_ROWS)
            assert _no_stages_left(eid, work_only=False) == []
    finally:
        data.drop([source, sink])
