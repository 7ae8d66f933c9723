"""The live-state store on a real Redis: atomic, table-checked transitions and counters."""

from __future__ import annotations

import threading
import uuid

import pytest

from exchangis.errors import mask_secrets
from exchangis.runtime import Runtime
from exchangis.state.machine import (
    EXECUTION_TRANSITIONS,
    TASK_TRANSITIONS,
    ExecutionStatus,
    TaskStatus,
)
from exchangis.state.store import StateStore


@pytest.fixture
def store(rt: Runtime) -> StateStore:
    return rt.store


def _execution(store: StateStore, n: int = 2) -> tuple[str, list[int]]:
    eid = str(uuid.uuid4())
    base = abs(hash(eid)) % 10**9 * 10
    ids = [base + i for i in range(n)]
    store.create_execution(
        eid, {"permit_partial_failures": "0"}, [{"id": tid, "name": f"t{tid}"} for tid in ids]
    )
    return eid, ids


def test_created_execution_has_inited_tasks_in_order(store: StateStore) -> None:
    eid, ids = _execution(store, 3)
    assert store.execution(eid)["status"] == ExecutionStatus.INITED  # type: ignore[index]
    assert store.task_ids(eid) == ids
    assert [t["status"] for t in store.tasks(eid)] == ["Inited"] * 3


def test_transition_outside_the_table_is_refused(store: StateStore) -> None:
    _eid, (tid, _) = _execution(store)
    refused = store.transition_task(tid, TaskStatus.SUCCESS)
    assert not refused.moved
    assert refused.previous == "Inited"
    assert store.task(tid)["status"] == "Inited"  # type: ignore[index]


def test_claim_is_a_compare_and_set_only_one_caller_wins(store: StateStore) -> None:
    _eid, (tid, _) = _execution(store)
    store.transition_task(tid, TaskStatus.SCHEDULED)
    results: list[bool] = []

    def claim() -> None:
        move = store.transition_task(tid, TaskStatus.RUNNING, sources={TaskStatus.SCHEDULED})
        results.append(move.moved)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_sources_narrow_but_never_widen_the_table(store: StateStore) -> None:
    _eid, (tid, _) = _execution(store)
    assert not store.transition_task(tid, TaskStatus.RUNNING, sources={TaskStatus.INITED}).moved


def test_final_moves_are_counted_and_the_last_one_is_flagged(store: StateStore) -> None:
    eid, (a, b) = _execution(store)
    for tid in (a, b):
        store.transition_task(tid, TaskStatus.SCHEDULED)
        store.transition_task(tid, TaskStatus.RUNNING)
    first = store.transition_task(a, TaskStatus.SUCCESS)
    assert first.moved and not first.last
    second = store.transition_task(b, TaskStatus.FAILED)
    assert second.moved and second.last
    again = store.transition_task(b, TaskStatus.CANCELLED)
    assert not again.moved
    execution = store.execution(eid)
    assert execution is not None
    assert execution["n_final"] == "2"
    assert execution["n_Success"] == "1"
    assert execution["n_Failed"] == "1"


def test_execution_final_state_is_left_by_nothing(store: StateStore) -> None:
    eid, _ = _execution(store)
    assert store.transition_execution(eid, ExecutionStatus.SCHEDULED).moved
    assert store.transition_execution(eid, ExecutionStatus.CANCELLED).moved
    assert not store.transition_execution(eid, ExecutionStatus.RUNNING).moved
    assert store.execution(eid)["completed_time"]  # type: ignore[index]


def test_status_is_never_set_around_the_transition_function(store: StateStore) -> None:
    _eid, (tid, _) = _execution(store)
    with pytest.raises(ValueError, match="transition_task"):
        store.update_task(tid, {"status": "Success"})


def test_transition_tables_have_no_exit_from_final_states() -> None:
    for status in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED):
        assert status not in TASK_TRANSITIONS
    for status in (ExecutionStatus.SUCCESS, ExecutionStatus.PARTIAL_SUCCESS):
        assert status not in EXECUTION_TRANSITIONS


def test_stale_heartbeats_are_found(store: StateStore) -> None:
    tid = 987654321
    store.redis.zadd(store.keys.heartbeats(), {str(tid): 1.0})
    assert tid in store.stale_tasks(10)
    store.drop_heartbeat(tid)
    assert tid not in store.stale_tasks(10)


def test_mask_secrets_handles_quoted_and_pwd_forms() -> None:
    text = mask_secrets("pwd='x y' PASSWORD: hunter2, user=bob")
    assert "hunter2" not in text and "x y" not in text and "user=bob" in text


def test_claim_starts_the_heartbeat_and_the_final_move_ends_it(store: StateStore) -> None:
    _eid, (tid, _) = _execution(store)
    store.transition_task(tid, TaskStatus.SCHEDULED)
    store.transition_task(tid, TaskStatus.RUNNING, heartbeat="add")
    assert store.redis.zscore(store.keys.heartbeats(), str(tid)) is not None
    store.transition_task(tid, TaskStatus.FAILED)
    assert store.redis.zscore(store.keys.heartbeats(), str(tid)) is None


def test_log_filter_masks_process_log_records() -> None:
    import logging

    from exchangis.errors import MaskSecretsFilter

    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "dsn %s", ("password=hunter2",), None
    )
    assert MaskSecretsFilter().filter(record)
    assert "hunter2" not in record.getMessage()


@pytest.mark.parametrize(
    "text",
    [
        "{'password': 'hunter2'}",
        '"password": "hunter2"',
        "db_password=hunter2",
        "dbPassword=hunter2",
        "PGPASSWORD=hunter2 psql",
        "mysql://u:hunter2@h/db",
        "{'hivePassword': 'hunter2', 'x': 1}",
    ],
)
def test_mask_secrets_catches_password_shapes(text: str) -> None:
    assert "hunter2" not in mask_secrets(text)


def test_overlapping_secrets_are_masked_longest_first() -> None:
    assert mask_secrets("abcdef abc", ["abc", "abcdef"]) == "****** ******"


def test_a_claim_waits_at_the_user_limit_and_stale_entries_do_not_count(rt: Runtime) -> None:
    store = StateStore(rt.redis, rt.keys, rt.store.rules, limits=(0, 1), stale_seconds=30)
    eid = str(uuid.uuid4())
    base = abs(hash(eid)) % 10**9 * 10
    store.create_execution(
        eid, {"execute_user": f"u-{eid}"}, [{"id": base + i, "name": "t"} for i in range(2)]
    )
    user_key = rt.keys.running_user(f"u-{eid}")
    rt.redis.zadd(user_key, {"dead-task": 1.0})  # a lost task's entry, long stale
    for tid in (base, base + 1):
        store.transition_task(tid, TaskStatus.SCHEDULED)
    first = store.transition_task(base, TaskStatus.RUNNING, heartbeat="add")
    assert first.moved
    second = store.transition_task(base + 1, TaskStatus.RUNNING, heartbeat="add")
    assert second.full and store.task(base + 1)["status"] == "Scheduled"  # type: ignore[index]
    store.transition_task(base, TaskStatus.SUCCESS)  # frees the slot
    assert store.transition_task(base + 1, TaskStatus.RUNNING, heartbeat="add").moved
    rt.redis.delete(user_key)
