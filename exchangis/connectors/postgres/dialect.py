"""The PostgreSQL dialect: double-quoted names, column types, and the catalog queries, advisory
lock, temporary staging table and ``INSERT ... ON CONFLICT`` merge of the SQL sink."""

from __future__ import annotations

import pyarrow as pa

from exchangis.connectors.dialect import KEYS_NOT_NULL, Dialect, Staging
from exchangis.connectors.types import Family, Rule, same_decimal


class PostgresDialect(Dialect):
    """Double-quoted names; PostgreSQL column types."""

    name = "postgresql"
    quote_char = '"'

    column_types = {
        Family.BOOLEAN: Rule("boolean", pa.bool_()),
        Family.INTEGER: Rule("bigint", pa.int64()),
        Family.UINT64: Rule("numeric(20,0)", pa.decimal128(20, 0)),
        # psycopg reads a real as its shortest text (0.1), connectorx widens the float32 itself
        # (0.10000000149011612): the same float32 either way.
        Family.FLOAT32: Rule("real", pa.float64()),
        Family.FLOAT64: Rule("double precision", pa.float64()),
        Family.DECIMAL: Rule("numeric({precision},{scale})", same_decimal),
        Family.STRING: Rule("text", pa.string()),
        Family.BINARY: Rule("bytea", pa.binary()),
        Family.FIXED_BINARY: Rule("bytea", pa.binary()),
        Family.DATE: Rule("date", pa.date32()),
        Family.TIMESTAMP: Rule("timestamp", pa.timestamp("us")),
        Family.TIMESTAMP_TZ: Rule("timestamptz", pa.timestamp("us", tz="UTC")),
        Family.TIME: Rule("time", pa.time64("us")),
        Family.NULL: Rule("text", pa.string()),
    }

    def primary_key(self, table: str) -> str:
        """Return the primary key's columns of ``table`` in key order."""
        return (
            "SELECT a.attname::text FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            f" WHERE i.indrelid = to_regclass('{self.quote_table(table)}') AND i.indisprimary"
            " ORDER BY k.n"
        )

    def create_like(self, table: str, model: str) -> str:
        """Return CREATE TABLE ... (LIKE model INCLUDING ALL): defaults, constraints, indexes."""
        return (
            f"CREATE TABLE {self.quote_table(table)} (LIKE {self.quote_table(model)} INCLUDING ALL)"
        )

    def lock(self, name: str) -> str | None:
        """Return a transaction-scoped advisory lock on ``name``."""
        return f"SELECT pg_advisory_xact_lock(hashtext('{name}'))"  # a checked plain name

    def unique_keys(self, table: str) -> str:
        """Return the key columns of the immediate, non-partial unique indexes of ``table``."""
        return (
            "SELECT i.indexrelid::int8, a.attname::text FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            f" WHERE i.indrelid = to_regclass('{self.quote_table(table)}')"
            " AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL"
            " AND i.indexprs IS NULL AND k.n <= i.indnkeyatts"
        )

    def stage_table(self, target: str, name: str) -> str:
        """Return ``pg_temp.name``: the session's temporary schema, whatever the search path."""
        return f"pg_temp.{name}"

    def create_stage(self, st: Staging) -> list[str]:
        """Return a temporary copy of the written columns' types, dropped at COMMIT, plus an
        identity ``ordinal`` that numbers rows in write order (ctid is no order: an insert may
        reuse free space of an earlier page)."""
        cols = ", ".join(self.quote(c) for c in st.columns)
        stage_sql = self.quote_table(st.stage)
        not_null = " AND ".join(f"{self.quote(k)} IS NOT NULL" for k in st.keys)
        return [
            f"CREATE TEMP TABLE {stage_sql} ON COMMIT DROP AS SELECT {cols}"
            f" FROM {self.quote_table(st.target)} WITH NO DATA",
            f"ALTER TABLE {stage_sql} ADD COLUMN {self.quote(st.ordinal)} bigint"
            f" GENERATED ALWAYS AS IDENTITY, ADD CONSTRAINT {KEYS_NOT_NULL} CHECK ({not_null})",
        ]

    def merge(self, st: Staging) -> str:
        """Return ``INSERT ... SELECT DISTINCT ON (keys) ... ON CONFLICT (keys) DO UPDATE``.

        ON CONFLICT cannot change one row twice in a statement: DISTINCT ON keeps the last
        staged row of each key (highest ordinal).
        """
        cols = ", ".join(self.quote(c) for c in st.columns)
        key_list = ", ".join(self.quote(k) for k in st.keys)
        return (
            f"INSERT INTO {self.quote_table(st.target)} ({cols})"
            f" SELECT DISTINCT ON ({key_list}) {cols} FROM {self.quote_table(st.stage)}"
            f" ORDER BY {key_list}, {self.quote(st.ordinal)} DESC"
            f" {self.on_conflict(st, 'EXCLUDED')}"
        )


DIALECT = PostgresDialect()
