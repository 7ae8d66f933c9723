"""The scheduler: every worker runs one; any number may race, and each fire runs once.

A tick, on the store's clock (the Redis server's, one for every host):

1. **Cron items due** (``next_fire_at`` passed): in one transaction that first takes the plan's
   row (so an edit, a disable or another scheduler waits or is waited for), the item is read
   again; its fires up to now become contexts (runs, or skips: misfire, overlap, DST gap), and
   its ``next_fire_at`` moves past now. The unique key (item, fire key) refuses a second copy
   of any fire, so a scheduler paused past the lock and resumed commits nothing twice.
2. **Dependency items**: upstream runs that ended since the item's cursor become contexts,
   keyed by the run at the head of their chain (a diamond's join runs once per head run).
3. **Settle** every sent, unfinished context from its execution (retries, final status).
4. **Send** contexts left unsent (the process that made them died before sending).
5. **Webhooks** owed by final contexts.

No future fire is held in memory: everything is read from the database each tick. The short
leader lock only saves work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from exchangis import faults
from exchangis.models import Context, JobExecution, Plan, PlanItem, counter
from exchangis.runtime import Runtime
from exchangis.schedule import contexts, cron, notify
from exchangis.schedule.contexts import aware, clock, naive

logger = logging.getLogger(__name__)

PAGE = 200
"""Rows read per query of a pass."""
UNSENT_GRACE = timedelta(seconds=5)
"""A context unsent for this long is sent by the sweep (its maker died, or is slow)."""
DEPENDENCY_LOOKBACK = timedelta(minutes=10)
"""Upstream completions are looked for this far before an item's cursor (their times come
from the hosts that wrote them); the unique key drops the ones seen already."""


def tick(rt: Runtime) -> None:
    """Run one pass (one scheduler at a time does, by a short lock; each step is safe to race)."""
    ttl = max(5, int(rt.settings.scheduler_tick_seconds * 5))
    with rt.store.locked("scheduler", ttl) as held:
        if not held:
            return
        now = clock(rt)
        for item_id, plan_id in _step("due", _due_items, rt, now) or []:
            _step(f"fire item {item_id}", fire_item, rt, plan_id, item_id, now)
        for item_id, plan_id in _step("dependencies", _dependency_items, rt) or []:
            _step(f"dependency item {item_id}", trigger_item, rt, plan_id, item_id, now)
        for context_id in _step("open", _open_contexts, rt) or []:
            _step(f"settle context {context_id}", contexts.settle, rt, context_id)
        for context_id in _step("unsent", _unsent_contexts, rt, now) or []:
            _step(f"send context {context_id}", contexts.launch, rt, context_id)
        _step("webhooks", notify.send_due, rt)


def _step(name: str, action: Callable[..., Any], *args: Any) -> Any:
    """Run one step of a tick; a failure is logged and the tick goes on (the next tries again)."""
    try:
        return action(*args)
    except Exception:
        logger.exception("scheduler step %s failed; the next tick tries again", name)
        return None


def _due_items(rt: Runtime, now: datetime) -> list[tuple[int, int]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(PlanItem.id, PlanItem.plan_id)
            .join(Plan, Plan.id == PlanItem.plan_id)
            .where(
                Plan.enabled.is_(True),
                PlanItem.trigger_type == "CRON_JOB",
                PlanItem.next_fire_at <= now,
            )
            .order_by(PlanItem.next_fire_at)
            .limit(PAGE)
        )
        return [(int(i), int(p)) for i, p in rows]


def _dependency_items(rt: Runtime) -> list[tuple[int, int]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(PlanItem.id, PlanItem.plan_id)
            .join(Plan, Plan.id == PlanItem.plan_id)
            .where(Plan.enabled.is_(True), PlanItem.trigger_type == "DEPENDENCY")
        )
        return [(int(i), int(p)) for i, p in rows]


def _open_contexts(rt: Runtime) -> list[int]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Context.id)
                .where(Context.final.is_(False), Context.sent.is_(True))
                .order_by(Context.id)
                .limit(PAGE * 5)
            )
        )


def _unsent_contexts(rt: Runtime, now: datetime) -> list[int]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(Context.id)
                .where(
                    Context.final.is_(False),
                    Context.sent.is_(False),
                    Context.skip_reason.is_(None),
                    Context.created_at <= now - UNSENT_GRACE,
                )
                .order_by(Context.id)
                .limit(PAGE)
            )
        )


# -- cron items ---------------------------------------------------------------------------------
@dataclass
class Due:
    """A fire to record: a run, or a skip with its reason."""

    at: datetime
    """UTC, aware."""
    skip: str | None = None
    missed: int = 0
    """For the one run FIRE_ONCE_NOW makes of several missed fires: how many."""
    catch_up: bool = False
    """A missed fire CATCH_UP_ALL runs: under FORBID it waits its turn, never skipped."""


def _fires(expr: cron.CronExpr, item: PlanItem, rt: Runtime, now: datetime) -> Iterator[Any]:
    """Yield the item's fires from its next fire up to ``now`` (aware UTC)."""
    assert item.next_fire_at is not None
    start = aware(item.next_fire_at) - timedelta(microseconds=1)
    for fire in expr.fires(start, contexts.zone_of(rt, item.time_zone)):
        if fire.at > aware(now):
            return
        yield fire


