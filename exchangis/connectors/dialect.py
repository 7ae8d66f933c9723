"""How one SQL backend quotes names, spells column types and stages writes (base class)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from exchangis.connectors.naming import number_literal, validate_column, validate_table
from exchangis.connectors.types import Rule, TypeTable, family, unsupported_type
from exchangis.errors import (
    InvalidInputError,
    TerminalConnectorError,
)

KEY_ALIAS = "exg_bulk_key"
"""The key column a keyset chunk repeats last (dropped from the batches)."""


@dataclass(frozen=True)
class Staging:
    """An upsert's staging table: where batches go until the merge into ``target`` at commit."""

    target: str
    stage: str
    columns: Sequence[str]
    """The written columns."""
    keys: Sequence[str]
    """The key columns an upsert matches rows by."""
    ordinal: str
    """The column (or the trigger, SQLite) that numbers rows in write order."""


class Dialect:
    """How one SQL backend quotes names and spells column types."""

    name: ClassVar[str] = "sql"
    quote_char: ClassVar[str] = '"'
    column_types: ClassVar[TypeTable]
    """The column type of each family of Arrow types, and what it reads back as."""
    key_column_types: ClassVar[TypeTable] = {}
    """Where a primary key column needs another type than :attr:`column_types` gives."""
    locks_session: ClassVar[bool] = False
    """Whether :meth:`lock` holds its lock until the session ends (else: the transaction)."""

    def quote(self, name: str) -> str:
        """Return a validated column name, quoted."""
        validate_column(name)
        return f"{self.quote_char}{name}{self.quote_char}"

    def quote_table(self, table: str) -> str:
        """Return a validated ``table`` or ``schema.table`` name, quoted part by part."""
        return ".".join(f"{self.quote_char}{p}{self.quote_char}" for p in validate_table(table))

    def rule(self, data_type: pa.DataType, key: bool = False) -> Rule:
        """Return the rule that stores ``data_type`` (``key``: in a primary key column).

        Raises:
            InvalidInputError: the dialect has no column for the type.
        """
        found = family(data_type)
        rule = self.key_column_types.get(found) if key else None
        rule = rule or self.column_types.get(found)
        if rule is None:
            raise unsupported_type(data_type, f"{self.name} has no column type for {found}")
        return rule

    def column_type(self, data_type: pa.DataType) -> str:
        """Return the column type that holds ``data_type`` (see :attr:`column_types`)."""
        return self.rule(data_type).column_type(data_type)

    def read_type(self, data_type: pa.DataType, key: bool = False) -> pa.DataType:
        """Return the Arrow type the column created for ``data_type`` reads back as."""
        return self.rule(data_type, key).read_type(data_type)

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
        return self.rule(data_type, key=True).column_type(data_type)

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

    def count(self, table: str, where: str | None, split: Mapping[str, Any] | None) -> str:
        """Return the query counting the rows a read selects."""
        return self._select(table, "count(*)", [where, self.range(split)])

    def key_span(
        self, table: str, key: str, where: str | None, split: Mapping[str, Any] | None
    ) -> str:
        """Return the query of the first and last ``key`` a read selects, as one row (NULLs:
        no rows). Each end is a ``LIMIT 1`` in key order: a descent of the key's index, which
        stops at the first row the ``where`` takes (MariaDB's ``MIN`` and ``MAX`` under a
        ``where`` would read every row)."""
        quoted = self.quote(key)
        rows = self._select(table, quoted, [where, self.range(split)])
        first, last = (f"({rows} ORDER BY {quoted} {way} LIMIT 1)" for way in ("ASC", "DESC"))
        return f"SELECT {first}, {last}"

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

    def create_stage(self, st: Staging) -> list[str]:
        """Return the statements that create the empty staging table inside the transaction:
        the written ``columns`` with ``target``'s types and no unique index (duplicate keys are
        allowed there), a check that refuses a NULL in a key column (that row becomes an error
        record: no upsert can match it), and, where the dialect needs it, an ``ordinal`` column
        that numbers the rows in the order they are written."""
        raise self._no_upsert()

    def merge(self, st: Staging) -> str:
        """Return the one statement that upserts the staged rows into ``target``: rows whose
        ``keys`` exist update every other written column, the others are inserted; among staged
        rows with the same key the last written wins."""
        raise self._no_upsert()

    def drop_stage(self, stage: str) -> str | None:
        """Return the statement that drops the staging table before COMMIT (None: not needed)."""
        return None

    def on_conflict(self, st: Staging, excluded: str) -> str:
        """Return ``ON CONFLICT (keys) DO UPDATE SET c = <excluded>.c, ...`` (``DO NOTHING``
        when every written column is a key)."""
        updates = [self.quote(c) for c in st.columns if c not in st.keys]
        action = (
            "DO UPDATE SET " + ", ".join(f"{c} = {excluded}.{c}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        return f"ON CONFLICT ({', '.join(self.quote(k) for k in st.keys)}) {action}"

    def _no_upsert(self) -> TerminalConnectorError:
        return TerminalConnectorError(f"{self.name} sinks do not support writeMode upsert")


KEYS_NOT_NULL = "primary_keys_not_null"
"""Name of the staging table's check that no key column is NULL (shown in its error)."""
