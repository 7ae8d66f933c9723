"""The connector contract: every registered connector keeps the same promises.

Each test runs for every variant the registry declares (``harness.variants``), as a source and
as a sink where the connector is one, and for what its capabilities say it can do: the tricky
table value for value, each declared write mode, a SIGKILL mid-write leaving the sink as it was,
estimate and progress, channels, empty tables, a missing table, bad credentials (a clear error
that shows no secret). A connector that breaks a promise fails here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from exchangis.connectors.base import Endpoint
from exchangis.errors import ConnectorError, ExchangisError, TerminalConnectorError
from tests.connectors.test_fidelity import COLUMNS, PARQUET_SCHEMA, ROWS, source_value
from tests.contract.harness import FACTORIES, REGISTRY, SECRET, Harness, variants

TRICKY_SCHEMA = PARQUET_SCHEMA  # the fidelity table's columns with their Arrow types
assert tuple(TRICKY_SCHEMA.names) == COLUMNS
TRICKY = pa.Table.from_pylist(ROWS, schema=TRICKY_SCHEMA)
SIMPLE = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(12, 2))])


def simple(ids: range | list[int], tag: str = "") -> pa.Table:
    """Return rows shaped like MEMORY's: ``(id, name, amount)``."""
    rows = [{"id": i, "name": f"name-{i}{tag}", "amount": Decimal(i).scaleb(-2)} for i in ids]
    return pa.Table.from_pylist(rows, schema=SIMPLE)


VARIANTS = variants()
SOURCES = [v for v in VARIANTS if v[0] in REGISTRY.sources]
SINKS = [v for v in VARIANTS if v[0] in REGISTRY.sinks]


def _ids(cases: list[tuple[str, str]]) -> list[str]:
    return [variant for _, variant in cases]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[[tuple[str, str]], Harness]]:
    """Return a factory of harnesses by (type, variant); drops their tables at teardown."""
    made: list[Harness] = []

    def build(case: tuple[str, str]) -> Harness:
        kind, variant = case
        factory = FACTORIES.get(kind)
        if factory is None:
            pytest.fail(f"no contract harness for {kind}: add one to tests/contract/harness.py")
        harness = factory(tmp_path, variant)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.drop()


def test_every_registered_type_has_a_harness() -> None:
    assert set(REGISTRY.types) <= set(FACTORIES), set(REGISTRY.types) - set(FACTORIES)


def _readable(h: Harness) -> bool:
    return h.type in REGISTRY.sinks and h.type in REGISTRY.sources and h.type != "MEMORY"


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.normalize() if value else Decimal(0)
    return value


def _expected(h: Harness, table: pa.Table) -> list[dict[str, Any]]:
    return [
        {c: _normal(source_value(h.variant, v)) for c, v in row.items()}
        for row in table.to_pylist()
    ]


def _got(table: pa.Table) -> list[dict[str, Any]]:
    return [{c: _normal(v) for c, v in row.items()} for row in table.to_pylist()]


def _by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["id"] is None, int(r["id"] or 0)))


ROUND_TRIPS = [v for v in VARIANTS if v[0] in REGISTRY.sinks and v[0] in REGISTRY.sources]


@pytest.mark.parametrize("batch_size", [1, 1000])
@pytest.mark.parametrize("case", ROUND_TRIPS, ids=_ids(ROUND_TRIPS))
def test_the_tricky_table_round_trips_value_for_value(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str], batch_size: int
) -> None:
    h = make(case)
    if not _readable(h):
        assert h.type == "MEMORY"  # generated rows: what it wrote is checked in the write tests
        written = h.write(h.table(), TRICKY.select(["id"]))
        assert written == TRICKY.num_rows
        return
    table = h.table()
    assert h.write(table, TRICKY) == TRICKY.num_rows
    got = h.read(table, batch_size)
    assert got.column_names == list(COLUMNS)
    assert _by_id(_got(got)) == _by_id(_expected(h, TRICKY))


