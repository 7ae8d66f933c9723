"""Progress end to end (issue 15, defect 1): a running task's published progress follows the
rows it moved, rises in steps the released UI prints as short percentages (it shows
``progress * 100`` then ``%``), stays below 1.0 while it runs and ends at exactly 1.0.

Each run is paced by ``setting.speed.record`` to last more than 10 s on a real worker. The test
samples the live task hash (progress and rows read are written together, in one call) and the
UI's progress call (E4).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import create_job, datasource, execute, js_number, ok, sub_job, tasks_by_name
from tests.services import mysql_params, postgres_params

pytestmark = [pytest.mark.e2e, pytest.mark.data_path]

MIN_SECONDS = 10
BIG_ROWS = 1_000_500
"""More rows than the row-bounded count of old could count (1,000,000): it gave up, and
progress read 0 for the whole run."""
WHERE = "id > 250"
WHERE_ROWS = BIG_ROWS - 250
BIG_SPEED = 95_000  # rows/s: 10.5 s
STALE_ROWS = 2000
STALE_FIGURE = 20
STALE_SPEED = 180  # rows/s: 11.1 s


@dataclass
class Trace:
    """What one task published while it ran, and how it ended."""

    rows: int
    """The rows its read selects."""
    samples: list[tuple[float, int]] = field(default_factory=list)
    """``(progress, read_records)`` pairs seen while it was Running."""
    shown: list[float] = field(default_factory=list)
    """Its progress as E4 answered it, poll after poll."""
    final: dict[str, str] = field(default_factory=dict)


def follow(client: FlaskClient, eid: str, rows: dict[str, int]) -> tuple[dict[str, Trace], list]:
    """Poll the execution until it is done; return each task's trace and E4's job progress."""
    rt = client.application.extensions["exchangis"]
    ids = {name: int(task["taskId"]) for name, task in tasks_by_name(client, eid).items()}
    traces = {name: Trace(rows[name]) for name in ids}
    job: list[float] = []

    def poll_e4() -> None:
        answer = ok(client, "GET", f"/job/execution/{eid}/progress")["job"]
        job.append(answer["progress"])
        for group in answer["tasks"].values():
            for task in group:
                traces[task["name"]].shown.append(task["progress"])

    deadline = time.monotonic() + 90
    while not ok(client, "GET", f"/job/execution/{eid}/status")["allTaskStatus"]:
        assert time.monotonic() < deadline, "the paced execution did not finish"
        for name, tid in ids.items():
            live = rt.store.task(tid) or {}
            if live.get("status") == "Running" and "read_records" in live:
                traces[name].samples.append((float(live["progress"]), int(live["read_records"])))
        poll_e4()
        time.sleep(0.1)
    for name, tid in ids.items():
        traces[name].final = rt.store.task(tid) or {}
    poll_e4()
    return traces, job


def check_rises(values: list[float], what: str) -> None:
    """Assert ``values`` never go back and each prints as a short percentage."""
    assert values == sorted(values), f"{what} went backwards: {values}"
    long = [v for v in values if len(js_number(v * 100).partition(".")[2]) > 1]
    assert not long, f"{what} shows long percentages: {[js_number(v * 100) for v in long]}"


def check_task(name: str, trace: Trace) -> None:
    """Assert a task's progress was credible from start to end."""
    final = trace.final
    assert final.get("status") == "Success", final
    assert int(final["read_records"]) == trace.rows
    assert int(final["elapsed_ms"]) >= MIN_SECONDS * 1000, f"{name} ran too briefly: {final}"
    values = [p for p, _ in trace.samples]
    check_rises(values, name)
    steps = sorted({v for v in values if v > 0})
    assert len(steps) >= 5, f"{name} rose in {len(steps)} steps only: {values}"
    assert max(values) < 1.0, f"{name} reached 1.0 before it succeeded"
    gaps = [abs(p - r / trace.rows) for p, r in trace.samples]
    off = [pair for pair, gap in zip(trace.samples, gaps, strict=True) if gap > 0.05]
    assert not off, f"{name}: progress away from the rows read (of {trace.rows}): {off[:5]}"
    print(
        f"{name}: {len(steps)} steps from {steps[0]} to {steps[-1]} in "
        f"{int(final['elapsed_ms']) / 1000:.1f}s, at most {max(gaps):.3f} from rows read"
    )
    check_rises([v for v in trace.shown if v < 1.0], f"{name} (E4)")
    assert trace.shown[-1] == 1.0 and float(final["progress"]) == 1.0


