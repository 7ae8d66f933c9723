"""Parallel channels: a SQL sub-job cut into key ranges, one task per range.

``setting.speed.channel`` = N splits a sub-job whose source is a SQL table into N tasks at
submit time. Each task reads one range of a numeric key (option ``splitPk``, else the table's
one-column primary key): ``key < b1``, ``b1 <= key < b2``, ..., ``key >= b(N-1)``, the first
also taking NULL keys, so every row is read by exactly one task whatever the bounds are (they
only balance the work: equal cuts of ``[MIN(key), MAX(key)]``). The tasks run on any workers;
each one's sink is atomic on its own.

With ``writeMode: overwrite`` on a SQL sink the tasks must not each replace the table: every
channel overwrites a stage table of its own (``..._w``), renames it to its published name when
committed, and the channel that finds every stage published replaces the table's content with
them in one transaction (:meth:`SqlSink.swap_stages`) — once, and only when every channel
succeeded. A failed channel leaves the table untouched; the published stages of the others
stay for a resume to finish the swap. The speed limits of the sub-job are shared out among its
channels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from exchangis.connectors.base import Endpoint
from exchangis.connectors.naming import validate_table
from exchangis.engine import calls
from exchangis.engine.planner import TaskPlan
from exchangis.errors import (
    ConnectorError,
    InvalidInputError,
    TransientConnectorError,
    UnavailableError,
)
from exchangis.models import DataSource
from exchangis.runtime import Runtime

logger = logging.getLogger(__name__)

SHARED_LIMITS = ("speed_record", "speed_byte")
"""Sub-job settings that are totals: each of N channels gets 1/N of them."""


def expand(rt: Runtime, plans: list[TaskPlan], eid: str) -> list[TaskPlan]:
    """Return ``plans`` with every channelled sub-job replaced by one plan per key range.

    The key range is read by a worker (:func:`cut`): the API process never connects with a
    data source's secrets.

    Raises:
        InvalidInputError: a sub-job asks for channels but its table has no usable key.
        UnavailableError: the source database (or every worker) could not be reached.
    """
    out: list[TaskPlan] = []
    for plan in plans:
        channels = int(plan.settings.get("channel") or 1)
        source = rt.registry.sources.get(plan.source["type"])
        if channels <= 1 or source is None or not source.capabilities.channels:
            out.append(plan)  # nothing to cut
            continue
        args = {
            "source": plan.source,
            "position": plan.position,
            "name": plan.name,
            "channels": channels,
        }
        key, bounds = calls.ask(rt, calls.SPLIT, args)
        out += _channel_plans(rt, plan, key, bounds, eid)
    return out


def cut(rt: Runtime, args: Mapping[str, Any]) -> list[Any]:
    """Return ``[key, bounds]`` of a channelled sub-job's source (in a worker: it decrypts).

    Raises:
        InvalidInputError: no usable key (or the data source is gone).
        UnavailableError: the source database could not be reached.
    """
    spec, channels = args["source"], int(args["channels"])
    where = f"content[{args['position']}] ({args['name']})"
    with rt.sessions() as session:
        ds = session.get(DataSource, spec["datasource_id"])
        if ds is None:
            raise InvalidInputError(f"{where}: source data source was deleted")
        connect = rt.connect_params(ds)
    source = rt.registry.source(Endpoint.of_plan(ds.type, connect, spec))
    if not source.capabilities.channels:
        raise InvalidInputError(f"{where}: {ds.type} tables cannot be cut into channels")
    try:
        with source:
            return list(source.split_points(channels))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: setting.speed.channel: {exc.message}") from None
    except TransientConnectorError as exc:
        raise UnavailableError(
            f"{where}: cannot cut into {channels} channels now: {exc.message}"
        ) from None
    except ConnectorError as exc:
        raise InvalidInputError(
            f"{where}: cannot cut into {channels} channels: {exc.message}"
        ) from None


def _channel_plans(
    rt: Runtime, plan: TaskPlan, key: str, bounds: list[Any], eid: str
) -> list[TaskPlan]:
    count = len(bounds) + 1
    if count == 1:  # empty table or one key value: one task reads it all
        return [plan]
    edges: list[Any] = [None, *bounds, None]
    settings = dict(plan.settings)
    for name in SHARED_LIMITS:
        if settings.get(name):
            settings[name] = max(1, int(settings[name]) // count)
    stages = _stages(rt, plan, eid, count)
    return [
        replace(
            plan,
            name=f"{plan.name} [{i + 1}/{count}]",
            settings=settings,
            split={
                "key": key,
                "lower": edges[i],
                "upper": edges[i + 1],
                "nulls": i == 0,
                "channel": i + 1,
                "channels": count,
            },
            stage=None
            if stages is None
            else {"work": f"{stages[i]}_w", "done": stages[i], "all": stages},
        )
        for i in range(count)
    ]


def _stages(rt: Runtime, plan: TaskPlan, eid: str, count: int) -> list[str] | None:
    """Return the published stage names of an overwriting SQL sink (None: no staging)."""
    sink_type = plan.sink["type"]
    sink_cls = rt.registry.sinks.get(sink_type)
    mode = str((plan.sink.get("options") or {}).get("writeMode") or "append").lower()
    if mode != "overwrite" or sink_cls is None or not hasattr(sink_cls, "swap_stages"):
        return None
    parts = validate_table(plan.sink["table"])
    prefix = f"{parts[0]}." if len(parts) == 2 else ""
    token = eid.replace("-", "")[:12]
    return [f"{prefix}exg_{token}_{plan.position}_{i}" for i in range(count)]
