"""Column mapping between a source's batches and a sink: select and rename by name."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from exchangis.errors import TerminalConnectorError


class ColumnMapping:
    """Select source columns and rename them for the sink; empty mapping = same columns."""

    def __init__(self, source_schema: pa.Schema, mapping: Sequence[Sequence[str]]) -> None:
        if not mapping:
            self.indices = list(range(len(source_schema)))
            self.names = list(source_schema.names)
        else:
            missing = [src for src, _ in mapping if source_schema.get_field_index(src) < 0]
            if missing:
                raise TerminalConnectorError(
                    f"mapping names source fields that do not exist: {', '.join(missing)} "
                    f"(source has: {', '.join(source_schema.names)})"
                )
            self.indices = [source_schema.get_field_index(src) for src, _ in mapping]
            self.names = [dst for _, dst in mapping]
        self.schema = pa.schema(
            [
                source_schema.field(i).with_name(n)
                for i, n in zip(self.indices, self.names, strict=True)
            ]
        )
        self.identity = self.indices == list(range(len(source_schema))) and self.names == list(
            source_schema.names
        )

    def describe(self, source_schema: pa.Schema) -> str:
        """Return ``src->dst, ...`` for the task log."""
        pairs = zip(self.indices, self.names, strict=True)
        return ", ".join(f"{source_schema.names[i]}->{name}" for i, name in pairs)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Return ``batch`` with the mapped columns, renamed (no copy of the data)."""
        if self.identity:
            return batch
        return pa.RecordBatch.from_arrays(
            [batch.column(i) for i in self.indices], schema=self.schema
        )
