"""SQL sink write modes on every SQL backend: upsert through a staging table, overwrite, and
the ``createTable`` / ``primaryKeys`` options."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from exchangis.connectors.base import Endpoint
from exchangis.connectors.options import names
from exchangis.connectors.sql_sink import SqlSink
from exchangis.errors import InvalidInputError, TerminalConnectorError
from tests.connectors.conftest import Backend, rows_of

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("code", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("ts", pa.timestamp("us")),
        ("note", pa.string()),
    ]
)
T0 = dt.datetime(2024, 1, 1, 8, 30, 0, 123456)


def rows(*values: tuple[Any, ...]) -> pa.Table:
    """Return a table of SCHEMA from (id, code, amount, ts, note) tuples."""
    return pa.Table.from_pylist(
        [dict(zip(SCHEMA.names, v, strict=True)) for v in values], schema=SCHEMA
    )


OLD = rows(
    (1, "a", Decimal("1.00"), T0, "old 1"),
    (2, "b", Decimal("2.00"), T0, "old 2"),
    (3, "c", Decimal("3.00"), T0, None),
)
INCOMING = rows(
    (2, "b", Decimal("-20.50"), T0 + dt.timedelta(days=1), "new 2"),  # existing key: updated
    (4, "d", Decimal("4.40"), None, "new 4"),  # new key: inserted
    (3, "c", Decimal("30.00"), T0, "first 3"),  # existing key, twice in the data ...
    (5, "e", Decimal("5.00"), T0, "first 5"),  # new key, twice in the data ...
    (3, "c", Decimal("33.33"), None, "last 3"),  # ... the last one wins
    (5, "e", Decimal("55.55"), T0, None),  # ... the last one wins
)
EXPECTED = rows(
    (1, "a", Decimal("1.00"), T0, "old 1"),
    (2, "b", Decimal("-20.50"), T0 + dt.timedelta(days=1), "new 2"),
    (3, "c", Decimal("33.33"), None, "last 3"),
    (4, "d", Decimal("4.40"), None, "new 4"),
    (5, "e", Decimal("55.55"), T0, None),
)


def execute(backend: Backend, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the backend outside any sink (autocommit); return the last rows."""
    result: list[tuple[Any, ...]] = []
    if backend.kind == "mysql":
        import pymysql

        conn = pymysql.connect(
            host=backend.connect["host"],
            port=int(backend.connect["port"]),
            user=backend.connect["username"],
            database=backend.connect["database"],
            autocommit=True,
        )
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement.replace('"', "`"))
                result = list(cur.fetchall())
        conn.close()
    elif backend.kind == "postgres":
        import psycopg

        with psycopg.connect(
            host=backend.connect["host"],
            port=backend.connect["port"],
            user=backend.connect["username"],
            dbname=backend.connect["database"],
            autocommit=True,
        ) as pg:
            for statement in statements:
                cursor = pg.execute(statement)
                result = list(cursor.fetchall()) if cursor.description else []
    else:
        lite = sqlite3.connect(backend.connect["path"], isolation_level=None)
        for statement in statements:
            result = lite.execute(statement).fetchall()
        lite.close()
    return result


def keyed_table(backend: Backend, key: str = "PRIMARY KEY (id)", not_null: str = "") -> str:
    """Create a table of SCHEMA's shape with ``key`` (a constraint clause or "") and column
    ``not_null`` NOT NULL; return its name."""
    table = backend.new_table()
    types = {
        "mysql": "BIGINT NOT NULL, VARCHAR(20), DECIMAL(12,2), DATETIME(6), LONGTEXT",
        "postgres": "bigint NOT NULL, varchar(20), numeric(12,2), timestamp, text",
        "sqlite": "INTEGER NOT NULL, TEXT, DECIMAL TEXT(12,2), TIMESTAMP, TEXT",
    }[backend.kind].split(", ")
    cols = [
        f"{n} {t}{' NOT NULL' if n == not_null else ''}"
        for n, t in zip(SCHEMA.names, types, strict=True)
    ]
    execute(backend, f'CREATE TABLE "{table}" ({", ".join(cols + ([key] if key else []))})')
    return table


