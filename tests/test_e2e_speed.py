"""Speed limits end to end: the measured rate stays within 10 % of the limit over a 20 s run,
and no window of a second or more goes over 1.5 times the limit.

One execution runs both sub-jobs at once (the session worker has two processes): a record
limit (MEMORY → PostgreSQL) and a byte limit (MEMORY → SQLite). Their T1 metrics are sampled
while they run; each sample carries the worker's own ``elapsedMs``, so the windows are timed by
the worker, not by when the test happened to poll.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask

from exchangis.state.logs import LiveLog
from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import (
    create_job,
    datasource,
    execute,
    ok,
    signed_in,
    sub_job,
    tasks_by_name,
)
from tests.services import postgres_params

pytestmark = [pytest.mark.e2e, pytest.mark.data_path]

RECORDS_PER_S = 1000
RECORD_ROWS = 21_000  # 21 s at the limit
BYTES_PER_S = 40_000
BYTE_ROWS = 24_000  # about 37 Arrow bytes a row: about 22 s at the limit
MIN_SECONDS = 20
TOLERANCE = 0.10
WINDOW_S = 1.0
WINDOW_MAX = 1.5


@dataclass
class Run:
    """What one speed-limited task did: samples ``(elapsed s, records, bytes)`` and totals."""

    task_id: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    final: dict[str, int] = field(default_factory=dict)
    status: str = ""
    log: str = ""

    def add(self, metrics: dict[str, int]) -> None:
        """Keep a sample when the worker published a new one."""
        sample = (metrics["elapsedMs"] / 1000, metrics["readRecords"], metrics["bytes"])
        if sample[1] and (not self.samples or sample[0] > self.samples[-1][0]):
            self.samples.append(sample)

    def windows(self, column: int) -> list[float]:
        """Rates over each window from a sample to the first one at least ``WINDOW_S`` later."""
        rates = []
        j = 0
        for i, start in enumerate(self.samples):
            j = max(j, i + 1)
            while j < len(self.samples) and self.samples[j][0] - start[0] < WINDOW_S:
                j += 1
            if j == len(self.samples):
                break
            end = self.samples[j]
            rates.append((end[column] - start[column]) / (end[0] - start[0]))
        return rates


@pytest.fixture(scope="module")
def runs(
    app: Flask,
    worker: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
    admin_token: str,
) -> Iterator[dict[str, Run]]:
    """Run the record-limited and the byte-limited sub-jobs together; sample their metrics."""
    client = signed_in(app, admin_token)
    run_id = uuid.uuid4().hex[:8]
    table = f"e2e_speed_{run_id}"
    lite_path = tmp_path_factory.mktemp("speed") / "speed.db"
    memory = datasource(client, f"mem-speed-{run_id}", "MEMORY", {})
    pg = datasource(client, f"pg-speed-{run_id}", "POSTGRESQL", postgres_params())
    lite = datasource(client, f"lite-speed-{run_id}", "SQLITE", {"path": str(lite_path)})
    job_id = create_job(
        client,
        f"speed-{run_id}",
        [
            sub_job(
                "records",
                ("MEMORY", memory, "gen"),
                ("POSTGRESQL", pg, table),
                sources={"rows": RECORD_ROWS},
                settings={"setting.speed.record": RECORDS_PER_S},
            ),
            sub_job(
                "bytes",
                ("MEMORY", memory, "gen"),
                ("SQLITE", lite, "out"),
                sources={"rows": BYTE_ROWS},
                settings={"setting.speed.byte": BYTES_PER_S},
            ),
        ],
    )
    try:
        eid = execute(client, job_id)
        result = {
            name: Run(int(task["taskId"])) for name, task in tasks_by_name(client, eid).items()
        }

        def metrics(run: Run) -> dict[str, int]:
            task = ok(
                client,
                "POST",
                f"/task/execution/{run.task_id}/metrics",
                {"jobExecutionId": eid},
            )["task"]
            run.status = task["status"]
            return {
                "elapsedMs": task["metrics"]["elapsedMs"],
                "readRecords": task["metrics"]["readRecords"],
                "bytes": task["metrics"]["bytes"],
            }

        deadline = time.monotonic() + 90
        while not ok(client, "GET", f"/job/execution/{eid}/status")["allTaskStatus"]:
            assert time.monotonic() < deadline, "the speed-limited execution did not finish"
            for run in result.values():
                run.add(metrics(run))
            time.sleep(0.1)
        rt = app.extensions["exchangis"]
        for run in result.values():
            run.final = metrics(run)
            key = rt.keys.task_log(run.task_id)
            run.log = "\n".join(text for _, text in LiveLog(rt.redis, key).fetch(1, 100_000))
        with data.postgres() as conn:
            result["records"].final["sink_rows"] = conn.execute(
                f'SELECT count(*) FROM "{table}"'
            ).fetchone()[0]
        with sqlite3.connect(lite_path) as conn:
            result["bytes"].final["sink_rows"] = conn.execute(
                "SELECT count(*) FROM out"
            ).fetchone()[0]
        yield result
    finally:
        data.drop(postgres_tables=[table])


def _check_rate(run: Run, column: int, total_key: str, limit: int, rows: int) -> None:
    """Assert the rate over the run, over its steady part, and over every 1 s window."""
    assert run.status == "Success", run.log[-3000:]
    assert run.final["readRecords"] == rows and run.final["sink_rows"] == rows
    seconds = run.final["elapsedMs"] / 1000
    total = run.final[total_key]
    assert seconds >= MIN_SECONDS, f"the run took {seconds:.1f}s only: {run.log[-2000:]}"
    overall = total / seconds
    assert abs(overall - limit) <= TOLERANCE * limit, (overall, limit, seconds)
    first, last = run.samples[0], run.samples[-1]
    steady = (last[column] - first[column]) / (last[0] - first[0])
    assert abs(steady - limit) <= TOLERANCE * limit, (steady, limit)
    windows = run.windows(column)
    assert len(windows) >= 3 * MIN_SECONDS, f"too few samples: {len(run.samples)}"
    assert max(windows) <= WINDOW_MAX * limit, (max(windows), limit, run.samples)
    assert abs(statistics.median(windows) - limit) <= TOLERANCE * limit, windows
    print(
        f"limit {limit}/s: overall {overall:.0f}/s over {seconds:.1f}s, steady {steady:.0f}/s, "
        f"1-s windows min {min(windows):.0f} median {statistics.median(windows):.0f} "
        f"max {max(windows):.0f} ({len(windows)} windows)"
    )


def test_record_speed_limit_holds_smoothly_over_twenty_seconds(runs: dict[str, Run]) -> None:
    _check_rate(runs["records"], 1, "readRecords", RECORDS_PER_S, RECORD_ROWS)
    assert "batch size 250" in runs["records"].log  # a quarter of a second's records


def test_byte_speed_limit_holds_smoothly_over_twenty_seconds(runs: dict[str, Run]) -> None:
    _check_rate(runs["bytes"], 2, "bytes", BYTES_PER_S, BYTE_ROWS)
