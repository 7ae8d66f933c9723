"""Error records end to end: bad rows set apart, counted, sampled, and the error limits."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.helpers import create_job, data_log, execute, ok, sub_job, tasks_by_name, wait_until_done

pytestmark = pytest.mark.e2e

ROWS = 200
IDS = [9_007_199_254_740_993, *range(2, ROWS + 1)]  # data.mixed_rows: the first id is 2**53 + 1
BAD = [i for i in IDS if i % 50 == 7]  # 7, 57, 107, 157: the sinks refuse them
PG_SINK = data.POSTGRES_COLUMNS + ", CHECK (id % 50 <> 7)"
MY_SINK = data.MYSQL_COLUMNS + ", CHECK (id % 50 <> 7)"

# sub-job name -> (sink kind, settings, expected task status, text expected in the task error)
CASES: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "pg-within-record-limit": ("pg", {"setting.errorLimit.record": 5}, "Success", ""),
    "pg-over-record-limit": (
        "pg",
        {"setting.errorLimit.record": 3},
        "Failed",
        "4 error records exceed setting.errorLimit.record 3",
    ),
    "pg-within-percentage": ("pg", {"setting.errorLimit.percentage": 0.025}, "Success", ""),
    "pg-over-percentage": (
        "pg",
        {"setting.errorLimit.percentage": 0.015},
        "Failed",
        "(2.00%) exceed setting.errorLimit.percentage 0.015",
    ),
    "pg-record-wins": (
        "pg",
        {"setting.errorLimit.record": 10, "setting.errorLimit.percentage": 0.001},
        "Success",
        "",
    ),
    "pg-no-limit": ("pg", {}, "Failed", "error records exceed setting.errorLimit.record 0"),
    "my-within-record-limit": ("my", {"setting.errorLimit.record": 4}, "Success", ""),
    "my-over-record-limit": (
        "my",
        {"setting.errorLimit.record": 1},
        "Failed",
        "exceed setting.errorLimit.record 1",
    ),
}


@pytest.mark.usefixtures("worker")
def test_error_records_and_limits(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str], run_id: str
) -> None:
    data.mysql_table(tables["my_src"], ROWS)
    sinks: dict[str, str] = {}
    content = []
    for name, (kind, settings, _, _) in CASES.items():
        table = f"e2e_err_{name.replace('-', '_')}_{run_id}"
        sinks[name] = table
        if kind == "pg":
            data.postgres_table(table, 0, PG_SINK)
            sink = ("POSTGRESQL", sources["POSTGRESQL"], table)
        else:
            data.mysql_table(table, 0, MY_SINK)
            sink = ("MYSQL", sources["MYSQL"], table)
        content.append(
            sub_job(name, ("MYSQL", sources["MYSQL"], tables["my_src"]), sink, settings=settings)
        )
    try:
        eid = execute(client, create_job(client, f"dirty-{run_id}", content), permit=True)
        wait_until_done(client, eid, timeout=180)
        tasks = tasks_by_name(client, eid)
        for name, (kind, _, status, error) in CASES.items():
            task = tasks[name]
            assert task["status"] == status, (name, task)
            rows = (data.postgres_rows if kind == "pg" else data.mysql_rows)(sinks[name])
            output = ok(
                client,
                "GET",
                f"/task/execution/{task['taskId']}/output?jobExecutionId={eid}",
            )
            if status == "Success":
                assert sorted(r[0] for r in rows) == sorted(set(IDS) - set(BAD)), name
                assert output["errorRecords"] == len(BAD), name
                assert output["writtenRecords"] == ROWS - len(BAD), name
                log = data_log(client, eid, int(task["taskId"]))
                assert "Error record 1: {" in log and "Error record 4: {" in log, name
                assert '"id": 57' in log, name
            else:
                assert rows == [], name  # the sink was rolled back: no partial write
                assert error in (output["error"] or ""), (name, output)
        metrics = ok(
            client,
            "POST",
            f"/task/execution/{tasks['pg-within-record-limit']['taskId']}/metrics",
            {"jobExecutionId": eid},
        )["task"]["metrics"]
        assert metrics["indicator"]["errorRecords"] == len(BAD)
        assert metrics["indicator"]["exchangedRecords"] == ROWS - len(BAD)
    finally:
        data.drop(
            [t for n, t in sinks.items() if CASES[n][0] == "my"],
            [t for n, t in sinks.items() if CASES[n][0] == "pg"],
        )


@pytest.mark.usefixtures("worker")
def test_a_mysql_zero_date_fails_the_task_naming_column_and_row(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str], run_id: str
) -> None:
    # The bulk reader (connectorx) stops at the zero date without naming it: the runner rolls
    # back and reads again with the driver, whose error names the column and the row.
    source, sink = tables["my_src"], tables["pg_dst"]
    with data.mysql() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"CREATE TABLE `{source}` (id BIGINT PRIMARY KEY, d DATE)")
        cur.executemany(
            f"INSERT INTO `{source}` VALUES (%s, %s)",
            [(1, "2024-01-01"), (2, "2024-01-02"), (3, "0000-00-00"), (4, "2024-01-04")],
        )
    data.postgres_table(sink, 0, "id BIGINT PRIMARY KEY, d DATE")
    job = create_job(
        client,
        f"zero-{run_id}",
        [
            sub_job(
                "zero",
                ("MYSQL", sources["MYSQL"], source),
                ("POSTGRESQL", sources["POSTGRESQL"], sink),
            )
        ],
    )
    eid = execute(client, job)
    assert wait_until_done(client, eid)["status"] == "Failed"
    task = tasks_by_name(client, eid)["zero"]
    output = ok(client, "GET", f"/task/execution/{task['taskId']}/output?jobExecutionId={eid}")
    assert "column 'd', row 3" in output["error"] and "0000-00-00" in output["error"]
    log = data_log(client, eid, int(task["taskId"]))
    assert "row-level reads and writes" in log  # the bulk read handed over to the driver
    assert data.postgres_rows(sink) == []
