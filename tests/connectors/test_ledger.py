"""Every sink's ledger: a stale attempt cannot commit, a committed run is never written again,
concurrent appends to one file both land (connectors/ledger.py)."""

from __future__ import annotations

import os
import threading
import uuid

import pyarrow as pa
import pytest

from exchangis.connectors.base import Endpoint, Sink
from exchangis.connectors.ledger import Fence, FencedOffError
from exchangis.connectors.registry import Registry
from tests.connectors.conftest import Backend, rows_of, view
from tests.services import mysql_params

DATA = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})
MORE = pa.table({"id": pa.array([4, 5], pa.int64()), "name": ["d", "e"]})


def _fenced(backend: Backend, table: str, fence: Fence) -> tuple[Sink, int | None]:
    """Return a sink of ``table`` fenced for ``fence``, and what the fence answered."""
    sink = backend.registry.sink(backend.endpoint(table))
    return sink, sink.fence(fence)


def _write(sink: Sink, data: pa.Table) -> None:
    sink.open(data.schema)
    for batch in data.to_batches(max_chunksize=2):
        sink.write(batch)


def test_a_stale_attempt_cannot_commit_and_a_committed_run_is_not_written_again(
    backend: Backend,
) -> None:
    table = backend.new_table("ledger")
    backend.write(table, MORE)  # rows that were there before the task
    key = f"{uuid.uuid4()}/7/1"
    stale, earlier = _fenced(backend, table, Fence(key, "attempt-1"))
    assert earlier is None
    # the reaper gave attempt 1 up: attempt 2 takes the ledger entry before it writes
    current, earlier = _fenced(backend, table, Fence(key, "attempt-2"))
    assert earlier is None
    _write(stale, DATA)  # attempt 1 was only slow: it goes on, and must not commit
    with pytest.raises(FencedOffError):
        stale.commit()
    stale.close()
    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, MORE))
    _write(current, DATA)
    current.commit()
    current.close()
    expected = pa.concat_tables([MORE, DATA])
    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, expected))
    # attempt 3 (its predecessor's outcome was unknown) learns the rows are in: 3 of them
    again, earlier = _fenced(backend, table, Fence(key, "attempt-3"))
    again.close()
    assert earlier == 3
    assert rows_of(backend.read(table)) == rows_of(view(backend.kind, expected))
    # another run of the task (a restart) is a new entry: it writes
    rerun, earlier = _fenced(backend, table, Fence(key[:-1] + "2", "attempt-4"))
    assert earlier is None
    _write(rerun, DATA)
    rerun.commit()
    rerun.close()
    assert len(backend.read(table)) == 8


def test_the_ledger_option_turns_fencing_off(backend: Backend) -> None:
    table = backend.new_table("unfenced")
    sink = backend.registry.sink(backend.endpoint(table, ledger="false"))
    assert sink.fence(Fence(f"{uuid.uuid4()}/1/1", "attempt-1")) is None
    sink.open(DATA.schema)
    sink.write(DATA.to_batches()[0])
    sink.commit()
    sink.close()
    assert len(backend.read(table)) == 3


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_two_concurrent_appends_to_one_file_both_land_and_leave_no_temp_file(
    make_backend: object, kind: str
) -> None:
    backend = make_backend(kind)  # type: ignore[operator]
    table = backend.new_table("shared")
    backend.write(table, MORE)
    first, _ = _fenced(backend, table, Fence(f"{uuid.uuid4()}/1/1", "a"))
    second, _ = _fenced(backend, table, Fence(f"{uuid.uuid4()}/2/1", "b"))
    for sink in (first, second):
        _write(sink, DATA)
    threads = [threading.Thread(target=sink.commit) for sink in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sink in (first, second):
        sink.close()
    expected = pa.concat_tables([MORE, DATA, DATA])
    assert rows_of(backend.read(table)) == rows_of(view(kind, expected))
    root = backend.connect["root"]
    assert not [n for n in os.listdir(root) if n.endswith(".tmp")]


def test_concurrent_fences_of_many_tasks_never_deadlock(sql_backend: Backend) -> None:
    """Tasks of one execution start together: their fences (each its own key, one sink
    database) must not wait on one another's range locks, let alone deadlock."""
    table = sql_backend.new_table("crowd")
    eid = uuid.uuid4()
    errors: list[BaseException] = []

    def fence(task: int) -> None:
        try:
            for attempt in range(3):  # a first take, then two take-overs
                sink, earlier = _fenced(sql_backend, table, Fence(f"{eid}/{task}/1", f"a{attempt}"))
                sink.close()
                assert earlier is None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fence, args=(task,)) for task in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_fence_that_creates_the_ledger_holds_no_lock_while_the_data_moves(
    registry: Registry,
) -> None:
    """The fence's session leaves its connection to the data's transaction, except after a
    lock MySQL holds until the session ends (``GET_LOCK``, taken to create the ledger): then
    it closes, so other tasks' fences do not wait for this task's whole transfer."""
    import pymysql

    params = mysql_params()
    database = f"exg_fresh_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(
        host=params["host"],
        port=int(params["port"]),
        user=params["username"],
        password=params["password"],
        autocommit=True,
    )
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}`")
        endpoint = Endpoint("MYSQL", params | {"database": database}, "fresh")
        sink = registry.sink(endpoint)
        try:
            assert sink.fence(Fence(f"{uuid.uuid4()}/1/1", "a1")) is None  # made exg_ledger
            with admin.cursor() as cur:
                cur.execute("SELECT IS_FREE_LOCK('exchangis.exg_ledger')")
                assert cur.fetchone() == (1,)
            _write(sink, DATA)
            sink.commit()
        finally:
            sink.close()
        with admin.cursor() as cur:
            cur.execute(f"SELECT id, name FROM `{database}`.fresh ORDER BY id")
            assert cur.fetchall() == ((1, "a"), (2, "b"), (3, "c"))
            cur.execute(f"SELECT committed, written FROM `{database}`.exg_ledger")
            assert cur.fetchall() == ((1, 3),)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()
