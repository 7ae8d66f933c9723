"""Shared SQL connector logic: identifiers, SELECT building, row/Arrow conversion, sink txns.

Backends (``mysql``, ``postgres``, ``sqlite``) subclass :class:`SqlSource` and :class:`SqlSink`
and fill in the driver hooks; everything here is driver-free.
"""

from __future__ import annotations

import logging
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors.base import Endpoint, Sink, Source
from exchangis.errors import (
    ConnectorError,
    ExchangisError,
    InvalidInputError,
    TerminalConnectorError,
    mask_secrets,
)

log = logging.getLogger(__name__)

_NAME = r"[\w$]{1,128}"
_TABLE_RE = re.compile(rf"^{_NAME}(?:\.{_NAME})?$")
_COLUMN_RE = re.compile(rf"^{_NAME}$")

WRITE_MODES = ("append", "overwrite")

ColumnConverter = Callable[[Sequence[Any], pa.DataType], pa.Array]
"""Turn one column of driver values into an Arrow array of the given type (raise when it can't)."""

ErrorClass = type[ConnectorError]
"""A connector error class (an alias: connector classes shadow ``type`` with their own)."""

Classifier = Callable[[BaseException], "ErrorClass | None"]
"""Map a driver exception to the ConnectorError class to raise, or None to let it through."""


# --- identifiers and options -------------------------------------------------------------------


def validate_table(name: str) -> list[str]:
    """Return the parts of a ``table`` or ``schema.table`` name.

    Raises:
        InvalidInputError: the name is not plain (letters, digits, ``_``, ``$``, one dot).
    """
    if not isinstance(name, str) or not _TABLE_RE.match(name):
        raise InvalidInputError(f"invalid table name {name!r}: use letters, digits, _ and $")
    return name.split(".")


def validate_column(name: str) -> str:
    """Return ``name`` when it is a plain column name.

    Raises:
        InvalidInputError: the name holds anything but letters, digits, ``_`` and ``$``.
    """
    if not isinstance(name, str) or not _COLUMN_RE.match(name):
        raise InvalidInputError(f"invalid column name {name!r}: use letters, digits, _ and $")
    return name


def parse_columns(value: Any) -> list[str] | None:
    """Return the ``columns`` option as a list of validated names (None: all columns)."""
    if value is None or value in ("", []):
        return None
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        names = [str(part).strip() for part in value]
    else:
        raise InvalidInputError("option columns must be a list of names or a comma string")
    if not names or any(not n for n in names):
        raise InvalidInputError("option columns holds an empty name")
    return [validate_column(n) for n in names]


def positive_int(endpoint: Endpoint, key: str, default: int | None = None) -> int | None:
    """Return an integer option that must be positive when given."""
    value = endpoint.option(key, default)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"option {key} must be an integer, got {value!r}") from None
    if number <= 0 or isinstance(value, bool):
        raise InvalidInputError(f"option {key} must be a positive integer, got {value!r}")
    return number


def effective_batch_size(endpoint: Endpoint, batch_size: int) -> int:
    """Return the batch size to use: ``batchSize`` when smaller than the runner's ``batch_size``."""
    if batch_size <= 0:
        raise InvalidInputError(f"batch size must be positive, got {batch_size}")
    wanted = positive_int(endpoint, "batchSize")
    return min(batch_size, wanted) if wanted else batch_size


def write_mode(endpoint: Endpoint) -> str:
    """Return the ``writeMode`` option (``append`` by default).

    Raises:
        InvalidInputError: upsert (not supported yet) or an unknown mode.
    """
    mode = str(endpoint.option("writeMode", "append")).strip().lower()
    if mode == "upsert":
        raise InvalidInputError("writeMode upsert is not supported yet")
    if mode not in WRITE_MODES:
        raise InvalidInputError(f"unknown writeMode {mode!r} (use append or overwrite)")
    return mode


