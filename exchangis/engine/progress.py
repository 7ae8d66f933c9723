"""The progress a task or an execution publishes.

:func:`shown` turns a fraction done into the value published: below 1 until the task succeeds,
floored to a tenth of a percent that prints short both as itself and times 100 (the released
UI shows ``progress * 100`` followed by ``%``).
"""

from __future__ import annotations

from bisect import bisect_right
from functools import cache

CAP = 0.99
"""Most progress published before the task succeeds (then it is exactly 1.0)."""


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
