"""What the API and the workers both need: SQL engine and sessions, Redis, state store, registry."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from exchangis.confine import confine
from exchangis.connectors.registry import Registry, default_registry
from exchangis.dispatch import Dispatcher
from exchangis.errors import InvalidInputError, SettingsError, TerminalConnectorError
from exchangis.settings import Settings
from exchangis.state.keys import Keys
from exchangis.state.logs import MAX_LINE_BYTES, LogWriter
from exchangis.state.machine import RULES
from exchangis.state.store import StateStore
from exchangis.vault import Vault, key_file_keys

if TYPE_CHECKING:
    from limits.strategies import MovingWindowRateLimiter

    from exchangis.connectors.base import DataSourceType

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

BACKOFF_BASE = 0.05
"""First wait of a retried store call (seconds); each further wait doubles."""
BACKOFF_CAP = 1.0
"""Longest wait between two tries of a store call."""
SECRETS_SECONDS = 5.0
"""How long a worker masks with the secrets it read for an execution before reading them again
(a secret it decrypts meanwhile, to connect, is added at once)."""
SECRETS_EXECUTIONS = 256
"""Most executions whose secrets a worker keeps (the least recently used one goes first)."""


def sql_unavailable(exc: BaseException) -> bool:
    """Return True for a metadata-database error that says the database could not be reached
    (refused, reset, gone away, locked), not that the statement was wrong."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _tries(outage_seconds: float) -> int:
    """Return how many retries with capped doubling waits span ``outage_seconds``."""
    tries, waited, wait = 0, 0.0, BACKOFF_BASE
    while waited < outage_seconds:
        waited += wait
        wait = min(wait * 2, BACKOFF_CAP)
        tries += 1
    return tries


class _Secrets:
    """What a worker masks in an execution's logs: the data sources its tasks use (fixed at
    submission) and every secret of theirs seen, old and new."""

    def __init__(self, sources: frozenset[int], values: Iterable[str], read_at: float) -> None:
        self.sources = sources
        self.values = tuple(dict.fromkeys(values))
        """Replaced whole, never changed in place (log writers read it from other threads)."""
        self.read_at = read_at

    def current(self) -> tuple[str, ...]:
        """Return the secrets known now."""
        return self.values

    def add(self, values: Iterable[str]) -> None:
        """Add ``values`` (none is ever removed: a task may still print an old password)."""
        fresh = [v for v in values if v and v not in self.values]
        if fresh:
            self.values = (*self.values, *fresh)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create the metadata engine (SQLite: WAL, busy timeout, parent folder created)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@dataclass
