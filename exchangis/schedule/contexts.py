"""Contexts: one run of a plan each.

A context is made in the transaction that decides its fire (the unique key on plan item and
fire key makes a second one impossible), with its execution id chosen then; it is sent after
the commit (``launch``, which a sweep repeats for any context left unsent: the fixed id makes
a second submission start nothing); it is settled from its execution (``settle``: retries,
then the final status), which anyone may do, any number of times.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from exchangis.db import changed
from exchangis.engine import control
from exchangis.errors import ConflictError, ExchangisError, UnavailableError
from exchangis.models import Context, JobExecution, Plan, PlanItem, TaskExecution, User
from exchangis.runtime import Runtime
from exchangis.schedule import cron
from exchangis.services.access import Caller
from exchangis.services.execution import Launch, cancel, load_execution, submit_execution
from exchangis.state.machine import EXECUTION_FINAL, Control, ExecutionStatus

logger = logging.getLogger(__name__)

ENTITY_GROUP = "DB_BATCH_SYNC"
"""The seed's "data batch sync": a plan's entity is one of our jobs."""

PENDING, RUNNING, SKIPPED = "PENDING", "RUNNING", "SKIPPED"
SUCCESSFUL, FAILED, CANCELLED = "SUCCESSFUL", "FAILED", "CANCELLED"
JOB_STATUS = {
    ExecutionStatus.INITED: PENDING,
    ExecutionStatus.SCHEDULED: PENDING,
    ExecutionStatus.RUNNING: RUNNING,
    ExecutionStatus.WAIT_FOR_RETRY: RUNNING,
    ExecutionStatus.PAUSED: RUNNING,
    ExecutionStatus.SUCCESS: SUCCESSFUL,
    ExecutionStatus.PARTIAL_SUCCESS: FAILED,
    ExecutionStatus.FAILED: FAILED,
    ExecutionStatus.TIMEOUT: FAILED,
    ExecutionStatus.UNDEFINED: FAILED,
    ExecutionStatus.CANCELLED: CANCELLED,
}
"""The seed's job status of an execution status (Partial_Success: some rows did not move)."""
RETRIED = frozenset(s for s, job in JOB_STATUS.items() if job == FAILED)
"""Final statuses that ``retryTimes`` runs again (a kill is never retried)."""

UNSENT_PATIENCE = 600
"""Seconds a context whose run could not be submitted (a store or a worker away) is sent
again by the sweep before it ends FAILED."""


def clock(rt: Runtime) -> datetime:
    """Return the scheduler's one clock (the Redis server's), as a naive UTC time."""
    return datetime.fromtimestamp(rt.store.clock(), UTC).replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    """Return a naive UTC time from the database as an aware one."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def naive(moment: datetime) -> datetime:
    """Return an aware time as the naive UTC time the database stores."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def zone_name(rt: Runtime, name: str | None) -> str:
    """Return the zone an item's times are in: its own, else the server's."""
    return name or rt.settings.timezone


def zone_of(rt: Runtime, name: str | None) -> tzinfo:
    """Return the zone of an item's ``timeZone`` (the server's when it names none)."""
    return cron.parse_zone(zone_name(rt, name))


def first_fire(rt: Runtime, item: PlanItem, after: datetime) -> datetime | None:
    """Return the first fire (UTC, naive) of a cron item strictly after ``after``."""
    if item.trigger_type != "CRON_JOB" or not item.cron_desc:
        return None
    fire = cron.parse(item.cron_desc).next_fire(aware(after), zone_of(rt, item.time_zone))
    return naive(fire.at) if fire else None


def item_json(item: PlanItem) -> dict[str, Any]:
    """Return an item as the wire shows it (and as a context keeps it)."""
    return {
        "id": item.id,
        "planId": item.plan_id,
        "triggerType": item.trigger_type,
        "cronDesc": item.cron_desc,
        "cronType": item.cron_type,
        "timeZone": item.time_zone,
        "triggerByJobs": item.trigger_by_jobs,
        "misfirePolicy": item.misfire_policy,
        "concurrencyPolicy": item.concurrency_policy,
    }


