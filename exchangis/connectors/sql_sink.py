"""The SQL sink: one transaction per task, created/cleared in ``open``, published in
``commit``; backends fill in the driver hooks.

Rows a table refuses are found by splitting the batch under savepoints; the task's ledger
entry fences the commit (:mod:`exchangis.connectors.ledger`); the stage steps of a channelled
overwrite come from :mod:`exchangis.connectors.sql_stages`.
"""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors import ledger
from exchangis.connectors.base import SQL_WRITE_MODES, Capabilities, Endpoint, Reject, Sink
from exchangis.connectors.dialect import Dialect, Staging
from exchangis.connectors.driver import ErrorClass, fetch_all, translate_errors
from exchangis.connectors.ledger import Fence
from exchangis.connectors.naming import validate_column, validate_keys, validate_table
from exchangis.connectors.options import BATCH_SIZE, LEDGER, Kind, Option, option_error, write_mode
from exchangis.connectors.sql_stages import ChannelStages
from exchangis.errors import (
    BulkRowRefusedError,
    InvalidInputError,
    RecordError,
    TerminalConnectorError,
)

log = logging.getLogger(__name__)


class SqlSink(ChannelStages, Sink):
    """One transaction per sink: created/cleared in ``open``, published in ``commit``."""

    options: ClassVar[tuple[Option, ...]] = (
        write_mode(SQL_WRITE_MODES),
        BATCH_SIZE,
        Option(
            "primaryKeys",
            Kind.LIST,
            "Key columns: a created table's primary key, and what upsert matches rows on.",
            check=validate_keys,
        ),
        Option(
            "createTable",
            Kind.BOOLEAN,
            "Create a missing table from the data's columns (else the task fails).",
            default=True,
        ),
        LEDGER,
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_modes=SQL_WRITE_MODES, create_table=True, atomic=True, ledger=True
    )
    dialect: ClassVar[Dialect]

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        validate_table(endpoint.table)
        self.mode: str = self.opts["writeMode"]
        self.chunk_size: int | None = self.opts["batchSize"]
        self.primary_keys: list[str] | None = self.opts["primaryKeys"]
        """Key columns: the created table's PRIMARY KEY, and what upsert matches rows on."""
        if self.mode == "upsert" and not self.primary_keys:
            raise option_error(
                "writeMode upsert needs option primaryKeys (the key columns: a list of names"
                " or a comma string)"
            )
        self.create_missing: bool = self.opts["createTable"]
        """Whether a missing table is created from the data's schema (else: a terminal error)."""
        self._staging: Staging | None = None
        """The staging table of an upsert (None: batches go into the target)."""
        self._conn: Any = None
        self._schema: pa.Schema | None = None
        self._in_txn = False
        self._session_locked = False
        """Whether the connection holds a lock until it closes."""
        self._clean = False
        """Whether the connection's last transaction committed and nothing ran on it since
        (a driver may then hand the session on: :meth:`_release`)."""
        self._rejects: list[Reject] = []
        self.keeps_ledger: bool = self.opts["ledger"]
        """Whether commits are fenced through the database's ``exg_ledger`` table."""
        self._fence: Fence | None = None
        self._written = 0

    # hooks -------------------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any:
        """Open and return a driver connection with autocommit off."""

    @abstractmethod
    def _classify(self, exc: BaseException) -> ErrorClass | None:
        """Map a driver exception to a connector error class."""

    @abstractmethod
    def _begin(self) -> None:
        """Start the transaction (no-op when the driver starts it implicitly)."""

    @abstractmethod
    def _exists(self, name: str) -> bool:
        """Return whether the table ``name`` (``table`` or ``schema.table``) exists."""

    def _table_exists(self) -> bool:
        """Return whether the target table exists."""
        return self._exists(self.endpoint.table)

    @abstractmethod
    def _execute(self, sql: str) -> None:
        """Run one statement inside the transaction."""

    @abstractmethod
    def _write_rows(self, batch: pa.RecordBatch) -> None:
        """Insert the rows of ``batch`` inside the transaction."""

    def _commit(self) -> None:
        self._conn.commit()

    def _rollback(self) -> None:
        self._conn.rollback()

    def _release(self) -> None:
        try:
            self._conn.close()
        except Exception:  # closing a broken connection: nothing left to do
            log.debug("close failed table=%s", self.endpoint.table, exc_info=True)

    # contract ----------------------------------------------------------------------------------
    def _errors(self, action: str, *, hide_cause: bool = False) -> Any:
        return translate_errors(
            self._classify, self.endpoint.connect, action, hide_cause=hide_cause
        )

    def _catalog(self, sql: str) -> list[tuple[Any, ...]]:
        """Return the rows of a catalog query (no parameters) run on the sink's connection."""
        return fetch_all(self._conn, sql)

    @property
    def write_table(self) -> str:
        """Return the table batches go into: the target, or the staging table of an upsert."""
        return self._staging.stage if self._staging is not None else self.endpoint.table

    def check_columns(self, names: Sequence[str]) -> None:
        """Check that ``primaryKeys`` are among the written columns ``names``.

        Raises:
            InvalidInputError: a key column is not written.
        """
        missing = [k for k in self.primary_keys or () if k not in names]
        if missing:
            raise option_error(
                f"option primaryKeys: {', '.join(missing)} not among the written columns"
                f" ({', '.join(names)})"
            )

    def _check_upsert_key(self) -> None:
        """Fail unless the target has a primary key or unique index on exactly the keys."""
        keys = self.primary_keys or []
        indexes: dict[str, set[str]] = {}
        expressions: set[str] = set()  # indexes on an expression: no upsert matches on them
        for index, column in self._catalog(self.dialect.unique_keys(self.endpoint.table)):
            if column is None:
                expressions.add(str(index))
            else:
                indexes.setdefault(str(index), set()).add(str(column).casefold())
        wanted = {k.casefold() for k in keys}
        if not any(cols == wanted for name, cols in indexes.items() if name not in expressions):
            raise TerminalConnectorError(
                f"table {self.endpoint.table} has no primary key or unique index on exactly"
                f" ({', '.join(keys)}): writeMode upsert needs one (add it, or let the sink"
                " create the table)"
            )

    def _start_stage(self, schema: pa.Schema) -> None:
        """Create the staging table that batches go into until the merge at commit."""
        token = uuid.uuid4().hex[:16]
        stage = self.dialect.stage_table(self.endpoint.table, f"exg_stage_{token}")
        self._staging = Staging(
            self.endpoint.table, stage, schema.names, self.primary_keys or [], f"exg_ord_{token}"
        )
        for sql in self.dialect.create_stage(self._staging):
            self._execute(sql)

    @contextmanager
    def _transaction(self, action: str) -> Iterator[None]:
        """Connect (unless a session kept its connection) and begin; driver errors of the body
        are reported as ``action`` failing."""
        self._clean = False
        if self._conn is None:
            with self._errors(f"connect to {self.endpoint.describe()}", hide_cause=True):
                self._conn = self._connect()
        with self._errors(f"{action} {self.endpoint.describe()}"):
            self._begin()
            self._in_txn = True
            yield

    def open(self, schema: pa.Schema) -> None:
        """Connect, begin, create the table when missing and clear it in overwrite mode.

        In upsert mode, check the target's key and create the staging table the batches go to.
        """
        for name in schema.names:
            validate_column(name)
        if len(set(schema.names)) != len(schema.names):
            raise InvalidInputError("duplicate column names in the data to write")
        self.check_columns(schema.names)
        self._schema = schema
        if self.endpoint.shared and self.create_missing:
            self._create_shared(schema)
        try:
            with self._transaction("prepare"):
                like = self.endpoint.like
                if like and self._exists(like):  # a stage: always a fresh copy of the model
                    if self._table_exists():  # left by an earlier attempt (MySQL DDL commits)
                        self._execute(f"DROP TABLE {self.dialect.quote_table(self.endpoint.table)}")
                    self._execute(self.dialect.create_like(self.endpoint.table, like))
                elif not self._table_exists():
                    if not self.create_missing:
                        raise TerminalConnectorError(
                            f"table {self.endpoint.table} does not exist and createTable is false"
                        )
                    self._execute(
                        self.dialect.create_table(self.endpoint.table, schema, self.primary_keys)
                    )
                if self.mode == "overwrite":
                    self._execute(f"DELETE FROM {self.dialect.quote_table(self.endpoint.table)}")
                elif self.mode == "upsert":
                    self._check_upsert_key()
                    self._start_stage(schema)
        except BaseException:
            self.close()
            raise

    def write(self, batch: pa.RecordBatch) -> int:
        """Insert ``batch`` inside the open transaction; return the rows written.

        Rows the table refuses (:class:`RecordError`: a value or a constraint) are found by
        splitting the batch in halves under savepoints, down to single rows; those go to
        :meth:`take_rejects` and the others are written.
        """
        if not self._in_txn:
            raise TerminalConnectorError("sink is not open")
        if batch.num_rows == 0:
            return 0
        written = self._write_split(batch)
        self._written += written
        return written

    def _write_split(self, batch: pa.RecordBatch, depth: int = 0) -> int:
        action = f"write {self.endpoint.describe()}"
        if not self.splits:
            try:
                with self._errors(action):
                    self._write_rows(batch)
            except RecordError as exc:
                raise BulkRowRefusedError(f"a row was refused: {exc.message}") from None
            return int(batch.num_rows)
        # One name per depth: MySQL replaces a savepoint of the same name instead of nesting.
        savepoint = f"exchangis_batch_{depth}"
        with self._errors(action):
            self._execute(f"SAVEPOINT {savepoint}")
        try:
            with self._errors(action):
                self._write_rows(batch)
            written = batch.num_rows
        except RecordError as exc:
            with self._errors(action):
                self._execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            if batch.num_rows == 1:
                self._rejects.append(Reject(batch.to_pylist()[0], exc.message))
                written = 0
            else:
                half = batch.num_rows // 2
                written = self._write_split(batch.slice(0, half), depth + 1)
                written += self._write_split(batch.slice(half), depth + 1)
        with self._errors(action):
            self._execute(f"RELEASE SAVEPOINT {savepoint}")
        return int(written)

    # channel stages -----------------------------------------------------------------------------
    @contextmanager
    def _session(self, action: str, keep: bool = False) -> Iterator[None]:
        """Run a short transaction of its own (commit on success, roll back on error), then
        close the connection; with ``keep``, a session that ended well leaves it open for the
        next transaction (unless it took a lock the session holds: MySQL's ``GET_LOCK``)."""
        if self._in_txn:
            raise TerminalConnectorError("sink is already open")
        kept = False
        try:
            with self._transaction(action):
                yield
                self._end_committed()
            kept = keep and self._clean
        finally:
            if not kept:
                self.close()

    def _create_shared(self, schema: pa.Schema) -> None:
        """Create a missing table in a committed transaction of its own, under a lock: the
        other tasks writing it must see it, not race to create it too."""
        with self._session("create"):
            self._lock()
            if not self._table_exists():
                self._execute(
                    self.dialect.create_table(self.endpoint.table, schema, self.primary_keys)
                )

    def _lock(self, name: str | None = None) -> None:
        """Take the lock on a table's name (default: the target's) for the rest of this
        transaction or session."""
        table = name or self.endpoint.table
        statement = self.dialect.lock(f"exchangis.{'.'.join(validate_table(table))}")
        if statement:
            self._execute(statement)
            self._session_locked |= self.dialect.locks_session

    # the ledger (connectors/ledger.py) ----------------------------------------------------------
    def fence(self, fence: Fence) -> int | None:
        """Take the task's entry in the database's ``exg_ledger`` table (created when missing)
        in a committed transaction of its own; see :meth:`Sink.fence`."""
        if not self.keeps_ledger:
            return None
        self._fence = fence
        with self._session("keep the ledger of", keep=True):  # the data's connection next
            if not self._exists(ledger.TABLE):
                self._lock(ledger.TABLE)
                if not self._exists(ledger.TABLE):
                    self._execute(ledger.create_sql())
            # waits while an attempt's commit holds the entry, then sees its outcome
            self._execute(ledger.take_sql(fence, self.dialect.name))
            earlier = ledger.verdict(self._catalog(ledger.read_sql(fence)), fence)
        return earlier

    def _mark_committed(self) -> None:
        """Inside the data's transaction: mark the ledger entry committed while this attempt
        owns it; else raise (and the caller rolls back)."""
        if self._fence is None:
            return
        self._execute(ledger.mark_sql(self._fence, self._written))
        ledger.check_marked(self._catalog(ledger.read_sql(self._fence)), self._fence)

    @property
    def splits(self) -> bool:
        """Return whether a refused batch can be undone to a savepoint and split.

        False for a write that aborts the whole transaction on error (``BulkRowRefusedError``).
        """
        return True

    def take_rejects(self) -> list[Reject]:
        """Return (and forget) the rows refused since the last call."""
        rejects, self._rejects = self._rejects, []
        return rejects

    def commit(self) -> None:
        """Commit the transaction (upsert: merge the staged rows into the target first)."""
        if not self._in_txn:
            raise TerminalConnectorError("sink is not open")
        with self._errors(f"fence the commit to {self.endpoint.describe()}"):
            self._mark_committed()  # first: MySQL's DDL below would commit it with the rows
        if self._staging is not None:
            with self._errors(f"merge into {self.endpoint.describe()}"):
                self._execute(self.dialect.merge(self._staging))
                drop = self.dialect.drop_stage(self.write_table)
                if drop:
                    self._execute(drop)
        with self._errors(f"commit {self.endpoint.describe()}"):
            self._end_committed()

    def _end_committed(self) -> None:
        """Commit the open transaction; the session is then clean unless it holds a lock."""
        self._commit()
        self._in_txn = False
        self._clean = not self._session_locked

    def rollback(self) -> None:
        """Roll the transaction back; the table is left as it was."""
        if self._conn is None or not self._in_txn:
            return
        self._in_txn = False
        with self._errors(f"rollback {self.endpoint.describe()}"):
            self._rollback()

    def close(self) -> None:
        """Roll back anything uncommitted and close; safe twice."""
        if self._conn is None:
            return
        try:
            if self._in_txn:
                self._in_txn = False
                try:
                    self._rollback()
                except Exception:  # connection already broken: the server discards the txn
                    log.debug("rollback on close failed table=%s", self.endpoint.table)
        finally:
            self._release()
            self._conn = None
            self._session_locked = False
            self._clean = False
