"""End to end: sink write modes (upsert, overwrite, createTable) through the API and a worker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.conftest import WorkerProcess
from tests.helpers import (
    call,
    create_job,
    data_log,
    execute,
    ok,
    sub_job,
    tasks_by_name,
    wait_until_done,
)

pytestmark = pytest.mark.e2e


def test_upsert_into_postgres_and_mariadb_updates_and_inserts_value_for_value(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    # Sources: keys 1..300 (the first one is 2**53 + 1). Sinks: keys 151..400 with other values,
    # so 151..300 (and 2**53 + 1) are updated, 2..150 inserted and 301..400 left as they were.
    data.mysql_table(tables["my_src"], 300)
    data.postgres_table(tables["pg_src"], 300)
    data.postgres_table(tables["pg_dst"], 250, start=151)
    data.mysql_table(tables["my_dst"], 250, start=151)
    with data.postgres() as pg:
        pg.execute(f"UPDATE \"{tables['pg_dst']}\" SET name = 'stale ' || id, amount = 0")
    with data.mysql() as my, my.cursor() as cur:
        cur.execute(f"UPDATE `{tables['my_dst']}` SET name = CONCAT('stale ', id), amount = 0")
    kept_pg = [r for r in data.postgres_rows(tables["pg_dst"]) if 300 < r[0] < 10**6]
    kept_my = [r for r in data.mysql_rows(tables["my_dst"]) if 300 < r[0] < 10**6]
    assert len(kept_pg) == len(kept_my) == 100
    job_id = create_job(
        client,
        "upsert",
        [
            sub_job(
                "my-to-pg",
                ("MYSQL", sources["MYSQL"], tables["my_src"]),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                sources={"batchSize": 64},
                sinks={"writeMode": "upsert", "primaryKeys": ["id"]},
            ),
            sub_job(
                "pg-to-my",
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_src"]),
                ("MYSQL", sources["MYSQL"], tables["my_dst"]),
                sources={"batchSize": 64},
                sinks={"writeMode": "upsert", "primaryKeys": "id", "createTable": False},
            ),
        ],
    )

    eid = execute(client, job_id)
    final = wait_until_done(client, eid, timeout=120)

    assert final["status"] == "Success", data_log(client, eid)
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == data.checksum(
        data.mysql_rows(tables["my_src"]) + kept_pg
    )
    assert data.checksum(data.mysql_rows(tables["my_dst"])) == data.checksum(
        data.postgres_rows(tables["pg_src"]) + kept_my
    )
    assert len(data.postgres_rows(tables["pg_dst"])) == 400
    tasks = tasks_by_name(client, eid)
    assert "writeMode=upsert" in data_log(client, eid, tasks["my-to-pg"]["taskId"])


def test_overwrite_is_atomic_a_failed_task_leaves_the_old_rows(
    client: FlaskClient,
    worker: WorkerProcess,
    sources: dict[str, int],
    tables: dict[str, str],
) -> None:
    data.postgres_table(tables["pg_dst"], 5, start=100_000)
    data.mysql_table(tables["my_dst"], 7, start=100_000)
    before = data.checksum(data.postgres_rows(tables["pg_dst"]))
    mapping = [("id", "id"), ("name", "name"), ("amount", "amount")]
    job_id = create_job(
        client,
        "overwrite",
        [
            sub_job(
                "fails",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"]),
                sources={"rows": 3000, "failAtRow": 2500, "batchSize": 100},
                sinks={"writeMode": "overwrite", "batchSize": 100},
                mapping=mapping,
            ),
            sub_job(
                "replaces",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("MYSQL", sources["MYSQL"], tables["my_dst"]),
                sources={"rows": 300, "batchSize": 100},
                sinks={"writeMode": "overwrite"},
                mapping=mapping,
            ),
        ],
    )

    eid = execute(client, job_id, permit=True)
    final = wait_until_done(client, eid, timeout=120)

    assert final["status"] == "Partial_Success"
    tasks = tasks_by_name(client, eid)
    assert tasks["fails"]["status"] == "Failed" and tasks["replaces"]["status"] == "Success"
    assert data.checksum(data.postgres_rows(tables["pg_dst"])) == before
    replaced = data.mysql_rows(tables["my_dst"])
    assert sorted(r[:3] for r in replaced) == [
        (i, f"name-{i}", Decimal(i).scaleb(-2)) for i in range(1, 301)
    ]
    assert all(r[3:] == (None,) * 5 for r in replaced)
    log = data_log(client, eid, tasks["fails"]["taskId"])
    assert "injected failure at row 2500" in log and "rolled back" in log


def test_create_table_false_with_a_missing_table_fails_the_task_clearly(
    client: FlaskClient, worker: WorkerProcess, sources: dict[str, int], run_id: str
) -> None:
    table = f"missing_{run_id}"
    job_id = create_job(
        client,
        "nocreate",
        [
            sub_job(
                "a",
                ("MEMORY", sources["MEMORY"], "gen"),
                ("SQLITE", sources["SQLITE"], table),
                sources={"rows": 10},
                sinks={"createTable": False},
            )
        ],
    )

    eid = execute(client, job_id)
    final = wait_until_done(client, eid, timeout=60)

    assert final["status"] == "Failed"
    tid = tasks_by_name(client, eid)["a"]["taskId"]
    output = ok(client, "GET", f"/task/execution/{tid}/output?jobExecutionId={eid}")
    message = f"table {table} does not exist and createTable is false"
    assert output["status"] == "Failed" and output["attempts"] == 1
    assert output["error"] == message
    assert message in data_log(client, eid, tid)


def test_upsert_and_create_table_are_checked_at_job_save(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str]
) -> None:
    field = "content[0].dataSources.sink.options"
    memory = ("MEMORY", sources["MEMORY"], "gen")
    pg = ("POSTGRESQL", sources["POSTGRESQL"], tables["pg_dst"])
    cases = [
        (
            sub_job(
                "a", memory, ("FILE", sources["FILE"], "out.csv"), sinks={"writeMode": "upsert"}
            ),
            "content[0] (a): FILE sinks lack the capability upsert",
        ),
        (
            sub_job("a", memory, ("FILE", sources["FILE"], "out.csv"), sinks={"primaryKeys": "id"}),
            "unknown option(s) primaryKeys for FILE sink",
        ),
        (
            sub_job("a", memory, pg, sinks={"writeMode": "upsert"}),
            "writeMode upsert needs option primaryKeys",
        ),
        (
            sub_job("a", memory, pg, sinks={"writeMode": "upsert", "primaryKeys": "id, id"}),
            "option primaryKeys: names a column twice",
        ),
        (
            sub_job(
                "a",
                memory,
                pg,
                sinks={"writeMode": "upsert", "primaryKeys": ["id", "code"]},
                mapping=[("id", "id"), ("name", "name")],
            ),
            "option primaryKeys: code not among the written columns (id, name)",
        ),
        (
            sub_job("a", memory, pg, sinks={"createTable": "maybe"}),
            "option createTable must be true or false, got 'maybe'",
        ),
    ]
    before = ok(client, "GET", "/job?size=1")["total"]
    for content, message in cases:
        reply = call(client, "POST", "/job", {"jobName": "bad", "content": [content]}, expect=400)
        assert message in reply["message"], reply
        if "unknown option" not in message:
            assert reply["data"]["errors"] == {field: [reply["message"].split(": ", 1)[1]]}
    assert ok(client, "GET", "/job?size=1")["total"] == before
    good = sub_job(
        "a",
        memory,
        pg,
        sinks={"writeMode": "upsert", "primaryKeys": "id", "createTable": "false"},
        mapping=[("id", "id"), ("name", "name")],
    )
    create_job(client, "good", [good])
