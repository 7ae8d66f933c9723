"""The production recipe (docs/deploy.md) on three worker hosts: jobs spread and routed over
them, and a host lost mid-transfer (make test-deploy)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import data
from tests.deploy.lab import Host, Lab, NamespacesForbiddenError
from tests.helpers import sub_job

pytestmark = pytest.mark.deploy

FAST = {
    "heartbeat_seconds": 0.5,
    "heartbeat_timeout_seconds": 6,
    "reaper_interval_seconds": 1,
    "kill_grace_seconds": 2,
    "resend_after_seconds": 10,
    "retry_backoff_seconds": 0.5,
    "progress_interval_seconds": 0.5,
}
"""Timers of this test's deployment (the recipe keeps the defaults); the bound a host loss
ends within is heartbeat_timeout_seconds + 2 * reaper_interval_seconds + the rerun."""
LOSS_BOUND = FAST["heartbeat_timeout_seconds"] + 2 * FAST["reaper_interval_seconds"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The recipe on three hosts (skipped where the machine forbids network namespaces, unless
    EXCHANGIS_REQUIRE_SERVICES=1, as in CI: then that is a failure)."""
    deployment = Lab(tmp_path_factory.mktemp("deploy"), 3, settings=FAST)
    try:
        deployment.__enter__()
    except NamespacesForbiddenError as exc:
        if os.environ.get("EXCHANGIS_REQUIRE_SERVICES") == "1" or os.geteuid() == 0:
            raise
        pytest.skip(f"this machine forbids network namespaces (run as root): {exc}")
    try:
        yield deployment
    except BaseException:
        for name, tail in deployment.logs():
            print(f"--- {name}\n{tail}")
        raise
    finally:
        deployment.close()


@pytest.fixture
def tables() -> Iterator[tuple[str, str]]:
    run = uuid.uuid4().hex[:6]
    names = (f"dep_src_{run}", f"dep_dst_{run}")
    yield names
    data.drop([names[0]], [names[1]])


def _sources(lab: Lab) -> tuple[int, int]:
    ids = []
    for kind in ("MYSQL", "POSTGRESQL"):
        body = {
            "name": f"{kind.lower()}-{uuid.uuid4().hex[:6]}",
            "projectName": "default",
            "type": kind,
            "connectParams": lab.data_source(kind),
        }
        ids.append(int(lab.client.post("/datasources", body)["id"]))
    return ids[0], ids[1]


def _copy_job(lab: Lab, tables: tuple[str, str], rows: int, settings: dict[str, Any]) -> int:
    """Fill the MariaDB table with ``rows`` mixed rows (keys 1..rows), make the PostgreSQL one
    empty and keyless (a row written twice shows), save a job copying one into the other."""
    data.mysql_table(tables[0], rows + 1, start=0)
    with data.mysql() as conn, conn.cursor() as cur:  # keys 1..rows: channels of equal size
        cur.execute(f"DELETE FROM `{tables[0]}` WHERE id > %s", (rows,))
    data.postgres_table(tables[1], 0, data.KEYLESS_POSTGRES_COLUMNS)
    mysql, postgres = _sources(lab)
    content = [
        sub_job(
            "copy",
            ("MYSQL", mysql, tables[0]),
            ("POSTGRESQL", postgres, tables[1]),
            sinks={"batchSize": 1000},
            settings=settings,
        )
    ]
    body = {"jobName": f"deploy-{tables[0]}", "content": content}
    return int(lab.client.post("/job", body)["id"])


def _submit(lab: Lab, job_id: int, route: str | None = None) -> str:
    body: dict[str, Any] = {"labels": {"route": route}} if route else {}
    return str(lab.client.post(f"/job/{job_id}/execute", body)["jobExecutionId"])


def _tasks(lab: Lab, eid: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = lab.client.get(f"/job/execution/{eid}/tasklist")["tasks"]
    return tasks


def _host_of(task: dict[str, Any]) -> str:
    return str(json.loads(task["linkisJobInfo"] or "{}").get("host", ""))


def _final(lab: Lab, eid: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = lab.client.get(f"/job/execution/{eid}/status")
        if status["allTaskStatus"]:
            return status
        assert time.monotonic() < deadline, f"execution {eid} not final in {timeout:g}s: {status}"
        time.sleep(0.25)


def _exact(tables: tuple[str, str]) -> None:
    """The sink holds every source row once: count, distinct keys, checksum."""
    source = data.checksum(data.mysql_rows(tables[0]))
    rows = data.postgres_rows(tables[1])
    assert len({row[0] for row in rows}) == len(rows)
    assert data.checksum(rows) == source


def test_channels_spread_over_the_hosts_and_a_routed_job_runs_on_its_host(
    lab: Lab, tables: tuple[str, str]
) -> None:
    job = _copy_job(lab, tables, 30_000, {"setting.speed.channel": 6})
    eid = _submit(lab, job)
    assert _final(lab, eid, 120)["status"] == "Success"
    hosts = {_host_of(t) for t in _tasks(lab, eid)}
    assert len(hosts) >= 2 and hosts <= {"h1", "h2", "h3"}, hosts
    _exact(tables)
    routed = _submit(lab, job, route="host-2")  # appends the rows a second time
    assert _final(lab, routed, 120)["status"] == "Success"
    assert {_host_of(t) for t in _tasks(lab, routed)} == {"h2"}
    assert len(data.postgres_rows(tables[1])) == 2 * 30_000


def test_a_host_lost_mid_transfer_ends_final_within_the_bound_and_the_sink_exact(
    lab: Lab, tables: tuple[str, str]
) -> None:
    rows = 30_000
    settings = {"setting.speed.channel": 6, "setting.speed.record": 2500}
    eid = _submit(lab, _copy_job(lab, tables, rows, settings))
    victim: Host | None = None
    deadline = time.monotonic() + 60
    while victim is None:
        assert time.monotonic() < deadline, _tasks(lab, eid)
        running = [t for t in _tasks(lab, eid) if t["status"] == "Running"]
        on = {_host_of(t) for t in running}
        if len(running) >= 4 and len(on) >= 2:
            victim = next(h for h in lab.hosts if h.name in on and not h.lost)
        time.sleep(0.2)
    lost_at = time.monotonic()
    lab.lose(victim)
    left = rows / 2500  # the whole transfer again, at most (the lost tasks rerun elsewhere)
    final = _final(lab, eid, LOSS_BOUND + left + 30)
    took = time.monotonic() - lost_at
    assert final["status"] == "Success", final
    assert took <= LOSS_BOUND + left + 30
    assert victim.name not in {_host_of(t) for t in _tasks(lab, eid)}  # all ran again elsewhere
    _exact(tables)
    counted = _metrics(lab)
    assert counted["exchangis_reaper_actions_total"].get("reap_lost_task", 0) >= 1
    assert counted["exchangis_task_retries_total"][""] >= 1


def _metrics(lab: Lab) -> dict[str, dict[str, float]]:
    """Scrape /metrics (the recipe asks for a token); return family → label value → value."""
    url = lab.base.split("/api/")[0] + "/metrics"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {lab.client.token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[next(iter(sample.labels.values()), "")] = sample.value
    return found
