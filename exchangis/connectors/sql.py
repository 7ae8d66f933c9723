"""Shared SQL connector logic: identifiers, SELECT building, row/Arrow conversion, sink txns.

Backends (``mysql``, ``postgres``, ``sqlite``) subclass :class:`SqlSource` and :class:`SqlSink`
and fill in the driver hooks; everything here is driver-free.
"""

from __future__ import annotations

import logging
import re
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors import bulk, ledger
from exchangis.connectors.base import Endpoint, Reject, Sink, Source
from exchangis.connectors.ledger import Fence
from exchangis.errors import (
    BulkRowRefusedError,
    ConnectorError,
    ExchangisError,
    InvalidInputError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
    mask_secrets,
)

log = logging.getLogger(__name__)

_NAME = r"[\w$]{1,128}"
_TABLE_RE = re.compile(rf"^{_NAME}(?:\.{_NAME})?\Z")  # \Z: "$" would take a final newline
_COLUMN_RE = re.compile(rf"^{_NAME}\Z")

WRITE_MODES = ("append", "overwrite")
"""Write modes every sink takes."""
SQL_WRITE_MODES = (*WRITE_MODES, "upsert")
"""Write modes of the SQL sinks: ``upsert`` needs ``primaryKeys`` and a key on them."""
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})

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


def split_table(name: str) -> tuple[str | None, str]:
    """Return ``(schema, table)`` of a validated ``table`` or ``schema.table`` name."""
    parts = validate_table(name)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


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
        raise option_error(f"option {key} must be an integer, got {value!r}") from None
    if number <= 0 or isinstance(value, bool):
        raise option_error(f"option {key} must be a positive integer, got {value!r}")
    return number


def effective_batch_size(endpoint: Endpoint, batch_size: int) -> int:
    """Return the batch size to use: ``batchSize`` when smaller than the runner's ``batch_size``."""
    if batch_size <= 0:
        raise InvalidInputError(f"batch size must be positive, got {batch_size}")
    wanted = positive_int(endpoint, "batchSize")
    return min(batch_size, wanted) if wanted else batch_size


def option_error(message: str) -> InvalidInputError:
    """Return the error for a bad connector option (job save reports it under ``options``)."""
    return InvalidInputError(message, errors={"options": [message]})


def write_mode(endpoint: Endpoint, modes: Sequence[str] = WRITE_MODES) -> str:
    """Return the ``writeMode`` option (``append`` by default), one of ``modes``.

    File and memory sinks take the default ``modes`` (append, overwrite); the SQL sinks pass
    :data:`SQL_WRITE_MODES` (plus upsert).

    Raises:
        InvalidInputError: a mode this sink does not take, or an unknown mode.
    """
    mode = str(endpoint.option("writeMode", "append")).strip().lower()
    accepted = " or ".join(modes)
    if mode in SQL_WRITE_MODES and mode not in modes:
        raise option_error(
            f"writeMode {mode} is not supported by {endpoint.type} sinks (use {accepted});"
            " upsert needs a SQL sink (MYSQL, POSTGRESQL, SQLITE)"
        )
    if mode not in modes:
        raise option_error(f"unknown writeMode {mode!r} (use {accepted})")
    return mode


def parse_keys(value: Any) -> list[str] | None:
    """Return the ``primaryKeys`` option as a list of distinct, validated names (None: absent).

    Raises:
        InvalidInputError: not a list or comma string of plain column names, or a name twice.
    """
    if value is None or value in ("", []):
        return None
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        names = [part.strip() if isinstance(part, str) else "" for part in value]
    else:
        raise option_error("option primaryKeys must be a list of column names or a comma string")
    for name in names:
        if not name or not _COLUMN_RE.match(name):
            raise option_error(
                f"option primaryKeys: invalid column name {name!r}: use letters, digits, _ and $"
            )
    if len(set(names)) != len(names):
        raise option_error(f"option primaryKeys names a column twice: {', '.join(names)}")
    return names


