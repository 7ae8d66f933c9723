"""Webhooks: one POST per final context that its plan wants to hear of, retried with backoff.

A context owes its webhook from the moment it is final (after its last retry, never per
attempt): ``notify_state`` PENDING. A scheduler leases the send (``notify_next_at`` moved past
the HTTP timeout, a compare-and-set), posts, and records the outcome on the context. Only hosts
in ``webhook_hosts`` are ever called.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from exchangis.db import changed
from exchangis.models import Context, Plan
from exchangis.runtime import Runtime
from exchangis.schedule.contexts import clock

logger = logging.getLogger(__name__)

BACKOFF = 5.0
"""Seconds before the first resend; each further one waits twice as long (up to 10 min)."""
BACKOFF_CAP = 600.0
PAGE = 50
TICK_BUDGET = 3.0
"""Seconds of webhook sending a tick starts at most (one send may take its whole timeout)."""


def allowed(rt: Runtime, url: str) -> bool:
    """Return whether ``url`` is an http(s) URL on a host of ``webhook_hosts``."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in rt.settings.webhook_hosts


def send_due(rt: Runtime) -> None:
    """Send the webhooks that are owed and due, for up to ``TICK_BUDGET`` seconds (then the
    next tick goes on): a slow receiver must not make cron fires late."""
    deadline = time.monotonic() + TICK_BUDGET
    now = clock(rt)
    with rt.sessions() as session:
        due = list(
            session.scalars(
                select(Context.id)
                .where(
                    Context.notify_state == "PENDING",
                    or_(Context.notify_next_at.is_(None), Context.notify_next_at <= now),
                )
                .order_by(Context.id)
                .limit(PAGE)
            )
        )
    for context_id in due:
        if time.monotonic() > deadline:
            return
        send(rt, context_id)


def _payload(context: Context, plan: Plan) -> dict[str, Any]:
    return {
        "contextId": context.id,
        "planId": plan.id,
        "entityGroup": plan.entity_group,
        "entityKey": plan.entity_key,
        "jobStatus": context.job_status,
        "executionStatus": context.execution_status,
        "jobExecutionId": context.job_execution_id,
        "skipReason": context.skip_reason,
        "scheduledAt": context.scheduled_at.isoformat() + "Z",
        "attempts": context.attempt,
        "error": context.error,
    }


def send(rt: Runtime, context_id: int) -> None:
    """Lease one owed webhook, post it, and record the outcome."""
    now = clock(rt)
    timeout = rt.settings.webhook_timeout_seconds
    with rt.sessions.begin() as session:
        context = session.get(Context, context_id)
        plan = session.get(Plan, context.plan_id) if context else None
        if context is None or plan is None or context.notify_state != "PENDING":
            return
        tries = context.notify_tries + 1
        leased = changed(
            session.execute(
                update(Context)
                .where(
                    Context.id == context_id,
                    Context.notify_tries == tries - 1,
                    Context.notify_state == "PENDING",
                )
                .values(
                    notify_tries=tries,
                    notify_next_at=now + timedelta(seconds=timeout + 30),
                )
            )
        )
        if not leased:
            return  # another scheduler sends it
        url = str((plan.notify or {}).get("url") or "")
        body = json.dumps(_payload(context, plan)).encode()
    outcome = _post(rt, url, body, timeout)
    record: dict[str, Any] = {"at": now.isoformat() + "Z", "try": tries, **outcome}
    ok = 200 <= int(outcome.get("status") or 0) < 300
    given_up = not ok and (tries >= rt.settings.webhook_max_tries or outcome.get("refused"))
    wait = min(BACKOFF * 2 ** (tries - 1), BACKOFF_CAP)
    with rt.sessions.begin() as session:
        context = session.get(Context, context_id)
        if context is None:
            return
        context.notifications = [*(context.notifications or []), record]
        context.notify_state = "SENT" if ok else "FAILED" if given_up else "PENDING"
        context.notify_next_at = None if ok or given_up else now + timedelta(seconds=wait)
    logger.info("webhook of context=%s: %s", context_id, record)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, never followed: it could lead off the allowed hosts."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(rt: Runtime, url: str, body: bytes, timeout: float) -> dict[str, Any]:
    """POST ``body``; return ``{status}`` or ``{error}`` (``refused``: never to be sent)."""
    if not allowed(rt, url):
        return {"error": f"the host of {url[:200]} is not in webhook_hosts", "refused": True}
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return {"status": response.status}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code}
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
