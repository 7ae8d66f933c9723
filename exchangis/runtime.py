"""What the API and the workers both need: SQL engine and sessions, Redis, state store, registry."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from redis import Redis
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from exchangis.connectors.registry import Registry, default_registry
from exchangis.engine.dispatch import Dispatcher
from exchangis.engine.states import RULES
from exchangis.errors import SettingsError
from exchangis.settings import Settings
from exchangis.state.keys import Keys
from exchangis.state.logs import LogWriter, execution_log, task_log
from exchangis.state.store import StateStore


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
    def keys(self) -> Keys:
        """Return the key builder."""
        return Keys(self.settings.redis_prefix)

    @cached_property
    def store(self) -> StateStore:
        """Return the live-state store."""
        return StateStore(self.redis, self.keys, RULES)

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

    def job_log(self, eid: str, secrets: tuple[str, ...] = ()) -> LogWriter:
        """Return the writer of an execution's job log."""
        return execution_log(self.redis, self.keys, eid, self.zone, secrets)

    def task_log(self, tid: int | str, secrets: tuple[str, ...] = ()) -> LogWriter:
        """Return the writer of a task's log."""
        return task_log(self.redis, self.keys, tid, self.zone, secrets)

    def close(self) -> None:
        """Dispose of pools (after a fork, or at shutdown)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
