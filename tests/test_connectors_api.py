"""Connectors as declared plug-ins over HTTP: forms, capabilities, and what a job save refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from exchangis.connectors import doc
from exchangis.connectors.options import Kind, Option
from exchangis.connectors.registry import MODULES, default_registry
from exchangis.errors import InvalidInputError
from tests.helpers import DSS, call, create_job, ok, sub_job
from tests.test_api_definitions import _name


def test_every_registered_connector_is_listed_with_options_and_capabilities(
    client: FlaskClient,
) -> None:
    for prefix in (None, DSS):
        kwargs: dict[str, Any] = {"prefix": prefix} if prefix else {}
        listed = call(client, "GET", "/connectors", **kwargs)["data"]["list"]
        by_type = {item["type"]: item for item in listed}
        assert {"MYSQL", "POSTGRESQL", "SQLITE", "FILE"} <= set(by_type)
        for item in listed:
            assert set(item) == {
                "type",
                "label",
                "source",
                "sink",
                "params",
                "options",
                "capabilities",
            }
            for option in item["options"]:
                assert set(option) == {
                    "name",
                    "type",
                    "default",
                    "side",
                    "required",
                    "secret",
                    "values",
                    "help",
                }
                assert option["side"] in ("source", "sink") and option["help"]
    pg = ok(client, "GET", "/connectors/POSTGRESQL")
    assert pg["capabilities"]["upsert"] and pg["capabilities"]["channels"]
    assert pg["capabilities"]["writeModes"] == ["append", "overwrite", "upsert"]
    assert next(p for p in pg["params"] if p["name"] == "password")["secret"] is True
    write_mode = next(o for o in pg["options"] if o["name"] == "writeMode")
    assert write_mode == {
        "name": "writeMode",
        "type": "enum",
        "default": "append",
        "side": "sink",
        "required": False,
        "secret": False,
        "values": ["append", "overwrite", "upsert"],
        "help": write_mode["help"],
    }
    file = ok(client, "GET", "/connectors/file")
    assert file["capabilities"]["writeModes"] == ["append", "overwrite"]
    assert not file["capabilities"]["upsert"] and not file["capabilities"]["channels"]
    assert call(client, "GET", "/connectors/NOPE", expect=404)["status"] == 1


def test_the_listing_comes_from_the_declarations() -> None:
    registry = default_registry()
    assert len(registry.types) == len(MODULES)
    for name, cls in registry.sinks.items():
        described = registry.describe(name)
        sink_options = [o["name"] for o in described["options"] if o["side"] == "sink"]
        assert sink_options == [o.name for o in cls.options]
        assert described["capabilities"]["write_modes"] == list(cls.capabilities.write_modes)


def test_a_sink_asked_for_a_missing_capability_is_refused_at_save(
    client: FlaskClient, files: int, lite: int
) -> None:
    before = ok(client, "GET", "/job")["total"]
    upsert = sub_job(
        "to-file",
        ("SQLITE", lite, "t"),
        ("FILE", files, "out.csv"),
        sinks={"writeMode": "upsert", "primaryKeys": "id"},
    )
    reply = call(client, "POST", "/job", {"jobName": "x", "content": [upsert]}, expect=400)
    field = "content[0].dataSources.sink.options"
    assert list(reply["data"]["errors"]) == [field]
    assert "content[0] (to-file): FILE sinks lack the capability upsert" in reply["message"]
    channels = sub_job(
        "cut-file",
        ("FILE", files, "in.csv"),
        ("SQLITE", lite, "t"),
        settings={"setting.speed.channel": "4"},
    )
    reply = call(client, "POST", "/job", {"jobName": "x", "content": [channels]}, expect=400)
    assert list(reply["data"]["errors"]) == ["content[0].settings[0].config_value"]
    assert "(cut-file): FILE sources lack the capability channels" in reply["message"]
    assert ok(client, "GET", "/job")["total"] == before


@pytest.mark.parametrize(
    ("side", "options", "needle"),
    [
        ("sinks", {"header": "maybe"}, "option header must be true or false"),
        ("sinks", {"encoding": "klingon"}, "unknown encoding"),
        ("sinks", {"delimiter": ";;"}, "option delimiter must be a single character"),
        ("sinks", {"writeMode": "merge"}, "writeMode must be one of append, overwrite"),
        ("sources", {"batchSize": "0"}, "option batchSize must be at least 1"),
        ("sources", {"format": "xml"}, "option format must be one of csv, jsonl"),
        ("sources", {"nope": 1}, "unknown option(s) nope for FILE source"),
    ],
)
def test_a_bad_option_value_is_reported_under_options_never_table(
    client: FlaskClient, files: int, side: str, options: dict[str, Any], needle: str
) -> None:
    sub = sub_job("a", ("FILE", files, "in.csv"), ("FILE", files, "out.csv"), **{side: options})
    reply = call(client, "POST", "/job", {"jobName": "x", "content": [sub]}, expect=400)
    where = "source" if side == "sources" else "sink"
    assert list(reply["data"]["errors"]) == [f"content[0].dataSources.{where}.options"], reply
    assert needle in reply["message"], reply


def test_options_sent_as_text_save_as_their_json_values_do(
    client: FlaskClient, files: int, lite: int
) -> None:
    for sinks, sources in (
        ({"createTable": "true", "batchSize": "1000", "ledger": "false"}, {"header": "true"}),
        ({"createTable": True, "batchSize": 1000, "ledger": False}, {"header": True}),
    ):
        sub = sub_job(
            "a", ("FILE", files, "in.csv"), ("SQLITE", lite, "t"), sources=sources, sinks=sinks
        )
        assert create_job(client, _name("job"), [sub]) > 0


def test_text_and_json_values_parse_the_same() -> None:
    cases: list[tuple[Option, Any, Any, Any]] = [
        (Option("b", Kind.BOOLEAN, "h"), "true", True, True),
        (Option("b", Kind.BOOLEAN, "h"), "False", False, False),
        (Option("b", Kind.BOOLEAN, "h"), "0", 0, False),
        (Option("i", Kind.INTEGER, "h", minimum=1), "1000", 1000, 1000),
        (Option("i", Kind.INTEGER, "h"), " 7 ", 7.0, 7),
        (Option("n", Kind.NUMBER, "h"), "0.25", 0.25, 0.25),
        (Option("d", Kind.DURATION, "h"), "1.5", 1.5, 1.5),
        (Option("l", Kind.LIST, "h"), "a, b", ["a", "b"], ["a", "b"]),
        (Option("e", Kind.ENUM, "h", values=("append", "upsert")), "UPSERT", "upsert", "upsert"),
    ]
    for option, text, value, expected in cases:
        assert option.parse(text) == option.parse(value) == expected, option
    duration = Option("d", Kind.DURATION, "h")
    assert [duration.parse(v) for v in ("500ms", "30s", "5m", "1h")] == [0.5, 30, 300, 3600]
    for option, bad in [
        (Option("b", Kind.BOOLEAN, "h"), "maybe"),
        (Option("i", Kind.INTEGER, "h"), "1.5"),
        (Option("i", Kind.INTEGER, "h"), True),
        (Option("i", Kind.INTEGER, "h", minimum=1), "0"),
        (Option("n", Kind.NUMBER, "h"), "nan"),
        (Option("l", Kind.LIST, "h"), "a,,b"),
        (Option("l", Kind.LIST, "h"), [1]),
        (Option("c", Kind.CHAR, "h"), "ab"),
        (Option("d", Kind.DURATION, "h"), "soon"),
        (Option("r", Kind.STRING, "h", required=True), ""),
    ]:
        with pytest.raises(InvalidInputError) as caught:
            option.parse(bad)
        assert caught.value.errors == {"options": [caught.value.message]}
        assert f"option {option.name}" in caught.value.message


def test_the_connector_reference_in_the_docs_is_current() -> None:
    path = Path(__file__).resolve().parents[1] / "docs" / "connectors.md"
    text = path.read_text()
    assert text == doc.rewrite(text, default_registry(with_memory=True)), (
        "docs/connectors.md is stale: run python -m exchangis.connectors.doc docs/connectors.md"
    )


def test_a_port_sent_as_text_is_stored_as_a_number(client: FlaskClient) -> None:
    params = {"host": "127.0.0.1", "port": "3306", "username": "u", "database": "d"}
    reply = call(
        client,
        "POST",
        "/datasources",
        {"name": _name("my"), "type": "MYSQL", "connectParams": params},
        expect=201,
    )
    assert ok(client, "GET", f"/datasources/{reply['data']['id']}")["connectParams"]["port"] == 3306
