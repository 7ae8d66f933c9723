"""Plans (schedules) of jobs: create, read, change, enable, cancel, list, preview.

A plan is changed in one transaction that first takes its row (as the scheduler does), bumps
its ``version`` and recomputes the next fires it moved: a scheduler that read the plan before
fires nothing of its old state. ONCE items run in the same transaction that saves them; their
executions are sent after the commit. The plans' runs (contexts) are read in
``services.context``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from exchangis.errors import ExchangisError, InvalidInputError, NotFoundError
from exchangis.models import Context, Job, Plan, PlanItem
from exchangis.runtime import Runtime
from exchangis.schedule import contexts, cron, notify
from exchangis.schedule.contexts import ENTITY_GROUP, aware, clock
from exchangis.services.access import Caller, Privilege, fetch, privileges, require
from exchangis.services.context import named_users, run_json, shared_filters, wait_final
from exchangis.services.execution import check_plain_values

logger = logging.getLogger(__name__)

NEVER_RAN = "NONE"
"""A plan's ``jobStatus`` before its first context."""


# -- checks -------------------------------------------------------------------------------------
def _job_id(key: str, field: str) -> int:
    if not key.isdigit() or int(key) > 2**31 - 1:
        raise InvalidInputError.of(field, "must be a job id (digits)")
    return int(key)


def _check_zone(name: str | None, field: str) -> None:
    if name:
        try:
            cron.parse_zone(name)
        except cron.CronError as exc:
            raise InvalidInputError.of(field, str(exc)) from None


def _check_upstreams(
    session: Session, caller: Caller, jobs: Sequence[Mapping[str, Any]], field: str
) -> list[dict[str, Any]]:
    """Return ``triggerByJobs`` as stored; every job must exist and be viewable."""
    seen: set[int] = set()
    stored = []
    for k, upstream in enumerate(jobs):
        where = f"{field}[{k}].entityKey"
        job_id = _job_id(upstream["entity_key"], where)
        job = session.get(Job, job_id)
        if job is None or Privilege.VIEW not in privileges(session, caller, job.project_name):
            raise InvalidInputError.of(where, f"job {job_id} does not exist")
        if job_id in seen:
            raise InvalidInputError.of(where, f"job {job_id} is listed twice")
        seen.add(job_id)
        stored.append(
            {
                "entityGroup": upstream["entity_group"],
                "entityKey": str(job_id),
                "statuses": list(upstream["statuses"]),
            }
        )
    return stored


