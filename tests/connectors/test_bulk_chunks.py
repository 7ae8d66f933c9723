"""Bulk reads in chunks bounded in bytes as well as rows, on real PostgreSQL and MariaDB."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from exchangis.connectors import bulk
from exchangis.connectors.mysql import MySqlSource, open_connection
from exchangis.connectors.postgres import PostgresSource
from exchangis.connectors.postgres import open_connection as open_postgres
from exchangis.connectors.sql_source import SqlSource
from tests.connectors.conftest import Backend

Factory = Callable[[str], Backend]
WIDE_ROWS = 2000
"""Rows of about 100 kB: some 200 MB in all."""
SMALL_BUDGET = 8 * 2**20


def wide_body(i: int) -> str:
    """Return row ``i``'s text: 3,000 times its md5 and an ``é`` (102,000 bytes)."""
    return (hashlib.md5(str(i).encode()).hexdigest() + "é") * 3000


def _digits(alias: str) -> str:
    rest = " ".join(f"UNION ALL SELECT {d}" for d in range(1, 10))
    return f"(SELECT 0 AS d {rest}) {alias}"


def make_wide_table(backend: Backend, first: int, last: int, narrow_to: int = 0) -> str:
    """Create a table of rows ``first..last`` (id, n, body), ``body`` ``wide_body(id)`` but
    ``'x'`` up to id ``narrow_to``; the rows are made by the server."""
    table = backend.new_table("wide")
    body = "CASE WHEN {i} <= {narrow} THEN 'x' ELSE {wide} END"
    if backend.kind == "postgres":
        wide = "repeat(md5(g::text) || 'é', 3000)"
        with open_postgres(backend.connect) as conn:
            conn.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, n int, body text)')
            conn.execute(
                f'INSERT INTO "{table}" SELECT g, g, '
                + body.format(i="g", narrow=narrow_to, wide=wide)
                + f" FROM generate_series({first}, {last}) g"
            )
            conn.commit()
        return table
    wide = "REPEAT(CONCAT(MD5(g.i), 'é'), 3000)"
    numbers = "SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS i FROM " + ", ".join(
        _digits(alias) for alias in "abcef"
    )
    conn = open_connection(backend.connect)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, n INT, body MEDIUMTEXT)"
                " CHARACTER SET utf8mb4"
            )
            cur.execute(
                f"INSERT INTO `{table}` SELECT g.i, g.i, "
                + body.format(i="g.i", narrow=narrow_to, wide=wide)
                + f" FROM ({numbers}) g WHERE g.i BETWEEN {first} AND {last}"
            )
        conn.commit()
    finally:
        conn.close()
    return table


def budgeted(kind: str, budget: int) -> type[SqlSource]:
    """Return the backend's source class with a chunk budget of ``budget`` bytes."""
    base: type[SqlSource] = PostgresSource if kind == "postgres" else MySqlSource

    class Budgeted(base):  # type: ignore[valid-type, misc]
        chunk_bytes = budget

    return Budgeted


def read_checking(source: SqlSource, first: int, narrow_to: int = 0) -> Iterator[int]:
    """Read ``source`` whole in batches of 500, checking every row; yield each batch's size."""
    expected = first
    for batch in source.batches(500):
        assert batch.schema.names == ["id", "n", "body"]
        rows = batch.to_pydict()
        for i, n, text in zip(rows["id"], rows["n"], rows["body"], strict=True):
            assert i == expected and n == i
            assert text == ("x" if i <= narrow_to else wide_body(i)), f"row {i} differs"
            expected += 1
        yield batch.num_rows


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
@pytest.mark.parametrize("budget", [bulk.CHUNK_BYTES, SMALL_BUDGET], ids=["64MiB", "8MiB"])
def test_wide_rows_are_read_in_chunks_under_the_byte_budget(
    make_backend: Factory, kind: str, budget: int
) -> None:
    backend = make_backend(kind)
    table = make_wide_table(backend, 1, WIDE_ROWS)
    with budgeted(kind, budget)(backend.endpoint(table)) as source:
        assert source.open() == pa.schema(
            [("id", pa.int64()), ("n", pa.int64()), ("body", pa.string())]
        )
        assert source.bulk, "the bulk path reads the table"
        sizes = list(read_checking(source, 1))
        chunks = source.chunks
    assert chunks is not None
    assert sum(sizes) == WIDE_ROWS and max(sizes) <= 500
    assert chunks.count >= WIDE_ROWS * 102_000 // budget + 1  # cut by bytes, not rows
    assert 0.5 * budget < chunks.largest <= budget  # full chunks, none over


def test_postgres_cuts_a_chunk_on_the_server_where_narrow_rows_turn_wide(
    make_backend: Factory,
) -> None:
    backend = make_backend("postgres")
    table = make_wide_table(backend, 1, 20_300, narrow_to=20_000)  # 300 wide rows at the end
    with budgeted("postgres", SMALL_BUDGET)(backend.endpoint(table)) as source:
        source.open()
        assert sum(read_checking(source, 1, narrow_to=20_000)) == 20_300
        chunks = source.chunks
    assert chunks is not None and chunks.count > 4
    assert chunks.largest <= SMALL_BUDGET  # the estimate from narrow rows alone would not do


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_narrow_rows_still_come_in_chunks_of_at_most_chunk_rows(
    make_backend: Factory, kind: str
) -> None:
    backend = make_backend(kind)
    table = make_wide_table(backend, 1, 3000, narrow_to=3000)
    with budgeted(kind, bulk.CHUNK_BYTES)(backend.endpoint(table)) as source:
        source.open()
        chunks: Any = source.chunks
        chunks.max_rows = 1000  # CHUNK_ROWS of this test: a chunk of a larger table
        first = chunks.limit()
        assert sum(read_checking(source, 1, narrow_to=3000)) == 3000
    # the first chunk is sized by a guess for the text column, the next by what it measured
    assert first < 1000 and chunks.limit() == 1000
    assert chunks.count == 1 + -(-(3000 - first) // 1000)