def plan_fires(rt: Runtime, item: PlanItem, now: datetime) -> list[Due]:
    """Return what the item's fires up to ``now`` make, by its misfire policy: a fire later
    than ``misfire_threshold_seconds`` is missed."""
    assert item.cron_desc is not None
    expr = cron.parse(item.cron_desc)
    threshold = aware(now) - timedelta(seconds=rt.settings.misfire_threshold_seconds)
    cap = max(1, rt.settings.catch_up_max)
    missed: list[Due] = []
    on_time: list[Due] = []
    count = 0
    for fire in _fires(expr, item, rt, now):
        at = fire.at.astimezone(UTC)  # (times of one zone compare by wall clock, not fold)
        if fire.dst_gap:
            (missed if at < threshold else on_time).append(Due(at, "DST_GAP"))
        elif at >= threshold:
            on_time.append(Due(at))
        else:
            missed.append(Due(at))
            count += 1
            del missed[:-cap]  # the newest ``cap`` missed fires are kept
    runs = [due for due in missed if due.skip is None]
    policy = item.misfire_policy
    if count > cap and policy != "FIRE_ONCE_NOW":
        logger.warning(
            "item=%s missed %s fires: %s takes the newest %s (catch_up_max)",
            item.id,
            count,
            policy,
            cap,
        )
    if policy == "DO_NOTHING":
        kept = [Due(d.at, "MISFIRE") for d in runs]
    elif policy == "CATCH_UP_ALL":
        kept = [Due(d.at, catch_up=True) for d in runs]
    else:  # FIRE_ONCE_NOW: one run, the last missed fire's, covering them all
        kept = [Due(runs[-1].at, missed=count)] if runs else []
    return kept + on_time


def admit(
    rt: Runtime, plan: Plan, new: list[Context], running: list[Context], waits: list[bool]
) -> None:
    """Apply the concurrency policy to a batch of new contexts (in fire order), given the
    plan's unfinished runs. FORBID: a fire while an earlier run is unfinished is skipped
    (OVERLAP), unless it ``waits`` (a catch-up fire); runs of one batch queue behind each other.
    ALLOW and REPLACE: all run at once (REPLACE's caller stops the unfinished ones)."""
    if not new or new[0].plan_item.get("concurrencyPolicy") != "FORBID":
        return
    ahead = bool(running)
    for context, patient in zip(new, waits, strict=True):
        if context.skip_reason:
            continue
        if running and not patient:
            contexts.skip(rt, plan, context, "OVERLAP")
            continue
        if ahead:
            context.triggered_by = {**context.triggered_by, "queued": True}
        ahead = True


def windows(new: list[Context], start: datetime | None) -> datetime | None:
    """Give each run of a batch its window: from the previous run's fire (``start`` for the
    first) to its own; skips and gap markers move nothing, so no data falls between windows.
    Return where the next batch's window starts."""
    for context in new:
        if not context.skip_reason:
            context.window_start = start
            start = context.window_end
    return start


