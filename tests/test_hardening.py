"""Data sources cannot reach the workers' own files or borrow their identity, and a run's
parameters from someone who may not edit the job stay plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exchangis.connectors import postgres
from exchangis.errors import TerminalConnectorError
from exchangis.models import DataSource
from exchangis.runtime import Runtime
from exchangis.services import user as users
from tests.helpers import call, create_job, datasource, ok, project, signed_in, sub_job


def _refused(client: FlaskClient, kind: str, params: dict[str, Any], field: str) -> str:
    reply = call(
        client,
        "POST",
        "/datasources",
        {"name": "refused", "type": kind, "connectParams": params},
        expect=400,
    )
    assert list(reply["data"]["errors"]) == [f"connectParams.{field}"], reply
    return str(reply["message"])


@pytest.mark.parametrize(
    "host",
    [
        "evil:5432/x?sslkey=/etc/k&a=",  # options smuggled into the bulk drivers' URLs
        "a@b",
        "/var/run/postgresql",  # a local socket logs in as the worker's system user
        "db1,db2",
        "host name",
        "db\n",
    ],
)
def test_a_host_is_a_name_or_an_address(client: FlaskClient, host: str) -> None:
    params = {"host": host, "username": "u", "password": "p", "database": "d"}
    for kind in ("POSTGRESQL", "MYSQL"):
        assert "invalid host" in _refused(client, kind, params, "host")


def test_plain_hosts_and_addresses_are_taken(client: FlaskClient, run_id: str) -> None:
    for i, host in enumerate(("db.internal", "my_db", "10.0.0.7", "::1", "localhost")):
        params = {"host": host, "username": "u", "password": "p", "database": "d"}
        datasource(client, f"host-{i}-{run_id}", "POSTGRESQL", params)


def test_libpq_gets_no_option_that_reads_the_workers_files_or_passwords() -> None:
    params = postgres.libpq_params(
        {
            "params": {
                "sslmode": "disable",
                "hostaddr": "203.0.113.9",
                "passfile": "/root/.pgpass",
                "service": "prod",
                "sslcert": "/etc/worker.crt",
                "sslkey": "/etc/worker.key",
                "sslkeylogfile": "/tmp/keys",
            }
        }
    )
    assert params["sslmode"] == "disable" and params["passfile"] == postgres.NO_PASSFILE
    assert not {"hostaddr", "service", "sslcert", "sslkey", "sslkeylogfile"} & set(params)


def test_file_roots_bound_file_and_sqlite_data_sources(
    client: FlaskClient, rt: Runtime, tmp_path: Path
) -> None:
    settings = rt.settings
    data_dir = Path(settings.data_dir)
    metadata = settings.database_url.removeprefix("sqlite:///")
    outside = tmp_path / "link-out"
    outside.symlink_to("/etc")
    cases = [
        ("FILE", {"root": "/"}, "root", "file_roots"),
        ("FILE", {"root": "relative/dir"}, "root", "absolute"),
        ("FILE", {"root": str(outside)}, "root", "file_roots"),  # a symlink leading out
        ("FILE", {"root": str(data_dir)}, "root", "service itself"),  # holds secret.key
        ("FILE", {"root": str(Path(metadata).parent)}, "root", "service itself"),
        ("SQLITE", {"path": metadata}, "path", "service itself"),
        ("SQLITE", {"path": "/etc/passwd"}, "path", "file_roots"),
        ("SQLITE", {"path": str(data_dir / "secret.key")}, "path", "service itself"),
    ]
    for kind, params, field, why in cases:
        assert why in _refused(client, kind, params, field), (kind, params)
    # a data source stored before (or under other file_roots) is refused where it is used
    worker = Runtime(settings)
    with pytest.raises(TerminalConnectorError, match="file_roots"):
        worker.connect_params(DataSource(name="old", type="FILE", connect_params={"root": "/"}))


def test_a_run_by_someone_who_may_not_edit_passes_plain_values_only(
    app: Flask, client: FlaskClient, rt: Runtime, tmp_path: Path, run_id: str
) -> None:
    runner = f"runner-{run_id}"
    users.create_user(rt, runner, "a long password")
    runner_client = signed_in(app, users.issue_token(rt, runner)["token"])
    name = project(client, f"plain-{run_id}")
    ok(client, "PUT", f"/projects/{name}", {"execUsers": [runner]})
    memory = datasource(client, f"mem-{run_id}", "MEMORY", {}, name)
    lite = datasource(client, f"lite-{run_id}", "SQLITE", {"path": str(tmp_path / "p.db")}, name)
    content = [sub_job("s", ("MEMORY", memory, "gen"), ("SQLITE", lite, "t_${day}"))]
    job = ok(
        client,
        "POST",
        "/job",
        {"jobName": "plain", "projectName": name, "content": content, "jobParams": {"day": "1"}},
        expect=201,
    )["id"]
    for value in ("1) OR (1=1", "x' OR '1'='1", "1; DROP TABLE t", "2026-01-01--", "a/*b"):
        reply = call(
            runner_client, "POST", f"/job/{job}/execute", {"jobParams": {"day": value}}, 400
        )
        assert list(reply["data"]["errors"]) == ["jobParams.day"]
    ok(runner_client, "POST", f"/job/{job}/execute", {"jobParams": {"day": "20260101"}})
    # an editor may pass any value: still checked as a name once rendered
    refused = call(client, "POST", f"/job/{job}/execute", {"jobParams": {"day": "${x}"}}, 400)
    assert "invalid" in refused["message"]


def test_a_rendered_table_name_is_checked_as_it_is(
    client: FlaskClient, sources: dict[str, int]
) -> None:
    job = create_job(
        client,
        "rendered",
        [sub_job("s", ("MEMORY", sources["MEMORY"], "gen"), ("SQLITE", sources["SQLITE"], "${t}"))],
    )
    for value in ("${t}", "a;b", "x y", "../up"):
        call(client, "POST", f"/job/{job}/execute", {"jobParams": {"t": value}}, expect=400)
