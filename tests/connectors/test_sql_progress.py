"""What SQL sources tell progress, on the real servers: a count bounded in time, the catalog's
figure, and the position of the last key read within the keys the read selects."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa
import pytest

from exchangis.connectors.base import Estimate, Source
from exchangis.connectors.sql_source import SqlSource
from tests import data
from tests.connectors.conftest import Backend
from tests.connectors.test_sql_connectors import numbered

Factory = Callable[[str], Backend]

SLOW_ROW = {
    # a condition that holds for every row and sleeps 0.1 s on one row in 100 (OR stops at the
    # first true operand): a count of 2,000 rows takes 2 s, the first and last keys do not
    "postgres": "id % 100 <> 0 OR pg_sleep(0.1) IS NOT NULL",
    "mysql": "id % 100 <> 0 OR SLEEP(0.1) = 0",
}


def _execute(backend: Backend, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` on ``backend``'s test database (autocommit); return the last one's
    rows."""
    rows: list[tuple[object, ...]] = []
    with (data.postgres if backend.kind == "postgres" else data.mysql)() as conn:
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
            rows = list(cursor.fetchall()) if cursor.description else []
        cursor.close()
    return rows


def keyed_table(backend: Backend, rows: int, *, analysed_at: int | None = None) -> str:
    """Create a table of ``rows`` rows keyed 1..rows (statistics never recalculated by
    themselves); with ``analysed_at``, the catalog believes it holds that many rows."""
    table = backend.new_table("progress")
    if backend.kind == "postgres":
        _execute(
            backend,
            f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)'
            " WITH (autovacuum_enabled = false)",
        )
        fill = f"INSERT INTO \"{table}\" SELECT g, 'row ' || g FROM generate_series({{}}, {{}}) g"
        if analysed_at is None:
            _execute(backend, fill.format(1, rows))
        else:  # ANALYZE sees the first rows only; reltuples stays there
            _execute(
                backend,
                fill.format(1, analysed_at),
                f'ANALYZE "{table}"',
                fill.format(analysed_at + 1, rows),
            )
        return table
    _execute(
        backend,
        f"CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, name VARCHAR(40))"
        " STATS_PERSISTENT=1 STATS_AUTO_RECALC=0",
        f"INSERT INTO `{table}` SELECT seq, CONCAT('row ', seq) FROM seq_1_to_{rows}",
    )
    if analysed_at is not None:
        # InnoDB's sampled statistics of a big table can be far off; set them by hand, as
        # MariaDB allows (its row count follows inserts, so ANALYZE-then-insert would not do)
        _execute(
            backend,
            f"ANALYZE TABLE `{table}`",
            f"UPDATE mysql.innodb_table_stats SET n_rows = {analysed_at}"
            f" WHERE database_name = DATABASE() AND table_name = '{table}'",
            f"FLUSH TABLES `{table}`",
            f"RENAME TABLE `{table}` TO `{table}_x`",
            f"RENAME TABLE `{table}_x` TO `{table}`",
        )
    return table


def read_positions(source: Source, batch_size: int) -> list[tuple[int, float | None]]:
    """Read every batch; return the rows read so far and ``progress()`` after each batch."""
    rows, seen = 0, []
    for batch in source.batches(batch_size):
        assert isinstance(batch, pa.RecordBatch) and "exg_bulk_key" not in batch.schema.names
        rows += batch.num_rows
        seen.append((rows, source.progress()))
    return seen


def dense_positions(seen: list[tuple[int, float | None]], total: int) -> list[float]:
    """Return the positions of keys 1..total read in order after each batch of ``seen``."""
    return [(rows - 1) / (total - 1) for rows, _ in seen]


@pytest.fixture(params=["mysql", "postgres"])
def server(request: pytest.FixtureRequest, make_backend: Factory) -> Backend:
    """MariaDB and PostgreSQL in turn."""
    return make_backend(request.param)