def scrub(message: str, connect: Mapping[str, Any] | None = None) -> str:
    """Return ``message`` without ``password=...`` text nor the password itself."""
    secret = (connect or {}).get("password")
    return mask_secrets(message, [secret] if isinstance(secret, str) and len(secret) >= 3 else [])


def probe_server(
    connect: Mapping[str, Any],
    label: str,
    default_port: int,
    opener: Callable[[Mapping[str, Any]], Any],
    classify: Classifier,
) -> None:
    """Connect and run ``SELECT 1``: the data source test of a database server.

    Raises:
        ConnectorError: the server cannot be reached or refuses the credentials (no password).
    """
    where = f"{connect.get('host')}:{connect.get('port') or default_port}"
    with translate_errors(classify, connect, f"connect to {label} {where}", hide_cause=True):
        conn = opener(connect)
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            conn.close()


# --- dialects ----------------------------------------------------------------------------------


class Dialect:
    """How one SQL backend quotes names and spells column types."""

    name: ClassVar[str] = "sql"
    quote_char: ClassVar[str] = '"'

    def quote(self, name: str) -> str:
        """Return a validated column name, quoted."""
        validate_column(name)
        return f"{self.quote_char}{name}{self.quote_char}"

    def quote_table(self, table: str) -> str:
        """Return a validated ``table`` or ``schema.table`` name, quoted part by part."""
        return ".".join(f"{self.quote_char}{p}{self.quote_char}" for p in validate_table(table))

    @abstractmethod
    def column_type(self, data_type: pa.DataType) -> str:
        """Return the column type that holds ``data_type`` exactly."""

    def create_table(self, table: str, schema: pa.Schema) -> str:
        """Return the CREATE TABLE statement for ``schema``."""
        if len(schema) == 0:
            raise InvalidInputError("cannot create a table without columns")
        cols = ", ".join(f"{self.quote(f.name)} {self.column_type(f.type)}" for f in schema)
        return f"CREATE TABLE {self.quote_table(table)} ({cols}){self.table_suffix()}"

    def table_suffix(self) -> str:
        """Return what follows the column list in CREATE TABLE (engine, charset)."""
        return ""

    def select(self, table: str, columns: Sequence[str] | None, where: str | None) -> str:
        """Return the SELECT for ``columns`` of ``table`` filtered by the ``where`` condition.

        ``where`` is a trusted SQL condition from the job definition, run with the data source's
        credentials; the drivers used here refuse several statements in one call.
        """
        cols = ", ".join(self.quote(c) for c in columns) if columns else "*"
        sql = f"SELECT {cols} FROM {self.quote_table(table)}"
        condition = (where or "").strip()
        if condition:
            sql += f" WHERE ({condition})"
        return sql

    def insert(self, table: str, columns: Sequence[str], placeholder: str) -> str:
        """Return a parametrised INSERT of ``columns``."""
        names = ", ".join(self.quote(c) for c in columns)
        marks = ", ".join(placeholder for _ in columns)
        return f"INSERT INTO {self.quote_table(table)} ({names}) VALUES ({marks})"


def unsupported_type(data_type: pa.DataType) -> InvalidInputError:
    """Return the error for an Arrow type a SQL sink cannot create a column for."""
    return InvalidInputError(f"cannot store Arrow type {data_type} in a SQL column")


# --- rows <-> Arrow ----------------------------------------------------------------------------


