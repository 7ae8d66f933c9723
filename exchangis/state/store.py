"""Live state of executions and tasks in Redis, with atomic, table-checked transitions."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from exchangis.state.keys import Keys

# KEYS[1] = the hash whose status moves; KEYS[2] = the execution hash that counts final tasks;
# KEYS[3] = the heartbeat sorted set (running tasks); KEYS[4] = the execute user's running set.
# ARGV: target, allowed sources ("," joined, with leading/trailing ","), final flag, now,
# heartbeat action ("add|<total limit>|<user limit>|<heartbeat timeout>" / "rem" / ""), member,
# the number of expected field/value pairs, a move id, those pairs (all must match: e.g. the
# attempt), then field/value pairs to set with the move. The move id makes the script
# idempotent: the client retries a command whose reply a dropped connection lost, and the
# second run must answer as the first did, not "refused". Returns {moved, previous, n_final,
# total}; n_final is -1 when a claim waits for a free slot (running tasks with fresh
# heartbeats at a limit). The heartbeat moves with the status, so no crash between two
# commands can leave a Running task that the reaper cannot see.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, '', 0, 0} end
local done = redis.call('HGET', KEYS[1], 'move')
if done and ARGV[8] ~= '' and string.sub(done, 1, #ARGV[8] + 1) == ARGV[8] .. '|' then
  -- this very move was applied already (a client retry after a lost reply): same answer
  local parts = {}
  for part in string.gmatch(string.sub(done, #ARGV[8] + 2), '[^|]+') do
    table.insert(parts, part)
  end
  return {1, parts[1], tonumber(parts[2]), tonumber(parts[3])}
end
if not string.find(ARGV[2], ',' .. current .. ',', 1, true) then
  return {0, current, 0, 0}
end
local first = 9 + 2 * tonumber(ARGV[7])
for i = 9, first - 1, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return {0, current, 0, 0} end
end
local action = ARGV[5]
if string.sub(action, 1, 3) == 'add' then
  -- admission: a claim waits while the running tasks (fresh heartbeats) reach a limit
  local limits = {}
  for part in string.gmatch(action, '[^|]+') do table.insert(limits, part) end
  action = 'add'
  local since = tonumber(redis.call('TIME')[1]) - tonumber(limits[4] or '0')
  for i, key in ipairs({KEYS[3], KEYS[4]}) do
    local limit = tonumber(limits[i + 1] or '0')
    if limit > 0 and redis.call('ZCOUNT', key, since, '+inf') >= limit then
      return {0, current, -1, 0}
    end
  end
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'last_update_time', ARGV[4])
for i = first, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if action == 'add' then
  local now = redis.call('TIME')[1]
  redis.call('ZADD', KEYS[3], now, ARGV[6])
  redis.call('ZADD', KEYS[4], now, ARGV[6])
elseif action == 'rem' then
  redis.call('ZREM', KEYS[3], ARGV[6])
  redis.call('ZREM', KEYS[4], ARGV[6])
end
local n_final, total = 0, 0
if ARGV[3] == '1' and KEYS[2] ~= KEYS[1] then
  n_final = redis.call('HINCRBY', KEYS[2], 'n_final', 1)
  redis.call('HINCRBY', KEYS[2], 'n_' .. ARGV[1], 1)
  total = tonumber(redis.call('HGET', KEYS[2], 'total') or '0')
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'move', ARGV[8] .. '|' .. current .. '|' .. n_final .. '|' .. total)
end
return {1, current, n_final, total}
"""


_HSET_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'nx' then return redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""
"""Set fields of a hash only while it exists: a late writer (an attempt that lost its task,
a throttled publish after the end) never re-creates expired keys, which would live for ever."""

