"""Typed settings: defaults, then a file named by EXCHANGIS_CONFIG, then EXCHANGIS_* variables.

Loaded and validated once (``load_settings``); an invalid value raises one SettingsError that
names every bad key. Nothing is read at import time.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from exchangis.errors import SettingsError

ENV_PREFIX = "EXCHANGIS_"
_HOST = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?\Z|^\[?[0-9A-Fa-f:.]{2,45}\]?\Z"
)
"""A host name (or an IP address) as a URL names it."""

# The service's own files under ``data_dir`` (no data source may reach them: exchangis/confine.py)
KEY_FILE = "secret.key"
"""The generated key of the data source secrets (when ``secret_keys`` is empty)."""
ADMIN_PASSWORD_FILE = "admin.password"
"""The generated password of the first admin ``make run`` creates."""
EMBEDDED_REDIS_DIR = "redis"
"""The embedded Redis server's files."""


METRICS_ACCESS = ("loopback", "token", "open")
"""The values of ``metrics_access``."""


@dataclass(frozen=True)
class Settings:
    """Every setting of the API and the workers; see docs/configuration.md."""

    database_url: str = "sqlite:///var/exchangis.db"
    """SQLAlchemy URL of the metadata database (SQLite file or PostgreSQL)."""
    redis_url: str = ""
    """Live state, logs and (by default) the Celery broker. Empty: start an embedded Redis."""
    redis_prefix: str = "exg:"
    """Prefix of every live-state key."""
    broker_url: str = ""
    """Celery broker; empty means ``redis_url`` with database number ``broker_db``."""
    broker_db: int = 1
    task_queue: str = "exchangis"
    """Default Celery queue of transfer tasks."""
    queues: tuple[str, ...] = ()
    """Extra worker queues that ``labels.route`` may name."""
    host: str = "127.0.0.1"
    port: int = 8080
    secret_keys: str = ""
    """Fernet keys of the data source secrets, comma-separated: the first encrypts, all
    decrypt (empty: a key generated into ``<data_dir>/secret.key``)."""
    token_ttl_seconds: int = 12 * 3600
    """Life of a bearer token (and of the session cookie) from its login."""
    login_rate_limit: str = "10/minute"
    """Failed sign-ins (login or HTTP Basic) allowed per client address and per user name;
    past it a sign-in is a 429 until the window moves (``limits`` notation, e.g. 5/minute)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) of proxies whose ``X-Exchangis-User`` header names the
    caller; empty: the header is never believed."""
    file_roots: tuple[str, ...] = ()
    """Folders that FILE data source roots and SQLite files must lie in (symlinks followed);
    empty: ``<data_dir>/files``."""
    cookie_secure: bool = False
    """Send the session cookie over HTTPS only (set it when the API is served over HTTPS)."""
    max_request_bytes: int = 16 * 2**20
    """Largest request body the API reads; a larger one is a 413 in the envelope."""
    timezone: str = "UTC"
    """Zone of the ``YYYY-MM-DD HH:MM:SS`` times on the wire."""
    log_format: str = "text"
    """The processes' own log lines on standard error: ``text``, or ``json`` (one object a
    line, with the execution and task a line is about)."""
    metrics_access: str = "loopback"
    """Who may read ``/metrics``: ``loopback`` (anyone connecting from this host without a
    proxy header; others need a token), ``token`` (a valid token always), ``open``."""
    data_dir: str = "var"
    """Where the embedded default keeps its SQLite file, Redis files and demo data."""
    batch_size: int = 10000
    """Rows per batch when a sub-job does not set ``batchSize``."""
    heartbeat_seconds: float = 2.0
    """How often a running task refreshes its heartbeat."""
    heartbeat_timeout_seconds: float = 30.0
    """A running task whose heartbeat is older than this is taken as lost by the reaper."""
    reaper_interval_seconds: float = 10.0
    """How often each worker's reaper runs a pass (one at a time runs)."""
    store_outage_seconds: float = 60.0
    """How long a worker or reaper retries (with backoff) a Redis or metadata-database call that
    fails for want of a connection before that step gives up; the API does not wait: 503."""
    resend_after_seconds: float = 600.0
    """A task still Scheduled (or Inited) this long is sent again: its message may be lost
    (a duplicate is harmless: the claim refuses it)."""
    worker_call_timeout_seconds: float = 30.0
    """How long the API waits for a worker to test a data source or cut a table into channels
    (it does not connect itself: only workers decrypt secrets); then it answers 503."""
    kill_grace_seconds: float = 30.0
    """A task still running this long after a kill has its worker process terminated."""
    progress_interval_seconds: float = 1.0
    """Throttle of progress/metrics publication while a task runs."""
    log_max_lines: int = 200_000
    """Lines a job or task log keeps: its first and last half; a marker line stands between."""
    log_scan_lines: int = 100_000
    """Most lines one filtered log query examines before it answers (the client resumes)."""
    log_max_bytes: int = 64 * 2**20
    """Bytes a job or task log keeps, as ``log_max_lines`` does lines: its first and last half
    (0: no byte cap; at least 64 KiB, so that each half holds the longest line)."""
    live_ttl_seconds: int = 7 * 24 * 3600
    """How long the live Redis keys of a completed execution are kept."""
    history_retention_days: int = 0
    """Completed executions older than this (from completion) are deleted with their tasks
    and archived logs by the reapers (0: kept for ever)."""
    log_retention_days: int = 0
    """The archived logs of completed executions older than this are deleted; the executions
    stay in the history (0: kept for ever)."""
    task_retries: int = 0
    """Default ``setting.retry.times`` of a sub-job."""
    retry_backoff_seconds: float = 5.0
    """Delay before the first retry; each further retry waits twice as long."""
    retry_backoff_max_seconds: float = 300.0
    """Longest delay between two attempts."""
    visibility_timeout_seconds: int = 6 * 3600
    """Broker visibility timeout: longer than the longest task."""
    enable_memory_connector: bool = False
    """Register the MEMORY fault-injection connector (tests only)."""
    worker_concurrency: int = 2
    worker_max_memory_mb: int = 256
    """A pool process whose resident size passed this after a task is replaced (0: never)."""
    max_running_tasks: int = 0
    """Most tasks running at once in total (0: no limit); others wait in Scheduled."""
    max_running_tasks_per_user: int = 0
    """Most tasks of one execute user running at once (0: no limit)."""
    admission_retry_seconds: float = 2.0
    """How long a task that found no free slot waits before it is offered again."""
    context_block_seconds: float = 60.0
    """Longest a ``block=true`` read of a schedule context's logs or results waits for the
    context to end."""
    context_block_waiters: int = 16
    """Most calls of one API process waiting at once for a context to end (``block``,
    ``sync``); past it a call answers at once, so waiting callers never starve the others."""
    webhook_hosts: tuple[str, ...] = ()
    """Host names a plan's webhook (``notify.url``) may name; empty: webhooks are off."""
    scheduler_enabled: bool = True
    """Whether this worker runs a scheduler (any number may: each fire runs once)."""
    scheduler_tick_seconds: float = 1.0
    """How often a scheduler looks for due fires, ended upstream runs and final contexts."""
    misfire_threshold_seconds: float = 60.0
    """A fire handled later than this is missed: its item's misfirePolicy decides."""
    catch_up_max: int = 100
    """Most missed fires of one item that CATCH_UP_ALL runs (or DO_NOTHING records) at once:
    the newest ones."""
    webhook_timeout_seconds: float = 10.0
    """Longest wait for a webhook's answer."""
    webhook_max_tries: int = 8
    """Sends of one webhook before it is given up (each waits twice as long, from 5 s)."""

    def broker(self) -> str:
        """Return the Celery broker URL."""
        if self.broker_url:
            return self.broker_url
        base = self.redis_url.rsplit("/", 1)
        if len(base) == 2 and base[1].isdigit():
            return f"{base[0]}/{self.broker_db}"
        return f"{self.redis_url.rstrip('/')}/{self.broker_db}"

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """Return a copy with ``overrides`` (setting names, lower case) applied and validated."""
        return replace(self, **_coerce_all(overrides, "overrides"))