def new_context(
    rt: Runtime,
    plan: Plan,
    item: PlanItem,
    fire_key: str,
    scheduled_at: datetime,
    **fields: Any,
) -> Context:
    """Return a context of ``item`` (not added to any session): a run unless a
    ``skip_reason`` is given. ``origin`` defaults to its own execution."""
    reason = fields.pop("skip_reason", None)
    eid = str(uuid.uuid4())
    fields.setdefault("origin", eid)
    fields.setdefault("triggered_by", {"type": item.trigger_type})
    fields.setdefault("time_zone", zone_name(rt, item.time_zone))
    context = Context(
        plan_id=plan.id,
        plan_item_id=item.id,
        fire_key=fire_key,
        plan_item=item_json(item),
        trigger_type=item.trigger_type,
        job_id=plan.job_id,
        scheduled_at=scheduled_at,
        exec_detail=dict(plan.exec_detail or {}),
        job_execution_id=eid,
        attempt=1,
        sent=False,
        final=False,
        job_status=PENDING,
        created_by=plan.created_by,
        notify_tries=0,
        **fields,
    )
    if reason:
        skip(rt, plan, context, reason)
    return context


HOLD_LIMITS = (
    "SET LOCAL lock_timeout = '5s'",
    "SET LOCAL idle_in_transaction_session_timeout = '30s'",
)
"""PostgreSQL: a scheduler waits at most 5 s for a plan's row (then tries next tick), and one
stopped (SIGSTOP, a VM pause) while holding it loses its session after 30 s, so the others go
on; its own commit then fails and fires nothing."""


def take_plan(session: Session, plan_id: int) -> Plan | None:
    """Take the plan's row for this transaction (its first write: PostgreSQL locks the row,
    SQLite the database), then read it: an edit or another scheduler's fire of the same plan
    waits for this one, or this one for it.

    Raises:
        OperationalError: the row stayed taken for 5 s (PostgreSQL).
    """
    if session.get_bind().dialect.name == "postgresql":
        for statement in HOLD_LIMITS:
            session.execute(text(statement))
    session.execute(update(Plan).where(Plan.id == plan_id).values(version=Plan.version))
    return session.get(Plan, plan_id)


def skip(rt: Runtime, plan: Plan, context: Context, reason: str) -> None:
    """Turn a new run (not added yet) into the record of a skip for ``reason``."""
    _close(rt, plan, context, SKIPPED, reason, None)
    context.job_execution_id = None


def _close(
    rt: Runtime,
    plan: Plan,
    context: Context,
    job_status: str,
    reason: str | None,
    error: str | None,
) -> None:
    """End a context that never ran: skipped for ``reason``, or failed with ``error``."""
    context.final = True
    context.job_status = job_status
    context.skip_reason = reason
    context.error = error
    context.stop_at = clock(rt)
    context.notify_state = _owed(plan, job_status)


def run_once(rt: Runtime, session: Session, plan: Plan, item: PlanItem, user: str) -> Context:
    """Add a context that runs ``item`` (a ONCE item) now, or records that a disabled plan
    skipped it; the caller commits, then calls :func:`launch`."""
    now = clock(rt)
    disabled = {} if plan.enabled else {"skip_reason": "DISABLED"}
    context = new_context(
        rt,
        plan,
        item,
        f"once:{uuid.uuid4()}",
        now,
        triggered_by={"type": "ONCE", "user": user},
        window_start=None,
        window_end=now,
        **disabled,
    )
    session.add(context)
    session.flush()
    return context


def _owed(plan: Plan, job_status: str) -> str | None:
    """Return PENDING when the plan's webhook wants to hear of a context ending so."""
    notify = plan.notify or {}
    wanted = notify.get("on") or [FAILED]
    return "PENDING" if notify.get("url") and job_status in wanted else None


def busy(session: Session, plan_id: int, before: int | None = None) -> list[Context]:
    """Return the plan's runs that are not final (those made before context ``before``)."""
    stmt = select(Context).where(
        Context.plan_id == plan_id, Context.final.is_(False), Context.skip_reason.is_(None)
    )
    if before is not None:
        stmt = stmt.where(Context.id < before)
    running = []
    for context in session.scalars(stmt.order_by(Context.id)):
        row = session.execute(
            select(JobExecution.status, JobExecution.control).where(
                JobExecution.id == context.job_execution_id
            )
        ).first()
        if row is None or row.status not in EXECUTION_FINAL or _retried(context, *row):
            running.append(context)
    return running


def _retried(context: Context, status: str, control_request: str | None) -> bool:
    """Return whether a context whose execution ended ``status`` runs it again."""
    killed = control_request == Control.KILL
    return status in RETRIED and not killed and context.attempt <= _retries(context)


def _retries(context: Context) -> int:
    return int((context.exec_detail or {}).get("retryTimes") or 0)


