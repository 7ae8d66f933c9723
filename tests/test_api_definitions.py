"""Data sources and job definitions over HTTP: envelope, both prefixes, and bad input."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from exchangis.runtime import Runtime
from tests.helpers import DSS, call, create_job, datasource, ok, same_caller, sub_job
from tests.services import mysql_params, postgres_params


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _count(client: FlaskClient, path: str) -> int:
    return int(ok(client, "GET", path)["total"])


def test_datasource_round_trip_masks_the_password(client: FlaskClient) -> None:
    name = _name("pg")
    ds_id = datasource(
        client,
        name,
        "POSTGRESQL",
        {
            "host": "127.0.0.1",
            "port": 5432,
            "username": "postgres",
            "password": "t0p-secret",
            "database": "test",
        },
    )
    got = ok(client, "GET", f"/datasources/{ds_id}")
    assert got["connectParams"]["password"] == "******"
    assert "t0p-secret" not in str(ok(client, "GET", "/datasources"))
    updated = ok(
        client,
        "PUT",
        f"/datasources/{ds_id}",
        {"description": "d", "connectParams": {**got["connectParams"], "port": 5432}},
    )
    assert updated["connectParams"]["password"] == "******"
    from exchangis.models import DataSource

    rt = client.application.extensions["exchangis"]
    with rt.sessions() as session:  # kept (the masked value sent back), encrypted at rest
        row = session.get(DataSource, ds_id)
        stored = row.connect_params["password"]
        assert stored.startswith("enc:v1:") and "t0p-secret" not in stored
        assert Runtime(rt.settings).connect_params(row)["password"] == "t0p-secret"
    ok(client, "DELETE", f"/datasources/{ds_id}")
    call(client, "GET", f"/datasources/{ds_id}", expect=404)


@pytest.mark.usefixtures("worker")  # a worker connects: the API process never decrypts
def test_datasource_test_reports_failure_without_the_password(client: FlaskClient) -> None:
    ds_id = datasource(
        client,
        _name("bad"),
        "MYSQL",
        {
            "host": "127.0.0.1",
            "port": 1,
            "username": "root",
            "password": "pw-9f8e7d",
            "database": "test",
        },
    )
    started = time.monotonic()
    result = ok(client, "POST", f"/datasources/{ds_id}/test")
    waited_ms = (time.monotonic() - started) * 1000
    assert result["ok"] is False
    assert "pw-9f8e7d" not in result["message"]
    # The worker times its own connect attempt (whole milliseconds, truncated) while this
    # request waits for its answer, so it cannot exceed the wait; a refused loopback connect
    # may well take under a millisecond, so 0 is a fair answer.
    assert type(result["elapsedMs"]) is int
    assert 0 <= result["elapsedMs"] <= waited_ms


@pytest.mark.usefixtures("worker")
def test_connect_params_can_be_tried_before_they_are_saved(client: FlaskClient) -> None:
    good = {**postgres_params(), "port": "5432", "params": '{"connect_timeout": "5"}'}
    before = _count(client, "/datasources")
    body = {"type": "POSTGRESQL", "connectParams": good}
    assert ok(client, "POST", "/datasources/test", body)["ok"] is True

    wrong = {**mysql_params(), "password": "pw-untried-42"}
    result = ok(client, "POST", "/datasources/test", {"type": "MYSQL", "connectParams": wrong})
    assert result["ok"] is False
    assert "Access denied" in result["message"]
    assert "pw-untried-42" not in result["message"]
    assert _count(client, "/datasources") == before  # nothing saved

    reply = call(client, "POST", "/datasources/test", {"type": "NOPE", "connectParams": {}}, 400)
    assert "NOPE" in reply["message"]
    bad = {"type": "MYSQL", "connectParams": {**good, "port": "x"}}
    reply = call(client, "POST", "/datasources/test", bad, 400)
    assert "connectParams.port" in reply["data"]["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "MYSQL"}, "connectParams"),
        ({"name": "x", "type": "NOPE", "connectParams": {}}, "type"),
        ({"name": "", "type": "SQLITE", "connectParams": {"path": "/tmp/a"}}, "name"),
        ({"name": "x" * 129, "type": "SQLITE", "connectParams": {"path": "/tmp/a"}}, "name"),
        ({"name": "x", "type": "SQLITE", "connectParams": {"path": "/tmp/a"}, "extra": 1}, "extra"),
        ({"name": "x", "type": "SQLITE", "connectParams": {"path": 5}}, "connectParams.path"),
        (
            {"name": "x", "type": "SQLITE", "connectParams": {"path": "/a", "pw": "1"}},
            "connectParams.pw",
        ),
        (
            {
                "name": "x",
                "type": "MYSQL",
                "connectParams": {"host": "h", "port": "33o6", "username": "u", "database": "d"},
            },
            "connectParams.port",
        ),
        (
            {
                "name": "x",
                "type": "MYSQL",
                "connectParams": {"host": "h", "port": 99999, "username": "u", "database": "d"},
            },
            "connectParams.port",
        ),
        (
            {"name": "x", "type": "POSTGRESQL", "connectParams": {"host": "h"}},
            "connectParams.username",
        ),
        ([1, 2], "_schema"),
    ],
)
def test_bad_datasource_bodies_are_rejected(client: FlaskClient, body: Any, field: str) -> None:
    before = _count(client, "/datasources")
    reply = call(client, "POST", "/datasources", body, expect=400)
    assert field in reply["message"] or field in str(reply["data"])
    assert _count(client, "/datasources") == before


def test_duplicate_datasource_name_is_a_conflict(client: FlaskClient, tmp_path: Path) -> None:
    name = _name("dup")
    datasource(client, name, "SQLITE", {"path": str(tmp_path / "a.db")})
    call(
        client,
        "POST",
        "/datasources",
        {"name": name, "type": "SQLITE", "connectParams": {"path": str(tmp_path / "b.db")}},
        expect=409,
    )


def test_datasource_in_use_cannot_be_deleted(client: FlaskClient, files: int, lite: int) -> None:
    create_job(
        client, _name("job"), [sub_job("a", ("FILE", files, "in.csv"), ("SQLITE", lite, "t"))]
    )
    reply = call(client, "DELETE", f"/datasources/{lite}", expect=409)
    assert "used by" in reply["message"]


def test_job_round_trip_on_both_prefixes(client: FlaskClient, files: int, lite: int) -> None:
    content = [
        sub_job(
            "orders",
            ("FILE", files, "in.csv"),
            ("SQLITE", lite, "orders"),
            sinks={"writeMode": "overwrite"},
            settings={"setting.speed.record": 1000},
            mapping=[("id", "order_id")],
        )
    ]
    job_id = create_job(client, _name("job"), content)
    got = ok(client, "GET", f"/job/{job_id}")
    assert got["content"] == content
    assert got["projectName"] == "default"
    # the alias prefix answers in the released server's shape: content as view-shape JSON text
    dss = call(client, "GET", f"/job/{job_id}?labels=dev&_=123", prefix=DSS)["data"]["result"]
    (view,) = json.loads(dss["content"])["subJobs"]
    assert view["subJobName"] == "orders" and view["dataSourceIds"]["sink"]["table"] == "orders"
    assert [
        (m["source_field_name"], m["sink_field_name"]) for m in view["transforms"]["mapping"]
    ] == [("id", "order_id")]
    ok(client, "PUT", f"/job/{job_id}", {"jobName": "renamed", "content": content})
    assert ok(client, "GET", f"/job/{job_id}")["jobName"] == "renamed"
    page = ok(client, "GET", "/job?jobName=renamed&size=5&current=1&projectName=")
    assert page["total"] >= 1 and all("renamed" in j["jobName"] for j in page["result"])
    ok(client, "DELETE", f"/job/{job_id}")
    call(client, "GET", f"/job/{job_id}", expect=404)


def _bad_content(files: int, lite: int) -> list[tuple[Any, str]]:
    good = sub_job("a", ("FILE", files, "in.csv"), ("SQLITE", lite, "t"))

    def variant(**change: Any) -> dict[str, Any]:
        return {**good, **change}

    def sources(source: dict[str, Any]) -> dict[str, Any]:
        return variant(dataSources={"source": source, "sink": good["dataSources"]["sink"]})

    return [
        ([], "content"),
        ([variant(unknownKey=1)], "unknownKey"),
        ([{k: v for k, v in good.items() if k != "dataSources"}], "dataSources"),
        ([sources({"type": "FILE", "id": files, "table": "../etc/passwd"})], "table"),
        ([sources({"type": "FILE", "id": files, "table": "/etc/passwd"})], "table"),
        ([sources({"type": "FILE", "id": 999999, "table": "in.csv"})], "does not exist"),
        ([sources({"type": "SQLITE", "id": files, "table": "t"})], "is FILE"),
        ([sources({"type": "FILE", "id": "1", "table": "in.csv"})], "id"),
        (
            [variant(settings=[{"config_key": "setting.speed.record", "config_value": -1}])],
            "setting.speed.record",
        ),
        ([variant(settings=[{"config_key": "setting.bogus", "config_value": 1}])], "config_key"),
        (
            [variant(settings=[{"config_key": "setting.speed.channel", "config_value": "2"}])],
            "FILE sources lack the capability channels",
        ),
        (
            [variant(params={"sources": [{"config_key": "nope", "config_value": 1}], "sinks": []})],
            "unknown option",
        ),
        ([sub_job("a", ("FILE", files, "in.csv"), ("SQLITE", lite, "t; DROP TABLE x"))], "table"),
        ([good, good], "duplicate subJobName"),
        ([variant(subJobName="x" * 300)], "subJobName"),
    ]


def test_bad_job_bodies_are_rejected_and_change_nothing(
    client: FlaskClient, files: int, lite: int
) -> None:
    before = _count(client, "/job")
    for content, needle in _bad_content(files, lite):
        reply = call(client, "POST", "/job", {"jobName": "bad", "content": content}, expect=400)
        assert needle in reply["message"] or needle in str(reply["data"]), (needle, reply)
    call(client, "POST", "/job", {"content": []}, expect=400)
    call(client, "POST", "/job", {"jobName": 5, "content": []}, expect=400)
    call(client, "POST", "/job", data="not json", content_type="application/json", expect=400)
    assert _count(client, "/job") == before


BAD_SETTINGS = [
    ("setting.speed.record", -1),
    ("setting.speed.record", 10**10),
    ("setting.speed.record", 2.5),
    ("setting.speed.record", "1k"),
    ("setting.speed.record", True),
    ("setting.speed.record", None),
    ("setting.speed.byte", -1),
    ("setting.speed.byte", 10**13),
    ("setting.speed.byte", "1m"),
    ("setting.speed.byte", False),
    ("setting.speed.channel", 0),
    ("setting.speed.channel", 65),
    ("setting.errorLimit.record", -1),
    ("setting.errorLimit.record", 0.5),
    ("setting.errorLimit.percentage", -0.5),
    ("setting.errorLimit.percentage", 50),
    ("setting.errorLimit.percentage", [0.1]),
]


def test_bad_setting_values_are_a_400_at_save_and_change_nothing(
    client: FlaskClient, files: int, lite: int
) -> None:
    def content(key: str, value: Any) -> list[dict[str, Any]]:
        return [
            sub_job("a", ("FILE", files, "in.csv"), ("SQLITE", lite, "t"), settings={key: value})
        ]

    job_id = create_job(client, _name("job"), content("setting.speed.record", 1000))
    before = ok(client, "GET", f"/job/{job_id}")
    jobs = _count(client, "/job")
    for key, value in BAD_SETTINGS:
        for method, path in (("POST", "/job"), ("PUT", f"/job/{job_id}")):
            body = {"jobName": "bad", "content": content(key, value)}
            reply = call(client, method, path, body, expect=400)
            assert "config_value" in str(reply["data"]), (key, value, reply)
            if value is not None:
                assert key in reply["message"] or key in str(reply["data"]), (key, value, reply)
    raw = (
        '{"jobName": "nan", "content": [{"subJobName": "a", "dataSources": {"source": {"type": '
        f'"FILE", "id": {files}, "table": "in.csv"}}, "sink": {{"type": "SQLITE", "id": {lite}, '
        '"table": "t"}}, "settings": [{"config_key": "setting.speed.byte", "config_value": NaN}]}]}'
    )
    call(client, "POST", "/job", data=raw, content_type="application/json", expect=400)
    assert _count(client, "/job") == jobs
    assert ok(client, "GET", f"/job/{job_id}") == before
    for key, value in [
        ("setting.speed.record", 0),
        ("setting.speed.byte", 10**12),
        ("setting.speed.channel", "1"),  # a FILE source: 1 only (no channels)
        ("setting.errorLimit.record", 0),
        ("setting.errorLimit.percentage", 1),
    ]:
        ok(client, "PUT", f"/job/{job_id}", {"jobName": "good", "content": content(key, value)})


def test_bad_stored_setting_is_a_400_at_execute_and_starts_nothing(
    client: FlaskClient, files: int, lite: int
) -> None:
    """A definition saved before a check existed (or edited in SQL) is checked again at execute."""
    from exchangis.models import Job, JobExecution

    rt = client.application.extensions["exchangis"]
    good = sub_job(
        "a",
        ("FILE", files, "in.csv"),
        ("SQLITE", lite, "t"),
        settings={"setting.speed.record": 1000},
    )
    job_id = create_job(client, _name("job"), [good])
    for value in (-1, 2.5, "1m", True, 10**13, None):
        with rt.sessions.begin() as session:
            stored = session.get(Job, job_id)
            item = {"config_key": "setting.speed.byte", "config_value": value}
            stored.content = [{**good, "settings": [*good["settings"], item]}]
        reply = call(client, "POST", f"/job/{job_id}/execute", {}, expect=400)
        assert "content[0].settings[1].config_value" in reply["message"], reply
        assert "setting.speed.byte" in reply["message"], reply
    with rt.sessions() as session:
        assert session.query(JobExecution).filter_by(job_id=job_id).count() == 0


def test_unknown_ids_are_404_in_the_envelope(client: FlaskClient) -> None:
    for method, path in [
        ("GET", "/job/999999"),
        ("PUT", "/datasources/999999"),
        ("DELETE", "/job/999999"),
        ("POST", "/datasources/999999/test"),
    ]:
        body = {"description": "x"} if method == "PUT" else None
        assert call(client, method, path, body, expect=404)["status"] == 1
    reply = call(client, "GET", "/no/such/route", expect=404)
    assert reply["status"] == 1


def test_list_limits_are_validated(client: FlaskClient) -> None:
    call(client, "GET", "/job?size=0", expect=400)
    call(client, "GET", "/job?current=abc", expect=400)
    call(client, "GET", "/job?size=100000", expect=400)


@pytest.mark.parametrize(
    "raw",
    [
        '{"name": "x", "type": "SQLITE", "connectParams": {"path": NaN}}',
        '{"name": "x", "type": "SQLITE", "connectParams": {"path": 1e400}}',
        '{"name": "x", "type": "SQLITE", "connectParams": {"path": "/a"}',
        b'{"name": "\xff"}',
    ],
)
def test_unparseable_or_non_finite_json_is_a_400_with_errors(
    client: FlaskClient, raw: str | bytes
) -> None:
    before = _count(client, "/datasources")
    reply = call(
        client, "POST", "/datasources", data=raw, content_type="application/json", expect=400
    )
    assert reply["message"].startswith("invalid JSON body")
    assert "json" in reply["data"]["errors"]
    assert _count(client, "/datasources") == before


def test_ids_beyond_the_integer_range_are_404_not_500(
    client: FlaskClient, files: int, lite: int
) -> None:
    huge = 2**63
    for method, path in [
        ("GET", f"/job/{huge}"),
        ("POST", f"/job/{huge}/execute"),
        ("GET", f"/datasources/{huge}"),
        ("POST", f"/datasources/{huge}/test"),
    ]:
        call(client, method, path, expect=404)
    content = [sub_job("a", ("FILE", huge, "in.csv"), ("SQLITE", lite, "t"))]
    reply = call(client, "POST", "/job", {"jobName": "huge", "content": content}, expect=400)
    assert "id" in str(reply["data"]["errors"])


def test_secrets_nested_in_params_are_masked_and_kept(client: FlaskClient) -> None:
    ds_id = datasource(
        client,
        _name("nested"),
        "POSTGRESQL",
        {
            "host": "h",
            "port": 5432,
            "username": "u",
            "password": "p1-top",
            "database": "d",
            "params": {"sslpassword": "p2-nested", "connect_timeout": 5},
        },
    )
    got = ok(client, "GET", f"/datasources/{ds_id}")["connectParams"]
    assert got["params"] == {"sslpassword": "******", "connect_timeout": 5}
    ok(client, "PUT", f"/datasources/{ds_id}", {"connectParams": {**got, "database": "d"}})
    from exchangis.models import DataSource

    rt = client.application.extensions["exchangis"]

    def stored_and_clear() -> tuple[dict[str, Any], dict[str, Any]]:
        with rt.sessions() as session:
            row = session.get(DataSource, ds_id)
            return row.connect_params, Runtime(rt.settings).connect_params(row)

    stored, clear = stored_and_clear()
    assert clear["password"] == "p1-top"
    assert clear["params"]["sslpassword"] == "p2-nested"
    assert "p1-top" not in str(stored) and "p2-nested" not in str(stored)  # encrypted at rest
    # a kept secret goes nowhere new: moving the data source needs every secret again
    for moved in (
        {**got, "host": "evil.example"},
        {**got, "params": {**got["params"], "connect_timeout": 9}},
        {**got, "host": "evil.example", "password": "p1-top"},  # the nested one still masked
    ):
        reply = call(client, "PUT", f"/datasources/{ds_id}", {"connectParams": moved}, expect=400)
        assert "send the secrets again" in reply["message"]
    assert stored_and_clear()[1]["host"] == "h"
    resent = {**got, "host": "h2", "password": "p1-top", "params": {"sslpassword": "p2-new"}}
    ok(client, "PUT", f"/datasources/{ds_id}", {"connectParams": resent})
    stored, clear = stored_and_clear()
    assert clear["host"] == stored["host"] == "h2" and clear["params"]["sslpassword"] == "p2-new"


@pytest.mark.usefixtures("worker")
def test_datasource_test_succeeds_on_the_real_servers(client: FlaskClient, tmp_path: Path) -> None:
    from tests.services import mysql_params, postgres_params

    for kind, params in [
        ("MYSQL", mysql_params()),
        ("POSTGRESQL", postgres_params()),
        ("SQLITE", {"path": str(tmp_path / "t.db")}),
        ("FILE", {"root": str(tmp_path)}),
    ]:
        ds_id = datasource(client, _name(kind.lower()), kind, params)
        result = ok(client, "POST", f"/datasources/{ds_id}/test")
        assert result["ok"] is True, (kind, result)


def test_a_body_over_the_size_limit_is_a_413_and_changes_nothing(client: FlaskClient) -> None:
    limit = client.application.extensions["exchangis"].settings.max_request_bytes
    before = _count(client, "/datasources")
    raw = '{"name": "big", "type": "SQLITE", "connectParams": {"path": "' + "x" * limit + '"}}'
    reply = call(
        client, "POST", "/datasources", data=raw, content_type="application/json", expect=413
    )
    assert reply["status"] == 1 and "large" in reply["message"].lower()
    assert _count(client, "/datasources") == before


def test_the_api_process_never_decrypts_a_secret(client: FlaskClient, tmp_path: Path) -> None:
    from sqlalchemy import select

    from exchangis.models import DataSource

    rt = client.application.extensions["exchangis"]
    ds_id = datasource(
        client,
        _name("sealed"),
        "POSTGRESQL",
        {"host": "127.0.0.1", "username": "u", "password": "pw-sealed", "database": "d"},
    )
    with rt.sessions() as session:
        ds = session.scalar(select(DataSource).where(DataSource.id == ds_id))
        with pytest.raises(RuntimeError, match="does not decrypt"):
            rt.connect_params(ds)
    assert rt.execution_secrets("any") == ()


def test_a_data_source_test_without_a_worker_is_a_503(
    migrated: Any, client: FlaskClient, tmp_path: Path
) -> None:
    from exchangis.app import create_app

    lonely = create_app(  # no worker serves this key prefix
        migrated.with_overrides(
            {
                "redis_prefix": f"exglonely-{uuid.uuid4().hex[:6]}:",
                # longer than the Redis client's 5 s socket timeout: the wait is cut in steps
                "worker_call_timeout_seconds": 6,
            }
        )
    )
    ds_id = datasource(client, _name("alone"), "SQLITE", {"path": str(tmp_path / "a.db")})
    reply = call(same_caller(client, lonely), "POST", f"/datasources/{ds_id}/test", expect=503)
    assert "no worker answered within 6 s" in reply["message"]
    lonely.extensions["exchangis"].close()