def fire_item(rt: Runtime, plan_id: int, item_id: int, now: datetime) -> None:
    """Turn an item's due fires into contexts and move its next fire past ``now``, in one
    transaction; then send the runs. Another scheduler that did it first makes this a no-op."""
    with rt.sessions() as session:  # the fires are counted outside the transaction
        item = session.get(PlanItem, item_id)
        if item is None or item.next_fire_at is None or item.next_fire_at > now:
            return
        read = (item.next_fire_at, item.last_fire_at, item.updated_at)
        dues = plan_fires(rt, item, now)
        following = contexts.first_fire(rt, item, now)

    def build(_: Session, plan: Plan, item: PlanItem) -> tuple[list[Context], list[bool]] | None:
        if (item.next_fire_at, item.last_fire_at, item.updated_at) != read:
            return None  # edited or fired meanwhile
        item.next_fire_at = following
        return [_context(rt, plan, item, due) for due in dues], [d.catch_up for d in dues]

    _commit(rt, plan_id, item_id, build)


Build = Callable[[Session, Plan, PlanItem], tuple[list[Context], list[bool]] | None]
"""Makes an item's new contexts inside the plan's transaction (and whether each may wait for
the plan's unfinished runs: a catch-up); None: the item changed, nothing to do."""


def _commit(rt: Runtime, plan_id: int, item_id: int, build: Build) -> None:
    """In one transaction that first takes the plan's row: re-read the item, make its new
    contexts, admit them by its concurrency policy, give cron runs their windows, commit; then
    stop what a REPLACE replaces and send the runs. Another scheduler that did it first makes
    this a no-op (the unique key refuses its contexts)."""
    kill: list[Context] = []
    made: list[int] = []
    try:
        with rt.sessions.begin() as session:
            plan = contexts.take_plan(session, plan_id)
            item = session.get(PlanItem, item_id)
            if plan is None or not plan.enabled or item is None or item.plan_id != plan_id:
                return  # deleted, disabled or moved meanwhile
            batch = build(session, plan, item)
            if batch is None:
                return
            new, waits = batch
            running = contexts.busy(session, plan_id)
            admit(rt, plan, new, running, waits)
            if item.concurrency_policy == "REPLACE" and any(not c.skip_reason for c in new):
                kill = running
            if item.trigger_type == "CRON_JOB":
                item.last_fire_at = windows(new, item.last_fire_at)
            session.add_all(new)
            session.flush()
            made = [c.id for c in new if c.skip_reason is None]
            counter.add(session, _fire_counts(item.trigger_type, new))
    except IntegrityError:
        logger.info("item=%s fired by another scheduler", item_id)
        return
    except OperationalError as exc:
        logger.info("item=%s not fired this tick (plan busy or database away): %s", item_id, exc)
        return
    faults.die_at(faults.FIRE_COMMITTED)  # a drill: the sweep sends what this committed
    _start(rt, kill, made)


def _fire_counts(trigger: str, new: list[Context]) -> list[counter.Increment]:
    """Return what a batch of fires counts: its runs by trigger type, its skips by reason."""
    return [
        ("exchangis_scheduler_skips_total", {"reason": c.skip_reason}, 1)
        if c.skip_reason
        else ("exchangis_scheduler_fires_total", {"trigger": trigger}, 1)
        for c in new
    ]


def _start(rt: Runtime, kill: list[Context], made: list[int]) -> None:
    """After the commit: stop the runs a REPLACE fire replaces, then send the new runs."""
    for context in kill:
        contexts.stop(rt, context, "scheduler (REPLACE)")
    for context_id in made:
        contexts.launch(rt, context_id)


def _context(rt: Runtime, plan: Plan, item: PlanItem, due: Due) -> Context:
    """Return the context of one due fire (a run unless the fire is skipped)."""
    triggered: dict[str, Any] = {"type": "CRON_JOB", "fireTime": due.at.isoformat()}
    if due.missed > 1:
        triggered["missedFires"] = due.missed
    return contexts.new_context(
        rt,
        plan,
        item,
        naive(due.at).isoformat(),
        naive(due.at),
        window_end=naive(due.at),
        triggered_by=triggered,
        skip_reason=due.skip,
    )


# -- dependency items ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Upstream:
    """An upstream run that ended: what a dependency run inherits from it."""

    eid: str
    job_id: int
    status: str
    ended: datetime
    origin: str
    scheduled_at: datetime
    window_start: datetime | None
    time_zone: str | None


def _wanted(item: PlanItem) -> dict[int, set[str]]:
    """Return upstream job id → the statuses that trigger the item."""
    wanted: dict[int, set[str]] = {}
    for job in item.trigger_by_jobs or []:
        statuses = job.get("statuses") or ["Success"]
        wanted.setdefault(int(job["entityKey"]), set()).update(statuses)
    return wanted