@pytest.fixture
def names() -> dict[str, str]:
    """Table names for one test."""
    run = uuid.uuid4().hex[:8]
    return {k: f"e2e_progress_{k}_{run}" for k in ("src", "whole", "where", "stale")}


def test_progress_rises_on_a_never_analysed_table_and_a_where_sub_job(
    client: FlaskClient, worker: WorkerProcess, names: dict[str, str], run_id: str
) -> None:
    src = names["src"]
    try:
        with data.postgres() as conn:
            conn.execute(
                f'CREATE TABLE "{src}" (id bigint PRIMARY KEY, name text)'
                " WITH (autovacuum_enabled = false)"
            )
            conn.execute(
                f"INSERT INTO \"{src}\" SELECT g, 'row ' || g FROM generate_series(1, {BIG_ROWS}) g"
            )
            for sink in (names["whole"], names["where"]):
                conn.execute(f'CREATE TABLE "{sink}" (id bigint, name text)')
            reltuples = conn.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (f'"{src}"',)
            ).fetchone()[0]
        assert reltuples <= 0, "the source table must never have been analysed"
        pg = datasource(client, f"pg-progress-{run_id}", "POSTGRESQL", postgres_params())
        paced: dict[str, Any] = {"setting.speed.record": BIG_SPEED}
        job = create_job(
            client,
            f"progress-pg-{run_id}",
            [
                sub_job(
                    "whole",
                    ("POSTGRESQL", pg, src),
                    ("POSTGRESQL", pg, names["whole"]),
                    settings=paced,
                ),
                sub_job(
                    "where",
                    ("POSTGRESQL", pg, src),
                    ("POSTGRESQL", pg, names["where"]),
                    sources={"where": WHERE},
                    settings=paced,
                ),
            ],
        )

        traces, job_progress = follow(
            client, execute(client, job), {"whole": BIG_ROWS, "where": WHERE_ROWS}
        )

        for name, trace in traces.items():
            check_task(name, trace)
        check_rises(job_progress[:-1], "the job's progress")
        assert job_progress[-1] == 1.0
    finally:
        data.drop(postgres_tables=[src, names["whole"], names["where"]])


def test_progress_follows_the_rows_past_a_stale_catalog_figure(
    client: FlaskClient, worker: WorkerProcess, names: dict[str, str], run_id: str
) -> None:
    src, sink = names["stale"], names["whole"]
    try:
        with data.mysql() as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE `{src}` (id BIGINT PRIMARY KEY, name VARCHAR(40))"
                " STATS_PERSISTENT=1 STATS_AUTO_RECALC=0"
            )
            cur.execute(
                f"INSERT INTO `{src}` SELECT seq, CONCAT('row ', seq) FROM seq_1_to_{STALE_ROWS}"
            )
            # InnoDB's sampled statistics of a big table can be far off; set by hand here
            cur.execute(f"ANALYZE TABLE `{src}`")
            cur.execute(
                f"UPDATE mysql.innodb_table_stats SET n_rows = {STALE_FIGURE}"
                f" WHERE database_name = DATABASE() AND table_name = '{src}'"
            )
            cur.execute(f"FLUSH TABLES `{src}`")
            cur.execute(f"RENAME TABLE `{src}` TO `{src}_x`")
            cur.execute(f"RENAME TABLE `{src}_x` TO `{src}`")
            cur.execute(
                "SELECT table_rows FROM information_schema.tables"
                f" WHERE table_schema = DATABASE() AND table_name = '{src}'"
            )
            assert cur.fetchone()[0] == STALE_FIGURE
        with data.postgres() as conn:
            conn.execute(f'CREATE TABLE "{sink}" (id bigint, name text)')
        my = datasource(client, f"my-progress-{run_id}", "MYSQL", mysql_params())
        pg = datasource(client, f"pg-progress-{run_id}", "POSTGRESQL", postgres_params())
        job = create_job(
            client,
            f"progress-my-{run_id}",
            [
                sub_job(
                    "stale",
                    ("MYSQL", my, src),
                    ("POSTGRESQL", pg, sink),
                    settings={"setting.speed.record": STALE_SPEED},
                )
            ],
        )

        traces, job_progress = follow(client, execute(client, job), {"stale": STALE_ROWS})

        check_task("stale", traces["stale"])
        check_rises(job_progress[:-1], "the job's progress")
        assert job_progress[-1] == 1.0
    finally:
        data.drop(mysql_tables=[src], postgres_tables=[sink])
