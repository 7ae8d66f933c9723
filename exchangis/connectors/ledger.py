"""A sink's ledger: which attempt of a task may commit its rows, and whether one has.

A task's attempts share a key (execution, task, run); each attempt is an owner (its claim
token). Before writing, an attempt takes the key's entry (``fence``): an entry that an
earlier attempt committed means the rows are in already, and nothing is written again. At
commit, inside the sink's own transaction (files: under the file's lock, before the rename),
the attempt marks the entry committed only while it still owns it; when a newer attempt took
the entry meanwhile, the stale commit fails instead. So a task's rows land once whatever
attempts overlap — a worker SIGSTOPped past its heartbeat and resumed, a connection lost
during COMMIT (the retry reads the ledger to learn whether that commit happened).

SQL sinks keep the ledger in a table ``exg_ledger`` of the sink database (created when
missing); FILE sinks in a hidden JSON file beside the target (``.<name>.exg-ledger``), under
an exclusive lock on the target's directory that also makes concurrent writers of one file
take turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchangis.errors import InvalidInputError, TerminalConnectorError

TABLE = "exg_ledger"
"""The ledger table of a SQL sink database."""
TOKEN = re.compile(r"^[A-Za-z0-9:/_.-]{1,100}\Z")
"""What keys and owners look like: safe to write as SQL literals."""
FILE_ENTRIES = 1000
"""Most entries a file's ledger keeps (the oldest committed ones go first)."""


class FencedOffError(TerminalConnectorError):
    """A newer attempt owns the task's ledger entry: this attempt must not commit."""


@dataclass(frozen=True)
class Fence:
    """One attempt's claim on its task's ledger entry."""

    key: str
    """The task's run: ``<execution>/<task>/<run>``."""
    owner: str
    """The attempt (its claim token)."""

    def __post_init__(self) -> None:
        for value in (self.key, self.owner):
            if not TOKEN.match(value):
                raise InvalidInputError(f"ledger key or owner {value!r} is not a plain token")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


# -- SQL -----------------------------------------------------------------------------------------
def create_sql() -> str:
    """Return the ledger table's CREATE TABLE (portable: PostgreSQL, MySQL, SQLite)."""
    return (
        f"CREATE TABLE {TABLE} (task_key VARCHAR(100) NOT NULL PRIMARY KEY,"
        " owner VARCHAR(64) NOT NULL, committed INTEGER NOT NULL, written BIGINT NOT NULL,"
        " updated_at VARCHAR(32) NOT NULL)"
    )


def take_sql(fence: Fence, dialect: str) -> str:
    """Return one upsert that makes ``fence.owner`` the owner of the entry: inserted when
    missing, taken over while uncommitted, left alone once committed. One statement on the
    entry's own key: fences of other tasks never wait on (or deadlock over) a range lock, as
    an UPDATE-then-INSERT does in InnoDB."""
    insert = (
        f"INSERT INTO {TABLE} (task_key, owner, committed, written, updated_at)"
        f" VALUES ('{fence.key}', '{fence.owner}', 0, 0, '{_now()}')"
    )
    if dialect == "mysql":
        return (
            f"{insert} ON DUPLICATE KEY UPDATE owner = IF(committed = 0, VALUES(owner), owner),"
            " updated_at = IF(committed = 0, VALUES(updated_at), updated_at)"
        )
    return (
        f"{insert} ON CONFLICT (task_key) DO UPDATE SET owner = excluded.owner,"
        f" updated_at = excluded.updated_at WHERE {TABLE}.committed = 0"
    )


def read_sql(fence: Fence) -> str:
    """Return the SELECT of the entry's owner, committed flag and rows written."""
    return f"SELECT owner, committed, written FROM {TABLE} WHERE task_key = '{fence.key}'"


def mark_sql(fence: Fence, written: int) -> str:
    """Return the UPDATE that marks the entry committed, only while ``fence.owner`` owns it."""
    return (
        f"UPDATE {TABLE} SET committed = 1, written = {int(written)}, updated_at = '{_now()}'"
        f" WHERE task_key = '{fence.key}' AND owner = '{fence.owner}' AND committed = 0"
    )