def _upstreams(session: Session, item: PlanItem, since: datetime) -> list[Upstream]:
    """Return the listed jobs' runs that ended since ``since``: manual executions when final,
    scheduled ones when their context is final (after its retries)."""
    ups = list(_wanted(item).items())  # (statuses are matched in SQL: few rows come back)
    found = []
    manual = session.execute(
        select(JobExecution).where(
            or_(*(and_(JobExecution.job_id == j, JobExecution.status.in_(st)) for j, st in ups)),
            JobExecution.context_id.is_(None),
            JobExecution.completed_time >= since,
        )
    ).scalars()
    for execution in manual:
        found.append(
            Upstream(
                execution.id,
                int(execution.job_id),
                execution.status,
                execution.completed_time or since,
                execution.id,
                execution.create_time,
                None,
                None,
            )
        )
    scheduled = session.execute(
        select(Context).where(
            or_(*(and_(Context.job_id == j, Context.execution_status.in_(st)) for j, st in ups)),
            Context.final.is_(True),
            Context.skip_reason.is_(None),
            Context.stop_at >= since,
        )
    ).scalars()
    for context in scheduled:
        found.append(
            Upstream(
                str(context.job_execution_id),
                context.job_id,
                str(context.execution_status),
                context.stop_at or since,
                context.origin,
                context.scheduled_at,
                context.window_start,
                context.time_zone,
            )
        )
    return sorted(found, key=lambda u: u.ended)


def _new_upstreams(session: Session, item: PlanItem) -> tuple[list[Upstream], datetime]:
    """Return the item's upstream runs not triggered yet (one per head run), and its cursor."""
    cursor = item.cursor or item.created_at
    found = [
        u
        for u in _upstreams(session, item, cursor - DEPENDENCY_LOOKBACK)
        if u.ended >= item.updated_at  # when it was armed (made, edited or enabled)
    ]
    seen = set(
        session.scalars(
            select(Context.fire_key).where(
                Context.plan_item_id == item.id,
                Context.fire_key.in_([f"dep:{u.origin}" for u in found]),
            )
        )
    )
    new = []
    for upstream in found:
        key = f"dep:{upstream.origin}"
        if key not in seen:
            seen.add(key)
            new.append(upstream)
    return new, max([cursor, *(u.ended for u in found)])


def trigger_item(rt: Runtime, plan_id: int, item_id: int, now: datetime) -> None:
    """Turn upstream runs that ended since the item's cursor into contexts (one per head run
    of a chain: the unique key refuses a second), and move the cursor; then send the runs.
    A look without the plan's lock comes first: most ticks find nothing and write nothing."""
    with rt.sessions() as session:
        item = session.get(PlanItem, item_id)
        if item is None or not _new_upstreams(session, item)[0]:
            return

    def build(session: Session, plan: Plan, item: PlanItem) -> tuple[list[Context], list[bool]]:
        found, item.cursor = _new_upstreams(session, item)
        new = [_dependency_context(rt, plan, item, u) for u in found]
        return new, [False] * len(new)

    _commit(rt, plan_id, item_id, build)


def _dependency_context(rt: Runtime, plan: Plan, item: PlanItem, upstream: Upstream) -> Context:
    return contexts.new_context(
        rt,
        plan,
        item,
        f"dep:{upstream.origin}",
        upstream.scheduled_at,
        origin=upstream.origin,
        time_zone=upstream.time_zone or contexts.zone_name(rt, item.time_zone),
        window_start=upstream.window_start,
        window_end=upstream.scheduled_at,
        triggered_by={
            "type": "DEPENDENCY",
            "jobExecutionId": upstream.eid,
            "entityKey": str(upstream.job_id),
            "status": upstream.status,
        },
    )


class Scheduler(threading.Thread):
    """Call :func:`tick` every ``scheduler_tick_seconds`` until stopped (runs in a worker)."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="exchangis-scheduler", daemon=True)
        self.rt = rt
        self.stopped = threading.Event()

    def run(self) -> None:
        """Tick until stopped; errors are logged and the loop goes on."""
        while not self.stopped.wait(self.rt.settings.scheduler_tick_seconds):
            try:
                tick(self.rt)
            except Exception:
                logger.exception("scheduler tick failed")

    def stop(self) -> None:
        """Stop after the current tick."""
        self.stopped.set()