def test_upsert_updates_existing_keys_and_inserts_new_ones_last_wins(
    sql_backend: Backend,
) -> None:
    table = keyed_table(sql_backend)
    sql_backend.write(table, OLD)

    sql_backend.write(table, INCOMING, writeMode="upsert", primaryKeys="id")

    assert rows_of(sql_backend.read(table)) == rows_of(EXPECTED)


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize("kind", ["mysql", "postgres"])
def test_upsert_goes_through_both_write_paths(
    make_backend: Any, kind: str, bulk: bool, registry: Any
) -> None:
    backend = make_backend(kind)
    if "bulk" not in names(registry.sinks[backend.type].options):
        pytest.skip("this sink has a single write path")
    table = keyed_table(backend)
    backend.write(table, OLD)

    backend.write(table, INCOMING, writeMode="upsert", primaryKeys=["id"], bulk=bulk)

    assert rows_of(backend.read(table)) == rows_of(EXPECTED)


def test_upsert_creates_a_missing_table_with_the_primary_key(sql_backend: Backend) -> None:
    table = sql_backend.new_table()

    sql_backend.write(table, OLD, writeMode="upsert", primaryKeys=["code", "id"])
    sql_backend.write(table, INCOMING, writeMode="upsert", primaryKeys=["code", "id"])

    assert rows_of(sql_backend.read(table)) == rows_of(EXPECTED)
    sink = sql_backend.registry.sink(sql_backend.endpoint(table))
    assert isinstance(sink, SqlSink)
    keys = execute(sql_backend, sink.dialect.unique_keys(table))
    assert {str(column) for _, column in keys} == {"code", "id"}


def test_upsert_matches_a_unique_index_that_is_not_the_primary_key(sql_backend: Backend) -> None:
    table = keyed_table(sql_backend, "UNIQUE (code)")
    sql_backend.write(table, OLD)
    incoming = rows((20, "b", Decimal("9.99"), None, "via code"), (6, "f", None, None, None))

    sql_backend.write(table, incoming, writeMode="upsert", primaryKeys="code")

    expected = rows(
        (1, "a", Decimal("1.00"), T0, "old 1"),
        (20, "b", Decimal("9.99"), None, "via code"),
        (3, "c", Decimal("3.00"), T0, None),
        (6, "f", None, None, None),
    )
    assert rows_of(sql_backend.read(table)) == rows_of(expected)


def _row_level(backend: Backend, **options: Any) -> dict[str, Any]:
    """Return ``options`` that make the sink write row by row (rows refused one by one)."""
    sinks = backend.registry.sinks[backend.type]
    return {**options, "bulk": False} if "bulk" in names(sinks.options) else options


def test_upsert_row_with_a_null_key_is_an_error_record(sql_backend: Backend) -> None:
    table = keyed_table(sql_backend, "UNIQUE (id, code)")
    sql_backend.write(table, OLD)
    incoming = rows((1, None, Decimal("9.00"), None, "null code"), (2, "b", None, None, "b!"))
    options = _row_level(sql_backend, writeMode="upsert", primaryKeys="id, code")

    with sql_backend.registry.sink(sql_backend.endpoint(table, **options)) as sink:
        sink.open(SCHEMA)
        written = sink.write(incoming.to_batches()[0])
        rejects = sink.take_rejects()
        sink.commit()

    assert written == 1
    assert [r.row["note"] for r in rejects] == ["null code"]
    assert "primary_keys_not_null" in rejects[0].reason
    expected = rows(
        (1, "a", Decimal("1.00"), T0, "old 1"),
        (2, "b", None, None, "b!"),
        (3, "c", Decimal("3.00"), T0, None),
    )
    assert rows_of(sql_backend.read(table)) == rows_of(expected)


