"""How the ADBC sink path sends one shape of batches into one table: binary ``COPY`` of the
batches cast to the target columns' Arrow types, or a bound ``INSERT`` with text casts where a
column cannot be sent in binary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from exchangis.connectors import bulk
from exchangis.connectors.dialect import Dialect
from exchangis.connectors.postgres.types import binary_type
from exchangis.errors import RecordError, TerminalConnectorError

_COLUMNS_SQL = (
    "SELECT a.attname::text, a.atttypid::int8, a.atttypmod::int8,"
    " format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
    " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
)


@dataclass(frozen=True)
class _IngestPlan:
    """How batches of one shape go into one table: target Arrow types, and COPY or INSERT."""

    schema: pa.Schema
    insert_sql: str | None
    """None: binary COPY (``adbc_ingest``); else a bound INSERT with text casts."""

    @classmethod
    def build(
        cls,
        dialect: Dialect,
        table: str,
        incoming: pa.Schema,
        columns: Mapping[str, tuple[int, int, str]],
    ) -> _IngestPlan:
        fields, marks, copyable = [], [], True
        for i, field in enumerate(incoming, start=1):
            if field.name not in columns:
                raise TerminalConnectorError(f"table {table} has no column {field.name!r}")
            oid, typmod, spelled = columns[field.name]
            target = binary_type(oid, typmod, field.type)
            if target is None or not _castable(field.type, target):
                copyable = False
                fields.append(pa.field(field.name, pa.string()))
                marks.append(f"${i}::text::{spelled}")
            else:
                fields.append(pa.field(field.name, target))
                marks.append(f"${i}")
        if copyable:
            return cls(pa.schema(fields), None)
        names = ", ".join(dialect.quote(f.name) for f in incoming)
        sql = f"INSERT INTO {dialect.quote_table(table)} ({names}) VALUES ({', '.join(marks)})"
        return cls(pa.schema(fields), sql)

    def cast(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return ``batch`` in the plan's types; a value that does not fit fails its column."""
        return bulk.conform(batch, self.schema, RecordError)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_binary(target) and not pa.types.is_binary(source):
        return False  # text into bytea: PostgreSQL's own text input (\x...) must parse it
    try:
        pc.cast(pa.array([], source), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