def _checked_items(
    rt: Runtime,
    session: Session,
    caller: Caller,
    items: Sequence[Mapping[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Return the items as stored (cron expressions parsed, upstream jobs checked).

    Raises:
        InvalidInputError: naming ``planItems[i].<field>`` and the rule.
    """
    checked = []
    for i, item in enumerate(items):
        where = f"planItems[{i}]"
        _check_zone(item.get("time_zone"), f"{where}.timeZone")
        if item["trigger_type"] == "CRON_JOB":
            try:
                cron.parse(item["cron_desc"], now=aware(now))
            except cron.CronError as exc:
                part = "timeZone" if exc.part == "timeZone" else "cronDesc"
                raise InvalidInputError.of(f"{where}.{part}", str(exc)) from None
        upstreams = None
        if item["trigger_type"] == "DEPENDENCY":
            upstreams = _check_upstreams(
                session, caller, item["trigger_by_jobs"], f"{where}.triggerByJobs"
            )
        checked.append({**item, "trigger_by_jobs": upstreams})
    return checked


def check_cycles(
    session: Session, job_id: int, items: Sequence[Mapping[str, Any]], plan_id: int | None
) -> None:
    """Refuse items whose dependencies would close a cycle of jobs (a self-loop included).

    A DEPENDENCY item of a plan on job J listing job U is the edge U → J. Every other plan's
    items count (enabled or not: a plan may be enabled later), and this plan's new ones.

    Raises:
        InvalidInputError: naming ``planItems[i].triggerByJobs`` and the cycle.
    """
    edges: dict[int, set[int]] = {}
    rows = session.execute(
        select(Plan.job_id, PlanItem.trigger_by_jobs)
        .join(PlanItem, PlanItem.plan_id == Plan.id)
        .where(PlanItem.trigger_type == "DEPENDENCY", Plan.id != (plan_id or 0))
    )
    for downstream, upstreams in rows:
        for upstream in upstreams or []:
            edges.setdefault(int(upstream["entityKey"]), set()).add(int(downstream))
    # reach: every job that runs after job_id, with the job it was reached from
    reached: dict[int, int] = {}
    queue = deque([job_id])
    while queue:
        current = queue.popleft()
        for after in edges.get(current, ()):
            if after not in reached and after != job_id:
                reached[after] = current
                queue.append(after)
    for i, item in enumerate(items):
        for upstream in item.get("trigger_by_jobs") or []:
            up = int(upstream["entityKey"])
            if up == job_id:
                message = f"job {job_id} cannot depend on itself"
            elif up in reached:
                path = [up]
                while path[-1] != job_id:
                    path.append(reached[path[-1]])
                chain = " → ".join(str(j) for j in reversed(path))
                message = (
                    f"job {up} runs after job {job_id} already ({chain}): depending on it "
                    "would make a cycle"
                )
            else:
                continue
            raise InvalidInputError.of(f"planItems[{i}].triggerByJobs", message)


def _check_notify(rt: Runtime, wanted: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if wanted is None:
        return None
    if not notify.allowed(rt, wanted["url"]):
        hosts = ", ".join(rt.settings.webhook_hosts) or "none: webhooks are off"
        raise InvalidInputError.of(
            "notify.url", f"the host is not one webhooks may call (webhook_hosts: {hosts})"
        )
    return {"url": wanted["url"], "on": list(wanted["on"])}


def _check_params(session: Session, caller: Caller, job: Job, params: Mapping[str, Any]) -> None:
    """Without edit on the job's project, a plan's runs pass only plain values (as a run does)."""
    if Privilege.EDIT in privileges(session, caller, job.project_name):
        return
    try:
        check_plain_values(params, job.project_name)
    except InvalidInputError as exc:
        field, problems = next(iter((exc.errors or {"jobParams": [exc.message]}).items()))
        raise InvalidInputError.of(f"execDetail.{field}", problems[0]) from None


# -- items: new, changed, and their next fires ------------------------------------------------
def _new_item(data: Mapping[str, Any], now: datetime) -> PlanItem:
    return PlanItem(
        trigger_type=data["trigger_type"],
        cron_desc=data["cron_desc"],
        cron_type=data["cron_type"],
        time_zone=data["time_zone"],
        trigger_by_jobs=data["trigger_by_jobs"],
        misfire_policy=data["misfire_policy"],
        concurrency_policy=data["concurrency_policy"],
        created_at=now,
        updated_at=now,
    )


def _change_item(item: PlanItem, data: Mapping[str, Any], now: datetime) -> bool:
    """Apply ``data`` to a kept item; return whether its firing changed (type, expression,
    zone or upstream jobs)."""
    firing = (item.trigger_type, item.cron_desc, item.time_zone, item.trigger_by_jobs)
    new = (data["trigger_type"], data["cron_desc"], data["time_zone"], data["trigger_by_jobs"])
    rest = (item.cron_type, item.misfire_policy, item.concurrency_policy)
    wanted = (data["cron_type"], data["misfire_policy"], data["concurrency_policy"])
    if firing == new and rest == wanted:
        return False
    item.trigger_type, item.cron_desc, item.time_zone, item.trigger_by_jobs = new
    item.cron_type, item.misfire_policy, item.concurrency_policy = wanted
    item.updated_at = now
    return firing != new


def _rearm(rt: Runtime, plan: Plan, items: Sequence[PlanItem], now: datetime) -> None:
    """Start the items' firing afresh from ``now``: a cron item's next fire (none while the
    plan is disabled), a dependency item's cursor (no upstream run before now triggers it)."""
    for item in items:
        cron_item = item.trigger_type == "CRON_JOB" and plan.enabled
        item.next_fire_at = contexts.first_fire(rt, item, now) if cron_item else None
        item.cursor = now if item.trigger_type == "DEPENDENCY" else None
        item.updated_at = now  # armed now: upstream runs that ended before do not trigger it


def _take(session: Session, caller: Caller, plan_id: int, privilege: Privilege) -> Plan:
    """Take the plan's row for this transaction (its first statement, a write, as the
    scheduler's; PostgreSQL locks the row, SQLite the database) and check the caller."""
    contexts.take_plan(session, plan_id)
    return _plan(session, caller, plan_id, privilege)


def _plan(session: Session, caller: Caller, plan_id: int, privilege: Privilege) -> Plan:
    """Return plan ``plan_id`` if the caller holds ``privilege`` on its job's project.

    Raises:
        NotFoundError: no such plan, or one the caller may not view. ForbiddenError: the
        caller may view it but lacks ``privilege``.
    """
    plan = session.get(Plan, plan_id)
    job = session.get(Job, plan.job_id) if plan is not None else None
    if plan is None or job is None:
        raise NotFoundError(f"schedule {plan_id} does not exist")
    require(session, caller, job.project_name, privilege, f"schedule {plan_id}")
    return plan


def _launch(rt: Runtime, context_ids: Sequence[int]) -> None:
    """Send the contexts' executions; one that cannot be sent now is sent by a scheduler's
    sweep (the plan is saved: the call must not look as if it failed)."""
    for context_id in context_ids:
        try:
            contexts.launch(rt, context_id)
        except (RedisError, SQLAlchemyError, ExchangisError) as exc:
            logger.warning("schedule context=%s not sent yet: %s", context_id, exc)


# -- plans --------------------------------------------------------------------------------------
def create_plan(rt: Runtime, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """Save a plan of a job (execute on its project needed); run its ONCE items now, and with
    ``sync`` wait (``syncTimeoutSeconds`` at most) until the last of them is final.

    Raises:
        NotFoundError: no such job (or one the caller may not view). ForbiddenError: no
        execute on its project. InvalidInputError: naming the field.
    """
    job_id = _job_id(body["entity_key"], "entityKey")
    detail = body["exec_detail"]
    with rt.sessions.begin() as session:
        job = fetch(session, caller, Job, job_id, Privilege.EXECUTE)
        _check_params(session, caller, job, detail["job_params"])
        wanted = _check_notify(rt, body.get("notify"))
        now = clock(rt)
        data = _checked_items(rt, session, caller, body["plan_items"], now)
        check_cycles(session, job_id, data, None)
        plan = Plan(
            entity_group=ENTITY_GROUP,
            entity_key=str(job_id),
            job_id=job_id,
            enabled=body["enabled"],
            exec_detail={
                "jobParams": dict(detail["job_params"]),
                "retryTimes": detail["retry_times"],
                "permitPartialFailures": detail["permit_partial_failures"],
            },
            notify=wanted,
            version=1,
            created_at=now,
            created_by=caller.name,
            updated_at=now,
            updated_by=caller.name,
            items=[_new_item(d, now) for d in data],
        )
        session.add(plan)
        session.flush()
        _rearm(rt, plan, plan.items, now)
        once = [i for i in plan.items if i.trigger_type == "ONCE"]
        made = [contexts.run_once(rt, session, plan, item, caller.name).id for item in once]
        plan_id = plan.id
    _launch(rt, made)
    if made and body["sync"]:
        try:
            wait_final(rt, made[-1], body["sync_timeout_seconds"])
        except (RedisError, SQLAlchemyError) as exc:  # the plan is saved: answer it
            logger.warning("schedule=%s: stopped waiting for its run: %s", plan_id, exc)
    return get_plan(rt, caller, plan_id)


def get_plan(rt: Runtime, caller: Caller, plan_id: int) -> dict[str, Any]:
    """Return a plan the caller may view."""
    with rt.sessions() as session:
        plan = _plan(session, caller, plan_id, Privilege.VIEW)
        return _plans_json(rt, session, [plan])[0]


def update_plan(
    rt: Runtime, caller: Caller, plan_id: int, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Replace a plan's items (and/or enable or disable it).

    Items sent with their ``id`` keep their row and history; the others are new; items not
    sent are deleted. Cron items whose expression or zone changed (and new ones) fire from now.

    Raises:
        InvalidInputError: naming the field (an ``id`` of another plan's item included).
    """
    with rt.sessions.begin() as session:
        plan = _take(session, caller, plan_id, Privilege.EXECUTE)
        now = clock(rt)
        was_enabled = plan.enabled
        plan.enabled = body.get("enabled", plan.enabled)
        rearm: list[PlanItem] = []
        once: list[PlanItem] = []
        if "plan_items" in body:
            sent = body["plan_items"] or []
            data = _checked_items(rt, session, caller, sent, now)
            check_cycles(session, plan.job_id, data, plan.id)
            current = {item.id: item for item in plan.items}
            items: list[PlanItem] = []
            for i, wanted in enumerate(data):
                if wanted.get("plan_id") not in (None, plan.id):
                    message = f"the item belongs to schedule {wanted['plan_id']}, not {plan.id}"
                    raise InvalidInputError.of(f"planItems[{i}].planId", message)
                item = current.pop(wanted["id"], None) if wanted["id"] is not None else None
                if wanted["id"] is not None and item is None:
                    message = f"{wanted['id']} is not the id of an item of schedule {plan.id}"
                    if any(kept.id == wanted["id"] for kept in items):
                        message = f"item {wanted['id']} is sent twice"
                    raise InvalidInputError.of(f"planItems[{i}].id", message)
                if item is None:
                    item = _new_item(wanted, now)
                    rearm.append(item)
                    once += [item] if item.trigger_type == "ONCE" else []
                else:
                    was_once = item.trigger_type == "ONCE"
                    if _change_item(item, wanted, now):
                        rearm.append(item)
                        once += [item] if item.trigger_type == "ONCE" and not was_once else []
                items.append(item)
            plan.items = items  # the ones not sent are deleted (their contexts stay)
        plan.version += 1
        plan.updated_at = now
        plan.updated_by = caller.name
        session.flush()
        _rearm(rt, plan, plan.items if plan.enabled != was_enabled else rearm, now)
        made = [contexts.run_once(rt, session, plan, item, caller.name).id for item in once]
    _launch(rt, made)
    return get_plan(rt, caller, plan_id)


def set_enabled(rt: Runtime, caller: Caller, plan_id: int, enabled: bool) -> dict[str, Any]:
    """Enable or disable a plan. Enabled, its items fire from now on (no catch-up of the time
    it was disabled); disabled, nothing fires. A plan already so is left as it is."""
    with rt.sessions.begin() as session:
        plan = _take(session, caller, plan_id, Privilege.EXECUTE)
        if plan.enabled != enabled:
            now = clock(rt)
            plan.enabled = enabled
            plan.version += 1
            plan.updated_at = now
            plan.updated_by = caller.name
            _rearm(rt, plan, plan.items, now)
    return get_plan(rt, caller, plan_id)


def delete_plan(rt: Runtime, caller: Caller, plan_id: int) -> dict[str, Any]:
    """Delete a plan with its items and contexts; runs still going go on as executions."""
    with rt.sessions.begin() as session:
        plan = _take(session, caller, plan_id, Privilege.EXECUTE)
        session.delete(plan)
    return {"id": plan_id}


def cancel_plan(rt: Runtime, caller: Caller, plan_id: int) -> dict[str, Any]:
    """Kill the plan's unfinished runs (queued ones end CANCELLED unsent)."""
    with rt.sessions() as session:
        _plan(session, caller, plan_id, Privilege.EXECUTE)
    return {"cancelled": contexts.cancel_plan(rt, plan_id, caller.name)}


def cancel_job_plans(rt: Runtime, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """Kill the unfinished runs of every plan of a job (execute on its project needed)."""
    job_id = _job_id(body["entity_key"], "entityKey")
    with rt.sessions() as session:
        fetch(session, caller, Job, job_id, Privilege.EXECUTE)
        plan_ids = list(session.scalars(select(Plan.id).where(Plan.job_id == job_id)))
    return {"cancelled": sum(contexts.cancel_plan(rt, p, caller.name) for p in plan_ids)}


# -- plan lists ---------------------------------------------------------------------------------
def _last_status() -> Any:
    """The status of each plan's last context (NONE when it has none), as an SQL expression."""
    last = (
        select(Context.job_status)
        .where(Context.plan_id == Plan.id)
        .order_by(Context.id.desc())
        .limit(1)
        .correlate(Plan)
        .scalar_subquery()
    )
    return func.coalesce(last, NEVER_RAN)


def _plan_filters(session: Session, caller: Caller, query: Mapping[str, Any]) -> list[Any]:
    where = shared_filters(session, caller, query)
    if query.get("job_status_list"):
        where.append(_last_status().in_(query["job_status_list"]))
    return where


def _plans(session: Session, caller: Caller, query: Mapping[str, Any]) -> Select[Any]:
    return (
        select(Plan).join(Job, Job.id == Plan.job_id).where(*_plan_filters(session, caller, query))
    )


def list_plans(rt: Runtime, caller: Caller, query: Mapping[str, Any]) -> dict[str, Any]:
    """A page of the plans the caller may view, newest first."""
    with rt.sessions() as session:
        stmt = _plans(session, caller, query)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.options(selectinload(Plan.items))
            .order_by(Plan.id.desc())
            .offset(query.get("offset", 0))
            .limit(query.get("limit", 10))
        ).all()
        items = _plans_json(rt, session, list(rows))
    return {"list": items, "total_hits": total, "offset": query.get("offset", 0)}


def plan_users(rt: Runtime, caller: Caller, query: Mapping[str, Any]) -> dict[str, Any]:
    """The users who created the plans the list would show: id and name only."""
    with rt.sessions() as session:
        names = (
            select(Plan.created_by)
            .join(Job, Job.id == Plan.job_id)
            .where(*_plan_filters(session, caller, query))
            .distinct()
        )
        return {"list": named_users(session, names)}


def _plans_json(rt: Runtime, session: Session, plans: list[Plan]) -> list[dict[str, Any]]:
    """Return plans as answered (with their job and their last run)."""
    if not plans:
        return []
    ids = [plan.id for plan in plans]
    jobs = {
        job.id: job
        for job in session.scalars(select(Job).where(Job.id.in_({p.job_id for p in plans})))
    }
    last_ids = (
        select(func.max(Context.id)).where(Context.plan_id.in_(ids)).group_by(Context.plan_id)
    )
    last = {c.plan_id: c for c in session.scalars(select(Context).where(Context.id.in_(last_ids)))}
    now = clock(rt) if last else None
    return [_plan_json(rt, plan, jobs[plan.job_id], last.get(plan.id), now) for plan in plans]


def _plan_json(
    rt: Runtime, plan: Plan, job: Job, last: Context | None, now: datetime | None
) -> dict[str, Any]:
    crons = [item for item in plan.items if item.trigger_type == "CRON_JOB"]
    frequency = (
        crons[0].cron_type if crons else (plan.items[0].trigger_type if plan.items else None)
    )
    fires = [item.next_fire_at for item in crons if item.next_fire_at is not None]
    run = run_json(rt, last, now) if last is not None and now is not None else {}
    return {
        "id": plan.id,
        "entity_group": plan.entity_group,
        "entity_key": plan.entity_key,
        "title": job.job_name,
        "enabled": plan.enabled,
        "plan_items": plan.items,
        "exec_detail": plan.exec_detail,
        "notify": plan.notify,
        "created_at": plan.created_at,
        "created_by": plan.created_by,
        "updated_at": plan.updated_at,
        "updated_by": plan.updated_by,
        "entity_created_by": job.create_user,
        "entity_created_by_name": job.create_user,
        "exec_frequency": frequency,
        "next_start_at": min(fires) if fires and plan.enabled else None,
        "start_at": run.get("start_at"),
        "stop_at": run.get("stop_at"),
        "job_status": run.get("job_status", NEVER_RAN),
        "cost_time": run.get("cost_time"),
        "context_id": last.id if last is not None else None,
    }


# -- preview -------------------------------------------------------------------------------------
def _start_time(text: str | None, zone: tzinfo) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        message = "must be an ISO 8601 time, e.g. 2026-03-28T12:00:00 or 2026-03-28T12:00:00+01:00"
        raise InvalidInputError.of("startTime", message) from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=zone)


def preview(rt: Runtime, body: Mapping[str, Any]) -> dict[str, Any]:
    """The next ``count`` fires of an expression strictly after ``startTime`` (default now), as
    ISO 8601 local times with their offsets in ``timeZone`` (default the server's zone)."""
    _check_zone(body.get("time_zone"), "timeZone")
    zone = contexts.zone_of(rt, body.get("time_zone"))
    now = aware(clock(rt))
    try:
        expr = cron.parse(body["cron_desc"], now=now)
    except cron.CronError as exc:
        raise InvalidInputError.of("cronDesc", str(exc)) from None
    start = _start_time(body.get("start_time"), zone) or now
    fires = expr.preview(start, zone, body["count"])
    return {"fire_times": [fire.isoformat() for fire in fires]}
