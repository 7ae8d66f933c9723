"""Task and execution statuses, their final sets and the allowed transitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from exchangis.state.store import Rules


class TaskStatus(StrEnum):
    """Status of one task (a sub-job run); tasks never have Partial_Success."""

    INITED = "Inited"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    WAIT_FOR_RETRY = "WaitForRetry"
    PAUSED = "Paused"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"
    UNDEFINED = "Undefined"


class Control(StrEnum):
    """A request that running tasks of an execution obey at their next batch.

    It is written to SQL before Redis (``JobExecution.control``), so a live state rebuilt
    after a Redis loss still knows that the execution was killed, paused or timed out.
    """

    NONE = ""
    KILL = "kill"
    PAUSE = "pause"
    TIMEOUT = "timeout"


class ExecutionStatus(StrEnum):
    """Status of one execution of a job."""

    INITED = "Inited"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    WAIT_FOR_RETRY = "WaitForRetry"
    PAUSED = "Paused"
    CANCELLED = "Cancelled"
    FAILED = "Failed"
    PARTIAL_SUCCESS = "Partial_Success"
    SUCCESS = "Success"
    UNDEFINED = "Undefined"
    TIMEOUT = "Timeout"


TASK_FINAL: frozenset[TaskStatus] = frozenset(
    {
        TaskStatus.SUCCESS,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.TIMEOUT,
        TaskStatus.UNDEFINED,
    }
)
"""Statuses a task never leaves (a restart makes new attempts of the same task row)."""

TASK_FAILURES: frozenset[TaskStatus] = TASK_FINAL - {TaskStatus.SUCCESS}

EXECUTION_FINAL: frozenset[ExecutionStatus] = frozenset(
    {
        ExecutionStatus.CANCELLED,
        ExecutionStatus.FAILED,
        ExecutionStatus.PARTIAL_SUCCESS,
        ExecutionStatus.SUCCESS,
        ExecutionStatus.UNDEFINED,
        ExecutionStatus.TIMEOUT,
    }
)

_T = TaskStatus
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    _T.INITED: frozenset({_T.SCHEDULED, _T.CANCELLED}),
    # SCHEDULED: sent again (a new message); FAILED: could not be queued
    _T.SCHEDULED: frozenset({_T.SCHEDULED, _T.RUNNING, _T.CANCELLED, _T.PAUSED, _T.FAILED}),
    _T.RUNNING: frozenset(
        {
            _T.SUCCESS,
            _T.FAILED,
            _T.CANCELLED,
            _T.TIMEOUT,
            _T.WAIT_FOR_RETRY,
            _T.PAUSED,
            _T.UNDEFINED,
        }
    ),
    _T.WAIT_FOR_RETRY: frozenset({_T.SCHEDULED, _T.CANCELLED, _T.PAUSED}),
    _T.PAUSED: frozenset({_T.SCHEDULED, _T.CANCELLED}),
}
"""Allowed task transitions; anything else is refused by the state store."""

_E = ExecutionStatus
EXECUTION_TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    _E.INITED: frozenset({_E.SCHEDULED} | EXECUTION_FINAL),  # it may end before it starts
    _E.SCHEDULED: frozenset({_E.RUNNING, _E.PAUSED} | EXECUTION_FINAL),
    _E.RUNNING: frozenset({_E.PAUSED} | EXECUTION_FINAL),
    _E.PAUSED: frozenset({_E.SCHEDULED} | EXECUTION_FINAL),
}
"""Allowed execution transitions. A final state is never left: resume and restart of a
completed execution start a new run of it (``engine.control.reopen`` rewrites its live state)."""


CONTROL_OUTCOME: dict[Control, TaskStatus] = {
    Control.KILL: TaskStatus.CANCELLED,
    Control.PAUSE: TaskStatus.PAUSED,
    Control.TIMEOUT: TaskStatus.TIMEOUT,
}
"""The status a running task ends in when it obeys a control request."""

STOPPING: frozenset[Control] = frozenset({Control.KILL, Control.TIMEOUT})
"""Control requests that end the execution (a pause only holds it)."""


def control_of(value: str | None) -> Control:
    """Return the control request a stored value names (unknown or empty: none)."""
    try:
        return Control(value or "")
    except ValueError:
        return Control.NONE


def completed(execution: Mapping[str, Any] | None, tasks: Iterable[Mapping[str, Any]]) -> bool:
    """The one rule of "completed" (``allTaskStatus``; delete, resume and restart accept it):
    the execution and every task are final and the durable record is written. ``execution``
    is its live hash; when only SQL holds it, pass ``{"status": row.status, "persisted": "1"}``
    (a final SQL row is the written record)."""
    if execution is None:
        return False
    return (
        execution.get("status") in EXECUTION_FINAL
        and all(t.get("status") in TASK_FINAL for t in tasks)
        and bool(execution.get("persisted"))
    )


def task_sources(target: TaskStatus) -> frozenset[TaskStatus]:
    """Return the task statuses from which ``target`` may be entered."""
    return frozenset(s for s, targets in TASK_TRANSITIONS.items() if target in targets)


def execution_sources(target: ExecutionStatus) -> frozenset[ExecutionStatus]:
    """Return the execution statuses from which ``target`` may be entered."""
    return frozenset(s for s, targets in EXECUTION_TRANSITIONS.items() if target in targets)


RULES = Rules(
    task_sources=lambda target: frozenset(str(s) for s in task_sources(TaskStatus(target))),
    execution_sources=lambda target: frozenset(
        str(s) for s in execution_sources(ExecutionStatus(target))
    ),
    task_final=frozenset(str(s) for s in TASK_FINAL),
    execution_final=frozenset(str(s) for s in EXECUTION_FINAL),
    initial=TaskStatus.INITED.value,
)
"""The rules the live-state store enforces."""
