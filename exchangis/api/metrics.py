"""``GET /metrics``: Prometheus text exposition on the API's port.

Counters come from the metadata database (``exg_counter``, written with the record each one
counts: exchangis/models/counter.py), gauges from the live state at the scrape. No figure is
kept in the process, so any number of gunicorn workers and API hosts answer the same, and a
restart takes nothing back. A store that cannot be read is reported by
``exchangis_metadata_up`` / ``exchangis_live_state_up`` (0) instead of an error: the scrape
still answers with what it could read. Design: docs/design/metrics.md.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from exchangis.api.common import public, require_caller, runtime
from exchangis.models import counter
from exchangis.runtime import Runtime
from exchangis.services import metrics
from exchangis.state.machine import EXECUTION_FINAL, TASK_FINAL

logger = logging.getLogger(__name__)

PATH = "/metrics"


@dataclass(frozen=True)
class CounterFamily:
    """A counter's description, label name and the label values always shown (0 until the
    first event, so that a rate over them starts at once)."""

    name: str
    help: str
    label: str = ""
    known: tuple[str, ...] = ()


COUNTERS = (
    CounterFamily(
        "exchangis_executions_total",
        "Executions that ended, by final status (a restarted one counts again)",
        "status",
        tuple(sorted(EXECUTION_FINAL)),
    ),
    CounterFamily(
        "exchangis_tasks_total",
        "Tasks (sub-jobs) that ended, by final status",
        "status",
        tuple(sorted(TASK_FINAL)),
    ),
    CounterFamily(
        "exchangis_rows_total",
        "Rows read and written by tasks that ended (their last attempt's figures)",
        "direction",
        ("read", "written"),
    ),
    CounterFamily("exchangis_bytes_total", "Bytes read by tasks that ended"),
    CounterFamily("exchangis_task_retries_total", "Task attempts that failed and were retried"),
    CounterFamily(
        "exchangis_reaper_actions_total",
        "What reapers did: adopt, apply_kill/apply_pause/apply_timeout, complete, resend, "
        "reap_lost_task, terminate, timeout",
        "action",
    ),
    CounterFamily(
        "exchangis_scheduler_fires_total",
        "Schedule fires that started a run, by trigger type",
        "trigger",
        ("CRON_JOB", "DEPENDENCY"),
    ),
    CounterFamily("exchangis_scheduler_skips_total", "Schedule fires skipped, by reason", "reason"),
)
HISTOGRAMS = {
    counter.TASK_DURATION: "How long tasks' last attempts ran, by task that ended",
    counter.QUEUE_WAIT: "How long tasks' last attempts waited for a worker after being sent",
}


class EngineCollector(Collector):
    """Reads every figure from the stores at each scrape."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families (called once per scrape)."""
        try:
            rows, unfinished = metrics.durable_figures(self.rt)
            sql_up = 1.0
        except Exception:
            logger.warning("/metrics: the metadata database could not be read", exc_info=True)
            rows, unfinished, sql_up = [], [], 0.0
        yield _gauge("exchangis_metadata_up", "1 when the metadata database answered", sql_up)
        if sql_up:
            yield from _counters(rows)
            yield _gauge(
                "exchangis_unfinished_executions",
                "Executions the durable record holds as not final",
                len(unfinished),
            )
        yield from self._live(unfinished)

    def _live(self, unfinished: list[str]) -> Iterator[Metric]:
        try:
            live = metrics.live_figures(self.rt, unfinished)
        except Exception:
            logger.warning("/metrics: the live state could not be read", exc_info=True)
            yield _gauge("exchangis_live_state_up", "1 when the live state answered", 0)
            return
        yield _gauge("exchangis_live_state_up", "1 when the live state answered", 1)
        yield _gauge("exchangis_running_tasks", "Tasks running now", live.running)
        yield _gauge(
            "exchangis_queued_tasks", "Tasks sent and not yet taken by a worker", live.queued
        )
        yield _gauge("exchangis_retry_waiting_tasks", "Tasks waiting to retry", live.retrying)
        yield _gauge(
            "exchangis_unpersisted_executions",
            "Executions ended whose durable record is not written yet",
            live.unpersisted,
        )
        age = GaugeMetricFamily(
            "exchangis_worker_heartbeat_age_seconds",
            "Age of the oldest heartbeat of the tasks a worker process runs (the reaper takes "
            "a task as lost past heartbeat_timeout_seconds)",
            labels=["worker"],
        )
        for worker, seconds in sorted(live.heartbeat_age.items()):
            age.add_metric([worker], seconds)
        yield age


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counters(rows: list[tuple[str, dict[str, str], float]]) -> Iterator[Metric]:
    """Yield the counter and histogram families from the stored counters."""
    stored: dict[str, dict[str, float]] = {}
    for name, labels, value in rows:  # a family's rows: keyed by their one label's value
        stored.setdefault(name, {})[next(iter(labels.values()), "")] = value
    for family in COUNTERS:
        metric = CounterMetricFamily(
            family.name, family.help, labels=[family.label] if family.label else None
        )
        values = dict.fromkeys(family.known, 0.0) | stored.get(family.name, {})
        if not family.label:
            metric.add_metric([], values.get("", 0.0))
        for label, value in sorted(values.items()) if family.label else ():
            metric.add_metric([label], value)
        yield metric
    for histogram, text in HISTOGRAMS.items():
        per_bucket = stored.get(f"{histogram.name}_bucket", {})
        cumulative, buckets = 0.0, []
        for le in histogram.les():
            cumulative += per_bucket.get(le, 0.0)
            buckets.append((le, cumulative))
        spread = HistogramMetricFamily(histogram.name, text)
        spread.add_metric([], buckets, stored.get(f"{histogram.name}_sum", {}).get("", 0.0))
        yield spread


def _loopback_direct() -> bool:
    """Return True for a request from this host that no proxy forwarded."""
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@public
def metrics_view() -> Response:
    """Answer a scrape (``metrics_access`` says who may: see docs/configuration.md)."""
    rt = runtime()
    access = rt.settings.metrics_access
    if access == "token" or (access == "loopback" and not _loopback_direct()):
        require_caller()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(rt))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