@pytest.mark.parametrize("case", SINKS, ids=_ids(SINKS))
def test_each_declared_write_mode_does_what_it_says(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    assert h.sink_class is not None
    modes = h.sink_class.capabilities.write_modes
    assert "append" in modes, "every sink appends"
    for mode in modes:
        table = h.table()
        keys = _keyed(h) if mode == "upsert" else {}  # append keeps a repeated id: no key
        h.write(table, simple(range(1, 4)), **keys)
        h.write(table, simple(range(3, 6), tag="!"), writeMode=mode, **keys)
        got = _by_id(_got(h.read(table)))
        ids = [int(r["id"]) for r in got]
        if mode == "append":
            assert ids == [1, 2, 3, 3, 4, 5], mode
        elif mode == "overwrite":
            assert ids == [3, 4, 5], mode
        elif mode == "upsert":
            assert ids == [1, 2, 3, 4, 5], mode
            assert [r["name"] for r in got if int(r["id"]) == 3] == ["name-3!"]
        else:
            pytest.fail(f"write mode {mode} has no contract test: add one")


def _keyed(h: Harness) -> dict[str, Any]:
    """Return the options that give a created table a key (upsert matches on it)."""
    names = {o.name for o in h.sink_class.options} if h.sink_class else set()
    return {"primaryKeys": "id"} if "primaryKeys" in names else {}


@pytest.mark.parametrize("case", SINKS, ids=_ids(SINKS))
def test_a_sink_that_is_not_committed_leaves_the_target_as_it_was(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    assert h.sink_class is not None and h.sink_class.capabilities.atomic
    for mode in h.sink_class.capabilities.write_modes:
        table = h.table()
        h.write(table, simple(range(1, 3)), **(_keyed(h) if mode == "upsert" else {}))
        options = {"writeMode": mode} | ({"primaryKeys": "id"} if mode == "upsert" else {})
        sink = REGISTRY.sink(h.endpoint(table, **options))
        sink.open(SIMPLE)
        sink.write(simple(range(10, 20)).to_batches()[0])
        sink.rollback()
        sink.close()
        assert [int(r["id"]) for r in _by_id(_got(h.read(table)))] == [1, 2], mode


KILLER = """
import sys, json, time
import pyarrow as pa
from decimal import Decimal
from exchangis.connectors.base import Endpoint
from exchangis.connectors.registry import default_registry
spec = json.loads(sys.argv[1])
schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(12, 2))])
sink = default_registry().sink(Endpoint(spec["type"], spec["connect"], spec["table"],
                                        options=spec["options"]))
sink.open(schema)
for start in range(100, 400, 100):
    rows = [{"id": i, "name": "killed", "amount": Decimal(i)} for i in range(start, start + 100)]
    sink.write(pa.RecordBatch.from_pylist(rows, schema=schema))
print("written", flush=True)
time.sleep(120)
"""


PERSISTENT_SINKS = [v for v in SINKS if v[0] != "MEMORY"]


@pytest.mark.parametrize("case", PERSISTENT_SINKS, ids=_ids(PERSISTENT_SINKS))
def test_a_sigkill_mid_write_leaves_the_sink_unchanged(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    assert h.persistent and h.sink_class is not None
    for mode in h.sink_class.capabilities.write_modes:
        table = h.table()
        h.write(table, simple(range(1, 4)), **(_keyed(h) if mode == "upsert" else {}))
        options = {"writeMode": mode} | ({"primaryKeys": "id"} if mode == "upsert" else {})
        spec = {"type": h.type, "connect": h.connect, "table": table, "options": options}
        child = subprocess.Popen(
            [sys.executable, "-c", KILLER, json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "written", mode
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
        assert [int(r["id"]) for r in _by_id(_got(h.read(table)))] == [1, 2, 3], mode


@pytest.mark.parametrize("case", SOURCES, ids=_ids(SOURCES))
def test_estimate_and_progress_are_bounded_and_rise(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    assert h.source_class is not None
    if h.type == "MEMORY":
        endpoint = h.endpoint(h.table(), rows=50)
    else:
        table = h.table()
        h.write(table, simple(range(1, 51)))
        endpoint = h.endpoint(table)
    seen: list[float] = []
    with REGISTRY.source(endpoint) as source:
        source.open()
        estimate = source.estimate()
        assert estimate is None or estimate.rows >= 0
        rows = 0
        for batch in source.batches(10):
            rows += batch.num_rows
            progress = source.progress()
            if progress is not None:
                seen.append(progress)
        assert rows == 50
        final = source.progress()
    assert all(0.0 <= p <= 1.0 for p in seen), seen
    assert seen == sorted(seen), seen
    if h.source_class.capabilities.estimate:
        assert estimate is not None or seen, "the estimate capability gives a row count or progress"
    if final is not None:
        assert final == pytest.approx(1.0)


CHANNELS = [v for v in SOURCES if REGISTRY.sources[v[0]].capabilities.channels]


@pytest.mark.parametrize("case", CHANNELS, ids=_ids(CHANNELS))
def test_channels_read_every_row_exactly_once(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    table = h.table()
    null_id = pa.table({"id": pa.array([None], pa.int64()), "name": ["null key"]})
    h.write(table, pa.concat_tables([simple(range(1, 101)).select(["id", "name"]), null_id]))
    with REGISTRY.source(h.endpoint(table, splitPk="id")) as source:
        key, bounds = source.split_points(4)  # as engine/channels.py does: no open()
    assert key == "id" and 1 <= len(bounds) <= 3
    edges: list[Any] = [None, *bounds, None]
    seen: list[Any] = []
    for i in range(len(bounds) + 1):
        split = {"key": key, "lower": edges[i], "upper": edges[i + 1], "nulls": i == 0}
        endpoint = Endpoint(h.type, h.connect, table, split=split)
        with REGISTRY.source(endpoint) as source:
            schema = source.open()
            part = pa.Table.from_batches(list(source.batches(1000)), schema=schema)
        seen += part.column("id").to_pylist()
    assert sorted(seen, key=lambda v: -1 if v is None else v) == [None, *range(1, 101)]


@pytest.mark.parametrize("case", ROUND_TRIPS, ids=_ids(ROUND_TRIPS))
def test_an_empty_table_round_trips(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    table = h.table()
    assert h.write(table, simple([])) == 0
    if h.type == "MEMORY":
        assert h.read(table).num_rows == 0
        with REGISTRY.source(h.endpoint(table, rows=0)) as source:
            source.open()
            assert list(source.batches(10)) == []
        return
    got = h.read(table)
    assert got.num_rows == 0
    if h.variant != "jsonl":  # an empty JSON lines file names no column
        assert got.column_names == SIMPLE.names


MISSING = [v for v in SOURCES if v[0] != "MEMORY"]


@pytest.mark.parametrize("case", MISSING, ids=_ids(MISSING))
def test_a_missing_table_is_a_terminal_error_naming_it(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    assert h.tables
    if h.sink_class is not None:
        h.write(h.table(), simple(range(1, 3)))  # the database (or root) exists; the table not
    table = h.table()
    with pytest.raises(TerminalConnectorError) as caught, REGISTRY.source(h.endpoint(table)) as s:
        s.open()
        list(s.batches(10))
    assert table.split(".")[0] in caught.value.message
    sink = h.sink_class
    if sink is not None and sink.capabilities.create_table:
        with (
            pytest.raises(TerminalConnectorError),
            REGISTRY.sink(h.endpoint(h.table(), createTable=False)) as target,
        ):
            target.open(SIMPLE)


BAD = [v for v in VARIANTS if v[0] != "MEMORY"]


@pytest.mark.parametrize("case", BAD, ids=_ids(BAD))
def test_bad_credentials_fail_clearly_and_show_no_secret(
    make: Callable[[tuple[str, str]], Harness], case: tuple[str, str]
) -> None:
    h = make(case)
    assert h.bad_connect is not None, "a harness names connect params that must fail"
    ds_type = REGISTRY.type(h.type)
    assert ds_type.tester is not None
    with pytest.raises(ConnectorError) as caught:
        ds_type.tester(h.bad_connect)
    assert SECRET not in str(caught.value) and caught.value.message
    errors: list[ExchangisError] = []
    table = h.table()
    if h.source_class is not None:
        try:
            with REGISTRY.source(Endpoint(h.type, h.bad_connect, table)) as source:
                source.open()
        except ExchangisError as exc:
            errors.append(exc)
    if h.sink_class is not None:
        try:
            with REGISTRY.sink(Endpoint(h.type, h.bad_connect, table)) as sink:
                sink.open(SIMPLE)
        except ExchangisError as exc:
            errors.append(exc)
    assert len(errors) == (h.source_class is not None) + (h.sink_class is not None)
    for exc in errors:
        assert SECRET not in exc.message and SECRET not in repr(exc.__cause__ or "")


def test_time_zones_keep_the_instant(make: Callable[[tuple[str, str]], Harness]) -> None:
    instants = [
        dt.datetime(2024, 3, 10, 2, 30, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ]
    table = pa.table({"id": [1, 2], "at": pa.array(instants, pa.timestamp("us", tz="UTC"))})
    for case in ROUND_TRIPS:
        h = make(case)
        if not _readable(h):
            continue
        name = h.table()
        h.write(name, table)
        got = _by_id(h.read(name).to_pylist())
        for row, instant in zip(got, instants, strict=True):
            value = row["at"]
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value)
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)  # stored as UTC wall time
            assert value == instant, (case, row)
