"""One task's run loop: claim, stream source → mapping → sink, publish progress, finish."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import psutil
import pyarrow as pa
from redis.exceptions import RedisError
from sqlalchemy import select

from exchangis import process_log
from exchangis.connectors.base import Endpoint, Estimate, Sink, Source
from exchangis.connectors.ledger import Fence, FencedOffError
from exchangis.engine import control, finalize, retry, sending
from exchangis.engine.dirty import ErrorRecords
from exchangis.engine.progress import describe, fraction, shown
from exchangis.engine.transform import ColumnMapping
from exchangis.errors import (
    BulkRowRefusedError,
    ExchangisError,
    InvalidInputError,
    TransientConnectorError,
)
from exchangis.models import DataSource, TaskExecution, usable_in
from exchangis.runtime import Runtime, durable, sql_unavailable
from exchangis.state.logs import LogWriter
from exchangis.state.machine import (
    CONTROL_OUTCOME,
    TASK_FINAL,
    Control,
    ExecutionStatus,
    TaskStatus,
    control_of,
)
from exchangis.threads import TIMERS, Timer

logger = logging.getLogger(__name__)


class Committed(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The sink's ledger says an earlier attempt of this task run committed its rows."""

    def __init__(self, rows: int) -> None:
        super().__init__(f"{rows} rows committed by an earlier attempt")
        self.rows = rows


