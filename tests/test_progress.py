"""Progress reckoning (no servers): which yardstick a task's progress follows, and the values
published for the released UI, which shows ``progress * 100`` followed by ``%``."""

from __future__ import annotations

import math
from itertools import pairwise

from exchangis.connectors.base import Estimate
from exchangis.engine.finalize import execution_progress
from exchangis.engine.progress import CAP, KNEE, UNKNOWN_ROWS, fraction, shown
from tests.helpers import js_number


def test_every_tenth_of_a_percent_is_shown_as_a_short_percentage() -> None:
    for k in range(1001):
        value = shown(k / 1000)
        percent = js_number(value * 100)  # what <a-progress :percent="p * 100"> prints
        assert len(percent.partition(".")[2]) <= 1, (k, value, percent)
        assert len(repr(value).partition(".")[2]) <= 3, (k, value)  # our own API's JSON


def test_shown_is_the_nearest_short_value_at_or_below() -> None:
    previous = 0.0
    for i in range(100_001):
        x = i / 100_000
        value = shown(x)
        assert value <= min(x, CAP)
        assert min(x, CAP) - value < 0.007, x  # the widest gap between short values: 0.6 %
        assert value >= previous  # never backwards when the fraction rises
        previous = value


def test_shown_stays_below_one_until_the_task_succeeds() -> None:
    assert shown(1.0) == shown(1.7) == CAP == 0.99
    assert js_number(CAP * 100) == "99"
    assert shown(-0.5) == shown(math.nan) == 0.0
    assert shown(0.1238) == 0.123  # the UI showed 12.379999999999999% for 0.1238
    assert shown(0.07) == 0.069  # 0.07 * 100 is 7.000000000000001: the value below


def test_an_exact_count_is_followed_row_by_row() -> None:
    exact = Estimate(1000, exact=True)

    assert [fraction(r, exact, None) for r in (0, 250, 1000)] == [0.0, 0.25, 1.0]
    assert fraction(250, exact, 0.9) == 0.25  # counted rows beat a key position


def test_the_key_position_beats_a_catalog_estimate() -> None:
    assert fraction(5000, Estimate(100), 0.42) == 0.42
    assert fraction(5000, None, 0.42) == 0.42  # and stands alone (a file's bytes too)


def test_rows_past_a_catalog_estimate_keep_progress_rising_below_one() -> None:
    estimate = Estimate(1000)
    values = [fraction(r, estimate, None) for r in range(0, 20_001, 50)]

    assert values[: int(KNEE * 1000) // 50 + 1] == [r / 1000 for r in range(0, 901, 50)]
    assert all(b > a for a, b in pairwise(values)), "rises at every step"
    assert values[-1] < 1.0
    assert shown(values[int(1000 / 50)]) < CAP  # at the estimate itself: not pinned at 99 %
    assert shown(fraction(100_000, estimate, None)) < CAP  # nor at 100 times the estimate


def test_an_estimate_of_no_rows_or_nothing_known_still_moves() -> None:
    for estimate in (None, Estimate(0)):
        values = [fraction(r, estimate, None) for r in (0, 1, 1000, UNKNOWN_ROWS, 10**9)]
        assert values[0] == 0.0
        assert all(b > a for a, b in pairwise(values)), values
        assert values[-1] < 1.0
    for rows in (1, 1000, UNKNOWN_ROWS, 10**9):  # as if the read selected UNKNOWN_ROWS rows
        assert fraction(rows, None, None) == fraction(rows, Estimate(UNKNOWN_ROWS), None)


def test_a_count_passed_by_rows_added_since_keeps_rising() -> None:
    exact = Estimate(100, exact=True)

    assert fraction(100, exact, None) == 1.0
    assert 0.9 < fraction(150, exact, None) < fraction(300, exact, None) < 1.0


def test_execution_progress_is_the_mean_shown_short() -> None:
    running = {"status": "Running", "progress": "0.123"}
    done = {"status": "Success", "progress": "1.0"}

    mean = execution_progress([running, done, done])  # (0.123 + 2) / 3 = 0.70766...
    assert mean == 0.707 and js_number(mean * 100) == "70.7"
    assert execution_progress([done, done]) == 1.0
    assert execution_progress([{"status": "Failed", "progress": "1.0"}, done]) == CAP
    assert execution_progress([]) == 0.0