def verdict(rows: list[tuple[Any, ...]], fence: Fence) -> int | None:
    """Read a ``read_sql`` answer after taking the entry: the rows an earlier attempt committed,
    or None when the entry is this attempt's."""
    if not rows:
        raise FencedOffError(f"ledger entry {fence.key} is missing")
    owner, committed, written = rows[0]
    if int(committed):
        return int(written)
    if owner != fence.owner:
        raise FencedOffError(f"task {fence.key} is owned by a newer attempt")
    return None


def check_marked(rows: list[tuple[Any, ...]], fence: Fence) -> None:
    """Raise unless a ``read_sql`` answer after ``mark_sql`` shows the entry ours and committed.

    Raises:
        FencedOffError: a newer attempt owns the entry (or it was committed already).
    """
    if not rows or rows[0][0] != fence.owner or not int(rows[0][1]):
        raise FencedOffError(
            f"this attempt no longer owns task {fence.key}: a newer attempt took it over, so "
            "nothing is committed"
        )


# -- files ---------------------------------------------------------------------------------------
class FileLedger:
    """The ledger of one target file, and the lock every writer of that file takes.

    Entries: key → ``{owner, state, written, inode, at}``, ``state`` one of ``owned``,
    ``pending`` (the rename is under way: ``inode`` names the file that would be the target)
    and ``committed``. Whoever takes the lock first settles a pending entry of a writer that
    died between its rename and its record: committed when the target is that file, else not.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = target.with_name(f".{target.name}.exg-ledger")
        self.entries: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[FileLedger]:
        """Hold the exclusive lock of the target's directory (commits of files in one
        directory take turns: each is short); read the ledger and settle pending entries."""
        descriptor = os.open(self.target.parent, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            self.entries = self._read()
            self._settle()
            yield self
        finally:
            os.close(descriptor)  # closing releases the lock

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TerminalConnectorError(f"ledger {self.path.name} is unreadable: {exc}") from None
        return dict(data) if isinstance(data, dict) else {}

    def _settle(self) -> None:
        inode = self.target.stat().st_ino if self.target.exists() else None
        changed = False
        for entry in self.entries.values():
            if entry.get("state") == "pending":
                entry["state"] = "committed" if entry.get("inode") == inode else "owned"
                changed = True
        if changed:
            self.save()

    def sweep(self) -> int:
        """Delete temp files of the target whose writer died (under :meth:`locked`): a live
        writer holds a lock on its temp file. Return how many were deleted."""
        swept = 0
        for stale in self.target.parent.glob(f".{self.target.name}.*.tmp"):
            try:
                descriptor = os.open(stale, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            finally:
                os.close(descriptor)
            stale.unlink(missing_ok=True)
            swept += 1
        return swept

    def save(self) -> None:
        """Write the ledger whole (a temp file renamed into place, fsynced)."""
        committed = [k for k, e in self.entries.items() if e.get("state") == "committed"]
        for key in sorted(committed, key=lambda k: self.entries[k].get("at", ""))[
            : max(0, len(self.entries) - FILE_ENTRIES)
        ]:
            del self.entries[key]
        descriptor, name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f"{self.path.name}.", suffix=".tmp"
        )
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(self.entries, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, self.path)

    def take(self, fence: Fence) -> int | None:
        """Take the entry for ``fence.owner`` (under :meth:`locked`): the rows an earlier
        attempt committed, or None when it is this attempt's to write."""
        entry = self.entries.get(fence.key)
        if entry is not None and entry.get("state") == "committed":
            return int(entry.get("written") or 0)
        self.entries[fence.key] = {"owner": fence.owner, "state": "owned", "at": _now()}
        self.save()
        return None

    def pending(self, fence: Fence, inode: int) -> None:
        """Record (under :meth:`locked`) that the file ``inode`` is about to become the target.

        Raises:
            FencedOffError: a newer attempt owns the entry, or it is committed already.
        """
        entry = self.entries.get(fence.key) or {}
        if entry.get("owner") != fence.owner or entry.get("state") != "owned":
            raise FencedOffError(
                f"this attempt no longer owns task {fence.key}: a newer attempt took it over, "
                "so nothing is committed"
            )
        entry.update(state="pending", inode=inode, at=_now())
        self.save()

    def committed(self, fence: Fence, written: int) -> None:
        """Record (under :meth:`locked`) that the rename happened."""
        self.entries[fence.key].update(state="committed", written=int(written), at=_now())
        self.save()