_HINTS: dict[str, Any] = {}


def _hints() -> dict[str, Any]:
    if not _HINTS:
        _HINTS.update(get_type_hints(Settings))
    return _HINTS


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected a boolean (true/false)")


def _number(kind: type) -> Callable[[Any], Any]:
    def coerce(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected an integer" if kind is int else "expected a number")
        return kind(value)

    return coerce


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a list of strings or a comma-separated string")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


_COERCE: dict[Any, Callable[[Any], Any]] = {
    bool: _boolean,
    int: _number(int),
    float: _number(float),
    tuple[str, ...]: _names,
}


def _coerce(name: str, value: Any) -> Any:
    return _COERCE.get(_hints()[name], _text)(value)


def _coerce_all(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    names = {f.name for f in fields(Settings)}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.lower()
        if name not in names:
            problems.append(f"{origin}: unknown setting {key!r}")
            continue
        try:
            values[name] = _coerce(name, value)
        except (TypeError, ValueError) as exc:
            problems.append(f"{origin}: {key}={value!r}: {exc}")
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return values


def _read_file(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"EXCHANGIS_CONFIG={path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"EXCHANGIS_CONFIG={path}: not valid TOML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"EXCHANGIS_CONFIG={path}: expected a table of settings")
    return data


_AT_LEAST: dict[str, tuple[float, str]] = {
    "log_max_lines": (2, "must be at least 2"),
    "log_scan_lines": (1, "must be at least 1"),
    "batch_size": (1, "must be at least 1"),
    "max_request_bytes": (1024, "must be at least 1024"),
    "worker_max_memory_mb": (0, "must be 0 (no limit) or more"),
    "token_ttl_seconds": (60, "must be at least 60"),
    "context_block_seconds": (0, "must be 0 or more"),
    "context_block_waiters": (0, "must be 0 or more"),
    "misfire_threshold_seconds": (0, "must be 0 or more"),
    "catch_up_max": (1, "must be at least 1"),
    "webhook_max_tries": (1, "must be at least 1"),
}
"""Settings with a smallest value, and what to say when one is below it."""


def _validate(settings: Settings) -> None:
    problems = [
        f"{name}: {message}"
        for name, (least, message) in _AT_LEAST.items()
        if getattr(settings, name) < least
    ]
    if not 0 < settings.port < 65536:
        problems.append(f"port={settings.port}: must be 1..65535")
    if settings.log_format not in ("text", "json"):
        problems.append(f"log_format={settings.log_format!r}: must be text or json")
    if settings.metrics_access not in METRICS_ACCESS:
        problems.append(
            f"metrics_access={settings.metrics_access!r}: must be " + " or ".join(METRICS_ACCESS)
        )
    if settings.heartbeat_timeout_seconds <= settings.heartbeat_seconds:
        problems.append("heartbeat_timeout_seconds: must exceed heartbeat_seconds")
    problems += [
        f"{name}: must not be empty"
        for name in ("redis_prefix", "database_url")
        if not getattr(settings, name)
    ]
    problems += [
        f"webhook_hosts: {host!r} is not a host name"
        for host in settings.webhook_hosts
        if not _HOST.match(host)
    ]
    if not 0.05 <= settings.scheduler_tick_seconds <= 60:
        problems.append("scheduler_tick_seconds: must be 0.05..60")
    problems += _security_problems(settings)
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))


def _security_problems(settings: Settings) -> list[str]:
    import ipaddress

    from limits import parse

    problems = []
    try:
        parse(settings.login_rate_limit)
    except ValueError:
        problems.append(
            f"login_rate_limit={settings.login_rate_limit!r}: expected e.g. '10/minute'"
        )
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problems.append(f"trusted_proxies: {proxy!r} is not an address or a network")
    return problems


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Return validated settings: defaults → EXCHANGIS_CONFIG file → EXCHANGIS_* env → overrides.

    Raises:
        SettingsError: naming every invalid or unknown key.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_file = env.get(ENV_PREFIX + "CONFIG")
    if config_file:
        values.update(_coerce_all(_read_file(config_file), f"file {config_file}"))
    names = {f.name for f in fields(Settings)}
    from_env = {
        key[len(ENV_PREFIX) :]: value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in names
    }
    values.update(_coerce_all(from_env, "environment"))
    if overrides:
        values.update(_coerce_all(overrides, "overrides"))
    settings = Settings(**values)
    _validate(settings)
    return settings


__all__ = ["Settings", "load_settings"]