def test_upsert_row_the_target_refuses_at_the_merge_fails_the_commit(sql_backend: Backend) -> None:
    table = keyed_table(sql_backend, not_null="note")
    sql_backend.write(table, OLD.filter(pc.field("note").is_valid()))
    before = sql_backend.read(table)
    incoming = rows((7, "g", Decimal("7.00"), None, "fine"), (1, "a", None, None, None))
    options = _row_level(sql_backend, writeMode="upsert", primaryKeys="id")

    sink = sql_backend.registry.sink(sql_backend.endpoint(table, **options))
    sink.open(SCHEMA)
    for batch in incoming.to_batches(max_chunksize=1):
        sink.write(batch)
    if sql_backend.kind == "mysql":  # its staging table keeps NOT NULL: the row is refused there
        assert [r.row["id"] for r in sink.take_rejects()] == [1]
    else:  # the other staging tables have no constraint but the key's: the merge fails
        with pytest.raises(TerminalConnectorError, match="merge into"):
            sink.commit()
    sink.rollback()
    sink.close()

    assert rows_of(sql_backend.read(table)) == rows_of(before)


@pytest.mark.parametrize("key", ["", "UNIQUE (id, code)"])
def test_upsert_without_a_key_on_exactly_the_columns_fails_at_open(
    sql_backend: Backend, key: str
) -> None:
    table = keyed_table(sql_backend, key)
    sql_backend.write(table, OLD)

    sink = sql_backend.registry.sink(
        sql_backend.endpoint(table, writeMode="upsert", primaryKeys="id")
    )
    with pytest.raises(TerminalConnectorError, match=r"no primary key or unique index on exact"):
        sink.open(SCHEMA)
    sink.close()

    assert rows_of(sql_backend.read(table)) == rows_of(OLD)


def test_upsert_rolled_back_leaves_the_table_and_no_stage(sql_backend: Backend) -> None:
    table = keyed_table(sql_backend)
    sql_backend.write(table, OLD)

    sink = sql_backend.registry.sink(
        sql_backend.endpoint(table, writeMode="upsert", primaryKeys="id")
    )
    assert isinstance(sink, SqlSink)
    sink.open(SCHEMA)
    assert sink.write_table != table
    for batch in INCOMING.to_batches(max_chunksize=2):
        sink.write(batch)
    sink.rollback()
    sink.close()

    assert rows_of(sql_backend.read(table)) == rows_of(OLD)
    if sql_backend.kind == "sqlite":  # a temp table lives in the file's connection only
        path = sql_backend.connect["path"]
        with sqlite3.connect(path) as lite:
            names = [r[0] for r in lite.execute("SELECT name FROM sqlite_master").fetchall()]
        assert all("exg_stage" not in n for n in names)


