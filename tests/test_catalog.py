"""Browsing a data source: databases, tables, columns, answered by a worker (both prefixes)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from exchangis.connectors.catalog import STATEMENT_SECONDS, SqlCatalog
from exchangis.connectors.registry import default_registry
from exchangis.errors import ConnectorError
from exchangis.runtime import Runtime
from tests import data
from tests.helpers import DSS, call, datasource, ok
from tests.services import mysql_params, postgres_params

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]  # a worker connects


def _columns(client: FlaskClient, ds_id: int, query: str) -> dict[str, tuple[str, bool, bool]]:
    found = ok(client, "GET", f"/datasources/{ds_id}/columns?{query}")
    assert found["total"] == len(found["result"])
    return {c["name"]: (c["type"], c["nullable"], c["key"]) for c in found["result"]}


def test_mariadb_and_postgresql_list_databases_tables_and_columns(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str]
) -> None:
    data.mysql_table(tables["my_src"])
    data.postgres_table(tables["pg_src"])
    my, pg = sources["MYSQL"], sources["POSTGRESQL"]

    assert "test" in ok(client, "GET", f"/datasources/{my}/databases")["result"]
    assert "test" in ok(client, "GET", f"/datasources/{pg}/databases")["result"]
    for ds_id, table in ((my, tables["my_src"]), (pg, tables["pg_src"])):
        found = ok(client, "GET", f"/datasources/{ds_id}/tables?db=test&name={table.upper()}")
        assert found == {"result": [table], "total": 1}  # the filter ignores case
        # the same answer under the alias prefix, and without db (the data source's own)
        assert ok(client, "GET", f"/datasources/{ds_id}/tables?name={table}", prefix=DSS) == found

    assert _columns(client, my, f"table={tables['my_src']}") == {
        "id": ("bigint(20)", False, True),
        "name": ("varchar(100)", True, False),
        "amount": ("decimal(14,2)", True, False),
        "created": ("datetime(6)", True, False),
        "day": ("date", True, False),
        "flag": ("tinyint(1)", True, False),
        "note": ("text", True, False),
        "ratio": ("double", True, False),
    }
    assert list(_columns(client, my, f"table={tables['my_src']}&name=AMO")) == ["amount"]
    pg_columns = _columns(client, pg, f"db=test&table={tables['pg_src']}")
    assert list(pg_columns) == ["id", "name", "amount", "created", "day", "flag", "note", "ratio"]
    assert pg_columns["id"] == ("bigint", False, True)
    assert pg_columns["amount"] == ("numeric(14,2)", True, False)
    assert pg_columns["created"] == ("timestamp without time zone", True, False)


def test_names_are_paged_and_a_missing_table_is_a_404(
    client: FlaskClient, sources: dict[str, int], tables: dict[str, str]
) -> None:
    for name in ("my_src", "my_dst"):
        data.mysql_table(tables[name])
    my = sources["MYSQL"]
    common = tables["my_src"].rsplit("_", 1)[1]  # the run id both names carry
    first = ok(client, "GET", f"/datasources/{my}/tables?name={common}&size=1")
    second = ok(client, "GET", f"/datasources/{my}/tables?name={common}&size=1&current=2")
    assert first["total"] == second["total"] == 2
    assert first["result"] + second["result"] == sorted([tables["my_dst"], tables["my_src"]])

    reply = call(client, "GET", f"/datasources/{my}/columns?table=missing_{common}", expect=404)
    assert f"missing_{common}" in reply["message"]
    reply = call(client, "GET", f"/datasources/{my}/columns", expect=400)
    assert "table" in reply["message"]
    reply = call(client, "GET", f"/datasources/{my}/tables?size=0", expect=400)
    assert "size" in reply["message"]


def test_sqlite_and_files_are_browsed_too(client: FlaskClient, tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL, x REAL)")
    lite = datasource(client, f"lite-{tmp_path.name}", "SQLITE", {"path": str(path)})
    assert ok(client, "GET", f"/datasources/{lite}/databases")["result"] == ["main"]
    with sqlite3.connect(path) as conn:  # the engine's bookkeeping of loads, not a table to pick
        conn.execute("CREATE TABLE exg_ledger (k TEXT)")
    assert ok(client, "GET", f"/datasources/{lite}/tables")["result"] == ["orders"]
    assert _columns(client, lite, "table=orders") == {
        "id": ("INTEGER", False, True),
        "note": ("TEXT", False, False),
        "x": ("REAL", True, False),
    }

    root = tmp_path / "files"
    (root / "day1").mkdir(parents=True)
    (root / "day1" / "in.csv").write_text("id,name\n1,a\n")
    (root / "readme.txt").write_text("not a table")
    (root / ".hidden.csv").write_text("id\n1\n")
    files = datasource(client, f"files-{tmp_path.name}", "FILE", {"root": str(root)})
    assert ok(client, "GET", f"/datasources/{files}/databases")["result"] == ["."]
    assert ok(client, "GET", f"/datasources/{files}/tables?db=.")["result"] == ["day1/in.csv"]
    assert _columns(client, files, "table=day1/in.csv") == {
        "id": ("string", True, False),
        "name": ("string", True, False),
    }


def test_a_refusing_server_is_reported_without_its_password(
    client: FlaskClient, rt: Runtime, tmp_path: Path
) -> None:
    params = {**mysql_params(), "password": "s3cret-wrong"}
    ds_id = datasource(client, f"bad-{tmp_path.name}", "MYSQL", params)
    reply = call(client, "GET", f"/datasources/{ds_id}/tables", expect=400)
    assert "s3cret-wrong" not in str(reply)
    assert "Access denied" in reply["message"]

    down = {**mysql_params(), "port": 1}  # nothing listens: unreachable now
    ds_id = datasource(client, f"down-{tmp_path.name}", "MYSQL", down)
    call(client, "GET", f"/datasources/{ds_id}/databases", expect=503)

    memory = datasource(client, f"mem-{tmp_path.name}", "MEMORY", {})
    reply = call(client, "GET", f"/datasources/{memory}/tables", expect=400)
    assert "MEMORY" in reply["message"]
    browse = {
        c["type"]: c["capabilities"]["browse"] for c in ok(client, "GET", "/connectors")["list"]
    }
    assert browse == {"MYSQL": True, "POSTGRESQL": True, "SQLITE": True, "FILE": True} | {
        "MEMORY": False
    }


@pytest.mark.parametrize("kind", ["MYSQL", "POSTGRESQL"])
def test_a_catalog_statement_past_its_bound_is_cut_by_the_server(kind: str) -> None:
    declared = default_registry().type(kind).catalog
    assert isinstance(declared, SqlCatalog)
    # the declared catalog's own session bound, tightened, on a query that would take 5 s
    bound, tighter = {
        "MYSQL": (f"= {STATEMENT_SECONDS} ", "= 0.3 "),
        "POSTGRESQL": (f"'{STATEMENT_SECONDS}s'", "'300ms'"),
    }[kind]
    tight = [statement.replace(bound, tighter) for statement in declared.session]
    assert tight != list(declared.session)
    slow = "SELECT SLEEP(5)" if kind == "MYSQL" else "SELECT pg_sleep(5)"
    catalog = SqlCatalog(
        declared.label,
        declared.opener,
        declared.classify,
        session=tight,
        databases=slow,
        tables=declared.tables_sql,
        columns=declared.columns_sql,
    )
    connect = mysql_params() if kind == "MYSQL" else postgres_params()
    began = time.monotonic()
    with pytest.raises(ConnectorError):
        catalog.databases(connect)
    assert 0.25 < time.monotonic() - began < 3  # it ran, then the server cut it, before 5 s
