"""The SQL of MySQL and MariaDB: backquoted names, InnoDB utf8mb4 tables and their column
types, and the statements of upserts (a temporary staging table merged with ``ON DUPLICATE KEY
UPDATE``), renames and named locks."""

from __future__ import annotations

import pyarrow as pa

from exchangis.connectors.dialect import KEYS_NOT_NULL, Dialect, Staging
from exchangis.connectors.naming import split_table, sql_literal, validate_table
from exchangis.connectors.types import Family, Rule, same_decimal


class MySqlDialect(Dialect):
    """Backquoted names; InnoDB utf8mb4 tables."""

    name = "mysql"
    quote_char = "`"
    locks_session = True  # GET_LOCK

    column_types = {
        Family.BOOLEAN: Rule("TINYINT(1)", pa.bool_()),
        Family.INTEGER: Rule("BIGINT", pa.int64()),
        Family.UINT64: Rule("BIGINT UNSIGNED", pa.uint64()),
        Family.FLOAT32: Rule(
            "FLOAT",
            pa.float64(),
            loss="MariaDB sends FLOAT as text of 6 significant digits: 16777215 reads as 16777200",
        ),
        Family.FLOAT64: Rule("DOUBLE", pa.float64()),
        Family.DECIMAL: Rule(
            "DECIMAL({precision},{scale})", same_decimal, limits={"precision": 65, "scale": 30}
        ),
        Family.STRING: Rule("LONGTEXT", pa.string()),
        Family.BINARY: Rule("LONGBLOB", pa.binary()),
        Family.FIXED_BINARY: Rule("BINARY({byte_width})", pa.binary()),
        Family.DATE: Rule("DATE", pa.date32()),
        Family.TIMESTAMP: Rule("DATETIME(6)", pa.timestamp("us")),
        # The UTC wall time, read back without a zone.
        Family.TIMESTAMP_TZ: Rule("DATETIME(6)", pa.timestamp("us")),
        Family.TIME: Rule("TIME(6)", pa.time64("us")),
        Family.NULL: Rule("LONGTEXT", pa.string()),
    }
    # Text and blobs cannot be keys: VARCHAR(255) (binary collation: keys compare exactly, as
    # in PostgreSQL and SQLite) and VARBINARY(255).
    key_column_types = {
        Family.STRING: Rule("VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", pa.string()),
        Family.NULL: Rule("VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", pa.string()),
        Family.BINARY: Rule("VARBINARY(255)", pa.binary()),
    }

    def table_suffix(self) -> str:
        """Return the table options: InnoDB (transactional) and utf8mb4 (emoji)."""
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    def primary_key(self, table: str) -> str:
        """Return the primary key's columns of ``table`` in key order."""
        schema, name = split_table(table)
        database = sql_literal(schema) if schema else "DATABASE()"
        return (
            "SELECT column_name FROM information_schema.key_column_usage"
            f" WHERE table_schema = {database} AND table_name = {sql_literal(name)}"
            " AND constraint_name = 'PRIMARY' ORDER BY ordinal_position"
        )

    def create_like(self, table: str, model: str) -> str:
        """Return CREATE TABLE ... LIKE (columns, keys and table options of ``model``)."""
        return f"CREATE TABLE {self.quote_table(table)} LIKE {self.quote_table(model)}"

    def rename(self, table: str, new: str) -> str:
        """Return RENAME TABLE (``new`` in the same database as ``table``)."""
        schema, _ = split_table(table)
        short = new.rsplit(".", maxsplit=1)[-1]
        target = f"{schema}.{short}" if schema else short
        return f"RENAME TABLE {self.quote_table(table)} TO {self.quote_table(target)}"

    def lock(self, name: str) -> str | None:
        """Return GET_LOCK: a named lock held until the session ends (up to 10 min wait)."""
        return f"SELECT GET_LOCK({sql_literal(name)}, 600)"

    def unique_keys(self, table: str) -> str:
        """Return the columns of the unique indexes of ``table`` (a prefix part counts as an
        expression: NULL)."""
        parts = validate_table(table)
        schema = sql_literal(parts[0]) if len(parts) == 2 else "DATABASE()"
        return (
            "SELECT index_name, CASE WHEN sub_part IS NULL THEN column_name END"
            " FROM information_schema.statistics"
            f" WHERE table_schema = {schema} AND table_name = {sql_literal(parts[-1])}"
            " AND non_unique = 0"
        )

    def stage_table(self, target: str, name: str) -> str:
        """Return ``name`` in the target's database (a temporary table of this session)."""
        parts = validate_table(target)
        return f"{parts[0]}.{name}" if len(parts) == 2 else name

    def create_stage(self, st: Staging) -> list[str]:
        """Return ``CREATE TEMPORARY TABLE ... AS SELECT`` of the written columns (their types
        and NOT NULL, no index: ``LIKE`` would copy the primary key and refuse duplicate keys)
        with an AUTO_INCREMENT ``ordinal`` that numbers rows in write order. Temporary-table
        DDL does not commit the transaction (ALTER TABLE would: all is in this statement)."""
        cols = ", ".join(self.quote(c) for c in st.columns)
        not_null = " AND ".join(f"{self.quote(k)} IS NOT NULL" for k in st.keys)
        check = self.quote(f"{KEYS_NOT_NULL}_{st.ordinal}")  # MySQL 8: unique per database
        return [
            f"CREATE TEMPORARY TABLE {self.quote_table(st.stage)}"
            f" ({self.quote(st.ordinal)} BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
            f" CONSTRAINT {check} CHECK ({not_null})) ENGINE=InnoDB"
            f" AS SELECT {cols} FROM {self.quote_table(st.target)} WHERE 1 = 0"
        ]

    def merge(self, st: Staging) -> str:
        """Return ``INSERT ... SELECT ... ORDER BY ordinal ON DUPLICATE KEY UPDATE c = VALUES(c)``.

        Rows are applied in write order, so a later row with the same key updates the one
        before it: the last wins.
        """
        cols = ", ".join(self.quote(c) for c in st.columns)
        target_sql = self.quote_table(st.target)
        updates = [self.quote(c) for c in st.columns if c not in st.keys] or [
            self.quote(st.keys[0])
        ]
        sets = ", ".join(f"{target_sql}.{c} = VALUES({c})" for c in updates)
        return (
            f"INSERT INTO {target_sql} ({cols}) SELECT {cols} FROM {self.quote_table(st.stage)}"
            f" ORDER BY {self.quote(st.ordinal)} ON DUPLICATE KEY UPDATE {sets}"
        )

    def drop_stage(self, stage: str) -> str | None:
        """Return ``DROP TEMPORARY TABLE`` (no implicit commit, unlike DROP TABLE)."""
        return f"DROP TEMPORARY TABLE IF EXISTS {self.quote_table(stage)}"


DIALECT = MySqlDialect()