def test_upsert_of_key_columns_only_inserts_the_missing_keys(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    sql_backend.write(
        table, pa.table({"id": pa.array([1, 2], pa.int64())}), writeMode="upsert", primaryKeys="id"
    )

    sql_backend.write(
        table,
        pa.table({"id": pa.array([2, 3, 3], pa.int64())}),
        writeMode="upsert",
        primaryKeys="id",
    )

    assert sorted(sql_backend.read(table).column("id").to_pylist()) == [1, 2, 3]


def test_upsert_twice_is_idempotent(sql_backend: Backend) -> None:
    table = keyed_table(sql_backend)

    for _ in range(2):
        sql_backend.write(table, INCOMING, writeMode="upsert", primaryKeys="id")

    assert rows_of(sql_backend.read(table)) == rows_of(EXPECTED.filter(pc.field("id") != 1))


def test_overwrite_replaces_the_rows_at_commit_and_a_rollback_keeps_them(
    sql_backend: Backend,
) -> None:
    table = keyed_table(sql_backend)
    sql_backend.write(table, OLD)
    new = EXPECTED.filter(pc.field("id") > 3)

    for commit in (False, True):
        sink = sql_backend.registry.sink(sql_backend.endpoint(table, writeMode="overwrite"))
        sink.open(SCHEMA)
        for batch in new.to_batches(max_chunksize=1):
            sink.write(batch)
        assert rows_of(sql_backend.read(table)) == rows_of(OLD)  # others still see the old rows
        if commit:
            sink.commit()
        else:
            sink.rollback()
        sink.close()
        assert rows_of(sql_backend.read(table)) == rows_of(new if commit else OLD)


def test_create_table_false_refuses_a_missing_table(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    if sql_backend.kind == "sqlite":
        sql_backend.write(sql_backend.new_table(), OLD)  # the database file exists

    for mode in ("append", "overwrite", "upsert"):
        sink = sql_backend.registry.sink(
            sql_backend.endpoint(table, writeMode=mode, primaryKeys="id", createTable=False)
        )
        with pytest.raises(
            TerminalConnectorError, match=f"table {table} does not exist and createTable is false"
        ):
            sink.open(SCHEMA)
        sink.close()

    with pytest.raises(TerminalConnectorError):
        sql_backend.read(table)
    keyed = keyed_table(sql_backend)
    sql_backend.write(keyed, OLD, createTable="false")
    assert rows_of(sql_backend.read(keyed)) == rows_of(OLD)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"writeMode": "upsert"}, "needs option primaryKeys"),
        ({"writeMode": "upsert", "primaryKeys": []}, "needs option primaryKeys"),
        ({"writeMode": "upsert", "primaryKeys": "id, id"}, "names a column twice"),
        ({"writeMode": "upsert", "primaryKeys": "id,"}, "primaryKeys holds an empty name"),
        ({"writeMode": "upsert", "primaryKeys": ["id", 'x"; DROP']}, "invalid column name"),
        ({"writeMode": "upsert", "primaryKeys": 5}, "primaryKeys must be a list of names"),
        ({"writeMode": "upsert", "primaryKeys": [1]}, "primaryKeys must be a list of names"),
        ({"createTable": "maybe"}, "createTable must be true or false"),
        ({"createTable": 2}, "createTable must be true or false"),
        ({"writeMode": "merge"}, "writeMode must be one of append, overwrite, upsert"),
    ],
)
def test_bad_options_are_refused_without_io(
    sql_backend: Backend, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        sql_backend.registry.sink(sql_backend.endpoint("t", **options))
    assert caught.value.errors == {"options": [caught.value.message]}


def test_primary_keys_must_be_written_columns(sql_backend: Backend) -> None:
    endpoint = sql_backend.endpoint(
        sql_backend.new_table(), writeMode="upsert", primaryKeys="id,code"
    )
    sink = sql_backend.registry.sink(endpoint)

    sink.check_columns(["id", "code", "x"])
    with pytest.raises(InvalidInputError, match="code not among the written columns"):
        sink.check_columns(["id", "x"])
    with pytest.raises(InvalidInputError, match="code not among the written columns"):
        sink.open(pa.schema([("id", pa.int64()), ("x", pa.string())]))
    sink.close()


def test_postgres_upsert_into_a_schema_qualified_table(make_backend: Any, registry: Any) -> None:
    backend = make_backend("postgres")
    schema = backend.new_table("schema")
    backend.tables.remove(schema)
    execute(backend, f'CREATE SCHEMA "{schema}"')
    try:
        table = f"{schema}.items"
        endpoint = Endpoint("POSTGRESQL", backend.connect, table, options={})
        for data in (OLD, INCOMING):
            backend.write(table, data, writeMode="upsert", primaryKeys="id")
        with registry.source(endpoint) as source:
            source.open()
            result = pa.Table.from_batches(list(source.batches(100)))
        assert rows_of(result) == rows_of(EXPECTED)
    finally:
        execute(backend, f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_partial_unique_index_is_no_upsert_key(make_backend: Any) -> None:
    backend = make_backend("postgres")
    table = keyed_table(backend, "")
    execute(backend, f'CREATE UNIQUE INDEX ON "{table}" (id) WHERE id > 0')

    sink = backend.registry.sink(backend.endpoint(table, writeMode="upsert", primaryKeys="id"))
    with pytest.raises(TerminalConnectorError, match="no primary key or unique index"):
        sink.open(SCHEMA)
    sink.close()
