"""Rows a SQL sink refuses become error records; the batch's other rows are written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pyarrow as pa
import pytest

from exchangis.connectors import mysql, postgres
from exchangis.errors import BulkRowRefusedError
from tests.connectors.conftest import Backend

Factory = Callable[[str], Backend]

DDL = {
    "postgres": 'CREATE TABLE "{t}" (id bigint PRIMARY KEY, code varchar(5) NOT NULL,'
    " qty int CHECK (qty >= 0))",
    "mysql": "CREATE TABLE `{t}` (id bigint PRIMARY KEY, code varchar(5) NOT NULL,"
    " qty int CHECK (qty >= 0)) ENGINE=InnoDB",
    "sqlite": 'CREATE TABLE "{t}" (id INTEGER PRIMARY KEY, code TEXT NOT NULL'
    " CHECK (length(code) <= 5), qty INTEGER CHECK (qty >= 0))",
}


def _create(backend: Backend, table: str) -> None:
    sql = DDL[backend.kind].format(t=table)
    if backend.kind == "postgres":
        conn = postgres.open_connection(backend.connect)
    elif backend.kind == "mysql":
        conn = mysql.open_connection(backend.connect)
    else:
        conn = sqlite3.connect(backend.connect["path"])
    try:
        conn.cursor().execute(sql)
        conn.commit()
    finally:
        conn.close()


def _rows(count: int, bad: dict[int, dict[str, object]]) -> pa.Table:
    rows = [{"id": i, "code": f"c{i % 1000}", "qty": i} for i in range(1, count + 1)]
    for i, change in bad.items():
        rows[i - 1].update(change)
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("id", pa.int64()), ("code", pa.string()), ("qty", pa.int64())])
    )


# Too long for varchar(5), NULL in NOT NULL, a CHECK violation, a duplicate key.
BAD = {
    7: {"code": "far too long"},
    500: {"code": None},
    1999: {"qty": -1},
    2500: {"id": 3},
}


@pytest.mark.parametrize("kind", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize("bulk", [True, False])
def test_bad_rows_are_rejected_and_the_rest_committed(
    make_backend: Factory, kind: str, bulk: bool
) -> None:
    backend = make_backend(kind)
    table = backend.new_table("err")
    _create(backend, table)
    data = _rows(3000, BAD)
    options = {"bulk": bulk} if kind != "sqlite" else {}

    if kind == "postgres" and bulk:  # binary COPY cannot set rows apart: the runner replays
        with backend.registry.sink(backend.endpoint(table, **options)) as sink:
            sink.open(data.schema)
            with pytest.raises(BulkRowRefusedError, match="value too long"):
                for batch in data.to_batches(max_chunksize=1024):
                    sink.write(batch)
            sink.rollback()
        assert backend.read(table).num_rows == 0
        return

    with backend.registry.sink(backend.endpoint(table, **options)) as sink:
        sink.open(data.schema)
        written = sum(sink.write(b) for b in data.to_batches(max_chunksize=1024))
        rejects = sink.take_rejects()
        sink.commit()

    assert written == 3000 - len(BAD)
    assert sorted(r.row["id"] for r in rejects) == sorted(
        BAD[i].get("id", i)
        for i in BAD  # type: ignore[misc]
    )
    assert all(r.reason for r in rejects)
    assert sink.take_rejects() == []
    back = backend.read(table).to_pylist()
    expected = [r for r in _rows(3000, BAD).to_pylist() if r["id"] not in (7, 500, 1999)]
    expected = [r for i, r in enumerate(expected) if not (r["id"] == 3 and r["qty"] == 2500)]
    assert sorted(back, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])
