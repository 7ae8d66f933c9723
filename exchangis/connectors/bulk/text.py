"""Arrow values as text the way every sink writes them: decimals in plain fixed-point digits.

Arrow's own cast to text writes small decimals in scientific notation (``1E-10``); the text
sinks (TSV loads, CSV files, SQLite) and the checked casts of :mod:`.reads` use
:func:`text_of` instead, which rewrites only those values.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def decimal_text(column: pa.Array) -> pa.Array:
    """Return a decimal column as plain fixed-point text at its scale (``0.0000000001``).

    Arrow's cast writes small and zero values in scientific notation (``1E-10``, ``0E-10``)
    when the scale is above 6 (or negative); only those values are rewritten, one by one.
    """
    text = pc.cast(column, pa.string())
    if 0 <= column.type.scale <= 6:  # never scientific: -scale + digits - 1 >= -6
        return text
    scientific = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    fixed = [format(v, "f") for v in pc.filter(column, scientific).to_pylist()]
    return pc.replace_with_mask(text, scientific, pa.array(fixed, pa.string()))


def text_of(column: pa.Array) -> pa.Array:
    """Return ``column`` cast to text the way every sink writes it (decimals in plain digits)."""
    if pa.types.is_decimal(column.type):
        return decimal_text(column)
    return pc.cast(column, pa.string())