_OWNER = """
local eid = redis.call('HGET', KEYS[1], 'execution_id')
if not eid then return {false, false} end
return {eid, redis.call('HGET', ARGV[1] .. eid, 'execute_user')}
"""
"""A task's execution id and that execution's execute user, in one round trip. ARGV[1] is the
execution key without its id (``Keys.execution("")``): the script reads a key it was not given,
fine on one Redis (as the log scripts do), not on a cluster."""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_HEARTBEAT = """
local now = redis.call('TIME')[1]
redis.call('ZADD', KEYS[2], now, ARGV[1])
return redis.call('ZADD', KEYS[1], now, ARGV[1])
"""


class ServerClock:
    """The Redis server's clock (``TIME``), read again every ``resync_seconds`` and carried
    between reads by this host's monotonic clock, which a wrong wall clock does not move."""

    def __init__(self, redis: Redis, resync_seconds: float = 10.0) -> None:
        self.redis = redis
        self.resync_seconds = resync_seconds
        self._offset = 0.0
        self._synced = -float("inf")
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the server's time now, in epoch seconds."""
        now = time.monotonic()
        if now - self._synced > self.resync_seconds:
            with self._lock:
                before = time.monotonic()
                seconds, micros = self.redis.time()
                after = time.monotonic()
                self._offset = int(seconds) + int(micros) / 1e6 - (before + after) / 2
                self._synced = after
            now = time.monotonic()
        return now + self._offset


@dataclass(frozen=True)
class Rules:
    """The state machine the store enforces (state/machine.py provides it)."""

    task_sources: Callable[[str], frozenset[str]]
    """Task statuses from which a target status may be entered."""
    execution_sources: Callable[[str], frozenset[str]]
    task_final: frozenset[str]
    execution_final: frozenset[str]
    initial: str = "Inited"


@dataclass(frozen=True)
class Transition:
    """Outcome of a transition attempt."""

    moved: bool
    previous: str | None
    final_count: int = 0
    total: int = 0

    @property
    def full(self) -> bool:
        """Return True when a claim was refused because the running-task limits are reached."""
        return not self.moved and self.final_count == -1

    @property
    def last(self) -> bool:
        """Return True when this move made the execution's last task final."""
        return self.moved and self.total > 0 and self.final_count == self.total


def _strings(fields: Mapping[str, Any] | None) -> dict[Any, Any]:
    return {k: "" if v is None else str(v) for k, v in (fields or {}).items()}


def _flat(fields: Mapping[str, Any] | None) -> list[str]:
    return [part for item in _strings(fields).items() for part in item]


@dataclass(frozen=True)
class Gauges:
    """The live state's figures at one moment (``StateStore.gauges``)."""

    running: int
    heartbeat_age: dict[str, float]
    """Running tasks' worker (``host:pid``) → age in seconds of its oldest task heartbeat."""
    queued: int
    retrying: int
    unpersisted: int


def _worker_name(info: str | None) -> str:
    """Return ``host:pid`` of a task's ``worker_info`` JSON (``unknown`` when unreadable)."""
    try:
        data = json.loads(info or "")
        return f"{data['host']}:{data['pid']}"
    except (ValueError, KeyError, TypeError):
        return "unknown"


