"""The released UI's data source page and the editor's pickers on the alias prefix
(``docs/design/exchangis-ui-calls.md`` §4, §5): bodies as the UI sends them, answers read with
the fields the UI reads."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests import data
from tests.helpers import DSS, UI_ROUTE, call, released
from tests.services import mysql_params, postgres_params

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]  # a worker connects


def _form(name: str, type_id: Any, system: str, params: dict[str, Any]) -> dict[str, Any]:
    """The body the page's dialog sends (every input's value as text)."""
    return {
        "dataSourceTypeId": type_id,
        "createSystem": system,
        "createIdentify": "",
        "dataSourceName": name,
        "dataSourceDesc": "",
        "label": "",
        "comment": "更新",
        "connectParams": {key: str(value) for key, value in params.items()},
        **UI_ROUTE,
    }


def test_the_data_source_page_lists_creates_edits_and_tests(
    client: FlaskClient, run_id: str
) -> None:
    types = {row["name"]: row for row in released(client, "GET", "/datasources/type")["list"]}
    assert types["MYSQL"]["id"] == "1" and types["POSTGRESQL"]["id"] == "2"
    assert {"classifier", "struct_classifier", "description"} <= set(types["MYSQL"])

    keys = released(client, "GET", "/datasources/types/1/keydefines")["list"]
    by_key = {item["key"]: item for item in keys}
    assert list(by_key) == ["host", "port", "username", "password", "database", "params"]
    assert by_key["password"]["valueType"] == "PASSWORD"
    assert by_key["port"] == {**by_key["port"], "valueType": "NUMBER", "defaultValue": "3306"}
    assert by_key["host"]["require"] is True and by_key["params"]["require"] is False

    params = {k: v for k, v in mysql_params().items() if v not in ("", None)}
    name = f"page-{run_id}"
    made = released(client, "POST", "/datasources", _form(name, "1", "MYSQL", params))
    ds_id = made["id"]

    page = released(client, "POST", "/datasources/query", {"page": 1, "pageSize": 10, "name": name})
    assert page["total"] == 1
    row = page["list"][0]
    assert (row["id"], row["name"], row["dataSourceTypeId"]) == (ds_id, name, 1)
    assert (row["createSystem"], row["type"], row["versionId"], row["expire"]) == (
        "MYSQL",
        "MYSQL",
        1,
        False,
    )
    for type_id, found in ((1, 1), (2, 0)):  # the search bar sends the type's number
        body = {"page": 1, "pageSize": 10, "name": name, "typeId": type_id, **UI_ROUTE}
        assert released(client, "POST", "/datasources/query", body)["total"] == found

    info = released(client, "GET", f"/datasources/{ds_id}")["info"]
    assert info["dataSourceName"] == name and info["versionId"] == 1
    assert info["connectParams"]["host"] == params["host"]
    edited = {**info["connectParams"], "password": "******"}  # the form sends the mask back
    body = _form(f"{name}-2", info["dataSourceTypeId"], info["createSystem"], edited)
    released(client, "PUT", f"/datasources/{ds_id}", body)
    assert released(client, "GET", f"/datasources/{ds_id}")["info"]["dataSourceName"] == name + "-2"
    released(client, "PUT", f"/datasources/{ds_id}/1/connect", UI_ROUTE)  # the mask kept it

    versions = released(client, "GET", f"/datasources/{ds_id}/versions")["versions"]
    assert [(v["versionId"], v["published"], v["datasourceId"]) for v in versions] == [
        (1, True, ds_id)
    ]
    released(client, "PUT", f"/datasources/{ds_id}/1/publish", UI_ROUTE)
    call(client, "PUT", f"/datasources/{ds_id}/2/publish", UI_ROUTE, 404, prefix=DSS)
    reply = call(client, "PUT", f"/datasources/{ds_id}/expire", UI_ROUTE, 400, prefix=DSS)
    assert "expire" in reply["message"]

    untried = _form("never-saved", "1", "MYSQL", {**params, "password": "pw-page-77"})
    reply = call(client, "POST", "/datasources/op/connect", untried, 400, prefix=DSS)
    assert "connection failed" in reply["message"] and "pw-page-77" not in str(reply)
    fine = _form("never-saved", "2", "POSTGRESQL", postgres_params())
    released(client, "POST", "/datasources/op/connect", fine)

    tagged = {**_form(f"t-{run_id}", "1", "MYSQL", params), "label": "finance"}
    reply = call(client, "POST", "/datasources", tagged, 400, prefix=DSS)
    assert "label" in reply["data"]["errors"]
    assert released(client, "DELETE", f"/datasources/{ds_id}", UI_ROUTE) == {"id": ds_id}


def test_the_editor_picks_database_table_and_gets_the_by_name_mapping(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str]
) -> None:
    data.mysql_table(tables["my_src"])
    data.postgres_table(tables["pg_dst"], columns='"ID" BIGINT, name TEXT, extra INT')
    my, pg = sources["MYSQL"], sources["POSTGRESQL"]
    assert "test" in released(client, "GET", f"/datasources/MYSQL/{my}/dbs")["dbs"]
    assert (
        tables["my_src"]
        in released(client, "GET", f"/datasources/MYSQL/{my}/dbs/test/tables")["tbs"]
    )
    assert (
        tables["pg_dst"]
        in released(client, "GET", f"/datasources/POSTGRESQL/{pg}/dbs/test/tables")["tbs"]
    )
    call(client, "GET", f"/datasources/POSTGRESQL/{my}/dbs", expect=404, prefix=DSS)

    body = {
        "sourceTypeId": "MYSQL",
        "sourceDataSourceId": str(my),
        "sourceDataBase": "test",
        "sourceTable": tables["my_src"],
        "sinkTypeId": "POSTGRESQL",
        "sinkDataSourceId": pg,
        "sinkDataBase": "test",
        "sinkTable": tables["pg_dst"],
        "engine": "EXCHANGIS",
        "srcTblNotExist": False,
        "sinkTblNotExist": "false",
        **UI_ROUTE,
    }
    settings = released(client, "POST", "/job/transform/settings", body)
    assert settings["types"] == ["MAPPING"]
    assert [f["name"] for f in settings["sourceFields"]][:3] == ["id", "name", "amount"]
    assert settings["sinkFields"][0] == {"name": "ID", "type": "bigint", "fieldIndex": 0}
    pairs = [(d["source"]["name"], d["sink"]["name"]) for d in settings["deductions"]]
    assert pairs == [("id", "ID"), ("name", "name")]  # by name, any case; the rest unmapped
    assert settings["deductions"][0]["sink"]["fieldEditable"] is True
    assert (settings["addEnable"], settings["transformEnable"]) == (True, False)

    new_sink = {**body, "sinkTable": "to_be_made", "sinkTblNotExist": True}
    settings = released(client, "POST", "/job/transform/settings", new_sink)
    assert settings["sinkFields"] == []
    assert [d["sink"]["name"] for d in settings["deductions"]] == [
        f["name"] for f in settings["sourceFields"]
    ]
    wrong = {**body, "sinkTypeId": "MYSQL"}
    reply = call(client, "POST", "/job/transform/settings", wrong, 400, prefix=DSS)
    assert "sinkTypeId" in reply["data"]["errors"]
