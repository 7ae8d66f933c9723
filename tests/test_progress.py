"""Published progress (no servers): the values the released UI shows as ``progress * 100``
followed by ``%``."""

from __future__ import annotations

import math

from exchangis.engine.finalize import execution_progress
from exchangis.engine.progress import CAP, shown
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


def test_execution_progress_is_the_mean_shown_short() -> None:
    running = {"status": "Running", "progress": "0.123"}
    done = {"status": "Success", "progress": "1.0"}

    mean = execution_progress([running, done, done])  # (0.123 + 2) / 3 = 0.70766...
    assert mean == 0.707 and js_number(mean * 100) == "70.7"
    assert execution_progress([done, done]) == 1.0
    assert execution_progress([{"status": "Failed", "progress": "1.0"}, done]) == CAP
    assert execution_progress([]) == 0.0
