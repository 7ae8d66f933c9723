"""The MEMORY test double: generated rows, injected failures, commit-only visibility."""

from __future__ import annotations

import time
from decimal import Decimal

import pyarrow as pa
import pytest

from exchangis.connectors.base import Endpoint, Estimate, Sink, Source
from exchangis.connectors.memory import SCHEMA, MemorySink, MemorySource
from exchangis.connectors.registry import Registry
from exchangis.errors import TerminalConnectorError
from tests.connectors.conftest import unique


def ep(table: str = "mem", **options: object) -> Endpoint:
    return Endpoint("MEMORY", {}, table, options=options)


def test_source_generates_rows_in_bounded_batches(registry: Registry) -> None:
    source = registry.source(ep(rows=25))

    assert isinstance(source, MemorySource) and isinstance(source, Source)
    assert source.open() == SCHEMA
    assert source.estimate() == Estimate(25, exact=True)
    batches = list(source.batches(10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert batches[0].to_pylist()[1] == {"id": 2, "name": "name-2", "amount": Decimal("0.02")}


def test_source_fails_at_the_given_row(registry: Registry) -> None:
    source = registry.source(ep(rows=100, failAtRow=15))
    source.open()
    seen = []

    with pytest.raises(TerminalConnectorError, match="row 15"):
        for batch in source.batches(10):
            seen.extend(batch.column("id").to_pylist())

    assert seen == list(range(1, 15))


def test_source_sleeps_per_batch(registry: Registry) -> None:
    source = registry.source(ep(rows=3, sleepPerBatch=0.05))
    source.open()
    started = time.monotonic()

    assert sum(b.num_rows for b in source.batches(1)) == 3
    assert time.monotonic() - started >= 0.15


def test_sink_rows_are_visible_only_after_commit(registry: Registry) -> None:
    table = unique("mem")
    sink = registry.sink(ep(table))
    assert isinstance(sink, MemorySink) and isinstance(sink, Sink)
    batch = pa.record_batch([pa.array([1, 2])], names=["id"])

    sink.open(batch.schema)
    sink.write(batch)
    assert MemorySink.rows(table) == []
    sink.commit()

    assert MemorySink.rows(table) == [{"id": 1}, {"id": 2}]
    MemorySink.reset(table)


def test_sink_failure_and_rollback_leave_rows_unchanged(registry: Registry) -> None:
    table = unique("mem")
    batch = pa.record_batch([pa.array([1, 2, 3])], names=["id"])
    with registry.sink(ep(table)) as sink:
        sink.open(batch.schema)
        sink.write(batch)
        sink.commit()

    with registry.sink(ep(table, failAtRow=5, writeMode="overwrite")) as sink:
        sink.open(batch.schema)
        sink.write(batch)
        with pytest.raises(TerminalConnectorError, match="row 5"):
            sink.write(batch)
        sink.rollback()

    assert [r["id"] for r in MemorySink.rows(table)] == [1, 2, 3]
    MemorySink.reset(table)


def test_memory_source_to_sink_with_overwrite(registry: Registry) -> None:
    table = unique("mem")
    for _ in range(2):
        with (
            registry.source(ep(rows=7)) as source,
            registry.sink(ep(table, writeMode="overwrite")) as sink,
        ):
            sink.open(source.open())
            for batch in source.batches(3):
                sink.write(batch)
            sink.commit()

    assert [r["id"] for r in MemorySink.rows(table)] == list(range(1, 8))
    MemorySink.reset(table)
