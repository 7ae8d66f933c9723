"""The MySQL/MariaDB sink: one transaction of ``LOAD DATA LOCAL`` statements fed by
:class:`~exchangis.connectors.behind.Loader`, else strict multi-row INSERTs."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors import bulk
from exchangis.connectors.base import Endpoint
from exchangis.connectors.behind import Outcome, Part, WriteBehindSink
from exchangis.connectors.driver import ErrorClass
from exchangis.connectors.mysql.connection import (
    IDLE_SECONDS,
    NAME,
    classify,
    open_connection,
    sink_session,
    stream_local,
)
from exchangis.connectors.mysql.dialect import DIALECT
from exchangis.connectors.mysql.types import _prepare
from exchangis.connectors.naming import split_table
from exchangis.connectors.options import BULK
from exchangis.connectors.sql_sink import SqlSink
from exchangis.connectors.values import batch_to_rows, chunks
from exchangis.errors import RecordError

log = logging.getLogger(__name__)

LOADER_THREAD = "exchangis-mysql-load"
"""Name of the thread that runs a sink's ``LOAD DATA`` statements."""
QUEUE_BYTES = 8 * 2**20
"""Encoded bytes waiting for the server at most: the task encodes ahead while the server ends
a statement (a third of the loader's time), so PostgreSQL -> MariaDB takes 8 % less time than
with the 2 MiB other sinks wait with (docs/performance.md)."""
_LOAD_SAVEPOINT = "exchangis_load"