class Runtime:
    """Process-wide handles built from one Settings object (created lazily, one per process)."""

    settings: Settings
    decrypts: bool = True
    """False in the API process: it seals secrets but never opens one (workers do)."""
    pid: int = field(default_factory=os.getpid)
    patient: bool = True
    """Workers, reapers and the CLI retry a store call through ``store_outage_seconds`` of
    outage; the API (False) tries again once and then answers 503."""
    secrets_seconds: float = SECRETS_SECONDS
    """How long the secrets read for an execution are used before they are read again."""
    _secrets: OrderedDict[str, _Secrets] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _secrets_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def _retries(self) -> int:
        return _tries(self.settings.store_outage_seconds) if self.patient else 1

    def durable(self, call: Callable[[], T]) -> T:
        """Run a metadata-database call, again (with backoff) while the database cannot be
        reached, for up to ``store_outage_seconds`` (patient runtimes only)."""
        wait, left = BACKOFF_BASE, self._retries
        while True:
            try:
                return call()
            except Exception as exc:
                if not sql_unavailable(exc) or left <= 0:
                    raise
                logger.warning("metadata database unavailable, trying again: %s", exc)
                left -= 1
                time.sleep(wait)
                wait = min(wait * 2, BACKOFF_CAP)

    @cached_property
    def engine(self) -> Engine:
        """Return the SQL engine of the metadata database."""
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Return the session factory."""
        return sessionmaker(self.engine, expire_on_commit=False)

    @cached_property
    def redis(self) -> Redis:
        """Return the Redis client of the live state (decoded strings)."""
        if not self.settings.redis_url:
            raise SettingsError(
                "redis_url is not set: set EXCHANGIS_REDIS_URL, or use `make run` which starts "
                "an embedded Redis"
            )
        return Redis.from_url(
            self.settings.redis_url,
            decode_responses=True,
            # RESP2: redis-py 8 speaks RESP3 by default, which made every engine call slower (100
            # ten-row MEMORY sub-jobs: 8.8 ms each against 7.5 ms, alternating runs; perf doc)
            protocol=2,
            health_check_interval=30,
            socket_keepalive=True,
            # a connection lost or refused is tried again; transitions are idempotent
            # (state/store.py), so a command whose reply was lost may safely run twice
            retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE), self._retries),
            retry_on_error=[RedisConnectionError, RedisTimeoutError, BusyLoadingError],
        )

    @cached_property
    def vault(self) -> Vault:
        """Return the sealer/opener of data source secrets (keys from ``secret_keys``)."""
        keys = [k for k in self.settings.secret_keys.split(",") if k.strip()]
        return Vault(keys or key_file_keys(self.settings.data_dir))

    def connect_params(self, ds: Any) -> dict[str, Any]:
        """Return a data source's connect params with its secrets in clear (to connect).

        Raises:
            RuntimeError: in the API process, which has workers connect for it.
        """
        ds_type = self.registry.type(ds.type)
        params = self.open_connect(ds_type, ds.connect_params, f"data source {ds.name}")
        # before anyone connects with them: a changed password is masked from now on
        self._learn_secrets(ds.id, ds_type.secret_values(params))
        return params

    def open_connect(
        self, ds_type: DataSourceType, sealed: Mapping[str, Any], label: str
    ) -> dict[str, Any]:
        """Return sealed connect params in clear, local paths confined (``label`` names them).

        Raises:
            RuntimeError: in the API process, which has workers connect for it.
            TerminalConnectorError: a path lies outside ``file_roots``.
        """
        if not self.decrypts:
            raise RuntimeError("the API process does not decrypt data source secrets")
        try:  # checked again where it is used: file_roots may have changed since it was saved
            confine(self.settings, ds_type, sealed)
        except InvalidInputError as exc:
            raise TerminalConnectorError(f"{label}: {exc.message}") from None
        return self.vault.open(ds_type, sealed)

    @cached_property
    def sign_in_limiter(self) -> MovingWindowRateLimiter:
        """Return the moving-window counter of failed sign-ins (its windows live in Redis)."""
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        storage = RedisStorage(
            self.settings.redis_url,
            connection_pool=self.redis.connection_pool,
            key_prefix=self.keys.sign_in_limits(),
        )
        return MovingWindowRateLimiter(storage)

    @cached_property
    def keys(self) -> Keys:
        """Return the key builder."""
        return Keys(self.settings.redis_prefix)

    @cached_property
    def store(self) -> StateStore:
        """Return the live-state store."""
        return StateStore(
            self.redis,
            self.keys,
            RULES,
            limits=(self.settings.max_running_tasks, self.settings.max_running_tasks_per_user),
            stale_seconds=self.settings.heartbeat_timeout_seconds,
        )

    @cached_property
    def registry(self) -> Registry:
        """Return the connector registry."""
        return default_registry(with_memory=self.settings.enable_memory_connector)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """Return the task sender."""
        return Dispatcher(self.settings)

    @cached_property
    def zone(self) -> ZoneInfo:
        """Return the zone of times on the wire and in logs."""
        return ZoneInfo(self.settings.timezone)

    def _writer(self, key: str, eid: str, hold_seconds: float = 0.0) -> LogWriter:
        lines = self.settings.log_max_lines
        size = max(self.settings.log_max_bytes, 0)
        if size:  # each half must hold the longest line
            size = max(size, 2 * MAX_LINE_BYTES)
        # read now (when missing or old), not at the first line; the writer asks the record at
        # each message, as it may grow, and keeps it even once this process drops it
        known = self._known_secrets(eid) if self.decrypts else _Secrets(frozenset(), (), 0)
        return LogWriter(
            self.redis,
            key,
            zone=self.zone,
            secrets=known.current,
            head_cap=lines // 2,
            tail_cap=lines - lines // 2,
            head_bytes=size // 2,
            tail_bytes=size - size // 2,
            hold_seconds=hold_seconds,
        )

    def job_log(self, eid: str) -> LogWriter:
        """Return the writer of an execution's job log (masks its data sources' secrets)."""
        return self._writer(self.keys.execution_log(eid), eid)

    def task_log(self, tid: int | str, eid: str, hold_seconds: float = 0.0) -> LogWriter:
        """Return the writer of a task's log (masks its execution's data sources' secrets);
        ``hold_seconds`` > 0: a holding writer, which its user must close (``LogWriter``)."""
        return self._writer(self.keys.task_log(tid), eid, hold_seconds)

    def execution_secrets(self, eid: str) -> tuple[str, ...]:
        """Return every secret of the data sources an execution's tasks use. None in the API
        process: it never holds a secret in clear, nor writes a driver's message.

        The secrets are read again once older than ``secrets_seconds``, and kept with those
        read before (a task may still print an old password); a secret this process decrypts
        to connect (:meth:`connect_params`) is added at once, before it is used.
        """
        if not self.decrypts:
            return ()
        return self._known_secrets(eid).values

    def _known_secrets(self, eid: str) -> _Secrets:
        """Return the record of an execution's secrets, read first when missing or old."""
        now = time.monotonic()
        with self._secrets_lock:
            known = self._secrets.get(eid)
            if known is not None and now - known.read_at < self.secrets_seconds:
                self._secrets.move_to_end(eid)
                return known
        sources = known.sources if known is not None and known.sources else None
        found_sources, found = self.durable(lambda: self._read_secrets(eid, sources))
        with self._secrets_lock:
            current = self._secrets.get(eid)
            if current is None:
                current = self._secrets[eid] = _Secrets(found_sources, found, now)
            else:  # the same object: writers made before keep seeing it grow
                current.sources = found_sources
                current.read_at = now
                current.add(found)
            self._secrets.move_to_end(eid)
            while len(self._secrets) > SECRETS_EXECUTIONS:
                self._secrets.popitem(last=False)
            return current

    def _read_secrets(
        self, eid: str, sources: frozenset[int] | None
    ) -> tuple[frozenset[int], list[str]]:
        """Return the data sources of an execution's tasks (``sources``: known already, from
        its task plans, which never change) and their secrets."""
        from exchangis.models import DataSource, TaskExecution

        with self.sessions() as session:
            if sources is None:
                plans = session.scalars(
                    select(TaskExecution.plan).where(TaskExecution.execution_id == eid)
                ).all()
                sources = frozenset(
                    int(p[side]["datasource_id"]) for p in plans for side in ("source", "sink")
                )
            found: list[str] = []
            for ds in session.scalars(select(DataSource).where(DataSource.id.in_(sources))):
                found += self.registry.type(ds.type).secret_values(self.connect_params(ds))
        return sources, found

    def _learn_secrets(self, ds_id: int, values: list[str]) -> None:
        """Add a data source's secrets (just decrypted) to the executions known to use it."""
        if not values:
            return
        with self._secrets_lock:
            for known in self._secrets.values():
                if ds_id in known.sources:
                    known.add(values)

    def close(self) -> None:
        """Dispose of pools (after a fork, or at shutdown)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


def durable(
    fn: Callable[Concatenate[Runtime, P], T],
) -> Callable[Concatenate[Runtime, P], T]:
    """Make a function of a runtime ride out metadata-database outages (``Runtime.durable``);
    it must be safe to run again from the start (one transaction, or idempotent steps)."""

    @functools.wraps(fn)
    def wrapper(rt: Runtime, *args: P.args, **kwargs: P.kwargs) -> T:
        return rt.durable(lambda: fn(rt, *args, **kwargs))

    return wrapper