def launch(rt: Runtime, context_id: int) -> None:
    """Send a context's execution unless it was sent (a queued one waits for the plan's earlier
    runs to end). Submitting twice makes one execution: its id was chosen with the context."""
    with rt.sessions() as session:
        context = session.get(Context, context_id)
        if context is None or context.sent or context.final or context.skip_reason:
            return
        if (context.triggered_by or {}).get("queued") and busy(
            session, context.plan_id, context.id
        ):
            return
        plan = session.get(Plan, context.plan_id)
        if plan is None:
            return
        if not plan.enabled:  # disabled after the fire: nothing of it starts any more
            _end_unsent(rt, context_id, None, skip="DISABLED")
            return
        admin = session.scalar(select(User.admin).where(User.name == plan.created_by))
        detail = dict(context.exec_detail or {})
        zone = zone_of(rt, context.time_zone)
        start = context.window_start
        job = Launch(
            eid=str(context.job_execution_id),
            now=aware(context.scheduled_at).astimezone(zone),
            window_start=aware(start).astimezone(zone) if start else None,
            trigger_type=context.trigger_type,
            context_id=context.id,
        )
        job_id, user, created = context.job_id, plan.created_by, context.created_at
    body = {
        "job_params": dict(detail.get("jobParams") or {}),
        "permit_partial_failures": bool(detail.get("permitPartialFailures")),
    }
    try:
        submit_execution(rt, job_id, Caller(user, admin=bool(admin)), body, job)
    except ExchangisError as exc:
        if not _exists(rt, job.eid):  # (one that exists was recorded Failed: settled later)
            error = f"{type(exc).__name__}: {exc.message}"
            transient = isinstance(exc, UnavailableError)
            if transient and clock(rt) - created < timedelta(seconds=UNSENT_PATIENCE):
                logger.warning("context=%s not sent yet (the sweep retries): %s", context_id, error)
                return
            _end_unsent(rt, context_id, error)
            return
    with rt.sessions.begin() as session:
        session.execute(
            update(Context)
            .where(Context.id == context_id, Context.sent.is_(False))
            .values(sent=True, start_at=clock(rt))
        )


def _exists(rt: Runtime, eid: str) -> bool:
    with rt.sessions() as session:
        return session.get(JobExecution, eid) is not None


def _end_unsent(rt: Runtime, context_id: int, error: str | None, skip: str | None = None) -> None:
    """End a context that will not start: FAILED when it could not (its job is gone, its
    plan's creator may no longer run it, its variables do not render, the stores stayed away
    for ``UNSENT_PATIENCE``), or skipped for ``skip``."""
    logger.warning("schedule context=%s does not start: %s", context_id, error or skip)
    with rt.sessions.begin() as session:
        context = session.get(Context, context_id)
        plan = session.get(Plan, context.plan_id) if context else None
        if context is None or plan is None or context.final or context.sent:
            return
        _close(rt, plan, context, SKIPPED if skip else FAILED, skip, error)


SETTLE_LOCK_SECONDS = 120
"""Longest one settler holds a context (a resume it asks for included)."""


def settle(rt: Runtime, context_id: int) -> None:
    """Bring a sent context up to date from its execution: a failed run with retries left runs
    again (the tasks that did not succeed, as a resume does); a final one ends the context
    (and owes its webhook). Every scheduler, and a waiting API call, may call it: one at a
    time settles a context (a lock), and every step is a compare-and-set besides."""
    with rt.store.locked(f"settle:{context_id}", SETTLE_LOCK_SECONDS) as held:
        if held:
            _settle(rt, context_id)


def _settle(rt: Runtime, context_id: int) -> None:
    with rt.sessions() as session:
        context = session.get(Context, context_id)
        if context is None or context.final or not context.sent:
            return
        execution = session.get(JobExecution, context.job_execution_id)
        if execution is None:  # deleted by a user while it ran
            _finish(rt, context_id, CANCELLED, None, "its execution was deleted")
            return
        status, attempt = execution.status, context.attempt
        if status not in EXECUTION_FINAL:
            _note_progress(rt, context, status)
            return
        retry = status in RETRIED and execution.control != Control.KILL
        again = _retried(context, status, execution.control)
        runs = session.scalar(
            select(func.max(TaskExecution.run)).where(TaskExecution.execution_id == execution.id)
        )
        error = execution.error
    if (again or (retry and int(runs or 1) < attempt)) and _retry(rt, context, int(runs or 1)):
        return  # (or a retry asked but never started, asked again)
    _finish(rt, context_id, JOB_STATUS[ExecutionStatus(status)], status, error)


def _note_progress(rt: Runtime, context: Context, status: str) -> None:
    """Record a running context's status (lists filter on the recorded one)."""
    job_status = JOB_STATUS[ExecutionStatus(status)]
    if (context.job_status, context.execution_status) == (job_status, status):
        return
    with rt.sessions.begin() as session:
        session.execute(
            update(Context)
            .where(Context.id == context.id, Context.final.is_(False))
            .values(job_status=job_status, execution_status=status)
        )