class MySqlSink(WriteBehindSink):
    """Write inside one transaction: ``LOAD DATA LOCAL INFILE`` of the batches, else INSERTs.

    The bulk path encodes each batch as MySQL's default tab-separated format with Arrow kernels
    and streams it into a ``LOAD DATA`` statement that a thread of its own runs
    (:class:`WriteBehindSink`), several batches a statement (``load_bytes``), while the caller
    reads and encodes the next batch. ``LOAD DATA LOCAL`` turns data errors into warnings (the
    server cannot stop the client's stream), so a statement that warns or loses rows is undone
    to a savepoint and its batches written again one by one: a load each, then strict
    multi-row INSERTs, which fail loudly on the bad row (an error record).
    """

    type = NAME
    dialect = DIALECT
    options = (*SqlSink.options, BULK)
    idle_seconds: ClassVar[int] = IDLE_SECONDS
    """The server closes the session once idle this long (see ``IDLE_SECONDS``; 0: never)."""
    loader_thread: ClassVar[str] = LOADER_THREAD
    queue_bytes: ClassVar[int] = QUEUE_BYTES

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.bulk = self.opts["bulk"] and bulk.available("pymysql")
        self._insert: str | None = None
        self._load: str | None = None
        self._flags: frozenset[str] | None = None

    def _connect(self) -> Any:
        conn = open_connection(self.endpoint.connect, self.endpoint.db, local_files=self.bulk)
        with conn.cursor() as cur:
            # Fail loudly instead of truncating or rounding values.
            cur.execute(
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''),"
                " 'STRICT_ALL_TABLES')"
            )
            timeouts = sink_session(self.idle_seconds)
            if timeouts:
                cur.execute(timeouts)
        return conn

    def _classify(self, exc: BaseException) -> ErrorClass | None:
        return classify(exc)

    def _begin(self) -> None:
        self._conn.begin()

    def _exists(self, name: str) -> bool:
        schema, table = split_table(name)
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
                (schema, table),
            )
            return cur.fetchone() is not None

    def _execute(self, sql: str) -> None:
        if sql.startswith("CREATE TABLE"):
            # DDL commits implicitly in MySQL: it runs before anything is written.
            sql = sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
        with self._conn.cursor() as cur:
            cur.execute(sql)

    def _behind_item(self, batch: pa.RecordBatch) -> tuple[Any, int] | None:
        """Return ``batch`` encoded as ``LOAD DATA``'s tab-separated text (None: a flag that is
        no boolean, or a type the encoder does not take: written at once, by rows)."""
        if not self.bulk:
            return None
        try:
            with self._errors(f"write {self.endpoint.describe()}"):
                flagged = self._text_flags(batch)
        except RecordError:  # a flag that is no boolean: find the rows at fault one by one
            return None
        if not all(bulk.tsv_supported(f.type) for f in flagged.schema):
            return None
        self._load_sql(flagged.schema.names)
        data = bulk.encode_tsv(flagged)  # meanwhile the server takes the batches before it
        return data, len(data)

    def _statement(self, pieces: Iterator[Any]) -> tuple[int, int]:
        """Run one ``LOAD DATA`` over ``pieces`` after a savepoint (undone when it warns)."""
        assert self._load is not None
        with self._conn.cursor() as cur:
            cur.execute(f"SAVEPOINT {_LOAD_SAVEPOINT}")
            loaded = stream_local(self._conn, cur, self._load, pieces)
            return loaded, int(cur.warning_count or 0)

    def _cut(self) -> None:
        sock = getattr(self._conn, "_sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)

    def _session_lost(self) -> bool:
        return not self._conn.open

    def _redo(self, redo: list[Part], failed: Outcome | None, error: BaseException | None) -> int:
        """Undo the statement that warned, took fewer rows than sent or failed on a row
        (``LOAD DATA LOCAL`` makes data errors warnings) to its savepoint, and write its
        batches and those after it again one by one (``SqlSink.write``: a load each, then
        strict INSERTs that find the rows at fault)."""
        log.info(
            "load data of %s rows%s; those rows and the %s after them are written again batch by"
            " batch",
            redo[0].rows,
            f" took {failed.loaded} with {failed.warnings} warnings" if failed else " failed",
            sum(part.rows for part in redo[1:]),
        )
        if failed is not None or error is not None:  # the statement ran: undo it
            with self._errors(f"write {self.endpoint.describe()}"):
                self._execute(f"ROLLBACK TO SAVEPOINT {_LOAD_SAVEPOINT}")
        return sum(SqlSink.write(self, batch) for part in redo for batch in part.batches)

    def _load_sql(self, names: Sequence[str]) -> str:
        """Return the ``LOAD DATA LOCAL INFILE %s`` statement of columns ``names``."""
        if self._load is None:
            columns = ", ".join(self.dialect.quote(n) for n in names)
            self._load = (
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.dialect.quote_table(self.write_table)}"
                f" CHARACTER SET utf8mb4 ({columns})"
            )
        return self._load

    def _write_rows(self, batch: pa.RecordBatch) -> None:
        batch = self._text_flags(batch)
        if self.bulk and all(bulk.tsv_supported(f.type) for f in batch.schema):
            with self._conn.cursor() as cur:
                cur.execute(f"SAVEPOINT {_LOAD_SAVEPOINT}")
                if self._load_batch(cur, batch):
                    cur.execute(f"RELEASE SAVEPOINT {_LOAD_SAVEPOINT}")
                    return
                cur.execute(f"ROLLBACK TO SAVEPOINT {_LOAD_SAVEPOINT}")
        self._insert_rows(batch)

    def _text_flags(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return ``batch`` with text bound for TINYINT(1)/BIT(1) columns as booleans.

        Strict mode refuses ``'true'`` for an integer column; ``true``/``false``/``1``/``0``
        text (what CSV holds) becomes 1/0, anything else fails that row.
        """
        if self._flags is None:
            schema, table = split_table(self.endpoint.table)
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s"
                    " AND (column_type LIKE 'tinyint(1)%%' OR column_type = 'bit(1)')",
                    (schema, table),
                )
                self._flags = frozenset(str(row[0]).casefold() for row in cur.fetchall())
        names = [
            i
            for i, f in enumerate(batch.schema)
            if f.name.casefold() in self._flags and pa.types.is_string(f.type)
        ]
        if not names:
            return batch
        arrays = list(batch.columns)
        for i in names:
            try:
                flags = pc.cast(pc.utf8_lower(pc.utf8_trim_whitespace(arrays[i])), pa.bool_())
            except pa.ArrowInvalid as exc:
                raise RecordError(f"column {batch.schema.field(i).name!r}: {exc}") from None
            arrays[i] = pc.cast(flags, pa.int8())
        fields = [
            pa.field(f.name, pa.int8()) if i in names else f for i, f in enumerate(batch.schema)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))

    def _load_batch(self, cur: Any, batch: pa.RecordBatch) -> bool:
        """Load ``batch``; return False when the server warned or did not take every row."""
        statement = self._load_sql(batch.schema.names)
        loaded = stream_local(self._conn, cur, statement, [bulk.encode_tsv(batch)])
        warnings = int(cur.warning_count or 0)  # the statement's own (from its OK packet)
        if loaded == batch.num_rows and not warnings:
            return True
        log.info(
            "load data took %s of %s rows with %s warnings; the batch is written with INSERTs",
            loaded,
            batch.num_rows,
            warnings,
        )
        return False

    def _insert_rows(self, batch: pa.RecordBatch) -> None:
        if self._insert is None:
            self._insert = self.dialect.insert(self.write_table, batch.schema.names, "%s")
        rows = batch_to_rows(batch, _prepare)
        with self._conn.cursor() as cur:
            for part in chunks(rows, self.chunk_size):
                cur.executemany(self._insert, part)
