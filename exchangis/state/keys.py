"""Every Redis key name of the live state; nothing else builds key strings.

Layout (prefix ``exg:`` by default):

- ``exg:exec:<eid>``           hash: execution status, counters, control flag, times
- ``exg:exec:<eid>:tasks``     list: task ids in plan order
- ``exg:exec:<eid>:log:h<k>``  lists: job log head, 10,000 lines each (line n: segment
                               (n-1) // 10000, index (n-1) % 10000)
- ``exg:exec:<eid>:log:tail``  list: job log, tail part once the head is full (trimmed)
- ``exg:exec:<eid>:log:n``     string: number of lines ever written to the job log
- ``exg:exec:<eid>:log:hn``    string: number of lines in the head
- ``exg:exec:<eid>:log:cut``   hash: bytes in the head and in the tail, and the stamp of the
                               last stamped line dropped by the caps
- ``exg:exec:<eid>:log:closed`` string: set once the log is archived (no more lines)
- ``exg:task:<tid>``           hash: task status, progress, metrics, worker, times
- ``exg:task:<tid>:log:*``     the same keys for a task's log
- ``exg:heartbeats``           sorted set: running task id → last heartbeat (Redis clock, s)
- ``exg:running:user:<user>`` sorted set: that execute user's running task id → heartbeat
- ``exg:retries``              sorted set: WaitForRetry task id → when to send it again
- ``exg:deadlines``            sorted set: execution id → when it times out
- ``exg:unpersisted``          set: completed executions whose SQL record is not written yet
- ``exg:missing``              sorted set: unfinished (in SQL) execution id → when a reaper
                               first found it without live state (it is adopted after a grace)
- ``exg:cleanup``              list: stage tables for a worker to drop (engine/stages.py)
- ``exg:lock:<name>``          string: a short-lived lock (SET NX EX) holding its taker's token
- ``exg:calls``                list: connector calls the API asks a worker for (engine/calls.py)
- ``exg:call:<id>``            list: the answer to one call (expires)
- ``exg:signin:*``             failed sign-ins per client address and per user name (the
                               ``limits`` library's moving windows under this prefix)
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT = ":h"
"""Separator of a log's head segment number (the Lua scripts get it as an argument)."""
SEGMENT_LINES = 10_000
"""Lines per head segment: a page touches at most two short lists, whatever the log's size."""


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = "exg:"

    def execution(self, eid: str) -> str:
        """Return the hash key of an execution."""
        return f"{self.prefix}exec:{eid}"

    def execution_tasks(self, eid: str) -> str:
        """Return the list key of an execution's task ids."""
        return f"{self.prefix}exec:{eid}:tasks"

    def execution_log(self, eid: str) -> str:
        """Return the list key of an execution's job log."""
        return f"{self.prefix}exec:{eid}:log"

    def task(self, tid: int | str) -> str:
        """Return the hash key of a task."""
        return f"{self.prefix}task:{tid}"

    def task_log(self, tid: int | str) -> str:
        """Return the list key of a task's log."""
        return f"{self.prefix}task:{tid}:log"

    @staticmethod
    def log_parts(log: str) -> tuple[str, str, str, str, str, str]:
        """Return a log's head-segment prefix, tail list, line counter, head counter, cut stamp
        and closed-flag keys (the order the log scripts expect)."""
        return log, f"{log}:tail", f"{log}:n", f"{log}:hn", f"{log}:cut", f"{log}:closed"

    @staticmethod
    def log_keys(log: str, head_lines: int) -> list[str]:
        """Return every key of a log whose head holds ``head_lines`` lines."""
        segments = (head_lines + SEGMENT_LINES - 1) // SEGMENT_LINES
        return [f"{log}{SEGMENT}{k}" for k in range(segments)] + list(Keys.log_parts(log)[1:])

    def heartbeats(self) -> str:
        """Return the sorted-set key of running tasks' heartbeats."""
        return f"{self.prefix}heartbeats"

    def running_user(self, user: str) -> str:
        """Return the sorted-set key of one execute user's running tasks (id → heartbeat)."""
        return f"{self.prefix}running:user:{user}"

    def retries(self) -> str:
        """Return the sorted-set key of tasks waiting to retry: task id → due time (Redis s)."""
        return f"{self.prefix}retries"

    def deadlines(self) -> str:
        """Return the sorted-set key of executions with a timeout: id → deadline (Redis s)."""
        return f"{self.prefix}deadlines"

    def unpersisted(self) -> str:
        """Return the set key of completed executions still to be written to SQL."""
        return f"{self.prefix}unpersisted"

    def missing(self) -> str:
        """Return the sorted-set key of unfinished executions found without live state."""
        return f"{self.prefix}missing"

    def cleanup(self) -> str:
        """Return the list key of stage tables a worker is to drop (engine/stages.py)."""
        return f"{self.prefix}cleanup"

    def lock(self, name: str) -> str:
        """Return the key of a short-lived lock."""
        return f"{self.prefix}lock:{name}"

    def calls(self) -> str:
        """Return the list key of connector calls waiting for a worker."""
        return f"{self.prefix}calls"

    def call_reply(self, call_id: str) -> str:
        """Return the list key a worker pushes a call's answer to."""
        return f"{self.prefix}call:{call_id}"

    def sign_in_limits(self) -> str:
        """Return the prefix of the failed sign-in windows (the ``limits`` library adds the
        rest of each key)."""
        return f"{self.prefix}signin"

    def pattern(self) -> str:
        """Return the glob that matches every key under the prefix (tests clean up with it)."""
        return f"{self.prefix}*"