class StopTransfer(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside the loop to stop with a given final status."""

    def __init__(self, status: TaskStatus, reason: str, *, lost: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.lost = lost
        """The attempt is no longer the task's current one: it must not move the task."""


@dataclass
class TaskContext:
    """What a task needs from SQL, loaded before any long I/O (the session is closed after)."""

    plan: dict[str, Any]
    source: Endpoint
    sink: Endpoint
    """Where batches go: the sink table, or a channel's own stage table (see ``target``)."""
    target: Endpoint | None = None
    """A staged channel's real sink table (its content is replaced once all stages are in)."""
    ledger_key: str = ""
    """The task run's entry in the sink's ledger: one attempt's rows commit, once."""


@durable
def load_context(rt: Runtime, tid: int) -> TaskContext:
    """Load the task's plan and its data sources' connect params."""
    with rt.sessions() as session:
        task = session.get(TaskExecution, tid)
        if task is None:
            raise InvalidInputError(f"task {tid} has no row in the metadata database")
        plan = dict(task.plan)
        project = task.execution.project_name
        ledger_key = task.ledger_key
        endpoints = []
        for side in ("source", "sink"):
            spec = plan[side]
            ds = session.scalar(  # a deleted one's id may name another project's since
                select(DataSource).where(DataSource.id == spec["datasource_id"], usable_in(project))
            )
            if ds is None:
                raise InvalidInputError(
                    f"{side} data source {spec['datasource_id']} was deleted from project {project}"
                )
            endpoints.append(Endpoint.of_plan(ds.type, rt.connect_params(ds), spec))
    source, sink = endpoints
    source = replace(source, split=plan.get("split"))
    stage = plan.get("stage")
    if not stage:
        sink = replace(sink, shared=bool(plan.get("split")))
        return TaskContext(plan, source, sink, ledger_key=ledger_key)
    work = replace(
        sink,
        table=stage["work"],
        options={**sink.options, "writeMode": "overwrite", "createTable": True},
        like=sink.table,
    )
    return TaskContext(plan, source, work, target=sink)


class Heartbeat:
    """Refresh a running task's heartbeat every ``heartbeat_seconds`` until stopped (a lost
    process stops refreshing), from the process's timer thread."""

    def __init__(self, rt: Runtime, tid: int, user: str) -> None:
        self.rt = rt
        self.tid = tid
        self.user = user
        self._timer: Timer | None = None

    def start(self) -> None:
        """Start beating."""
        seconds = self.rt.settings.heartbeat_seconds
        self._timer = TIMERS.call(seconds, self._beat, every=seconds)

    def _beat(self) -> None:
        try:
            self.rt.store.heartbeat(self.tid, self.user)
        except Exception:  # a Redis blip must not kill the transfer; the reaper judges
            logger.warning("heartbeat failed task=%s", self.tid, exc_info=True)

    def stop(self) -> None:
        """Stop beating."""
        if self._timer is not None:
            self._timer.cancel()


LOG_HOLD_SECONDS = 0.5
"""Most seconds a task's log lines are held before they are stored (together, in one call);
every line of an attempt is stored before its status moves."""

_PROCESS: dict[int, psutil.Process] = {}


def this_process() -> psutil.Process:
    """Return this process's psutil handle (one per process: making one reads /proc)."""
    pid = os.getpid()
    process = _PROCESS.get(pid)
    if process is None:  # first use, or a forked child
        _PROCESS.clear()
        process = _PROCESS[pid] = psutil.Process(pid)
    return process


class Meter:
    """Counters of one task and their throttled publication to the live state."""

    def __init__(self, rt: Runtime, tid: int, log: LogWriter) -> None:
        self.rt = rt
        self.tid = tid
        self.log = log
        self.started = time.monotonic()
        self.read = 0
        self.written = 0
        self.errors = 0
        self.ignored = 0
        self.bytes = 0
        self.estimate: Estimate | None = None
        """What the source knew of its rows before reading."""
        self.position: float | None = None
        """Where the source's read stands (``Source.progress``), after the last batch."""
        self._shown = 0.0
        self.traffic: dict[str, str] = {}
        self._process = this_process()
        self._process.cpu_percent(None)  # the first figure counts from here
        self._last_publish = self.started  # the claim wrote the start: next, a throttle later
        self._last_log = self.started
        self._last_records = 0
        self._last_at = self.started

    def reset(self) -> None:
        """Forget the rows counted so far (the transfer starts again from the first row)."""
        self.read = self.written = self.errors = self.ignored = self.bytes = 0
        self.position = None
        self._shown = 0.0
        self._last_records = 0

    def progress(self) -> float:
        """Return the progress to publish: the fraction done by the source's best yardstick,
        below 1 until the task succeeds, never below a value returned before
        (:mod:`exchangis.engine.progress`)."""
        self._shown = max(self._shown, shown(fraction(self.read, self.estimate, self.position)))
        return self._shown

    def fields(self) -> dict[str, Any]:
        """Return the metric fields as stored in the task hash."""
        now = time.monotonic()
        span = now - self._last_at
        flow = (self.read - self._last_records) / span if span > 0 else 0.0
        self._last_at, self._last_records = now, self.read
        return {
            "read_records": self.read,
            "written_records": self.written,
            "error_records": self.errors,
            "ignored_records": self.ignored,
            "bytes": self.bytes,
            "flow": round(flow, 1),
            "cpu": round(self._process.cpu_percent(None) / 100.0, 3),
            "memory_mb": round(self._process.memory_info().rss / 2**20, 1),
            "elapsed_ms": int((now - self.started) * 1000),
            **self.traffic,
        }

    def publish(self, *, force: bool = False) -> None:
        """Write progress and metrics at most once per ``progress_interval_seconds``."""
        now = time.monotonic()
        if not force and now - self._last_publish < self.rt.settings.progress_interval_seconds:
            return
        self._last_publish = now
        self.rt.store.update_task(
            self.tid,
            {"progress": self.progress(), "progress_time": self.rt.store.now_ms(), **self.fields()},
        )
        if now - self._last_log >= 10:
            self._last_log = now
            elapsed = max(now - self.started, 1e-9)
            self.log.info(
                f"Total {self.read} records, {self.bytes} bytes | Speed "
                f"{self.read / elapsed:.0f} rec/s, {self.bytes / elapsed:.0f} B/s | "
                f"Error {self.errors} records | Percentage {self.progress() * 100:.1f}%"
            )


PACE_SECONDS = 0.25
"""Most seconds' worth of a task's speed limits that one batch carries."""

BATCH_BYTES = 4 * 2**20
"""Most Arrow bytes a batch carries, whatever its rows (``batch_size``, ``batchSize``): a batch
of wide rows is cut, so that a task's memory follows this, not the rows' width."""


def within_bytes(batches: Iterator[pa.RecordBatch], limit: int) -> Iterator[pa.RecordBatch]:
    """Yield ``batches``, each cut into slices of at most ``limit`` Arrow bytes (by its rows'
    average width; at least one row a slice)."""
    for batch in batches:
        if batch.nbytes <= limit or batch.num_rows <= 1:
            yield batch
            continue
        rows = max(1, batch.num_rows * limit // batch.nbytes)
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


@runtime_checkable
class WritesBehind(Protocol):
    """A sink that can write a batch while the caller reads the next one (MySQL's pipelined
    ``LOAD DATA``): after ``defer_writes()``, ``write`` may return before its batch is written,
    its rows counted (and refused rows taken) in a later ``write`` or in ``flush()``, which the
    caller calls after its last batch."""

    def defer_writes(self) -> None:
        """Let ``write`` return before its batch is written."""

    def flush(self) -> int:
        """Wait for the writes in flight; return the rows they wrote."""


class Pace:
    """The schedule of a speed-limited task (``setting.speed.record`` / ``setting.speed.byte``).

    Each batch is charged ``max(records / speed, bytes / speed_bytes)`` seconds. Its deadline
    is that charge after the moment it began: the previous deadline while the task keeps up, or
    the end of the previous batch when it fell behind (a slow source or sink, a busy host). The
    rate since the start never exceeds the limits by more than one batch, and time lost in a
    stall is not made up by a burst.
    """

    def __init__(self, meter: Meter, speed: int, speed_bytes: int) -> None:
        self.meter = meter
        self.speed = speed
        self.speed_bytes = speed_bytes
        self.began = meter.started
        """When the batch being moved began (on schedule: its predecessor's deadline)."""
        self.records = 0
        self.bytes = 0

    def rows_per_batch(self, batch: pa.RecordBatch) -> int:
        """Return the most rows of ``batch`` that fit in ``PACE_SECONDS`` of the limits.

        Bytes per row are ``batch``'s own average (its Arrow ``nbytes``).
        """
        rows = batch.num_rows
        if self.speed:
            rows = min(rows, max(1, int(self.speed * PACE_SECONDS)))
        if self.speed_bytes and batch.num_rows and batch.nbytes:
            per_row = batch.nbytes / batch.num_rows
            rows = min(rows, max(1, int(self.speed_bytes * PACE_SECONDS / per_row)))
        return rows

    def charge(self, now: float) -> float:
        """Charge what the meter counted since the last call; return the batch's deadline."""
        read, nbytes = self.meter.read, self.meter.bytes
        if read < self.records or nbytes < self.bytes:  # the meter was reset: a new pass
            self.records = self.bytes = 0
        cost = max(
            (read - self.records) / self.speed if self.speed else 0.0,
            (nbytes - self.bytes) / self.speed_bytes if self.speed_bytes else 0.0,
        )
        self.records, self.bytes = read, nbytes
        due = self.began + cost
        self.began = max(due, now)
        return due


def worker_info() -> str:
    """Return the JSON string that tasklist shows as ``linkisJobInfo``."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid()})


class TaskRunner:
    """Runs one task from claim to final state."""

    def __init__(self, rt: Runtime, tid: int, message_id: str = "") -> None:
        self.rt = rt
        self.tid = tid
        self.message_id = message_id
        """The broker message this attempt runs from (a kill that is ignored terminates it)."""
        self.store = rt.store
        self.claim = ""
        self.lost = False
        self._pace: Pace | None = None

    def run(self) -> TaskStatus | None:
        """Claim and run the task; return its final status, or None when the claim failed."""
        with process_log.about(task=self.tid):
            task = self.store.task(self.tid)
            if task is None:
                logger.warning("task=%s has no live state; message dropped", self.tid)
                return None
            with process_log.about(execution=task["execution_id"]):
                status = self._run(task)
                logger.info("task=%s attempt ended: %s", self.tid, status or "not run here")
                return status

    def _run(self, task: dict[str, str]) -> TaskStatus | None:
        eid = task["execution_id"]
        attempts = int(task.get("attempts") or 0) + 1
        self.claim = uuid.uuid4().hex  # this attempt's token: every later move must match it
        claim = self.store.transition_task(
            self.tid,
            TaskStatus.RUNNING,
            sources={TaskStatus.SCHEDULED, TaskStatus.WAIT_FOR_RETRY},
            fields={
                "launch_time": self.store.now_ms(),
                "worker_info": worker_info(),
                "attempts": attempts,
                "claim": self.claim,
                "message_id": self.message_id,
                "error": "",
            },
            heartbeat="add",
        )
        if claim.full:  # the running-task limits are reached: stay Scheduled, come back later
            self._defer(eid, task)
            return None
        if not claim.moved:
            logger.info("claim refused task=%s status=%s", self.tid, claim.previous)
            return None
        started = self.store.transition_execution(
            eid,
            ExecutionStatus.RUNNING,
            sources={ExecutionStatus.SCHEDULED},
            fields={"launch_time": self.store.now_ms()},
        )
        if started.moved:
            try:  # the history's status; the durable record is written at the end anyway
                finalize.record_status(self.rt, eid, ExecutionStatus.RUNNING, launched=True)
            except Exception:
                logger.warning("could not record execution=%s Running", eid, exc_info=True)
        self.rt.job_log(eid).info(
            f"Task {task.get('name', '')} (id {self.tid}) is Running, attempt {attempts}, on "
            f"{worker_info()}"
        )
        user = (self.store.execution(eid) or {}).get("execute_user", "")
        heartbeat = Heartbeat(self.rt, self.tid, user)
        heartbeat.start()
        try:
            status, error, meter = self._transfer(eid, task, attempts)
        finally:
            heartbeat.stop()  # the final move below ends the heartbeat; a crash leaves it stale
        self._store_log(meter.log)  # the attempt's every line, before its status moves
        if self.lost:  # a reaper or a recovery took the task over: leave it to them
            logger.info("task=%s attempt lost its claim: %s", self.tid, error)
            return None
        fields: dict[str, Any] = {"error": error or "", **meter.fields()}
        if status is TaskStatus.WAIT_FOR_RETRY:  # a transient failure: retry if attempts are left
            fields["progress"] = 0
            if retry.try_retry(self.rt, eid, self.tid, self.claim, error or "", fields):
                return status
            status = TaskStatus.FAILED
        if status is TaskStatus.SUCCESS:
            fields["progress"] = 1.0
        else:
            fields["progress"] = meter.progress()
        done = self.store.transition_task(
            self.tid,
            status,
            sources={TaskStatus.RUNNING},
            fields=fields,
            expect={"claim": self.claim},
        )
        if not done.moved:
            logger.warning("task=%s could not move to %s: now %s", self.tid, status, done.previous)
            return None
        if status in TASK_FINAL:
            finalize.task_finished(self.rt, eid, self.tid, status, error)
        else:  # Paused: it rolled back and waits for a resume (which may have come already)
            self.rt.job_log(eid).info(f"Task {task.get('name', '')} (id {self.tid}) is {status}")
            control.send_if_resumed(self.rt, eid, self.tid)
        return status

    def _defer(self, eid: str, task: dict[str, str]) -> None:
        """Offer a Scheduled task again after ``admission_retry_seconds`` (a new message)."""
        if self.store.first_time(eid, f"waited:{self.tid}"):
            total, per_user = self.store.limits
            self.rt.job_log(eid).info(
                f"Task {task.get('name', '')} (id {self.tid}) waits in Scheduled for a free slot "
                f"(at most {total or 'unlimited'} running tasks, {per_user or 'unlimited'} per "
                "user)"
            )
        countdown = self.rt.settings.admission_retry_seconds
        sending.send(self.rt, eid, self.tid, {TaskStatus.SCHEDULED}, countdown=countdown)

    def _transfer(
        self, eid: str, task: dict[str, str], attempt: int
    ) -> tuple[TaskStatus, str | None, Meter]:
        """Move the data; return (outcome, error message, meter). Never raises.

        The outcome is the final status, or ``WaitForRetry`` for a transient failure.
        """
        name = task.get("name", "")
        log = self.rt.task_log(self.tid, eid, hold_seconds=LOG_HOLD_SECONDS)
        meter = Meter(self.rt, self.tid, log)
        try:
            ctx = load_context(self.rt, self.tid)
            settings = ctx.plan.get("settings") or {}
            if attempt > 1:  # every attempt's lines stay in the task log, marked apart
                log.info(f"---- attempt {attempt} of {task.get('max_attempts', attempt)} ----")
            log.info(f"Task {name} (id {self.tid}) attempt {attempt} started on {worker_info()}")
            log.info(f"Reading from {ctx.source.describe()} options={dict(ctx.source.options)}")
            log.info(
                f"Writing to {ctx.sink.describe()} writeMode="
                f"{ctx.sink.options.get('writeMode', 'append')} options={dict(ctx.sink.options)}"
            )
            limits = {k: v for k, v in settings.items() if v} or "none"
            batch = self._batch_size_for(ctx.source, settings)
            log.info(f"Limits: {limits}; batch size {batch}")
            try:
                columns = self._move(eid, ctx, settings, meter, log)
            except BulkRowRefusedError as exc:
                log.warn(
                    f"{exc.message}; the sink was rolled back and the transfer starts again with "
                    "row-level reads and writes, which name the row at fault"
                )
                meter.reset()
                ctx = replace(
                    ctx,
                    source=replace(ctx.source, options={**ctx.source.options, "bulk": False}),
                    sink=replace(ctx.sink, options={**ctx.sink.options, "bulk": False}),
                )
                columns = self._move(eid, ctx, settings, meter, log)
            if ctx.target is not None:
                self._publish_stage(eid, ctx, ctx.target, columns, meter, log)
            meter.publish(force=True)
            log.info(
                f"Task {name} succeeded: read {meter.read} records, wrote {meter.written}, "
                f"errors {meter.errors}, {meter.bytes} bytes in "
                f"{time.monotonic() - meter.started:.1f}s"
            )
            return TaskStatus.SUCCESS, None, meter
        except Committed as done:
            meter.read = meter.written = done.rows
            log.warn(
                f"Task {name}: the sink's ledger says an earlier attempt committed this run's "
                f"{done.rows} rows (its outcome was unknown): nothing is written again"
            )
            return TaskStatus.SUCCESS, None, meter
        except StopTransfer as stop:
            log.warn(f"Task {name} stopped: {stop.reason}; the sink was rolled back")
            self.lost = stop.lost
            if stop.status is TaskStatus.PAUSED:  # its metrics too: a resume starts afresh
                meter.reset()
            return stop.status, stop.reason, meter
        except FencedOffError as exc:  # a newer attempt owns the task: leave it to that one
            log.warn(f"Task {name} stopped: {exc.message}; the sink was rolled back")
            self.lost = True
            return TaskStatus.UNDEFINED, exc.message, meter
        except RedisError as exc:  # the live state store is gone past store_outage_seconds
            log.error(f"Task {name}: the live-state store failed ({exc}); the sink rolls back")
            return TaskStatus.WAIT_FOR_RETRY, f"live-state store unavailable: {exc}", meter
        except ExchangisError as exc:  # connector and input errors carry safe messages
            transient = isinstance(exc, TransientConnectorError)
            kind = "a transient error" if transient else "an error"
            log.error(f"Task {name} failed with {kind}: {exc.message}; the sink was rolled back")
            outcome = TaskStatus.WAIT_FOR_RETRY if transient else TaskStatus.FAILED
            return outcome, log.mask(exc.message), meter
        except Exception as exc:
            logger.error("task=%s failed: %s", self.tid, log.mask(traceback.format_exc()))
            text = f"{type(exc).__name__}: {exc}"
            if sql_unavailable(exc):  # the metadata database, past store_outage_seconds
                log.error(f"Task {name}: the metadata database failed; the sink was rolled back")
                return TaskStatus.WAIT_FOR_RETRY, log.mask(text), meter
            log.error(f"Task {name} failed: {text}; the sink was rolled back")
            return TaskStatus.FAILED, log.mask(text), meter

    def _publish_stage(
        self,
        eid: str,
        ctx: TaskContext,
        target: Endpoint,
        columns: list[str],
        meter: Meter,
        log: LogWriter,
    ) -> None:
        """Publish this channel's committed stage; the channel that finds every stage in
        replaces the sink table's content with them (see :mod:`exchangis.engine.channels`)."""
        stage = ctx.plan["stage"]
        self._check(eid, meter, 0)
        sink = self.rt.registry.sink(target)
        publish = getattr(sink, "publish_stage", None)
        swap = getattr(sink, "swap_stages", None)
        if publish is None or swap is None:
            raise InvalidInputError(f"{target.type} sinks cannot stage channels")
        publish(stage["work"], stage["done"])
        log.info(f"Stage {stage['done']} of table {target.table} is complete")
        if swap(stage["all"], columns):
            log.info(
                f"Every channel's stage is complete: the content of table {target.table} was "
                f"replaced with the {len(stage['all'])} stages in one transaction"
            )
        else:
            log.info("Other channels are still running: the last one to finish replaces the table")

    def _move(
        self,
        eid: str,
        ctx: TaskContext,
        settings: dict[str, Any],
        meter: Meter,
        log: LogWriter,
    ) -> list[str]:
        """Open the source and the sink, stream every batch, commit; roll back on any error.

        Returns the names of the columns written.
        """
        source: Source | None = None
        sink: Sink | None = None
        try:
            source = self.rt.registry.source(ctx.source)
            sink = self.rt.registry.sink(ctx.sink)
            meter.traffic = {"source_type": source.traffic, "sink_type": sink.traffic}
            if ctx.target is None and ctx.ledger_key:  # a stage is replaced whole: no ledger
                earlier = sink.fence(Fence(ctx.ledger_key, self.claim))
                if earlier is not None:
                    raise Committed(earlier)
            schema = source.open()
            mapping = ColumnMapping(schema, ctx.plan.get("mapping") or [])
            meter.estimate, meter.position = source.estimate(), source.progress()
            yardstick = describe(meter.estimate, meter.position)  # one line: each costs a task
            log.info(f"Columns: {mapping.describe(schema)}; progress follows {yardstick}")
            sink.open(mapping.schema)
            dirty = ErrorRecords(settings, log)
            log.info(f"Error records: {dirty.describe()}")
            self._loop(eid, source, sink, mapping, meter, settings, dirty)
            dirty.finish(meter.read)
            self._check(eid, meter, 0)
            sink.commit()
            return list(mapping.schema.names)
        except BaseException:
            self._rollback(sink, log)
            raise
        finally:
            for end in (source, sink):
                if end is not None:
                    try:
                        end.close()
                    except Exception:
                        logger.warning("close failed task=%s", self.tid, exc_info=True)

    def _store_log(self, log: LogWriter) -> None:
        """Store a task log's held lines and hold no more (a failed store is reported here:
        the status moves all the same)."""
        try:
            log.close()
        except Exception:
            logger.warning("task=%s log lines could not be stored", self.tid, exc_info=True)

    @staticmethod
    def _rollback(sink: Sink | None, log: LogWriter) -> None:
        if sink is None:
            return
        try:
            sink.rollback()
        except Exception as exc:
            log.error(f"rollback failed: {type(exc).__name__}: {exc}")

    def _check(self, eid: str, meter: Meter, timeout: float) -> None:
        control, status, claim = self.store.control_and_status(eid, self.tid)
        if status != TaskStatus.RUNNING or claim != self.claim:
            raise StopTransfer(
                TaskStatus.UNDEFINED,
                f"this attempt is no longer the task's (it is {status or 'gone'} now)",
                lost=True,
            )
        request = control_of(control)
        if request is not Control.NONE:
            raise StopTransfer(CONTROL_OUTCOME[request], f"execution {request} requested")
        if timeout and time.monotonic() - meter.started > timeout:
            raise StopTransfer(TaskStatus.TIMEOUT, f"timed out after {timeout:g}s")

    def _loop(
        self,
        eid: str,
        source: Source,
        sink: Sink,
        mapping: ColumnMapping,
        meter: Meter,
        settings: dict[str, Any],
        dirty: ErrorRecords,
    ) -> None:
        speed = int(settings.get("speed_record") or 0)
        speed_bytes = int(settings.get("speed_byte") or 0)
        timeout = float(settings.get("timeout_seconds") or 0)
        batch_size = self._batch_size_for(source.endpoint, settings)
        if isinstance(sink, WritesBehind):  # it writes a batch while the next one is read
            sink.defer_writes()
        self._check(eid, meter, timeout)
        batches = within_bytes(source.batches(batch_size), BATCH_BYTES)
        for batch in self._paced(batches, meter, speed, speed_bytes):
            meter.read += batch.num_rows
            meter.bytes += batch.nbytes
            meter.written += sink.write(mapping.apply(batch))
            self._take_rejects(sink, meter, dirty)
            meter.position = source.progress()
            self._check(eid, meter, timeout)
            meter.publish()
            if speed or speed_bytes:
                self._throttle(eid, meter, speed, speed_bytes, timeout)
        if isinstance(sink, WritesBehind):
            meter.written += sink.flush()
            self._take_rejects(sink, meter, dirty)
        self._check(eid, meter, timeout)

    @staticmethod
    def _take_rejects(sink: Sink, meter: Meter, dirty: ErrorRecords) -> None:
        """Count and record the rows the sink refused since the last call."""
        rejects = sink.take_rejects()
        if rejects:
            meter.errors += len(rejects)
            dirty.add(rejects)

    def _batch_size_for(self, endpoint: Endpoint, settings: dict[str, Any]) -> int:
        """Return the rows per batch: ``batchSize`` or the default, at most ``PACE_SECONDS`` of
        ``speed_record``."""
        size = int(endpoint.options.get("batchSize") or self.rt.settings.batch_size)
        speed = int(settings.get("speed_record") or 0)
        return max(1, min(size, int(speed * PACE_SECONDS))) if speed else size

    def _pace_for(self, meter: Meter, speed: int, speed_bytes: int) -> Pace:
        if self._pace is None or self._pace.meter is not meter:
            self._pace = Pace(meter, speed, speed_bytes)
        return self._pace

    def _paced(
        self, batches: Iterator[pa.RecordBatch], meter: Meter, speed: int, speed_bytes: int
    ) -> Iterator[pa.RecordBatch]:
        """Yield ``batches``, under speed limits cut into slices of ``PACE_SECONDS`` at most."""
        if not (speed or speed_bytes):
            yield from batches
            return
        pace = self._pace_for(meter, speed, speed_bytes)
        for batch in batches:
            rows = pace.rows_per_batch(batch)
            if batch.num_rows <= rows:
                yield batch
                continue
            for offset in range(0, batch.num_rows, rows):
                yield batch.slice(offset, rows)

    def _throttle(
        self, eid: str, meter: Meter, speed: int, speed_bytes: int, timeout: float
    ) -> None:
        """Sleep until the last batch's deadline under ``speed`` records/s and ``speed_bytes``
        B/s (see :class:`Pace`); check control and publish progress every 0.2 s meanwhile."""
        due = self._pace_for(meter, speed, speed_bytes).charge(time.monotonic())
        while True:
            ahead = due - time.monotonic()
            if ahead <= 0:
                return
            time.sleep(min(ahead, 0.2))
            self._check(eid, meter, timeout)
            meter.publish()
