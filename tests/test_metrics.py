"""``/metrics``: counters equal the API's own figures after a known set of executions, survive
restarts and an emptied Redis; the exposition parses; who may read it."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from exchangis.app import create_app
from exchangis.embedded import free_port
from exchangis.migrations import upgrade
from exchangis.models import counter
from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.settings import Settings, SettingsError, load_settings
from tests import metadata
from tests.conftest import METADATA_ENV, ROOT, OwnDeployment
from tests.helpers import (
    create_job,
    datasource,
    execute,
    ok,
    signed_in,
    sub_job,
    tasks_by_name,
    wait_for,
    wait_until_done,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient, **kwargs: Any) -> Samples:
    """GET /metrics; return every sample, checked by the Prometheus text parser."""
    answer = client.get("/metrics", **kwargs)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        assert family.name.startswith("exchangis_")
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value."""
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def fresh(migrated: Settings, tmp_path: Path) -> Iterator[tuple[OwnDeployment, str]]:
    """A deployment on a metadata database of its own (every counter starts at zero), with an
    admin of its own."""
    run = uuid.uuid4().hex[:8]
    postgres = os.environ.get(METADATA_ENV) == "postgresql"
    database = f"exgmetrics_{run}"
    url = metadata.metadata_database(database) if postgres else f"sqlite:///{tmp_path / 'm.db'}"
    settings = migrated.with_overrides(
        {"database_url": url, "redis_prefix": f"exgmet-{run}:", "task_queue": f"met-{run}"}
    )
    upgrade(url)
    rt = Runtime(settings)
    users.create_user(rt, "admin", "admin-password-" + run, admin=True)
    token = str(users.issue_token(rt, "admin")["token"])
    rt.close()
    own = OwnDeployment(settings, token, tmp_path / "deployment")
    try:
        yield own, token
    finally:
        own.close()
        if postgres:
            metadata.drop_database(database)


def _job(client: FlaskClient, name: str, memory: int, lite: int, *specs: dict[str, Any]) -> int:
    return create_job(
        client,
        name,
        [
            sub_job(
                f"t{k}",
                ("MEMORY", memory, "gen"),
                ("SQLITE", lite, f"{name}_{k}"),
                sources={"batchSize": 50, **spec},
            )
            for k, spec in enumerate(specs)
        ],
    )


@pytest.mark.e2e
def test_counters_equal_the_api_figures_and_survive_restarts_and_an_emptied_redis(
    fresh: tuple[OwnDeployment, str],
) -> None:
    own, token = fresh
    client = own.client
    own.worker()
    empty = scrape(client)
    assert value(empty, "exchangis_executions_total", status="Success") == 0
    assert value(empty, "exchangis_rows_total", direction="written") == 0
    assert value(empty, "exchangis_task_duration_seconds_count") == 0
    assert value(empty, "exchangis_metadata_up") == 1
    assert value(empty, "exchangis_live_state_up") == 1

    memory = datasource(client, "mem", "MEMORY", {})
    lite = datasource(client, "lite", "SQLITE", {"path": str(own.workdir / "sink.db")})
    good = _job(client, "good", memory, lite, {"rows": 300}, {"rows": 120})
    bad = _job(client, "bad", memory, lite, {"rows": 300, "failAtRow": 120})
    partial = _job(client, "partial", memory, lite, {"rows": 200}, {"rows": 200, "failAtRow": 20})
    slow = _job(client, "slow", memory, lite, {"rows": 5000, "sleepPerBatch": 0.5})
    ran = [execute(client, good), execute(client, bad), execute(client, good)]
    ran.append(execute(client, partial, permit=True))
    killed = execute(client, slow)
    wait_for(lambda: tasks_by_name(client, killed)["t0"]["status"] == "Running", timeout=60)
    assert value(scrape(client), "exchangis_running_tasks") >= 1
    ok(client, "POST", f"/job/execution/{killed}/kill")
    for eid in [*ran, killed]:
        wait_until_done(client, eid)
    # the API's own figures: statuses from the history, rows from each task's metrics
    history = ok(client, "GET", "/job/listJobs?size=50&timeFilter=4")["jobList"]
    statuses = Counter(item["status"] for item in history)
    assert statuses == {"Success": 2, "Failed": 1, "Partial_Success": 1, "Cancelled": 1}
    tasks = [
        ok(client, "POST", f"/task/execution/{t['taskId']}/metrics", {"jobExecutionId": eid})[
            "task"
        ]
        for eid in [*ran, killed]
        for t in ok(client, "GET", f"/job/execution/{eid}/tasklist")["tasks"]
    ]
    written = sum(t["metrics"]["indicator"]["exchangedRecords"] for t in tasks)
    read = sum(t["metrics"]["readRecords"] for t in tasks)
    landed = [
        t["metrics"]["indicator"]["exchangedRecords"] for t in tasks if t["status"] == "Success"
    ]
    assert sum(landed) == 2 * 420 + 200

    def check(samples: Samples) -> None:
        for status in ("Success", "Failed", "Partial_Success", "Cancelled", "Timeout"):
            assert value(samples, "exchangis_executions_total", status=status) == statuses.get(
                status, 0
            ), status
        assert value(samples, "exchangis_tasks_total", status="Success") == 5
        assert value(samples, "exchangis_tasks_total", status="Failed") == 2
        assert value(samples, "exchangis_tasks_total", status="Cancelled") == 1
        assert value(samples, "exchangis_rows_total", direction="written") == written
        assert value(samples, "exchangis_rows_total", direction="read") == read
        assert value(samples, "exchangis_task_duration_seconds_count") == 8
        assert value(samples, "exchangis_task_duration_seconds_bucket", le="+Inf") == 8
        assert value(samples, "exchangis_task_queue_wait_seconds_count") == 8
        assert value(samples, "exchangis_running_tasks") == 0
        assert value(samples, "exchangis_unfinished_executions") == 0

    after = scrape(client)
    check(after)
    assert value(after, "exchangis_bytes_total") > 0
    assert value(after, "exchangis_task_duration_seconds_sum") > 0

    # another API process (a restart, or another gunicorn worker) reads the same figures
    other = signed_in(create_app(own.settings), token)
    check(scrape(other))
    # a worker restarted and Redis emptied: the counters stay; the live gauges read empty
    own.workers[0].stop()
    for key in own.rt.redis.scan_iter(own.rt.keys.pattern(), count=1000):
        own.rt.redis.delete(key)
    own.worker()
    check(scrape(client))
    # the durable record decides: completing an execution again never counts it twice
    from exchangis.engine import finalize

    finalize.complete(own.rt, ran[0])
    check(scrape(client))


