"""Parallel channels end to end: a sub-job cut into key ranges, each a task on any worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.helpers import create_job, execute, ok, sub_job, tasks_by_name, wait_until_done

pytestmark = pytest.mark.e2e

ROWS = 1000
COLUMNS = "id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(12,2)"
PG_COLUMNS = "id BIGINT PRIMARY KEY, name VARCHAR(40), amount NUMERIC(12,2)"
OLD = [(i, f"old {i}", None) for i in range(5001, 5011)]


@pytest.fixture
def channel_tables(run_id: str) -> Iterator[dict[str, str]]:
    """A MariaDB source of ids 1..1000 and PostgreSQL/MariaDB sinks holding 10 old rows."""
    names = {k: f"e2e_ch_{k}_{run_id}" for k in ("src", "pg", "my")}
    with data.mysql() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{names['src']}` ({COLUMNS})")
        cur.execute(
            f"INSERT INTO `{names['src']}` SELECT seq, CONCAT('name ', seq), seq / 100"
            f" FROM seq_1_to_{ROWS}"
        )
        cur.execute(f"INSERT INTO `{names['src']}` VALUES (-7, 'negative', -0.07)")
        cur.execute(f"CREATE TABLE `{names['my']}` ({COLUMNS}, CHECK (id <> 900))")
        cur.executemany(f"INSERT INTO `{names['my']}` VALUES (%s, %s, %s)", OLD)
    data.postgres_table(names["pg"], 0, PG_COLUMNS + ", CHECK (id <> 900)")
    with data.postgres() as conn, conn.cursor() as cur:
        cur.executemany(f'INSERT INTO "{names["pg"]}" VALUES (%s, %s, %s)', OLD)
    yield names
    data.drop([names["src"], names["my"]], [names["pg"]])
    leftovers(drop=True)


def leftovers(drop: bool = False) -> list[str]:
    """Return (and drop) the stage tables of channels still in either database."""
    found = []
    with data.postgres() as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE tablename ~ '^exg_[0-9a-f]{12}_'")
        found += [f"pg:{r[0]}" for r in cur.fetchall()]
    with data.mysql() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
            " AND table_name REGEXP '^exg_[0-9a-f]{12}_'"
        )
        found += [f"my:{r[0]}" for r in cur.fetchall()]
    if drop:
        data.drop(
            [f[3:] for f in found if f.startswith("my:")],
            [f[3:] for f in found if f.startswith("pg:")],
        )
    return found


def task_errors(client: FlaskClient, eid: str) -> list[str]:
    """Return each task's name, status and error (for assertion messages)."""
    outputs = [
        ok(client, "GET", f"/task/execution/{t['taskId']}/output?jobExecutionId={eid}")
        for t in tasks_by_name(client, eid).values()
    ]
    return [f"{o['name']}: {o['status']}: {o['error']}" for o in outputs]


def source_rows(table: str) -> list[tuple[object, ...]]:
    """Return the source's rows sorted by id."""
    return sorted(data.mysql_rows(table))


