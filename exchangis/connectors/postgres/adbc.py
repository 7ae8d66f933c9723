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

log = logging.getLogger(__name__)

ADBC_KEPT = 8
"""Most ADBC database objects a process keeps (the least recently used one goes first)."""
ADBC_KEPT_SECONDS = 600.0
"""Age at which a kept ADBC database object is made again (so that it reads the server's type
catalog afresh)."""


class _Kept:
    """One kept database object: its holder, when it was made, and the lock of its calls."""

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        """``adbc_driver_manager.dbapi._SharedDatabase``: a count of the object's holders (the
        cache, each open connection); the last one to let go closes the object."""
        self.born = time.monotonic()
        self.lock = threading.Lock()


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

    def __init__(self, size: int = ADBC_KEPT, max_age: float = ADBC_KEPT_SECONDS) -> None:
        self.size = size
        self.max_age = max_age
        self.made = 0
        """Database objects this process made and kept."""
        self._kept: OrderedDict[bytes, _Kept] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed_at_exit = False

    def connect(self, uri: str) -> Any:
        """Return a new DB-API connection (autocommit off) to ``uri``, made on the kept
        database object of ``uri`` (which is made first when there is none)."""
        from adbc_driver_manager import AdbcConnection
        from adbc_driver_manager.dbapi import Connection

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

    def _take(self, uri: str) -> _Kept:
        """Return the kept object of ``uri`` with one more hold on it (the caller lets go)."""
        import adbc_driver_postgresql
        from adbc_driver_manager.dbapi import _SharedDatabase

        key = hashlib.sha256(uri.encode()).digest()  # the URI holds the password
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
        """Drop the kept object of ``key`` (closed once no connection holds it)."""
        kept = self._kept.pop(key)
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


ADBC_DATABASES = AdbcDatabases()
"""This process's ADBC database objects (PostgreSQL sinks connect through it)."""