def test_a_never_analysed_postgres_table_is_counted(make_backend: Factory) -> None:
    backend = make_backend("postgres")
    table = keyed_table(backend, 3000)
    [(reltuples,)] = _execute(backend, f"SELECT reltuples FROM pg_class WHERE relname = '{table}'")
    assert float(str(reltuples)) <= 0  # never analysed: the catalog knows nothing

    with backend.registry.source(backend.endpoint(table)) as source:
        source.open()
        assert source.estimate() == Estimate(3000, exact=True)


def test_a_where_read_is_counted_exactly(sql_backend: Backend) -> None:
    table = sql_backend.new_table()
    sql_backend.write(table, numbered(300))

    with sql_backend.registry.source(sql_backend.endpoint(table, where="id > 100")) as source:
        source.open()
        assert source.estimate() == Estimate(200, exact=True)


def test_a_count_past_its_time_gives_way_to_the_key_position(
    server: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = keyed_table(server, 2000)
    monkeypatch.setattr(SqlSource, "count_seconds", 0.3)
    monkeypatch.setattr(SqlSource, "span_after_seconds", 0)  # the span at the first batch
    endpoint = server.endpoint(table, where=SLOW_ROW[server.kind])

    with server.registry.source(endpoint) as source:
        began = time.monotonic()
        source.open()
        opened = time.monotonic() - began
        assert source.estimate() is None  # the count gave up
        assert source.bulk  # a keyset read: the last key read is known
        assert source.progress() == 0.0
        seen = read_positions(source, 100)

    assert opened < 1.5, f"the count ran {opened:.1f}s, past its 0.3 s (whole: 2 s)"
    assert seen[-1][0] == 2000 and len(seen) >= 20
    assert [p for _, p in seen] == pytest.approx(dense_positions(seen, 2000))


def test_rows_past_a_stale_catalog_figure_follow_the_key_position(
    server: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = keyed_table(server, 1000, analysed_at=20)
    monkeypatch.setattr(SqlSource, "span_after_seconds", 0)
    with server.registry.source(server.endpoint(table)) as source:
        source.open()
        estimate = source.estimate()
        assert estimate is not None and not estimate.exact and estimate.rows < 100
        seen = read_positions(source, 50)

    assert seen[-1][0] == 1000 and len(seen) >= 20
    assert [p for _, p in seen] == pytest.approx(dense_positions(seen, 1000))


def test_a_sqlite_count_past_its_time_is_given_up(
    make_backend: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend("sqlite")
    table = backend.new_table()
    backend.write(table, numbered(20_000))
    monkeypatch.setattr(SqlSource, "count_seconds", 1e-6)

    with backend.registry.source(backend.endpoint(table, where="name LIKE '%9%'")) as source:
        source.open()
        assert source.estimate() is None
        seen = read_positions(source, 1000)

    assert seen[-1][0] == sum("9" in f"row {i}" for i in range(20_000))  # the read is not cut
    assert {p for _, p in seen} == {None}  # no keyset read: progress reckons by rows


def test_a_keyset_read_done_before_its_span_is_due_never_queries_it(
    server: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = keyed_table(server, 1000, analysed_at=20)
    asked: list[str] = []
    monkeypatch.setattr(SqlSource, "_key_span", lambda self, key: asked.append(key))
    monkeypatch.setattr(SqlSource, "span_after_seconds", 60)  # the read is done long before
    with server.registry.source(server.endpoint(table)) as source:
        source.open()
        seen = read_positions(source, 50)
    assert seen[-1][0] == 1000 and {p for _, p in seen} == {0.0}  # no yardstick left behind
    assert asked == []

    monkeypatch.setattr(SqlSource, "span_after_seconds", 0)
    with server.registry.source(server.endpoint(table)) as source:
        source.open()
        read_positions(source, 50)
    assert asked == ["id"]  # once, at the first batch past the delay
