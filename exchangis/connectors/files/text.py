"""How the text formats (CSV, JSON Lines) write values that are not text: binary as base64.

Decimals go through :func:`exchangis.connectors.bulk.decimal_text` (exact); binary columns,
which text cannot hold as they are, become base64 strings here.
"""

from __future__ import annotations

import base64

import pyarrow as pa


def base64_text(column: pa.Array) -> pa.Array:
    """Return the binary ``column`` as base64 strings (nulls stay null)."""
    return pa.array(
        [None if v is None else base64.b64encode(v).decode("ascii") for v in column.to_pylist()],
        type=pa.string(),
    )


def is_binary(t: pa.DataType) -> bool:
    """Return whether ``t`` is a binary type (variable, large or fixed size)."""
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
