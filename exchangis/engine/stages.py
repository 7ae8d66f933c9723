"""Drop the stage tables of channelled overwrites that nothing needs any more.

A channel writes its rows into a work stage (``<stage>_w``), then publishes it under its
final name; the last channel swaps all published stages into the target and drops them. A
work stage can outlive its task (MySQL commits ``CREATE TABLE`` at once: a worker that dies
mid-write leaves it), and published stages outlive an execution that failed (a resume needs
them). So: when an execution completes, its work stages are dropped; when it is deleted, all
of its stages are. Only workers hold the sinks' secrets, so whoever decides (a worker, a
reaper, the API) queues the names on ``<prefix>cleanup`` and a reaper step drops them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from exchangis.connectors.base import Endpoint
from exchangis.models import DataSource
from exchangis.runtime import Runtime
from exchangis.state.machine import completed

logger = logging.getLogger(__name__)

BATCH = 20
"""Cleanup requests one reaper step handles."""
TRIES = 5
"""A request that keeps failing (a sink down) is tried this often, then logged and dropped."""


def cleanup_requests(plans: Iterable[Mapping[str, Any]], published: bool) -> list[dict[str, Any]]:
    """Return one request per sink data source and database: the work stages of ``plans``
    (``published``: their published stages too) as ``{datasource_id, type, db, tables}``."""
    requests: dict[tuple[int, str | None], dict[str, Any]] = {}
    for plan in plans:
        stage = plan.get("stage")
        if not stage:
            continue
        sink = plan["sink"]
        key = (int(sink["datasource_id"]), sink.get("db"))
        request = requests.setdefault(
            key, {"datasource_id": key[0], "type": sink["type"], "db": key[1], "tables": []}
        )
        names = [stage["work"], *([stage["done"]] if published else [])]
        request["tables"] += [n for n in names if n not in request["tables"]]
    return list(requests.values())


def request_cleanup(
    rt: Runtime, eid: str, plans: Iterable[Mapping[str, Any]], published: bool
) -> int:
    """Queue the drop of the stages of execution ``eid``'s ``plans``; return the number of
    requests queued. Work stages only (``published`` False) are dropped only while the
    execution is still completed: a resume may have started new work stages meanwhile."""
    requests = [{**r, "eid": eid, "deleted": published} for r in cleanup_requests(plans, published)]
    if requests:
        rt.redis.rpush(rt.keys.cleanup(), *(json.dumps(r) for r in requests))
    return len(requests)


def clean(rt: Runtime) -> int:
    """Drop the stages of queued requests (a reaper step, in a worker); return tables dropped."""
    dropped = 0
    for _ in range(BATCH):
        raw = rt.redis.lpop(rt.keys.cleanup())
        if raw is None:
            break
        request = json.loads(str(raw))
        try:
            dropped += _drop(rt, request)
        except Exception as exc:
            tries = int(request.get("tries") or 0) + 1
            if tries >= TRIES:
                logger.error("could not drop stages %s: %s (given up)", request["tables"], exc)
                continue
            logger.warning("could not drop stages %s: %s (will try again)", request["tables"], exc)
            rt.redis.rpush(rt.keys.cleanup(), json.dumps({**request, "tries": tries}))
    return dropped


def _drop(rt: Runtime, request: Mapping[str, Any]) -> int:
    if request.get("deleted"):
        return _drop_tables(rt, request)
    # under the lock a resume or restart takes: no new run can start while the drop runs
    eid = str(request["eid"])
    with rt.store.locked(f"reopen:{eid}", 60) as held:
        if not held:
            raise RuntimeError(f"execution {eid} is being resumed")  # tried again later
        execution = rt.store.execution(eid)
        if execution is not None and not completed(execution, rt.store.tasks(eid)):
            return 0  # running again: its work stages are the new run's
        return _drop_tables(rt, request)


def _drop_tables(rt: Runtime, request: Mapping[str, Any]) -> int:
    with rt.sessions() as session:
        ds = session.scalar(select(DataSource).where(DataSource.id == request["datasource_id"]))
        if ds is None:
            return 0  # the data source is gone: so is any way to reach its stages
        connect = rt.connect_params(ds)
    tables = list(request["tables"])
    endpoint = Endpoint(ds.type, connect, tables[0], db=request.get("db"))
    sink = rt.registry.sink(endpoint)
    drop = getattr(sink, "drop_tables", None)
    return int(drop(tables)) if drop is not None else 0