def flag_option(endpoint: Endpoint, key: str, default: bool) -> bool:
    """Return a boolean option (true/false, also as text such as ``"false"`` or ``"0"``).

    Raises:
        InvalidInputError: any other value.
    """
    value = endpoint.option(key, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise option_error(f"option {key} must be true or false, got {value!r}")


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

    def create_table(
        self, table: str, schema: pa.Schema, primary_keys: Sequence[str] | None = None
    ) -> str:
        """Return the CREATE TABLE statement for ``schema``, with ``PRIMARY KEY (keys)``."""
        if len(schema) == 0:
            raise InvalidInputError("cannot create a table without columns")
        keys = list(primary_keys or ())
        cols = [
            f"{self.quote(f.name)} {self.key_column_type(f.type)} NOT NULL"
            if f.name in keys
            else f"{self.quote(f.name)} {self.column_type(f.type)}"
            for f in schema
        ]
        if keys:
            cols.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in keys)})")
        return f"CREATE TABLE {self.quote_table(table)} ({', '.join(cols)}){self.table_suffix()}"

    def key_column_type(self, data_type: pa.DataType) -> str:
        """Return the column type of a primary key column (by default that of any column)."""
        return self.column_type(data_type)

    def table_suffix(self) -> str:
        """Return what follows the column list in CREATE TABLE (engine, charset)."""
        return ""

    def select(
        self,
        table: str,
        columns: Sequence[str] | None,
        where: str | None,
        split: Mapping[str, Any] | None = None,
    ) -> str:
        """Return the SELECT for ``columns`` of ``table`` filtered by the ``where`` condition
        and, for a channel, by its key range.

        ``where`` is a trusted SQL condition from the job definition, run with the data source's
        credentials; the drivers used here refuse several statements in one call.
        """
        return self._select(table, self._columns(columns), [where, self.range(split)])

    def _columns(self, columns: Sequence[str] | None) -> str:
        return ", ".join(self.quote(c) for c in columns) if columns else "*"

    def _select(self, table: str, what: str, conditions: Sequence[str | None]) -> str:
        """Return ``SELECT what FROM table`` where every non-empty condition holds."""
        sql = f"SELECT {what} FROM {self.quote_table(table)}"
        parts = [f"({c.strip()})" for c in conditions if c and c.strip()]
        return f"{sql} WHERE {' AND '.join(parts)}" if parts else sql

    def keyset_select(
        self,
        table: str,
        columns: Sequence[str] | None,
        where: str | None,
        split: Mapping[str, Any] | None,
        key: str,
        after: Any,
        limit: int,
    ) -> str:
        """Return one chunk of a keyset read: the rows after key value ``after`` (None: from
        the start) in key order, at most ``limit``, with the key again as the last column."""
        quoted = self.quote(key)
        what = f"{self._columns(columns)}, {quoted} AS {self.quote(KEY_ALIAS)}"
        later = None if after is None else f"{quoted} > {number_literal(after)}"
        sql = self._select(table, what, [where, self.range(split), later])
        return f"{sql} ORDER BY {quoted} LIMIT {int(limit)}"

    def range(self, split: Mapping[str, Any] | None) -> str:
        """Return the condition of a channel's key range (``lower <= key < upper``, either end
        open; the first channel also takes the NULL keys); '' for no split."""
        if not split:
            return ""
        key = self.quote(str(split["key"]))
        parts = [
            f"{key} {op} {number_literal(split[end])}"
            for end, op in (("lower", ">="), ("upper", "<"))
            if split.get(end) is not None
        ]
        condition = " AND ".join(parts) or "1 = 1"
        return f"({condition}) OR {key} IS NULL" if split.get("nulls") else condition

    def bounds(self, table: str, key: str, where: str | None) -> str:
        """Return the query of the smallest and largest ``key`` of the rows ``where`` selects."""
        quoted = self.quote(key)
        return self._select(table, f"MIN({quoted}), MAX({quoted})", [where])

    def primary_key(self, table: str) -> str:
        """Return the query of the primary key's column names of ``table``, in key order."""
        raise InvalidInputError(f"{self.name} tables have no primary key lookup")

    def create_like(self, table: str, model: str) -> str:
        """Return the CREATE TABLE of an empty ``table`` with the columns of ``model``."""
        return f"CREATE TABLE {self.quote_table(table)} (LIKE {self.quote_table(model)})"

    def rename(self, table: str, new: str) -> str:
        """Return the statement that renames ``table`` to ``new`` (same schema)."""
        short = new.rsplit(".", maxsplit=1)[-1]
        return f"ALTER TABLE {self.quote_table(table)} RENAME TO {self.quote(short)}"

    def lock(self, name: str) -> str | None:
        """Return the statement that takes lock ``name`` until the connection's transaction
        (or session) ends (None: starting the transaction locks enough)."""
        return None

    def insert(self, table: str, columns: Sequence[str], placeholder: str) -> str:
        """Return a parametrised INSERT of ``columns``."""
        names = ", ".join(self.quote(c) for c in columns)
        marks = ", ".join(placeholder for _ in columns)
        return f"INSERT INTO {self.quote_table(table)} ({names}) VALUES ({marks})"

    # upsert: batches go into a session-temporary staging table, merged at commit ------------

    def unique_keys(self, table: str) -> str:
        """Return a query of ``(key name, column name)`` rows: the columns of every primary key
        and unique index of ``table`` that an upsert can match on (no partial index; a NULL
        column name stands for an expression)."""
        raise self._no_upsert()

    def stage_table(self, target: str, name: str) -> str:
        """Return the unquoted name the staging table ``name`` of ``target`` is written as."""
        raise self._no_upsert()

    def create_stage(
        self,
        stage: str,
        target: str,
        columns: Sequence[str],
        keys: Sequence[str],
        ordinal: str,
    ) -> list[str]:
        """Return the statements that create the empty staging table inside the transaction:
        the written ``columns`` with ``target``'s types and no unique index (duplicate keys are
        allowed there), a check that refuses a NULL in a key column (that row becomes an error
        record: no upsert can match it), and, where the dialect needs it, an ``ordinal`` column
        that numbers the rows in the order they are written."""
        raise self._no_upsert()

    def merge(
        self,
        target: str,
        stage: str,
        columns: Sequence[str],
        keys: Sequence[str],
        ordinal: str,
    ) -> str:
        """Return the one statement that upserts the staged rows into ``target``: rows whose
        ``keys`` exist update every other written column, the others are inserted; among staged
        rows with the same key the last written wins."""
        raise self._no_upsert()

    def drop_stage(self, stage: str) -> str | None:
        """Return the statement that drops the staging table before COMMIT (None: not needed)."""
        return None

    def _no_upsert(self) -> TerminalConnectorError:
        return TerminalConnectorError(f"{self.name} sinks do not support writeMode upsert")