def _retry(rt: Runtime, context: Context, runs: int) -> bool:
    """Run a failed execution again (its tasks that did not succeed): count the attempt once
    (a compare-and-set on it), then ask; an attempt counted but never started is asked again.
    Return False when there is nothing to run again (every task succeeded: a timeout)."""
    eid = str(context.job_execution_id)
    attempt = context.attempt
    if runs >= context.attempt:
        with rt.sessions.begin() as session:
            changed(
                session.execute(
                    update(Context)
                    .where(Context.id == context.id, Context.attempt == context.attempt)
                    .values(attempt=context.attempt + 1)
                )
            )
        attempt += 1
    reason = f"Schedule retry {attempt - 1} of {_retries(context)}"
    try:
        control.resume(rt, eid, reason)
    except ConflictError as exc:
        logger.info("schedule context=%s: no retry of execution=%s: %s", context.id, eid, exc)
        return False
    logger.info("schedule context=%s: %s of execution=%s", context.id, reason.lower(), eid)
    return True


def _finish(
    rt: Runtime, context_id: int, job_status: str, status: str | None, error: str | None
) -> None:
    """End a context once (a compare-and-set on ``final``), then send the plan's next queued run."""
    with rt.sessions.begin() as session:
        context = session.get(Context, context_id)
        plan = session.get(Plan, context.plan_id) if context else None
        if context is None or plan is None:
            return
        ended = changed(
            session.execute(
                update(Context)
                .where(Context.id == context_id, Context.final.is_(False))
                .values(
                    final=True,
                    job_status=job_status,
                    execution_status=status,
                    error=error,
                    stop_at=clock(rt),
                    notify_state=_owed(plan, job_status),
                )
            )
        )
        queued = session.scalar(
            select(func.min(Context.id)).where(
                Context.plan_id == context.plan_id,
                Context.sent.is_(False),
                Context.final.is_(False),
                Context.skip_reason.is_(None),
            )
        )
    if ended and queued:
        launch(rt, queued)


def view(rt: Runtime, context: Context) -> tuple[str, str | None]:
    """Return a context's (jobStatus, executionStatus) as of now (live while it runs)."""
    if context.final or not context.sent or not context.job_execution_id:
        return context.job_status, context.execution_status
    try:
        execution, _ = load_execution(rt, context.job_execution_id)
    except ExchangisError:
        return context.job_status, context.execution_status
    status = execution["status"]
    job_status = JOB_STATUS.get(ExecutionStatus(status), RUNNING)
    if status in EXECUTION_FINAL and status in RETRIED:  # not settled yet: retried, or ends
        job_status = RUNNING if context.attempt <= _retries(context) else job_status
    return job_status, status


def cancel_plan(rt: Runtime, plan_id: int, user: str) -> int:
    """Kill the plan's unfinished runs (queued ones end CANCELLED unsent); return how many."""
    with rt.sessions() as session:
        open_runs = busy(session, plan_id) + list(
            session.scalars(
                select(Context).where(
                    Context.plan_id == plan_id,
                    Context.final.is_(False),
                    Context.sent.is_(False),
                    Context.skip_reason.is_(None),
                )
            )
        )
    return sum(stop(rt, c, user) for c in {c.id: c for c in open_runs}.values())


def stop(rt: Runtime, context: Context, user: str) -> bool:
    """Stop one run of a plan (a cancel, a REPLACE fire); return whether it was unfinished.

    Not sent yet: it ends CANCELLED unsent. Running: its execution is killed. Ended and
    waiting for its retry: it ends CANCELLED (under the settle lock, so no retry is being
    asked meanwhile)."""
    if not context.sent:
        _cancel_unsent(rt, context.id, user)
        return True
    eid = str(context.job_execution_id)
    with rt.store.locked(f"settle:{context.id}", SETTLE_LOCK_SECONDS, wait_seconds=10) as held:
        try:
            cancel(rt, eid, user)
            return True
        except ExchangisError:
            pass  # ended: before its retry, or for good
        with rt.sessions() as session:
            status = session.scalar(select(JobExecution.status).where(JobExecution.id == eid))
        if not held or status not in EXECUTION_FINAL:
            return False
        _finish(rt, context.id, CANCELLED, status, f"Cancelled by {user} before its retry")
        return True


def _cancel_unsent(rt: Runtime, context_id: int, user: str) -> None:
    with rt.sessions.begin() as session:
        session.execute(
            update(Context)
            .where(Context.id == context_id, Context.sent.is_(False), Context.final.is_(False))
            .values(
                final=True,
                job_status=CANCELLED,
                error=f"Cancelled by {user} before it started",
                stop_at=clock(rt),
            )
        )
