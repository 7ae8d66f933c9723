"""What the API and the workers both need: SQL engine and sessions, Redis, state store, registry."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from redis import Redis
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from exchangis.confine import confine
from exchangis.connectors.registry import Registry, default_registry
from exchangis.engine.dispatch import Dispatcher
from exchangis.engine.states import RULES
from exchangis.errors import InvalidInputError, SettingsError, TerminalConnectorError
from exchangis.settings import Settings
from exchangis.state.keys import Keys
from exchangis.state.logs import LogWriter
from exchangis.state.store import StateStore
from exchangis.vault import Vault, key_file_keys

if TYPE_CHECKING:
    from limits.strategies import MovingWindowRateLimiter


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
            health_check_interval=30,
            socket_keepalive=True,
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
        if not self.decrypts:
            raise RuntimeError("the API process does not decrypt data source secrets")
        ds_type = self.registry.type(ds.type)
        try:  # checked again where it is used: file_roots may have changed since it was saved
            confine(self.settings, ds_type, ds.connect_params)
        except InvalidInputError as exc:
            raise TerminalConnectorError(f"data source {ds.name}: {exc.message}") from None
        return self.vault.open(ds_type, ds.connect_params)

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

    def _writer(self, key: str, secrets: tuple[str, ...]) -> LogWriter:
        half = self.settings.log_max_lines // 2
        return LogWriter(
            self.redis,
            key,
            zone=self.zone,
            secrets=secrets,
            head_cap=half,
            tail_cap=self.settings.log_max_lines - half,
        )

    def job_log(self, eid: str) -> LogWriter:
        """Return the writer of an execution's job log (masks its data sources' secrets)."""
        return self._writer(self.keys.execution_log(eid), self.execution_secrets(eid))

    def task_log(self, tid: int | str, eid: str) -> LogWriter:
        """Return the writer of a task's log (masks its execution's data sources' secrets)."""
        return self._writer(self.keys.task_log(tid), self.execution_secrets(eid))

    def execution_secrets(self, eid: str) -> tuple[str, ...]:
        """Return every secret of the data sources an execution's tasks use (read each time,
        so a password changed since is masked too). None in the API process: it never holds
        a secret in clear, nor writes a driver's message."""
        from exchangis.models import DataSource, TaskExecution

        if not self.decrypts:
            return ()

        with self.sessions() as session:
            plans = session.scalars(
                select(TaskExecution.plan).where(TaskExecution.execution_id == eid)
            ).all()
            ids = {plan[side]["datasource_id"] for plan in plans for side in ("source", "sink")}
            found: list[str] = []
            for ds in session.scalars(select(DataSource).where(DataSource.id.in_(ids))):
                found += self.registry.type(ds.type).secret_values(self.connect_params(ds))
        return tuple(found)

    def close(self) -> None:
        """Dispose of pools (after a fork, or at shutdown)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
