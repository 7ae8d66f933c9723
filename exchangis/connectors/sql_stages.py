"""Channel stages of a SQL sink: how parallel channels of an overwrite publish their rows.

Each channel of an overwrite writes its own stage table; once committed it renames it to its
``done`` name (:meth:`ChannelStages.publish_stage`), and the last channel to finish replaces
the target's content with the rows of every stage in one transaction under a lock
(:meth:`ChannelStages.swap_stages`). Stages nothing needs any more are dropped
(:meth:`ChannelStages.drop_tables`). A mixin of :class:`~exchangis.connectors.sql_sink.SqlSink`,
built on its short sessions, locks and catalog hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import ClassVar, Protocol

from exchangis.connectors.base import Endpoint
from exchangis.connectors.dialect import Dialect
from exchangis.connectors.naming import validate_table
from exchangis.errors import TerminalConnectorError


class _StageHost(Protocol):
    """What the stage steps use of the sink they are mixed into."""

    endpoint: Endpoint
    dialect: ClassVar[Dialect]
    create_missing: bool

    def _session(self, action: str, keep: bool = False) -> AbstractContextManager[None]: ...

    def _exists(self, name: str) -> bool: ...

    def _execute(self, sql: str) -> None: ...

    def _lock(self, name: str | None = None) -> None: ...


class ChannelStages:
    """The stage steps of a channelled overwrite, each a committed session of its own."""

    def drop_tables(self: _StageHost, names: Sequence[str]) -> int:
        """Drop the tables ``names`` that exist (stages nothing needs); return how many."""
        dropped = 0
        with self._session("drop stages of"):
            for name in names:
                validate_table(name)
                if self._exists(name):
                    self._execute(f"DROP TABLE {self.dialect.quote_table(name)}")
                    dropped += 1
        return dropped

    def publish_stage(self: _StageHost, work: str, done: str) -> None:
        """Rename a channel's committed stage ``work`` to ``done`` (replacing an older one).

        A stage under its ``done`` name is complete: :meth:`swap_stages` waits for all of them.
        """
        with self._session("publish the stage of"):
            if self._exists(done):
                self._execute(f"DROP TABLE {self.dialect.quote_table(done)}")
            self._execute(self.dialect.rename(work, done))

    def swap_stages(self: _StageHost, stages: Sequence[str], columns: Sequence[str]) -> bool:
        """Replace the table's content with the rows of every stage, then drop the stages.

        Returns False (and changes nothing) unless every stage exists: another channel has not
        finished, or the swap was done already. One transaction under a lock on the table's
        name, so two channels finishing together swap once; running it again after a crash is
        safe (the content is replaced, not added to).
        """
        target = self.endpoint.table
        names = ", ".join(self.dialect.quote(c) for c in columns)
        swapped = False
        with self._session("replace the content of"):
            self._lock()
            if all(self._exists(stage) for stage in stages):
                if not self._exists(target):
                    if not self.create_missing:
                        raise TerminalConnectorError(
                            f"table {target} does not exist and createTable is false"
                        )
                    self._execute(self.dialect.create_like(target, stages[0]))
                self._execute(f"DELETE FROM {self.dialect.quote_table(target)}")
                for stage in stages:
                    self._execute(
                        f"INSERT INTO {self.dialect.quote_table(target)} ({names}) "
                        f"SELECT {names} FROM {self.dialect.quote_table(stage)}"
                    )
                for stage in stages:  # MySQL: the first DROP commits the rows
                    self._execute(f"DROP TABLE {self.dialect.quote_table(stage)}")
                swapped = True
        return swapped
