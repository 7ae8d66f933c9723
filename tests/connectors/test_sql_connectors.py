"""The connector contract, run against every real backend, then SQL-specific behaviour.

The contract tests take the ``backend`` fixture: MariaDB, PostgreSQL, SQLite, CSV and JSONL.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from decimal import Decimal

import pyarrow as pa
import pytest

from exchangis.connectors import mysql, postgres, sqlite
from exchangis.connectors.base import Endpoint, Estimate, Sink, Source
from exchangis.connectors.registry import Registry
from exchangis.connectors.sqlite import connection as sqlite_connection
from exchangis.errors import (
    ConnectorError,
    InvalidInputError,
    TerminalConnectorError,
    TransientConnectorError,
)
from tests.connectors.conftest import (
    DATA,
    SCHEMA,
    SEED,
    SQL_BACKENDS,
    Backend,
    rows_of,
    view,
)

Factory = Callable[[str], Backend]


def numbered(count: int) -> pa.Table:
    """Return ``count`` rows of the contract schema with ids 1..count."""
    return pa.table(
        {
            "id": pa.array(range(1, count + 1), pa.int64()),
            "amount": pa.array([Decimal(i).scaleb(-2) for i in range(count)], pa.decimal128(12, 2)),
            "day": pa.array([dt.date(2024, 1, 1)] * count, pa.date32()),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 0, 0, 0, i) for i in range(count)], pa.timestamp("us")
            ),
            "name": pa.array([f"row {i}" for i in range(count)], pa.string()),
            "flag": pa.array([i % 2 == 0 for i in range(count)], pa.bool_()),
        },
        schema=SCHEMA,
    )


# --- contract: every backend ---------------------------------------------------------------------


def test_round_trip_keeps_every_value(backend: Backend) -> None:
    table = backend.new_table()
    backend.write(table, DATA)

    result = backend.read(table)

    expected = view(backend.kind, DATA)
    assert result.schema == expected.schema
    assert rows_of(result) == rows_of(expected)


@pytest.mark.parametrize(
    ("src_kind", "dst_kind"),
    [
        ("mysql", "postgres"),
        ("postgres", "mysql"),
        ("csv", "sqlite"),
        ("sqlite", "jsonl"),
        ("jsonl", "mysql"),
        ("postgres", "csv"),
        ("sqlite", "postgres"),
        ("mysql", "sqlite"),
    ],
)
def test_moving_between_backends_keeps_values(
    make_backend: Factory, src_kind: str, dst_kind: str
) -> None:
    src, dst = make_backend(src_kind), make_backend(dst_kind)
    src_table, dst_table = src.new_table("src"), dst.new_table("dst")
    src.write(src_table, DATA)

    with src.registry.source(src.endpoint(src_table)) as source:
        schema = source.open()
        with dst.registry.sink(dst.endpoint(dst_table)) as sink:
            sink.open(schema)
            written = sum(sink.write(batch) for batch in source.batches(2))
            sink.commit()

    assert written == DATA.num_rows
    expected = view(dst_kind, view(src_kind, DATA))
    result = dst.read(dst_table)
    assert result.schema == expected.schema
    assert rows_of(result) == rows_of(expected)


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_rollback_leaves_the_sink_as_it_was(backend: Backend, mode: str) -> None:
    table = backend.new_table()
    backend.write(table, SEED)

    sink = backend.registry.sink(backend.endpoint(table, writeMode=mode))
    sink.open(DATA.schema)
    sink.write(DATA.to_batches()[0])
    sink.rollback()
    sink.close()

    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, SEED))


def test_close_without_commit_discards_writes(backend: Backend) -> None:
    table = backend.new_table()
    backend.write(table, SEED)

    with backend.registry.sink(backend.endpoint(table, writeMode="overwrite")) as sink:
        sink.open(DATA.schema)
        sink.write(DATA.to_batches()[0])

    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, SEED))


def test_rollback_of_a_new_table_leaves_no_rows(backend: Backend) -> None:
    table = backend.new_table()

    with backend.registry.sink(backend.endpoint(table)) as sink:
        sink.open(DATA.schema)
        sink.write(DATA.to_batches()[0])
        sink.rollback()

    if backend.kind in SQL_BACKENDS and backend.kind != "mysql":
        with pytest.raises(TerminalConnectorError):
            backend.read(table)  # the CREATE TABLE was rolled back too
    elif backend.kind == "mysql":
        assert backend.read(table).num_rows == 0  # DDL commits implicitly in MySQL
    else:
        with pytest.raises(TerminalConnectorError, match="does not exist"):
            backend.read(table)


def test_overwrite_replaces_rows(backend: Backend) -> None:
    table = backend.new_table()
    backend.write(table, SEED)

    backend.write(table, DATA, writeMode="overwrite")

    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, DATA))


def test_append_keeps_existing_rows(backend: Backend) -> None:
    table = backend.new_table()
    backend.write(table, SEED)

    backend.write(table, DATA, writeMode="append")

    expected = pa.concat_tables([SEED, DATA])
    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, expected))


def test_batches_are_bounded(backend: Backend) -> None:
    table = backend.new_table()
    backend.write(table, numbered(1000))

    with backend.registry.source(backend.endpoint(table)) as source:
        source.open()
        sizes = [b.num_rows for b in source.batches(64)]
    with backend.registry.source(backend.endpoint(table, batchSize=10)) as source:
        source.open()
        small = [b.num_rows for b in source.batches(64)]

    assert sum(sizes) == 1000 and max(sizes) == 64
    assert sum(small) == 1000 and max(small) == 10


def test_source_estimate_or_progress_is_sensible(backend: Backend) -> None:
    table = backend.new_table()
    backend.write(table, numbered(500))
    if backend.kind == "postgres":
        _pg_exec(backend.connect, f'ANALYZE "{table}"')  # makes reltuples exact
    elif backend.kind == "mysql":
        # Fresh InnoDB statistics, not whatever the background recalculation has reached: the
        # 500 rows fill a handful of leaf pages, fewer than innodb_stats_persistent_sample_pages
        # (20 by default), so ANALYZE reads every page and the estimate is the exact count.
        _mysql_exec(backend.connect, f"ANALYZE TABLE `{table}`")

    with backend.registry.source(backend.endpoint(table)) as source:
        source.open()
        estimate = source.estimate()
        before = source.progress()
        seen = []
        for _ in source.batches(50):
            seen.append(source.progress())
        after = source.progress()

    if backend.kind in ("postgres", "sqlite", "mysql"):
        assert estimate == Estimate(500)  # the catalog's figure: a statistic
    else:
        assert estimate is None
        assert before is not None and 0.0 <= before <= 1.0
        assert seen == sorted(seen)
        assert after == 1.0


def test_sources_and_sinks_subclass_the_contract(backend: Backend) -> None:
    table = backend.new_table()
    source = backend.registry.source(backend.endpoint(table))
    sink = backend.registry.sink(backend.endpoint(table))

    assert isinstance(source, Source) and isinstance(sink, Sink)
    assert source.traffic == sink.traffic
    assert source.traffic in {"mysql", "postgresql", "sqlite", "csv", "jsonl"}


def test_upsert_needs_primary_keys_and_a_sql_sink(backend: Backend) -> None:
    table = backend.new_table()
    if backend.kind in SQL_BACKENDS:
        with pytest.raises(InvalidInputError, match="needs option primaryKeys"):
            backend.registry.sink(backend.endpoint(table, writeMode="upsert"))
        backend.registry.sink(backend.endpoint(table, writeMode="upsert", primaryKeys="id"))
    else:
        with pytest.raises(InvalidInputError, match=r"one of append, overwrite, got .upsert"):
            backend.registry.sink(backend.endpoint(table, writeMode="upsert", primaryKeys="id"))


# --- SQL backends ------------------------------------------------------------------------------


def test_where_and_columns_select_rows_and_order(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    sql_backend.write(table, DATA)

    result = sql_backend.read(table, where="id > 1 AND flag IS NOT NULL", columns="name, id")

    assert result.schema.names == ["name", "id"]
    assert sorted(result.column("id").to_pylist()) == [9007199254740993, 9223372036854775807]
    listed = sql_backend.read(table, columns=["id"], where="id = 1")
    assert listed.to_pylist() == [{"id": 1}]


@pytest.mark.parametrize(
    "name", ["t; DROP TABLE x", "a.b.c", 't"x', "t`x", "t x", "", "../t", "t--", "t'"]
)
def test_identifier_injection_is_rejected(sql_backend: Backend, name: str) -> None:
    with pytest.raises(InvalidInputError):
        sql_backend.registry.source(sql_backend.endpoint(name))
    with pytest.raises(InvalidInputError):
        sql_backend.registry.sink(sql_backend.endpoint(name))
    with pytest.raises(InvalidInputError):
        sql_backend.registry.source(sql_backend.endpoint("ok", columns=["id", name or "x y"]))


def test_column_names_from_the_data_are_validated(sql_backend: Backend) -> None:
    sink = sql_backend.registry.sink(sql_backend.endpoint(sql_backend.new_table()))
    bad = pa.schema([("id", pa.int64()), ('x") ; DROP TABLE t; --', pa.string())])

    with pytest.raises(InvalidInputError):
        sink.open(bad)
    sink.close()


def test_missing_table_is_a_terminal_error(sql_backend: Backend) -> None:
    source = sql_backend.registry.source(sql_backend.endpoint(sql_backend.new_table()))
    if sql_backend.kind == "sqlite":
        sql_backend.write(sql_backend.new_table(), SEED)  # the database file exists
    with pytest.raises(TerminalConnectorError):
        source.open()
    source.close()


def test_bad_where_is_a_terminal_error(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    sql_backend.write(table, SEED)

    with pytest.raises(TerminalConnectorError):
        sql_backend.read(table, where="no_such_column = 1")


def test_unknown_write_mode_is_refused(sql_backend: Backend) -> None:
    with pytest.raises(InvalidInputError, match="writeMode"):
        sql_backend.registry.sink(sql_backend.endpoint("t", writeMode="merge"))


def test_sink_batch_size_option_still_writes_everything(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    sql_backend.write(table, numbered(25), batchSize=7)

    assert sql_backend.read(table).num_rows == 25


# --- MySQL -------------------------------------------------------------------------------------


def _mysql_exec(connect: dict[str, object], *statements: str) -> list[tuple[object, ...]]:
    import pymysql

    conn = pymysql.connect(
        host=str(connect["host"]),
        port=int(str(connect["port"])),
        user=str(connect["username"]),
        database=str(connect["database"]),
        charset="utf8mb4",
        autocommit=True,
    )
    rows: list[tuple[object, ...]] = []
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
            rows = list(cur.fetchall())
    conn.close()
    return rows


def test_mysql_types_map_to_exact_arrow_types(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = backend.new_table()
    _mysql_exec(
        backend.connect,
        f"CREATE TABLE `{table}` (d DECIMAL(20,6), u DECIMAL(10,0) UNSIGNED, b TINYINT(1),"
        " i INT, big BIGINT UNSIGNED, f FLOAT, g DOUBLE, t TIME(6), dt DATETIME(6),"
        " ts TIMESTAMP(6) NULL, v VARCHAR(20), x TEXT, bl BLOB, vb VARBINARY(8), j JSON,"
        " e ENUM('a','b'), y YEAR, bit1 BIT(1), bits BIT(8)) DEFAULT CHARSET=utf8mb4",
        f"INSERT INTO `{table}` VALUES (12345678901234.123456, 42, 1, -7, 18446744073709551615,"
        " 1.5, 2.25, '13:14:15.000016', '2024-01-02 03:04:05.000006', '2024-01-02 03:04:05',"
        " 'vé', '中文😀', x'00ff', x'01', '{\"a\": 1}', 'b', 2024, b'1', b'00000101')",
    )

    result = backend.read(table)

    assert dict(zip(result.schema.names, result.schema.types, strict=True)) == {
        "d": pa.decimal128(20, 6),
        "u": pa.decimal128(10, 0),
        "b": pa.bool_(),
        "i": pa.int64(),
        "big": pa.uint64(),
        "f": pa.float64(),
        "g": pa.float64(),
        "t": pa.time64("us"),
        "dt": pa.timestamp("us"),
        "ts": pa.timestamp("us"),
        "v": pa.string(),
        "x": pa.string(),
        "bl": pa.binary(),
        "vb": pa.binary(),
        "j": pa.string(),
        "e": pa.string(),
        "y": pa.int64(),
        "bit1": pa.bool_(),
        "bits": pa.int64(),
    }
    row = result.to_pylist()[0]
    assert row["d"] == Decimal("12345678901234.123456")
    assert row["big"] == 18446744073709551615
    assert row["t"] == dt.time(13, 14, 15, 16)
    assert row["dt"] == dt.datetime(2024, 1, 2, 3, 4, 5, 6)
    assert (row["b"], row["x"], row["bl"], row["bit1"], row["bits"]) == (
        True,
        "中文😀",
        b"\x00\xff",
        True,
        5,
    )


def test_mysql_sink_creates_exact_column_types(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = backend.new_table()
    backend.write(table, DATA)

    types = _mysql_exec(
        backend.connect,
        "SELECT column_name, column_type FROM information_schema.columns"
        f" WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position",
    )
    assert [(str(n), str(t)) for n, t in types] == [
        ("id", "bigint(20)"),
        ("amount", "decimal(12,2)"),
        ("day", "date"),
        ("ts", "datetime(6)"),
        ("name", "longtext"),
        ("flag", "tinyint(1)"),
    ]


def test_mysql_endpoint_db_overrides_the_database(
    make_backend: Factory, registry: Registry
) -> None:
    backend = make_backend("mysql")
    table = backend.new_table()
    backend.write(table, SEED)
    connect = {**backend.connect, "database": "no_such_db_here"}

    with registry.source(Endpoint("MYSQL", connect, table, db="test")) as source:
        source.open()
        assert sum(b.num_rows for b in source.batches(10)) == 2


def test_mysql_wrong_password_is_terminal_and_hidden(make_backend: Factory) -> None:
    connect = {
        **make_backend("mysql").connect,
        "username": "exg_nobody",
        "password": "Sup3rSecretPw",
    }

    with pytest.raises(TerminalConnectorError) as caught:
        mysql.test_connection(connect)

    assert "Sup3rSecretPw" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_unreachable_servers_are_transient_and_hide_the_password() -> None:
    for module, port in ((mysql, 1), (postgres, 1)):
        connect = {
            "host": "127.0.0.1",
            "port": port,
            "username": "u",
            "password": "Sup3rSecretPw",
            "database": "test",
        }
        with pytest.raises(TransientConnectorError) as caught:
            module.test_connection(connect)
        assert "Sup3rSecretPw" not in str(caught.value)


def test_test_connection_accepts_the_real_servers(make_backend: Factory) -> None:
    mysql.test_connection(make_backend("mysql").connect)
    postgres.test_connection(make_backend("postgres").connect)
    sqlite.test_connection(make_backend("sqlite").connect)


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg_exec(connect: dict[str, object], *statements: str) -> None:
    import psycopg

    with psycopg.connect(
        host=str(connect["host"]),
        user=str(connect["username"]),
        dbname=str(connect["database"]),
        autocommit=True,
    ) as conn:
        for statement in statements:
            conn.execute(statement)


def test_postgres_types_map_to_exact_arrow_types(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = backend.new_table()
    _pg_exec(
        backend.connect,
        f'CREATE TABLE "{table}" (n numeric(20,6), free numeric, s smallint, r real,'
        " b boolean, c char(3), v varchar(5), d date, t time, ts timestamp, tz timestamptz,"
        " by bytea, j jsonb, u uuid, a int[])",
        f"INSERT INTO \"{table}\" VALUES (12345678901234.123456, 0.00000001, 7, 1.5, true, 'ab',"
        " 'vé', '2024-01-02', '13:14:15.000016', '2024-01-02 03:04:05.000006',"
        " '2024-01-02 03:04:05.000006+02', '\\x00ff', '{\"a\": 1}',"
        " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2}')",
    )

    result = backend.read(table)

    assert dict(zip(result.schema.names, result.schema.types, strict=True)) == {
        "n": pa.decimal128(20, 6),
        "free": pa.string(),
        "s": pa.int64(),
        "r": pa.float64(),
        "b": pa.bool_(),
        "c": pa.string(),
        "v": pa.string(),
        "d": pa.date32(),
        "t": pa.time64("us"),
        "ts": pa.timestamp("us"),
        "tz": pa.timestamp("us", tz="UTC"),
        "by": pa.binary(),
        "j": pa.string(),
        "u": pa.string(),
        "a": pa.string(),
    }
    row = result.to_pylist()[0]
    assert row["n"] == Decimal("12345678901234.123456")
    assert row["free"] == "0.00000001"
    assert row["tz"] == dt.datetime(2024, 1, 2, 1, 4, 5, 6, tzinfo=dt.UTC)
    assert (row["j"], row["u"], row["a"], row["by"]) == (
        '{"a": 1}',
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "{1,2}",
        b"\x00\xff",
    )


def test_postgres_schema_qualified_table_and_db_override(
    make_backend: Factory, registry: Registry
) -> None:
    backend = make_backend("postgres")
    schema = backend.new_table("schema")
    backend.tables.remove(schema)
    _pg_exec(backend.connect, f'CREATE SCHEMA "{schema}"')
    try:
        table = f"{schema}.items"
        connect = {**backend.connect, "database": "no_such_db_here"}
        with registry.sink(Endpoint("POSTGRESQL", connect, table, db="test")) as sink:
            sink.open(DATA.schema)
            sink.write(DATA.to_batches()[0])
            sink.commit()
        with registry.source(Endpoint("POSTGRESQL", connect, table, db="test")) as source:
            source.open()
            rows = pa.Table.from_batches(list(source.batches(100))).to_pylist()
        assert rows_of(pa.Table.from_pylist(rows, schema=SCHEMA)) == rows_of(DATA)
    finally:
        _pg_exec(backend.connect, f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_constraint_violation_is_an_error_record(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = backend.new_table()
    _pg_exec(backend.connect, f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)')
    data = pa.table({"id": [1, 1], "name": ["a", "b"]})

    with backend.registry.sink(backend.endpoint(table, bulk=False)) as sink:
        sink.open(data.schema)
        assert sink.write(data.to_batches()[0]) == 1
        [reject] = sink.take_rejects()
        sink.commit()
    assert reject.row == {"id": 1, "name": "b"}
    assert "duplicate key" in reject.reason


# --- SQLite ------------------------------------------------------------------------------------


def test_sqlite_value_that_does_not_fit_names_column_and_row(make_backend: Factory) -> None:
    backend = make_backend("sqlite")
    conn = sqlite3.connect(backend.connect["path"])
    conn.execute("CREATE TABLE t (id INTEGER, day DATE)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "2024-01-01"), (2, "2024-13-45")])
    conn.commit()
    conn.close()

    with pytest.raises(TerminalConnectorError, match=r"column 'day', row 2"):
        backend.read("t")


def test_sqlite_reads_declared_types_of_foreign_tables(make_backend: Factory) -> None:
    backend = make_backend("sqlite")
    conn = sqlite3.connect(backend.connect["path"])
    conn.execute(
        "CREATE TABLE t (a BIGINT, b DOUBLE, c DECIMAL(10,2), d BOOL, e DATETIME, f VARCHAR(5),"
        " g BLOB, h CLOB, i TIME, j TIMESTAMP WITH TIME ZONE, k)"
    )
    conn.execute(
        "INSERT INTO t VALUES (1, 2, '12345678.90', 'true', '2024-01-02T03:04:05.5', 'x',"
        " x'00', 'c', '01:02:03', '2024-01-02 03:04:05+02:00', 5)"
    )
    conn.commit()
    conn.close()

    result = backend.read("t")

    assert result.schema.types == [
        pa.int64(),
        pa.float64(),
        pa.decimal128(10, 2),
        pa.bool_(),
        pa.timestamp("us"),
        pa.string(),
        pa.binary(),
        pa.string(),
        pa.time64("us"),
        pa.timestamp("us", tz="UTC"),
        pa.string(),
    ]
    assert result.to_pylist()[0] == {
        "a": 1,
        "b": 2.0,
        "c": Decimal("12345678.90"),
        "d": True,
        "e": dt.datetime(2024, 1, 2, 3, 4, 5, 500000),
        "f": "x",
        "g": b"\x00",
        "h": "c",
        "i": dt.time(1, 2, 3),
        "j": dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.UTC),
        "k": "5",
    }


def test_sqlite_locked_database_is_transient(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend("sqlite")
    backend.write("t", SEED)
    monkeypatch.setattr(sqlite_connection, "_BUSY_TIMEOUT", 0.1)
    blocker = sqlite3.connect(backend.connect["path"], isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    sink = backend.registry.sink(backend.endpoint("t"))
    try:
        with pytest.raises(TransientConnectorError):
            sink.open(SEED.schema)
    finally:
        sink.close()
        blocker.execute("ROLLBACK")
        blocker.close()


def test_connector_errors_are_one_tree() -> None:
    assert issubclass(TransientConnectorError, ConnectorError)
    assert issubclass(TerminalConnectorError, ConnectorError)


def test_default_registry_types_have_testers_and_secrets(registry: Registry) -> None:
    for name in ("MYSQL", "POSTGRESQL", "SQLITE", "FILE", "MEMORY"):
        assert registry.type(name).tester is not None
    assert registry.type("MYSQL").secret_params == frozenset({"password"})
    assert registry.type("POSTGRESQL").secret_params == frozenset({"password"})


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_time_binary_float_and_utc_timestamps_round_trip(make_backend: Factory, kind: str) -> None:
    backend = make_backend(kind)
    table = backend.new_table()
    utc = pa.timestamp("us", tz="UTC")
    data = pa.table(
        {
            "clock": pa.array([dt.time(13, 14, 15, 16), dt.time(0, 0), None], pa.time64("us")),
            "blob": pa.array([b"\x00\xff\x10", b"", None], pa.binary()),
            "ratio": pa.array([0.1, -1e300, None], pa.float64()),
            "at": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None, None], utc),
        }
    )

    backend.write(table, data)
    result = backend.read(table)

    expected = data
    if kind == "mysql":  # DATETIME(6) holds the UTC wall time, without a zone
        expected = data.set_column(3, "at", data.column("at").cast(pa.timestamp("us")))
    assert result.schema == expected.schema
    assert rows_of(result) == rows_of(expected)


def test_closing_a_source_mid_stream_releases_it(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    sql_backend.write(table, numbered(2000))

    source = sql_backend.registry.source(sql_backend.endpoint(table))
    source.open()
    first = next(iter(source.batches(10)))
    source.close()
    source.close()

    assert first.num_rows == 10
    sql_backend.write(table, numbered(3), writeMode="overwrite")  # no lock left behind
    assert sql_backend.read(table).num_rows == 3


def test_connector_modules_import_no_driver() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from exchangis.connectors.registry import default_registry;"
        " default_registry(with_memory=True);"
        " loaded = {'pymysql', 'psycopg', 'sqlite3'} & set(sys.modules);"
        " assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