class StateStore:
    """Read and change the live state; every status change goes through ``transition_*``."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        rules: Rules,
        clock: Callable[[], float] | None = None,
        *,
        limits: tuple[int, int] = (0, 0),
        stale_seconds: float = 30.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.rules = rules
        self.limits = limits
        """Most running tasks in total and per execute user (0: no limit)."""
        self.stale_seconds = stale_seconds
        """A running task whose heartbeat is older than this no longer counts for the limits."""
        self.clock = clock or ServerClock(redis)
        """Every time the live state keeps or compares comes from here: by default the Redis
        server's clock, so hosts whose clocks differ still agree on deadlines."""
        self._transition = redis.register_script(_TRANSITION)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._unlock = redis.register_script(_UNLOCK)
        self._owner = redis.register_script(_OWNER)
        self._hset_existing = redis.register_script(_HSET_EXISTING)

    def now_ms(self) -> int:
        """Return the store's clock in epoch milliseconds."""
        return int(self.clock() * 1000)

    # -- creation and reads ---------------------------------------------------------------
    def create_execution(
        self,
        eid: str,
        fields: Mapping[str, Any],
        tasks: Iterable[Mapping[str, Any]],
        *,
        replace: bool = False,
    ) -> bool:
        """Write an execution hash, its task hashes and task list in one transaction; return
        False (and write nothing) when the execution is live already, unless ``replace``.

        ``fields`` and each task's fields override the defaults (status Inited, counters 0);
        ``replace`` first drops what a previous run left (a resume or restart is a new run).
        Without it, of two writers racing (the API that submitted, a reaper adopting the
        execution) exactly one writes.
        """
        task_list = list(tasks)
        now = self.now_ms()
        key = self.keys.execution(eid)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                if not replace:
                    pipe.watch(key)
                    if pipe.exists(key):
                        return False
                    pipe.multi()
                self._write_execution(pipe, eid, fields, task_list, now, replace)
                pipe.execute()
            except WatchError:
                return False
        return True

    def _write_execution(
        self,
        pipe: Pipeline,
        eid: str,
        fields: Mapping[str, Any],
        task_list: list[Mapping[str, Any]],
        now: int,
        replace: bool,
    ) -> None:
        if replace:
            pipe.delete(
                self.keys.execution(eid),
                self.keys.execution_tasks(eid),
                *(self.keys.task(task["id"]) for task in task_list),
            )
        pipe.hset(
            self.keys.execution(eid),
            mapping={
                "status": self.rules.initial,
                "total": len(task_list),
                "n_final": 0,
                "n_logged": 0,
                "control": "",
                "create_time": now,
                "last_update_time": now,
                **_strings(fields),
            },
        )
        for task in task_list:
            tid = task["id"]
            pipe.hset(
                self.keys.task(tid),
                mapping={
                    "status": self.rules.initial,
                    "progress": 0,
                    "execution_id": eid,
                    "create_time": now,
                    "last_update_time": now,
                    **_strings(task),
                },
            )
            pipe.rpush(self.keys.execution_tasks(eid), tid)

    def execution(self, eid: str) -> dict[str, str] | None:
        """Return the execution hash, or None when it is not (or no longer) live."""
        data: dict[str, str] = self.redis.hgetall(self.keys.execution(eid))  # type: ignore[assignment]
        return data or None

    def task(self, tid: int | str) -> dict[str, str] | None:
        """Return the task hash, or None."""
        data: dict[str, str] = self.redis.hgetall(self.keys.task(tid))  # type: ignore[assignment]
        return data or None

    def task_ids(self, eid: str) -> list[int]:
        """Return the execution's task ids in plan order."""
        ids: list[str] = self.redis.lrange(self.keys.execution_tasks(eid), 0, -1)  # type: ignore[assignment]
        return [int(i) for i in ids]

    def tasks(self, eid: str) -> list[dict[str, str]]:
        """Return every task hash of the execution, in plan order (missing ones skipped)."""
        ids = self.task_ids(eid)
        pipe = self.redis.pipeline(transaction=False)
        for tid in ids:
            pipe.hgetall(self.keys.task(tid))
        return [
            {"id": str(tid), **data} for tid, data in zip(ids, pipe.execute(), strict=True) if data
        ]

    # -- transitions ------------------------------------------------------------------------
    def transition_task(
        self,
        tid: int | str,
        target: str,
        *,
        sources: Iterable[str] | None = None,
        fields: Mapping[str, Any] | None = None,
        heartbeat: str = "",
        expect: Mapping[str, Any] | None = None,
    ) -> Transition:
        """Move a task to ``target`` if its status allows it (atomic; counts final moves).

        ``sources`` narrows the allowed previous statuses (a compare-and-set); it can never
        widen the transition table. ``expect`` adds fields that must hold their values (e.g.
        ``claim``: a stale attempt cannot move a newer one). ``heartbeat`` = ``add`` starts
        the task's heartbeat with the move, ``rem`` ends it; a final move always ends it.
        """
        allowed = self.rules.task_sources(target)
        if sources is not None:
            allowed = allowed & frozenset(str(s) for s in sources)
        task_key = self.keys.task(tid)
        eid, user = self._owner(keys=[task_key], args=[self.keys.execution("")])
        exec_key = self.keys.execution(str(eid)) if eid else task_key
        final = target in self.rules.task_final
        action = "rem" if final else heartbeat
        if action == "add":
            total, per_user = self.limits
            action = f"add|{total}|{per_user}|{int(self.stale_seconds)}"
        keys = [task_key, exec_key, self.keys.heartbeats(), self.keys.running_user(str(user))]
        return self._run(keys, target, allowed, final, fields, action, str(tid), expect)

    def transition_execution(
        self,
        eid: str,
        target: str,
        *,
        sources: Iterable[str] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Transition:
        """Move an execution to ``target`` if its status allows it (atomic)."""
        allowed = self.rules.execution_sources(target)
        if sources is not None:
            allowed = allowed & frozenset(str(s) for s in sources)
        key = self.keys.execution(eid)
        extra = dict(fields or {})
        if target in self.rules.execution_final:
            extra.setdefault("completed_time", self.now_ms())
        keys = [key, key, self.keys.heartbeats(), self.keys.heartbeats()]
        return self._run(keys, target, allowed, False, extra, "", "", None)

    def _run(
        self,
        keys: list[str],
        target: str,
        allowed: frozenset[str],
        final: bool,
        fields: Mapping[str, Any] | None,
        heartbeat: str,
        member: str,
        expect: Mapping[str, Any] | None,
    ) -> Transition:
        sources = "," + ",".join(sorted(str(s) for s in allowed)) + ","
        args = [
            str(target),
            sources,
            "1" if final else "0",
            str(self.now_ms()),
            heartbeat,
            member,
            str(len(expect or {})),
            uuid.uuid4().hex,
            *_flat(expect),
            *_flat(fields),
        ]
        moved, previous, n_final, total = self._transition(keys=keys, args=args)
        return Transition(bool(moved), previous or None, int(n_final), int(total))

    # -- control, progress, heartbeats -------------------------------------------------------
    def _update(self, key: str, fields: Mapping[str, Any]) -> bool:
        """Set fields of an existing hash; False (nothing written) when it does not exist."""
        return bool(self._hset_existing(keys=[key], args=["set", *_flat(fields)]))

    def set_control(self, eid: str, value: str) -> None:
        """Set the execution's control flag (``kill``/``pause``) that running tasks obey."""
        self._update(self.keys.execution(eid), {"control": value, "control_time": self.now_ms()})

    def control_and_status(self, eid: str, tid: int | str) -> tuple[str, str, str]:
        """Return the execution's control flag, the task's status and the claim token of its
        current attempt, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.execution(eid), "control")
        pipe.hmget(self.keys.task(tid), ["status", "claim"])
        control, (status, claim) = pipe.execute()
        return str(control or ""), str(status or ""), str(claim or "")

    def update_task(self, tid: int | str, fields: Mapping[str, Any]) -> None:
        """Set progress/metric fields of a task (not its status)."""
        if "status" in fields:
            raise ValueError("status changes go through transition_task")
        self._update(self.keys.task(tid), fields)

    def update_execution(self, eid: str, fields: Mapping[str, Any]) -> None:
        """Set non-status fields of an execution."""
        if "status" in fields:
            raise ValueError("status changes go through transition_execution")
        self._update(self.keys.execution(eid), fields)

    def count_final_logged(self, eid: str) -> tuple[int, int]:
        """Count one more final task whose job-log line is written; return (count, tasks)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(self.keys.execution(eid), "n_logged", 1)
        pipe.hget(self.keys.execution(eid), "total")
        logged, total = pipe.execute()
        return int(logged), int(total or 0)

    def first_time(self, eid: str, marker: str) -> bool:
        """Return True for the first caller only (HSETNX on the live execution): a once-only
        gate (False when the execution is not live)."""
        key = self.keys.execution(eid)
        return bool(self._hset_existing(keys=[key], args=["nx", marker, str(self.now_ms())]))

    def lock(self, name: str, ttl_seconds: int) -> str:
        """Take a short-lived lock (SET NX EX); return its token when this caller holds it,
        else ""."""
        token = uuid.uuid4().hex
        taken = self.redis.set(self.keys.lock(name), token, nx=True, ex=ttl_seconds)
        return token if taken else ""

    def unlock(self, name: str, token: str) -> None:
        """Release a lock taken with :meth:`lock`, only while ``token`` still holds it (after
        its time to live another caller may)."""
        if token:
            self._unlock(keys=[self.keys.lock(name)], args=[token])

    @contextmanager
    def locked(self, name: str, ttl_seconds: int, wait_seconds: float = 0) -> Iterator[bool]:
        """Hold a lock for a block when it is free (or frees within ``wait_seconds``); yield
        whether this caller holds it."""
        token = self.lock(name, ttl_seconds)
        deadline = time.monotonic() + wait_seconds
        while not token and time.monotonic() < deadline:
            time.sleep(0.05)
            token = self.lock(name, ttl_seconds)
        try:
            yield bool(token)
        finally:
            self.unlock(name, token)

    def mark_unpersisted(self, eid: str) -> None:
        """Remember that a completed execution's durable record is still to be written."""
        self.redis.sadd(self.keys.unpersisted(), eid)

    def mark_persisted(self, eid: str) -> None:
        """Record that the durable record is written."""
        self._update(self.keys.execution(eid), {"persisted": self.now_ms()})
        self.redis.srem(self.keys.unpersisted(), eid)

    def missing_for(self, eid: str) -> float:
        """Note that an execution SQL holds as unfinished has no live state; return for how
        many seconds (store clock) the passes have found it missing."""
        now = self.clock()
        self.redis.zadd(self.keys.missing(), {eid: now}, nx=True)
        since = self.redis.zscore(self.keys.missing(), eid)
        return now - float(since if since is not None else now)

    def forget_missing(self, eid: str) -> None:
        """Stop counting an execution as missing (it was adopted, or turned up)."""
        self.redis.zrem(self.keys.missing(), eid)

    def forget_missing_older_than(self, seconds: float) -> None:
        """Drop entries no pass has refreshed in a while (finished elsewhere, deleted)."""
        self.redis.zremrangebyscore(self.keys.missing(), "-inf", self.clock() - seconds)

    def unpersisted(self) -> list[str]:
        """Return completed executions whose durable record is not written yet."""
        members: set[str] = self.redis.smembers(self.keys.unpersisted())  # type: ignore[assignment]
        return sorted(members)

    def heartbeat(self, tid: int | str, user: str) -> None:
        """Record that a running task is alive now (scored by the Redis server's clock)."""
        self._heartbeat(
            keys=[self.keys.heartbeats(), self.keys.running_user(user)], args=[str(tid)]
        )

    def gauges(self, eids: Iterable[str], waiting: Iterable[str]) -> Gauges:
        """Return what the live state holds now: running tasks by worker with their oldest
        heartbeat, tasks of executions ``eids`` in a status of ``waiting`` (for a worker),
        tasks waiting for a retry, and completed executions whose record is not written yet
        (two round trips)."""
        waiting = frozenset(waiting)
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.heartbeats(), 0, -1, withscores=True)
        pipe.zcard(self.keys.retries())
        pipe.scard(self.keys.unpersisted())
        eids = list(eids)
        for eid in eids:
            pipe.lrange(self.keys.execution_tasks(eid), 0, -1)
        beats, retrying, unpersisted, *task_lists = pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for tid, _ in beats:
            pipe.hget(self.keys.task(tid), "worker_info")
        ids = [tid for ids in task_lists for tid in ids]
        for tid in ids:
            pipe.hget(self.keys.task(tid), "status")
        answers = pipe.execute()
        oldest: dict[str, float] = {}
        for (_, beat), info in zip(beats, answers[: len(beats)], strict=True):
            worker = _worker_name(info)
            oldest[worker] = max(oldest.get(worker, 0.0), now - float(beat), 0.0)
        queued = sum(1 for status in answers[len(beats) :] if status in waiting)
        return Gauges(len(beats), oldest, queued, int(retrying), int(unpersisted))

    def drop_heartbeat(self, tid: int | str) -> None:
        """Forget a task's heartbeat (it is no longer running)."""
        self.redis.zrem(self.keys.heartbeats(), str(tid))

    def stale_tasks(self, older_than_seconds: float) -> list[int]:
        """Return running tasks whose heartbeat is older than ``older_than_seconds``."""
        limit = self.clock() - older_than_seconds
        ids: list[str] = self.redis.zrangebyscore(self.keys.heartbeats(), "-inf", limit)  # type: ignore[assignment]
        return [int(i) for i in ids]

    def _schedule(self, key: str, member: str, delay_seconds: float) -> None:
        self.redis.zadd(key, {member: self.clock() + delay_seconds})

    def _due(self, key: str) -> list[str]:
        members: list[str] = self.redis.zrangebyscore(key, "-inf", self.clock())  # type: ignore[assignment]
        return members

    def schedule_retry(self, tid: int | str, delay_seconds: float) -> None:
        """Remember to send a WaitForRetry task again ``delay_seconds`` from now (Redis clock)."""
        self._schedule(self.keys.retries(), str(tid), delay_seconds)

    def due_retries(self) -> list[int]:
        """Return the tasks whose retry is due."""
        return [int(i) for i in self._due(self.keys.retries())]

    def drop_retry(self, tid: int | str) -> bool:
        """Forget a task's pending retry; True for the caller that removed it."""
        return bool(self.redis.zrem(self.keys.retries(), str(tid)))

    def set_deadline(self, eid: str, seconds: float) -> None:
        """Time the execution out ``seconds`` from now (Redis clock)."""
        self._schedule(self.keys.deadlines(), eid, seconds)

    def due_deadlines(self) -> list[str]:
        """Return the executions whose deadline has passed."""
        return self._due(self.keys.deadlines())

    def drop_deadline(self, eid: str) -> bool:
        """Forget an execution's deadline; True for the caller that removed it."""
        return bool(self.redis.zrem(self.keys.deadlines(), eid))

    def execution_keys(self, eid: str, task_ids: Iterable[int], logs: bool = True) -> list[str]:
        """Return an execution's live keys: its hashes, its tasks' and (``logs``) every key of
        its job log and task logs."""
        tids = list(task_ids)
        keys = [self.keys.execution(eid), self.keys.execution_tasks(eid)]
        keys += [self.keys.task(tid) for tid in tids]
        if logs:
            names = [self.keys.execution_log(eid), *(self.keys.task_log(tid) for tid in tids)]
            head_counts = self.redis.mget([Keys.log_parts(log)[3] for log in names])
            for log, head in zip(names, head_counts, strict=True):
                keys += Keys.log_keys(log, int(head or 0))
        return keys

    def expire_execution(self, eid: str, ttl_seconds: int) -> None:
        """Give an execution's live keys (hashes, lists, logs) a time to live."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self.execution_keys(eid, self.task_ids(eid)):
            pipe.expire(key, ttl_seconds)
        pipe.execute()

    def drop_execution(self, eid: str, task_ids: Iterable[int], logs: bool = True) -> None:
        """Delete an execution's live keys (``logs``: its logs too)."""
        self.redis.delete(*self.execution_keys(eid, task_ids, logs))