@pytest.mark.usefixtures("worker")
def test_channels_cut_the_source_into_ranges_and_overwrite_once(
    client: FlaskClient, sources: dict[str, int], channel_tables: dict[str, str], run_id: str
) -> None:
    src = ("MYSQL", sources["MYSQL"], channel_tables["src"])
    rows = source_rows(channel_tables["src"])
    job = create_job(
        client,
        f"channels-{run_id}",
        [
            sub_job(
                "to-pg",
                src,
                ("POSTGRESQL", sources["POSTGRESQL"], f"e2e_ch_new_{run_id}"),
                settings={"setting.speed.channel": 3},
            ),
            sub_job(
                "to-my",
                src,
                ("MYSQL", sources["MYSQL"], f"e2e_ch_new_{run_id}"),
                sources={"where": "id <> 900"},
                sinks={"writeMode": "overwrite"},
                settings={"setting.speed.channel": 2},
            ),
        ],
    )
    try:
        eid = execute(client, job)
        status = wait_until_done(client, eid, timeout=120)
        assert status["status"] == "Success", task_errors(client, eid)
        tasks = tasks_by_name(client, eid)
        assert sorted(tasks) == [
            "to-my [1/2]",
            "to-my [2/2]",
            "to-pg [1/3]",
            "to-pg [2/3]",
            "to-pg [3/3]",
        ]
        assert sorted(data.postgres_rows(f"e2e_ch_new_{run_id}")) == rows
        assert sorted(data.mysql_rows(f"e2e_ch_new_{run_id}")) == [r for r in rows if r[0] != 900]
        written = [
            ok(client, "GET", f"/task/execution/{t['taskId']}/output?jobExecutionId={eid}")
            for name, t in tasks.items()
            if name.startswith("to-pg")
        ]
        assert sum(o["writtenRecords"] for o in written) == len(rows)
        assert all(o["writtenRecords"] > 0 for o in written)  # every range got rows
        assert leftovers() == []
    finally:
        data.drop([f"e2e_ch_new_{run_id}"], [f"e2e_ch_new_{run_id}"])


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("permit", [False, True])
def test_a_failed_channel_leaves_no_partial_overwrite(
    client: FlaskClient,
    sources: dict[str, int],
    channel_tables: dict[str, str],
    run_id: str,
    permit: bool,
) -> None:
    src = ("MYSQL", sources["MYSQL"], channel_tables["src"])
    job = create_job(
        client,
        f"channels-fail-{run_id}",
        [
            sub_job(
                kind,
                src,
                (kind.upper().replace("PG", "POSTGRESQL").replace("MY", "MYSQL"), sid, table),
                sinks={"writeMode": "overwrite"},
                settings={"setting.speed.channel": 2},
            )
            for kind, sid, table in (
                ("pg", sources["POSTGRESQL"], channel_tables["pg"]),
                ("my", sources["MYSQL"], channel_tables["my"]),
            )
        ],
    )
    eid = execute(client, job, permit=permit)
    status = wait_until_done(client, eid, timeout=120)
    assert status["status"] == ("Partial_Success" if permit else "Failed"), status
    tasks = tasks_by_name(client, eid)
    # id 900 breaks the sinks' CHECK: the second channel of each sub-job fails. Permitted, the
    # first channels succeed (their stages wait for a resume); not permitted, the first failure
    # cancels what is still running.
    statuses = {name: t["status"] for name, t in tasks.items()}
    if permit:
        assert statuses == {
            "pg [1/2]": "Success",
            "pg [2/2]": "Failed",
            "my [1/2]": "Success",
            "my [2/2]": "Failed",
        }, task_errors(client, eid)
    else:
        assert "Failed" in statuses.values()
        assert set(statuses.values()) <= {"Failed", "Cancelled", "Success"}
    assert data.postgres_rows(channel_tables["pg"]) == OLD
    assert sorted(data.mysql_rows(channel_tables["my"])) == OLD
    if not permit:
        return

    # Fixed at the sinks, a resume runs only the failed channels; the last one swaps every
    # stage in: the tables then hold exactly the source's rows.
    with data.postgres() as conn, conn.cursor() as cur:
        cur.execute(
            f'ALTER TABLE "{channel_tables["pg"]}" DROP CONSTRAINT IF EXISTS'
            f' "{channel_tables["pg"]}_id_check"'
        )
    with data.mysql() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT constraint_name FROM information_schema.check_constraints"
            f" WHERE table_name = '{channel_tables['my']}'"
        )
        for (name,) in cur.fetchall():
            cur.execute(f"ALTER TABLE `{channel_tables['my']}` DROP CONSTRAINT `{name}`")
    assert ok(client, "POST", f"/job/execution/{eid}/resume")["status"] == "Scheduled"
    status = wait_until_done(client, eid, timeout=120)
    assert status["status"] == "Success", task_errors(client, eid)
    rows = source_rows(channel_tables["src"])
    assert sorted(data.postgres_rows(channel_tables["pg"])) == rows
    assert sorted(data.mysql_rows(channel_tables["my"])) == rows
    assert leftovers() == []
