"""The SQLite dialect: double-quoted names, declared column types that round-trip through the
source, and the catalog queries (pragmas), temporary staging table and ``INSERT ... ON
CONFLICT`` merge of the SQL sink."""

from __future__ import annotations

import pyarrow as pa

from exchangis.connectors.dialect import KEYS_NOT_NULL, Dialect, Staging
from exchangis.connectors.naming import sql_literal, validate_table
from exchangis.connectors.types import Family, Rule, same_decimal
from exchangis.errors import TerminalConnectorError


class SqliteDialect(Dialect):
    """Double-quoted names; declared types that round-trip through :class:`SqliteSource`."""

    name = "sqlite"
    quote_char = '"'

    def primary_key(self, table: str) -> str:
        """Return the primary key's columns of ``table`` in key order."""
        parts = validate_table(table)
        args = ", ".join(sql_literal(p) for p in reversed(parts))
        return f"SELECT name FROM pragma_table_info({args}) WHERE pk > 0 ORDER BY pk"

    def create_like(self, table: str, model: str) -> str:
        """Return CREATE TABLE ... AS SELECT of no row (the columns and their declared types)."""
        return (
            f"CREATE TABLE {self.quote_table(table)} AS "
            f"SELECT * FROM {self.quote_table(model)} WHERE 0"
        )

    # Declared types whose affinity keeps values exact, read back by ``arrow_type``.
    column_types = {
        Family.BOOLEAN: Rule("BOOLEAN", pa.bool_()),
        Family.INTEGER: Rule("INTEGER", pa.int64()),
        Family.UINT64: Rule(
            "INTEGER",
            pa.int64(),
            loss="INTEGER holds up to 2**63-1: the sink refuses larger values (error records)",
        ),
        Family.FLOAT32: Rule("REAL", pa.float64()),
        Family.FLOAT64: Rule("REAL", pa.float64()),
        # TEXT affinity: NUMERIC affinity would round to a 15-digit REAL.
        Family.DECIMAL: Rule("DECIMAL TEXT({precision},{scale})", same_decimal),
        Family.STRING: Rule("TEXT", pa.string()),
        Family.BINARY: Rule("BLOB", pa.binary()),
        Family.FIXED_BINARY: Rule("BLOB", pa.binary()),
        Family.DATE: Rule("DATE", pa.date32()),
        Family.TIMESTAMP: Rule("TIMESTAMP", pa.timestamp("us")),
        Family.TIMESTAMP_TZ: Rule("TIMESTAMPTZ", pa.timestamp("us", tz="UTC")),
        Family.TIME: Rule("TIME", pa.time64("us")),
        Family.NULL: Rule("TEXT", pa.string()),
    }

    def unique_keys(self, table: str) -> str:
        """Return the columns of the unique, non-partial indexes of ``table`` and of its
        PRIMARY KEY (an INTEGER PRIMARY KEY is the rowid: it has no index)."""
        parts = validate_table(table)
        schema = sql_literal(parts[0] if len(parts) == 2 else "main")
        name = sql_literal(parts[-1])
        return (
            f"SELECT il.name, ii.name FROM pragma_index_list({name}, {schema}) AS il"
            f" JOIN pragma_index_info(il.name, {schema}) AS ii"
            ' WHERE il."unique" AND NOT il.partial'
            f" UNION ALL SELECT 'PRIMARY KEY', name FROM pragma_table_info({name}, {schema})"
            " WHERE pk > 0"
        )

    def stage_table(self, target: str, name: str) -> str:
        """Return ``temp.name``: the connection's temporary database."""
        return f"temp.{name}"

    def create_stage(self, st: Staging) -> list[str]:
        """Return ``CREATE TEMP TABLE ... AS SELECT`` of the written columns (same affinities,
        no constraint: CTAS copies none) and a trigger that refuses a NULL key; rowids number
        the rows in write order (nothing is deleted there)."""
        cols = ", ".join(self.quote(c) for c in st.columns)
        null = " OR ".join(f"NEW.{self.quote(k)} IS NULL" for k in st.keys)
        bare = self.quote(validate_table(st.stage)[-1])  # a trigger's table name is unqualified
        return [
            f"CREATE TEMP TABLE {self.quote_table(st.stage)} AS SELECT {cols}"
            f" FROM {self.quote_table(st.target)} WHERE 0",
            f"CREATE TEMP TRIGGER {self.quote(st.ordinal)} BEFORE INSERT ON {bare} WHEN {null}"
            f" BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {KEYS_NOT_NULL}'); END",
        ]

    def merge(self, st: Staging) -> str:
        """Return ``INSERT ... SELECT ... ORDER BY rowid ON CONFLICT (keys) DO UPDATE``.

        SQLite applies the rows one by one in rowid (write) order, so a later row with the same
        key updates the one before it: the last wins.
        """
        taken = {c.casefold() for c in st.columns}
        rowid = next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)
        if rowid is None:
            raise TerminalConnectorError(
                "upsert cannot order rows: rowid, _rowid_ and oid are columns"
            )
        cols = ", ".join(self.quote(c) for c in st.columns)
        # "WHERE true": without a WHERE, SQLite would read ON CONFLICT as a join constraint.
        return (
            f"INSERT INTO {self.quote_table(st.target)} ({cols}) SELECT {cols}"
            f" FROM {self.quote_table(st.stage)} WHERE true ORDER BY {rowid}"
            f" {self.on_conflict(st, 'excluded')}"
        )

    def drop_stage(self, stage: str) -> str | None:
        """Return ``DROP TABLE`` of the staging table (inside the transaction)."""
        return f"DROP TABLE {self.quote_table(stage)}"


DIALECT = SqliteDialect()


def _qualified(table: str, suffix: str) -> tuple[str, str]:
    """Return (``"schema".suffix`` or ``suffix``, bare table name)."""
    parts = validate_table(table)
    if len(parts) == 2:
        return f'"{parts[0]}".{suffix}', parts[1]
    return suffix, parts[0]