KEYS_NOT_NULL = "primary_keys_not_null"
"""Name of the staging table's check that no key column is NULL (shown in its error)."""


def sql_literal(name: str) -> str:
    """Return a plain name as a SQL string literal (plain names hold no quote nor backslash)."""
    if not all(_COLUMN_RE.match(part) for part in name.split(".")):
        raise InvalidInputError(f"invalid name {name!r}: use letters, digits, _ and $")
    return f"'{name}'"


def fetch_all(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Return the rows of ``sql`` (no parameters) run on a DB-API connection."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


KEY_ALIAS = "exg_bulk_key"
"""The key column a keyset chunk repeats last (dropped from the batches)."""


def _numeric(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_decimal(data_type)


def _inner_bounds(lower: Any, upper: Any, channels: int) -> list[Any]:
    """Return up to ``channels - 1`` increasing bounds that cut [lower, upper] evenly."""
    if isinstance(lower, int) and isinstance(upper, int):
        span = upper - lower + 1
        points: list[Any] = [lower + span * k // channels for k in range(1, channels)]
    else:
        low, high = Decimal(str(lower)), Decimal(str(upper))
        points = [low + (high - low) * k / channels for k in range(1, channels)]
    unique = sorted({p for p in points if lower < p <= upper})
    return [p if isinstance(p, int) else str(p) for p in unique]


def number_literal(value: Any) -> str:
    """Return a number (int, or a decimal as text) as a SQL literal.

    Raises:
        InvalidInputError: ``value`` is not a finite number.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f"not a number: {value!r}") from None
    if not number.is_finite() or isinstance(value, bool):
        raise InvalidInputError(f"not a finite number: {value!r}")
    return format(number, "f")


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

    options: ClassVar[frozenset[str]] = frozenset({"where", "columns", "batchSize", "splitPk"})
    dialect: ClassVar[Dialect]

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        validate_table(endpoint.table)
        self.columns = parse_columns(endpoint.option("columns"))
        if endpoint.option("splitPk") is not None:
            validate_column(str(endpoint.option("splitPk")))
        positive_int(endpoint, "batchSize")
        self._conn: Any = None
        self._schema: pa.Schema | None = None
        self._converters: list[ColumnConverter | None] = []
        self._estimate: int | None = None
        self._estimated = False
        self._rows_read = 0
        self._bulk_reader: Iterator[pa.RecordBatch] | None = None

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

    def _bulk_url(self) -> str | None:
        """Return the connectorx URL of a bulk read (None: no bulk read for this source)."""
        return None

    def _describe(self, sql: str) -> tuple[pa.Schema, bool]:
        """Return the schema of ``sql`` (a query of no rows), and whether a bulk read keeps it.

        Only called when :meth:`_bulk_url` gives a URL.
        """
        raise NotImplementedError

    # contract ----------------------------------------------------------------------------------
    def _errors(self, action: str, *, hide_cause: bool = False) -> Any:
        return translate_errors(
            self._classify, self.endpoint.connect, action, hide_cause=hide_cause
        )

    def _ensure_connection(self) -> None:
        if self._conn is None:
            with self._errors(f"connect to {self.endpoint.describe()}", hide_cause=True):
                self._conn = self._connect()

    @property
    def bulk(self) -> bool:
        """Return whether rows are read by the bulk path (known after ``open``)."""
        return self._bulk_reader is not None

    def select_sql(self) -> str:
        """Return the SELECT this source runs (a channel's: its key range only)."""
        return self.dialect.select(
            self.endpoint.table, self.columns, self.endpoint.option("where"), self.endpoint.split
        )

    def _primary_key(self) -> list[str]:
        """Return the table's primary key columns (the catalog read's transaction is ended)."""
        try:
            rows = fetch_all(self._conn, self.dialect.primary_key(self.endpoint.table))
        finally:
            self._end_read()
        return [str(row[0]) for row in rows]

    def _bulk_key(self) -> str | None:
        """Return the one-column primary key a bulk read pages on (None: no such key)."""
        keys = self._primary_key()
        if len(keys) != 1:
            log.info(
                "no one-column primary key on %s: rows are read by the driver", self.endpoint.table
            )
            return None
        return keys[0]

    def _end_read(self) -> None:
        """End the catalog query's transaction (the read starts a fresh snapshot)."""
        self._conn.rollback()

    def _chunk_sql(self, key: str, after: Any, limit: int | None = None) -> str:
        return self.dialect.keyset_select(
            self.endpoint.table,
            self.columns,
            self.endpoint.option("where"),
            self.endpoint.split,
            key,
            after,
            bulk.CHUNK_ROWS if limit is None else limit,
        )

    def _keyset(self, url: str, key: str, keyed: pa.Schema) -> Iterator[pa.RecordBatch]:
        """Yield the rows in chunks of ``CHUNK_ROWS`` in key order, one connectorx query each.

        connectorx reads ahead of a slower consumer without bound; a chunk bounds that to
        ``CHUNK_ROWS`` rows whatever the table's size. Each chunk is its own snapshot.
        """
        after: Any = None
        schema = pa.schema(list(keyed)[:-1])
        while True:
            got = 0
            for batch in bulk.stream(url, self._chunk_sql(key, after), keyed, self._bulk_error):
                got += batch.num_rows
                after = batch.column(batch.num_columns - 1)[batch.num_rows - 1].as_py()
                yield pa.RecordBatch.from_arrays(batch.columns[:-1], schema=schema)
            if got < bulk.CHUNK_ROWS:
                return

    def split_points(self, channels: int) -> tuple[str, list[Any]]:
        """Return the split key and the ``channels - 1`` inner bounds of equal key ranges.

        The key is option ``splitPk``, else the table's one-column primary key; it must be
        numeric. The ranges cut the whole number line (the first and last are open), so every
        row falls in exactly one channel whatever the bounds are.

        Raises:
            InvalidInputError: no usable key.
            ConnectorError: the database could not be asked.
        """
        self._ensure_connection()
        table = self.endpoint.table
        with self._errors(f"find the split key of {self.endpoint.describe()}"):
            key = self.endpoint.option("splitPk")
            if key is None:
                keys = self._primary_key()
                if len(keys) != 1:
                    raise InvalidInputError(
                        f"table {table} has no one-column primary key: set option splitPk to a"
                        " numeric column to split it into channels"
                    )
                key = keys[0]
            key = validate_column(str(key))
            where = self.endpoint.option("where")
            lower, upper = fetch_all(self._conn, self.dialect.bounds(table, key, where))[0]
            self._end_read()
        if lower is None:
            return key, []
        if not all(isinstance(v, int | float | Decimal) for v in (lower, upper)) or isinstance(
            lower, bool
        ):
            raise InvalidInputError(f"split key {key} of table {table} is not numeric")
        return key, _inner_bounds(lower, upper, channels)

    def open(self) -> pa.Schema:
        """Connect, take the estimate, start streaming and return the schema."""
        self._ensure_connection()
        self.estimate()
        sql = self.select_sql()
        with self._errors(f"read {self.endpoint.describe()}"):
            url = self._bulk_url()
            key = self._bulk_key() if url is not None else None
            if url is not None and key is not None:
                keyed, exact = self._describe(self._chunk_sql(key, None, limit=0))
                if exact and _numeric(keyed.field(len(keyed) - 1).type):
                    self._schema = pa.schema(list(keyed)[:-1])
                    self._bulk_reader = self._keyset(url, key, keyed)
                    return self._schema
            self._schema, self._converters = self._start(sql)
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
        if self._bulk_reader is not None:
            for batch in self._bulk_reader:
                for start in range(0, batch.num_rows, size):
                    part = batch.slice(start, size)
                    self._rows_read += part.num_rows
                    yield part
            return
        while True:
            with self._errors(f"read {self.endpoint.describe()}"):
                rows = self._fetch(size)
            if not rows:
                return
            batch = rows_to_batch(rows, self._schema, self._converters, self._rows_read + 1)
            self._rows_read += len(rows)
            yield batch

    def _bulk_error(self, message: str, lost: bool) -> ConnectorError:
        """Return the connector error for a failed bulk read (no password in the message).

        A lost connection is transient; anything else (a value connectorx cannot read, such as
        a MySQL zero date) asks the runner to read again with the driver, which names the
        column and row at fault.
        """
        cls = TransientConnectorError if lost else BulkRowRefusedError
        text = scrub(message, self.endpoint.connect)
        return cls(f"bulk read of {self.endpoint.describe()} failed: {text}")

    def close(self) -> None:
        """Close the cursor and connection; safe twice."""
        if self._bulk_reader is not None:
            close = getattr(self._bulk_reader, "close", None)
            if close is not None:
                close()
            self._bulk_reader = None
        if self._conn is not None:
            self._release()
            self._conn = None


class SqlSink(Sink):
    """One transaction per sink: created/cleared in ``open``, published in ``commit``."""

    options: ClassVar[frozenset[str]] = frozenset(
        {"writeMode", "batchSize", "primaryKeys", "createTable", "ledger"}
    )
    dialect: ClassVar[Dialect]
    fenced: ClassVar[bool] = True

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        validate_table(endpoint.table)
        self.mode = write_mode(endpoint, SQL_WRITE_MODES)
        self.chunk_size = positive_int(endpoint, "batchSize")
        self.primary_keys = parse_keys(endpoint.option("primaryKeys"))
        """Key columns: the created table's PRIMARY KEY, and what upsert matches rows on."""
        if self.mode == "upsert" and not self.primary_keys:
            raise option_error(
                "writeMode upsert needs option primaryKeys (the key columns: a list of names"
                " or a comma string)"
            )
        self.create_missing = flag_option(endpoint, "createTable", True)
        """Whether a missing table is created from the data's schema (else: a terminal error)."""
        self._ordinal = ""
        self.write_table = endpoint.table
        """The table batches go into: the target, or a staging table (upsert)."""
        self._conn: Any = None
        self._schema: pa.Schema | None = None
        self._in_txn = False
        self._rejects: list[Reject] = []
        self.keeps_ledger = flag_option(endpoint, "ledger", True)
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
        self._ordinal = f"exg_ord_{token}"
        for sql in self.dialect.create_stage(
            stage, self.endpoint.table, schema.names, self.primary_keys or [], self._ordinal
        ):
            self._execute(sql)
        self.write_table = stage

    @contextmanager
    def _transaction(self, action: str) -> Iterator[None]:
        """Connect and begin; driver errors of the body are reported as ``action`` failing."""
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
    def _session(self, action: str) -> Iterator[None]:
        """Run a short transaction of its own (commit on success, roll back on error)."""
        if self._conn is not None:
            raise TerminalConnectorError("sink is already open")
        try:
            with self._transaction(action):
                yield
                self._commit()
                self._in_txn = False
        finally:
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

    # the ledger (connectors/ledger.py) ----------------------------------------------------------
    def fence(self, fence: Fence) -> int | None:
        """Take the task's entry in the database's ``exg_ledger`` table (created when missing)
        in a committed transaction of its own; see :meth:`Sink.fence`."""
        if not self.keeps_ledger:
            return None
        self._fence = fence
        with self._session("keep the ledger of"):
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

    def drop_tables(self, names: Sequence[str]) -> int:
        """Drop the tables ``names`` that exist (stages nothing needs); return how many."""
        dropped = 0
        with self._session("drop stages of"):
            for name in names:
                validate_table(name)
                if self._exists(name):
                    self._execute(f"DROP TABLE {self.dialect.quote_table(name)}")
                    dropped += 1
        return dropped

    def publish_stage(self, work: str, done: str) -> None:
        """Rename a channel's committed stage ``work`` to ``done`` (replacing an older one).

        A stage under its ``done`` name is complete: :meth:`swap_stages` waits for all of them.
        """
        with self._session("publish the stage of"):
            if self._exists(done):
                self._execute(f"DROP TABLE {self.dialect.quote_table(done)}")
            self._execute(self.dialect.rename(work, done))

    def swap_stages(self, stages: Sequence[str], columns: Sequence[str]) -> bool:
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
        if self.write_table != self.endpoint.table and self._schema is not None:
            with self._errors(f"merge into {self.endpoint.describe()}"):
                self._execute(
                    self.dialect.merge(
                        self.endpoint.table,
                        self.write_table,
                        self._schema.names,
                        self.primary_keys or [],
                        self._ordinal,
                    )
                )
                drop = self.dialect.drop_stage(self.write_table)
                if drop:
                    self._execute(drop)
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
