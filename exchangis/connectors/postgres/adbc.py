"""The ADBC PostgreSQL database objects of a process: one kept per connection URI (each logs
in and reads the server's type catalog once), made again when old, closed at exit; every
connection a sink opens through ADBC is made on one of them."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

from exchangis.threads import TIMERS

log = logging.getLogger(__name__)

ADBC_KEPT = 8
"""Most ADBC database objects a process keeps (the least recently used one goes first)."""
ADBC_KEPT_SECONDS = 600.0
"""Age at which a kept ADBC database object is made again (so that it reads the server's type
catalog afresh)."""


IDLE_SECONDS = 5.0
"""Seconds a session given back after a commit waits for the next task before it is closed."""
IDLE_KEPT = 2
"""Most idle sessions kept per database object."""


class _Kept:
    """One kept database object: its holder, when it was made, the lock of its calls, and the
    idle sessions given back to it."""

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        """``adbc_driver_manager.dbapi._SharedDatabase``: a count of the object's holders (the
        cache, each open connection); the last one to let go closes the object."""
        self.born = time.monotonic()
        self.lock = threading.Lock()
        self.idle: list[tuple[Any, float]] = []
        """Sessions whose last transaction committed, with when they were given back."""


class AdbcDatabases:
    """The ADBC database objects of a process, one per connection URI, each the maker of new
    connections.

    Making an ADBC PostgreSQL database object logs in and reads the server's type catalog
    (pg_type, pg_attribute: 25-30 ms on a local server); a connection on an existing one costs a
    plain libpq login (about 2 ms). The key is the whole URI (host, port, user, password,
    database and every libpq param), so a data source changed in any of them gets a new object
    at its next task. :meth:`connect` always returns a new connection (its own session and
    transaction): connections are never shared. An object let go (the least recently used past
    ``size``, one older than ``max_age``, every one at :meth:`close` and at exit) is closed when
    its last open connection is. A forked child leaves its parent's objects alone.
    """

    def __init__(
        self,
        size: int = ADBC_KEPT,
        max_age: float = ADBC_KEPT_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.size = size
        self.max_age = max_age
        self.idle_seconds = idle_seconds
        self.made = 0
        """Database objects this process made and kept."""
        self.reused = 0
        """Sessions handed on to a next task."""
        self._kept: OrderedDict[bytes, _Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed_at_exit = False

    def connect(self, uri: str) -> Any:
        """Return a DB-API connection (autocommit off) to ``uri``: a session given back after
        a commit less than ``idle_seconds`` ago, else a new one made on the kept database
        object of ``uri`` (which is made first when there is none)."""
        from adbc_driver_manager import AdbcConnection
        from adbc_driver_manager.dbapi import Connection

        with self._lock:
            kept = self._fresh(_key(uri))
            idle = kept.idle.pop() if kept is not None and kept.idle else None
        if idle is not None:
            conn, since = idle
            if time.monotonic() - since < self.idle_seconds:
                self.reused += 1
                return conn
            _close(conn)
        kept = self._take(uri)
        try:
            with kept.lock:  # an ADBC object takes one call at a time
                handle = AdbcConnection(kept.shared._db)
            try:
                return Connection(kept.shared, handle)  # a holder of the object until closed
            except BaseException:
                handle.close()
                raise
        finally:
            kept.shared.close()  # let go of _take's hold

    def give_back(self, uri: str, conn: Any) -> None:
        """Keep ``conn``, a session of ``uri`` whose last transaction committed (nothing is
        open on it), for the next :meth:`connect` of ``uri`` within ``idle_seconds``; close it
        when its database object was let go or enough sessions wait already."""
        with self._lock:
            kept = self._kept.get(_key(uri)) if self._pid == os.getpid() else None
            if kept is not None and conn._db is kept.shared and len(kept.idle) < IDLE_KEPT:
                kept.idle.append((conn, time.monotonic()))
                conn = None
        if conn is None:
            TIMERS.call(self.idle_seconds, self._expire)
        else:
            _close(conn)

    def _expire(self) -> None:
        """Close the sessions that waited ``idle_seconds`` for a task."""
        now = time.monotonic()
        old: list[Any] = []
        with self._lock:
            for kept in self._kept.values():
                old += [conn for conn, since in kept.idle if now - since >= self.idle_seconds]
                kept.idle = [(c, t) for c, t in kept.idle if now - t < self.idle_seconds]
        for conn in old:
            _close(conn)

    def _take(self, uri: str) -> _Kept:
        """Return the kept object of ``uri`` with one more hold on it (the caller lets go)."""
        import adbc_driver_postgresql
        from adbc_driver_manager.dbapi import _SharedDatabase

        key = _key(uri)
        with self._lock:
            kept = self._fresh(key)
            if kept is not None:
                kept.shared.clone()
                return kept
        # made outside the lock: it logs in, which may take up to the connect timeout
        made = _Kept(_SharedDatabase(adbc_driver_postgresql.connect(uri)))
        with self._lock:
            kept = self._fresh(key)
            if kept is None:
                kept = self._kept[key] = made
                self.made += 1
                while len(self._kept) > self.size:
                    self._let_go(next(iter(self._kept)))
                if not self._closed_at_exit:
                    atexit.register(self.close)
                    self._closed_at_exit = True
            else:  # another thread made one meanwhile
                made.shared.close()
            kept.shared.clone()
            return kept

    def _fresh(self, key: bytes) -> _Kept | None:
        """Return the kept object of ``key`` unless missing or too old (under the lock)."""
        if self._pid != os.getpid():  # a forked child: the parent's objects are not its own
            self._kept = OrderedDict()
            self._pid = os.getpid()
        kept = self._kept.get(key)
        if kept is not None and time.monotonic() - kept.born > self.max_age:
            self._let_go(key)
            return None
        if kept is not None:
            self._kept.move_to_end(key)
        return kept

    def _let_go(self, key: bytes) -> None:
        """Drop the kept object of ``key`` and close its idle sessions (the object closes
        once no connection holds it)."""
        kept = self._kept.pop(key)
        for conn, _ in kept.idle:
            _close(conn)
        kept.idle = []
        try:
            kept.shared.close()
        except Exception:  # a driver error on close: nothing more to do with it
            log.debug("adbc database close failed", exc_info=True)

    def close(self) -> None:
        """Let go of every kept object (each closes after its last open connection)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            while self._kept:
                self._let_go(next(iter(self._kept)))


def _key(uri: str) -> bytes:
    return hashlib.sha256(uri.encode()).digest()  # the URI holds the password


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # a session the server ended: nothing more to do with it
        log.debug("adbc connection close failed", exc_info=True)


ADBC_DATABASES = AdbcDatabases()
"""This process's ADBC database objects (PostgreSQL sinks connect through it)."""
