"""A data source password is encrypted at rest and reaches no store in clear during a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.helpers import create_job, datasource, execute, sub_job, wait_until_done
from tests.services import postgres_params


def redis_text(client: FlaskClient) -> str:
    """Return every value under this test session's key prefix, as one text."""
    rt = client.application.extensions["exchangis"]
    parts: list[str] = []
    for key in rt.redis.scan_iter(rt.keys.pattern(), count=1000):
        kind = rt.redis.type(key)
        if kind in (b"string", "string"):
            parts.append(str(rt.redis.get(key)))
        elif kind in (b"hash", "hash"):
            parts.append(str(rt.redis.hgetall(key)))
        elif kind in (b"list", "list"):
            parts.append(str(rt.redis.lrange(key, 0, -1)))
        elif kind in (b"set", "set"):
            parts.append(str(rt.redis.smembers(key)))
        elif kind in (b"zset", "zset"):
            parts.append(str(rt.redis.zrange(key, 0, -1)))
    return "\n".join(parts)


@pytest.mark.usefixtures("worker")
def test_the_password_is_used_by_the_worker_and_stored_nowhere_in_clear(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str], run_id: str
) -> None:
    password = f"Pw-{run_id}-clear"  # PostgreSQL trusts local connections: any password works
    pg = datasource(
        client, f"pg-secret-{run_id}", "POSTGRESQL", {**postgres_params(), "password": password}
    )
    data.postgres_table(tables["pg_src"], 40)
    job = create_job(
        client,
        f"secret-{run_id}",
        [
            sub_job(
                "copy",
                ("POSTGRESQL", pg, tables["pg_src"]),
                ("SQLITE", sources["SQLITE"], "copied"),
            )
        ],
    )
    eid = execute(client, job)
    assert wait_until_done(client, eid)["status"] == "Success"

    rt = client.application.extensions["exchangis"]
    metadata = Path(rt.settings.database_url.removeprefix("sqlite:///")).read_bytes()
    assert password.encode() not in metadata  # data sources, plans, records, archived logs
    assert password not in redis_text(client)  # live state, logs, broker queues of this run