def default_converter(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
    """Convert driver values that already have the right Python types."""
    return pa.array(values, type=data_type)


def per_value(func: Callable[[Any], Any]) -> ColumnConverter:
    """Return a converter that applies ``func`` to every non-NULL value, then builds the array."""

    def convert(values: Sequence[Any], data_type: pa.DataType) -> pa.Array:
        return pa.array([None if v is None else func(v) for v in values], type=data_type)

    return convert


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def column_to_array(
    values: Sequence[Any], field: pa.Field, convert: ColumnConverter | None, first_row: int
) -> pa.Array:
    """Convert one column; on failure name the column and the first row that does not fit.

    Raises:
        TerminalConnectorError: a value does not fit the column's type.
    """
    conv = convert or default_converter
    try:
        return conv(values, field.type)
    except (pa.ArrowException, ValueError, TypeError, ArithmeticError) as exc:
        # Slow path, only on failure: find the culprit value.
        for offset, value in enumerate(values):
            try:
                conv([value], field.type)
            except (pa.ArrowException, ValueError, TypeError, ArithmeticError) as one:
                raise TerminalConnectorError(
                    f"column {field.name!r}, row {first_row + offset}: value {_preview(value)} "
                    f"does not fit {field.type}: {one}"
                ) from None
        raise TerminalConnectorError(
            f"column {field.name!r}, rows from {first_row}: cannot convert to {field.type}: {exc}"
        ) from None


def rows_to_batch(
    rows: Sequence[Sequence[Any]],
    schema: pa.Schema,
    converters: Sequence[ColumnConverter | None],
    first_row: int = 1,
) -> pa.RecordBatch:
    """Turn driver rows into one record batch of ``schema``, converting column by column."""
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = [
        column_to_array(columns[i], schema.field(i), converters[i], first_row)
        for i in range(len(schema))
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def batch_to_rows(
    batch: pa.RecordBatch, prepare: Callable[[pa.Array], pa.Array] | None = None
) -> list[tuple[Any, ...]]:
    """Return the rows of ``batch`` as tuples, after ``prepare`` maps each column (in Arrow)."""
    columns = [
        (prepare(batch.column(i)) if prepare else batch.column(i)).to_pylist()
        for i in range(batch.num_columns)
    ]
    return list(zip(*columns, strict=True)) if columns else []


def chunks(rows: list[tuple[Any, ...]], size: int | None) -> Iterator[list[tuple[Any, ...]]]:
    """Yield ``rows`` in slices of at most ``size`` (all at once when None)."""
    if not size:
        yield rows
        return
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# --- errors ------------------------------------------------------------------------------------


@contextmanager
def translate_errors(
    classify: Classifier, connect: Mapping[str, Any], action: str, *, hide_cause: bool = False
) -> Iterator[None]:
    """Re-raise driver exceptions as connector errors whose message carries no password."""
    try:
        yield
    except ExchangisError:
        raise
    except Exception as exc:
        cls = classify(exc)
        if cls is None:
            raise
        error = cls(f"{action} failed: {scrub(str(exc).strip(), connect)}")
        if hide_cause:
            raise error from None
        raise error from exc


# --- base classes ------------------------------------------------------------------------------


class SqlSource(Source):
    """A SELECT streamed with a server-side cursor; backends implement the driver hooks."""

    options: ClassVar[frozenset[str]] = frozenset({"where", "columns", "batchSize"})
    dialect: ClassVar[Dialect]

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        validate_table(endpoint.table)
        self.columns = parse_columns(endpoint.option("columns"))
        positive_int(endpoint, "batchSize")
        self._conn: Any = None
        self._schema: pa.Schema | None = None
        self._converters: list[ColumnConverter | None] = []
        self._estimate: int | None = None
        self._estimated = False
        self._rows_read = 0

    # hooks -------------------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any:
        """Open and return a driver connection."""

    @abstractmethod
    def _classify(self, exc: BaseException) -> ErrorClass | None:
        """Map a driver exception to a connector error class."""

    @abstractmethod
    def _query_estimate(self) -> int | None:
        """Return the cheap row estimate of the table (connection open, no cursor streaming)."""

    @abstractmethod
    def _start(self, sql: str) -> tuple[pa.Schema, list[ColumnConverter | None]]:
        """Run ``sql`` on a streaming cursor; return the Arrow schema and column converters."""

    @abstractmethod
    def _fetch(self, size: int) -> Sequence[Sequence[Any]]:
        """Return up to ``size`` more rows (empty at the end)."""

    @abstractmethod
    def _release(self) -> None:
        """Close the cursor and the connection, ignoring errors."""

    # contract ----------------------------------------------------------------------------------
    def _errors(self, action: str, *, hide_cause: bool = False) -> Any:
        return translate_errors(
            self._classify, self.endpoint.connect, action, hide_cause=hide_cause
        )

    def _ensure_connection(self) -> None:
        if self._conn is None:
            with self._errors(f"connect to {self.endpoint.describe()}", hide_cause=True):
                self._conn = self._connect()

    def select_sql(self) -> str:
        """Return the SELECT this source runs."""
        return self.dialect.select(self.endpoint.table, self.columns, self.endpoint.option("where"))

    def open(self) -> pa.Schema:
        """Connect, take the estimate, start streaming and return the schema."""
        self._ensure_connection()
        self.estimate()
        with self._errors(f"read {self.endpoint.describe()}"):
            self._schema, self._converters = self._start(self.select_sql())
        return self._schema

    def estimate(self) -> int | None:
        """Return the table's row estimate from the catalog (None when unknown)."""
        if not self._estimated:
            self._ensure_connection()
            try:
                with self._errors("estimate"):
                    self._estimate = self._query_estimate()
            except ConnectorError as exc:
                log.info("estimate unavailable table=%s error=%s", self.endpoint.table, exc)
                self._estimate = None
            self._estimated = True
        return self._estimate

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield batches of at most ``batch_size`` rows (or ``batchSize`` when smaller)."""
        if self._schema is None:
            raise TerminalConnectorError("source is not open")
        size = effective_batch_size(self.endpoint, batch_size)
        while True:
            with self._errors(f"read {self.endpoint.describe()}"):
                rows = self._fetch(size)
            if not rows:
                return
            batch = rows_to_batch(rows, self._schema, self._converters, self._rows_read + 1)
            self._rows_read += len(rows)
            yield batch

    def close(self) -> None:
        """Close the cursor and connection; safe twice."""
        if self._conn is not None:
            self._release()
            self._conn = None


class SqlSink(Sink):
    """One transaction per sink: created/cleared in ``open``, published in ``commit``."""

    options: ClassVar[frozenset[str]] = frozenset({"writeMode", "batchSize", "primaryKeys"})
    dialect: ClassVar[Dialect]

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        validate_table(endpoint.table)
        self.mode = write_mode(endpoint)
        self.chunk_size = positive_int(endpoint, "batchSize")
        self._conn: Any = None
        self._schema: pa.Schema | None = None
        self._in_txn = False

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
    def _table_exists(self) -> bool:
        """Return whether the target table exists."""

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

    def open(self, schema: pa.Schema) -> None:
        """Connect, begin, create the table when missing and clear it in overwrite mode."""
        for name in schema.names:
            validate_column(name)
        if len(set(schema.names)) != len(schema.names):
            raise InvalidInputError("duplicate column names in the data to write")
        self._schema = schema
        with self._errors(f"connect to {self.endpoint.describe()}", hide_cause=True):
            self._conn = self._connect()
        try:
            with self._errors(f"prepare {self.endpoint.describe()}"):
                self._begin()
                self._in_txn = True
                if not self._table_exists():
                    self._execute(self.dialect.create_table(self.endpoint.table, schema))
                if self.mode == "overwrite":
                    self._execute(f"DELETE FROM {self.dialect.quote_table(self.endpoint.table)}")
        except BaseException:
            self.close()
            raise

    def write(self, batch: pa.RecordBatch) -> int:
        """Insert ``batch`` inside the open transaction."""
        if not self._in_txn:
            raise TerminalConnectorError("sink is not open")
        if batch.num_rows == 0:
            return 0
        with self._errors(f"write {self.endpoint.describe()}"):
            self._write_rows(batch)
        return int(batch.num_rows)

    def commit(self) -> None:
        """Commit the transaction."""
        if not self._in_txn:
            raise TerminalConnectorError("sink is not open")
        with self._errors(f"commit {self.endpoint.describe()}"):
            self._commit()
        self._in_txn = False

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
