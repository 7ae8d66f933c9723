"""How far a task is: the fraction of its read behind the rows moved, and the value published.

A source says what it knows before reading (:meth:`Source.estimate`: rows counted, or a
statistic such as a catalog's row figure) and where its read stands (:meth:`Source.progress`:
the bytes of a file behind the rows yielded, the last key read within the keys selected).
:func:`fraction` follows the most exact yardstick there is:

1. rows read over an exact count;
2. the source's position;
3. rows read over an estimate: as such up to ``KNEE`` of it; past that, each further
   multiple of the estimate closes a smaller share of the rest of the way to 1 (an estimate
   can be far below the truth: progress keeps moving instead of stopping at the top);
4. nothing known: as 3 with an estimate of ``UNKNOWN_ROWS`` rows — a curve that moves with
   the rows, not a measure.

:func:`shown` turns the fraction into the value published: below 1 until the task succeeds,
floored to a tenth of a percent that prints short both as itself and times 100 (the released
UI shows ``progress * 100`` followed by ``%``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from functools import cache

from exchangis.connectors.base import Estimate

CAP = 0.99
"""Most progress published before the task succeeds (then it is exactly 1.0)."""

KNEE = 0.9
"""Share of an estimate that rows read follow as is; past it they close in on 1 ever slower."""

UNKNOWN_ROWS = 1_000_000
"""Rows a read is reckoned as when nothing is known of its size."""


def fraction(read: int, estimate: Estimate | None, position: float | None) -> float:
    """Return the fraction of a read done after ``read`` rows (0 to 1).

    Args:
        read: rows read so far.
        estimate: what the source knew of its rows before reading.
        position: where the read stands within everything it selects (bytes, keys).
    """
    if estimate is not None and estimate.exact and read <= estimate.rows:
        return read / estimate.rows if estimate.rows else 0.0
    if position is not None:
        return min(max(position, 0.0), 1.0)
    rows = estimate.rows if estimate is not None and estimate.rows > 0 else UNKNOWN_ROWS
    return _beyond(read / rows)


def _beyond(share: float) -> float:
    """Return progress at ``share`` of an estimate: ``share`` up to ``KNEE``, then
    ``1 - (1 - KNEE) / (1 + ln(share / KNEE))`` — continuous, rising, below 1 for ever (at 10
    times the estimate: 0.971; at 1,000 times: 0.988)."""
    if share <= KNEE:
        return share
    return 1.0 - (1.0 - KNEE) / (1.0 + math.log(share / KNEE))


def describe(estimate: Estimate | None, position: float | None) -> str:
    """Return which yardstick :func:`fraction` follows, for the task log."""
    if estimate is not None and estimate.exact:
        return f"rows read of the {estimate.rows} counted"
    known = f" (estimated {estimate.rows} rows)" if estimate is not None else ""
    if position is not None:
        return f"the read's position (its last key between the first and last, or bytes){known}"
    if estimate is not None and estimate.rows > 0:
        return f"rows read of {estimate.rows} estimated, slowing down close to the end"
    return f"nothing known of the rows: a curve over rows read{known}"


@cache
def _steps() -> tuple[float, ...]:
    """Return the values :func:`shown` publishes: each tenth of a percent ``k / 1000`` up to
    ``CAP`` whose percentage ``k / 1000 * 100`` is the double nearest ``k / 10``, so that it
    prints as ``k / 10`` does, in JavaScript as in Python (``0.07 * 100`` is
    ``7.000000000000001``: 0.07 is not among them). The widest gap between two is 0.6 %."""
    top = round(CAP * 1000)
    return tuple(k / 1000 for k in range(top + 1) if k / 1000 * 100 == k / 10)


def shown(value: float) -> float:
    """Return the published progress of fraction ``value``: the largest of :func:`_steps`
    not above it (0 for a NaN, ``CAP`` at most)."""
    if not value > 0:
        return 0.0
    steps = _steps()
    return steps[bisect_right(steps, value) - 1]