def test_the_counters_table_adds_in_one_statement_on_each_metadata_database(rt: Runtime) -> None:
    name = f"exchangis_test_{uuid.uuid4().hex[:8]}_total"
    with rt.sessions.begin() as session:
        counter.add(session, [(name, {"k": "a"}, 1), (name, {"k": "a"}, 2), (name, {}, 0.5)])
    with rt.sessions.begin() as session:
        counter.add(session, [(name, {"k": "a"}, 4)])
    with rt.sessions() as session:
        found = {counter.label_key(ls): v for n, ls, v in counter.read_all(session) if n == name}
    assert found == {'{"k":"a"}': 7.0, "{}": 0.5}


def test_a_histogram_observation_lands_in_its_bucket() -> None:
    histogram = counter.Histogram("h", (0.5, 1.0))
    assert histogram.observe(0.5)[0] == ("h_bucket", {"le": "0.5"}, 1.0)
    assert histogram.observe(0.7)[0] == ("h_bucket", {"le": "1.0"}, 1.0)
    assert histogram.observe(9)[0] == ("h_bucket", {"le": "+Inf"}, 1.0)
    assert histogram.observe(9)[1] == ("h_sum", {}, 9.0)


def test_who_may_read_metrics(migrated: Settings, admin_token: str) -> None:
    def app_with(access: str) -> FlaskClient:
        return create_app(migrated.with_overrides({"metrics_access": access})).test_client()

    loopback = app_with("loopback")
    assert loopback.get("/metrics").status_code == 200
    # from elsewhere, or through a proxy on this host: a token
    far = {"REMOTE_ADDR": "10.1.2.3"}
    assert loopback.get("/metrics", environ_base=far).status_code == 401
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    assert loopback.get("/metrics", headers=proxied).status_code == 401
    bearer = {"Authorization": f"Bearer {admin_token}"}
    assert loopback.get("/metrics", environ_base=far, headers=bearer).status_code == 200
    token = app_with("token")
    assert token.get("/metrics").status_code == 401
    assert token.get("/metrics", headers=bearer).status_code == 200
    assert app_with("open").get("/metrics", environ_base=far).status_code == 200
    with pytest.raises(SettingsError, match="metrics_access"):
        load_settings({"metrics_access": "everyone"}, environ={})


def test_the_grafana_dashboard_asks_only_for_metrics_we_export(app: Flask) -> None:
    exported = app.test_client().get("/metrics").get_data(as_text=True)
    dashboard = json.loads((ROOT / "docs" / "grafana" / "exchangis.json").read_text())
    wanted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"exchangis_[a-z_]+", target["expr"])
    }
    assert len(wanted) >= 15
    missing = {name for name in wanted if not re.search(rf"^(# \w+ )?{name}\b", exported, re.M)}
    assert missing == set()


def test_a_store_that_cannot_be_read_is_a_zero_not_an_error(migrated: Settings) -> None:
    port = free_port()  # nothing listens there: connections are refused
    no_sql = create_app(
        migrated.with_overrides({"database_url": f"postgresql+psycopg://x@127.0.0.1:{port}/x"})
    )
    samples = scrape(no_sql.test_client())
    assert value(samples, "exchangis_metadata_up") == 0
    assert value(samples, "exchangis_live_state_up") == 1
    assert not any(name == "exchangis_executions_total" for name, _ in samples)
    no_redis = create_app(migrated.with_overrides({"redis_url": f"redis://127.0.0.1:{port}/0"}))
    samples = scrape(no_redis.test_client())
    assert value(samples, "exchangis_metadata_up") == 1
    assert value(samples, "exchangis_live_state_up") == 0
    assert ("exchangis_executions_total", (("status", "Success"),)) in samples  # the counters
