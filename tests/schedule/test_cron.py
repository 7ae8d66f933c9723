"""The Quartz cron evaluator: hand-checked fire tables, the DST rule, errors, zones, oracles.

Every expected fire below was worked out by hand from the calendar (2026 starts on a
Thursday) and the zones' published changes: Europe/Berlin springs from 02:00 to 03:00 on
2026-03-29 and falls back from 03:00 to 02:00 on 2026-10-25; America/New_York springs from
02:00 to 03:00 on 2026-03-08 and falls back from 02:00 to 01:00 on 2026-11-01;
America/Sao_Paulo sprang from 00:00 to 01:00 on 2018-11-04.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from itertools import islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from exchangis.schedule.cron import CronError, Fire, parse, parse_zone


def case(expr: str, zone: str, start: str, *expected: str, count: int | None = None) -> Any:
    """One preview row: the next ``count`` (default: as many as expected) fires after start."""
    wanted = len(expected) if count is None else count
    return pytest.param(expr, zone, start, wanted, list(expected), id=f"{expr} @ {zone} {start}")


PREVIEWS = [
    # -- seconds, minutes, hours: steps, ranges and lists
    case(
        "0/15 * * * * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:15+00:00",
        "2026-01-01T00:00:30+00:00",
        "2026-01-01T00:00:45+00:00",
        "2026-01-01T00:01:00+00:00",
    ),
    case(
        "*/15 * * * * ?",
        "UTC",
        "2026-01-01T00:00:50+00:00",
        "2026-01-01T00:01:00+00:00",
        "2026-01-01T00:01:15+00:00",
        "2026-01-01T00:01:30+00:00",
    ),
    case(
        "5-40/5 * * * * ?",
        "UTC",
        "2026-01-01T00:00:38+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:05+00:00",
        "2026-01-01T00:01:10+00:00",
    ),
    case(
        "0 15 10 ? * *",
        "UTC",
        "2026-01-01T10:15:00+00:00",  # strictly after: not 10:15 itself
        "2026-01-02T10:15:00+00:00",
        "2026-01-03T10:15:00+00:00",
        "2026-01-04T10:15:00+00:00",
    ),
    case(
        "0 15 10 * * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T10:15:00+00:00",
        "2026-01-02T10:15:00+00:00",
    ),
    case(
        "0 15 10 ? * *",
        "Asia/Shanghai",
        "2026-01-01T00:00:00+00:00",  # 08:00 in Shanghai
        "2026-01-01T10:15:00+08:00",
        "2026-01-02T10:15:00+08:00",
    ),
    case(
        "0 0 9-17/4 * * ?",
        "UTC",
        "2026-01-01T10:00:00+00:00",
        "2026-01-01T13:00:00+00:00",
        "2026-01-01T17:00:00+00:00",
        "2026-01-02T09:00:00+00:00",
    ),
    case(
        "0 5,35 8 * * ?",
        "UTC",
        "2026-01-01T08:10:00+00:00",
        "2026-01-01T08:35:00+00:00",
        "2026-01-02T08:05:00+00:00",
    ),
    case(
        "0 10-20/5 14 ? * TUE",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-06T14:10:00+00:00",
        "2026-01-06T14:15:00+00:00",
        "2026-01-06T14:20:00+00:00",
        "2026-01-13T14:10:00+00:00",
    ),
    # -- day of month: L, L-n, LW, nW
    case(
        "0 0 12 L * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-31T12:00:00+00:00",
        "2026-02-28T12:00:00+00:00",
        "2026-03-31T12:00:00+00:00",
        "2026-04-30T12:00:00+00:00",
    ),
    case(
        "0 0 12 L * ?",
        "UTC",
        "2024-02-01T00:00:00+00:00",
        "2024-02-29T12:00:00+00:00",
        "2024-03-31T12:00:00+00:00",
    ),
    case(
        "0 0 12 LW * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-30T12:00:00+00:00",  # the 31st is a Saturday
        "2026-02-27T12:00:00+00:00",  # the 28th is a Saturday
        "2026-03-31T12:00:00+00:00",
        "2026-04-30T12:00:00+00:00",
        "2026-05-29T12:00:00+00:00",  # the 31st is a Sunday
    ),
    case(
        "0 0 12 15W * ?",
        "UTC",
        "2026-02-01T00:00:00+00:00",
        "2026-02-16T12:00:00+00:00",  # the 15th is a Sunday: Monday
        "2026-03-16T12:00:00+00:00",  # Sunday again
        "2026-04-15T12:00:00+00:00",
        "2026-05-15T12:00:00+00:00",
    ),
    case(
        "0 0 12 15W * ?",
        "UTC",
        "2026-08-01T00:00:00+00:00",
        "2026-08-14T12:00:00+00:00",  # the 15th is a Saturday: Friday
        "2026-09-15T12:00:00+00:00",
        "2026-10-15T12:00:00+00:00",
        "2026-11-16T12:00:00+00:00",  # Sunday: Monday
    ),
    case(
        "0 0 12 15W * ?",
        "UTC",
        "2025-11-01T00:00:00+00:00",
        "2025-11-14T12:00:00+00:00",  # Saturday: Friday
    ),
    case(
        "0 0 12 1W * ?",
        "UTC",
        "2026-07-15T00:00:00+00:00",
        "2026-08-03T12:00:00+00:00",  # August starts on a Saturday: Monday the 3rd, not July
        "2026-09-01T12:00:00+00:00",
        "2026-10-01T12:00:00+00:00",
        "2026-11-02T12:00:00+00:00",  # Sunday the 1st: Monday
    ),
    case(
        "0 0 12 1W * ?",
        "UTC",
        "2025-10-15T00:00:00+00:00",
        "2025-11-03T12:00:00+00:00",  # November 2025 starts on a Saturday too
    ),
    case(
        "0 0 12 31W * ?",
        "UTC",
        "2026-05-01T00:00:00+00:00",
        "2026-05-29T12:00:00+00:00",  # Sunday the 31st is the last day: back to Friday
        "2026-07-31T12:00:00+00:00",  # June has no 31st
        "2026-08-31T12:00:00+00:00",
        "2026-10-30T12:00:00+00:00",  # Saturday: Friday
    ),
    case(
        "0 0 12 L-3 * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-28T12:00:00+00:00",
        "2026-02-25T12:00:00+00:00",
        "2026-03-28T12:00:00+00:00",
        "2026-04-27T12:00:00+00:00",
    ),
    case(
        "0 0 0 1,15 * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-15T00:00:00+00:00",
        "2026-02-01T00:00:00+00:00",
        "2026-02-15T00:00:00+00:00",
    ),
    # -- day of week: ranges, names, L, nL, n#k (1 = Sunday)
    case(
        "0 0 12 ? * MON-FRI",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T12:00:00+00:00",
        "2026-01-02T12:00:00+00:00",
        "2026-01-05T12:00:00+00:00",
        "2026-01-06T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * 1,7",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-03T12:00:00+00:00",
        "2026-01-04T12:00:00+00:00",
        "2026-01-10T12:00:00+00:00",
        "2026-01-11T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * L",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-03T12:00:00+00:00",  # L alone: Saturday
        "2026-01-10T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * 6L",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-30T12:00:00+00:00",
        "2026-02-27T12:00:00+00:00",
        "2026-03-27T12:00:00+00:00",
        "2026-04-24T12:00:00+00:00",
        "2026-05-29T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * FRIL",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-30T12:00:00+00:00",
        "2026-02-27T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * 6#3",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-16T12:00:00+00:00",
        "2026-02-20T12:00:00+00:00",
        "2026-03-20T12:00:00+00:00",
        "2026-04-17T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * FRI#3",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-16T12:00:00+00:00",
        "2026-02-20T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * 2#1",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-05T12:00:00+00:00",
        "2026-02-02T12:00:00+00:00",
        "2026-03-02T12:00:00+00:00",
        "2026-04-06T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * 2#5",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-03-30T12:00:00+00:00",  # only months with five Mondays
        "2026-06-29T12:00:00+00:00",
        "2026-08-31T12:00:00+00:00",
        "2026-11-30T12:00:00+00:00",
    ),
    case(
        "0 0 12 ? * mon#1",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-05T12:00:00+00:00",  # names are case-insensitive
    ),
    # -- months and years
    case(
        "0 0 12 * JAN,JUL ?",
        "UTC",
        "2026-01-30T00:00:00+00:00",
        "2026-01-30T12:00:00+00:00",
        "2026-01-31T12:00:00+00:00",
        "2026-07-01T12:00:00+00:00",
    ),
    case(
        "0 0 12 1 1 ? 2030",
        "UTC",
        "2026-05-01T00:00:00+00:00",
        "2030-01-01T12:00:00+00:00",
        count=5,
    ),
    case(
        "0 0 12 1 1 ? 2027-2031/2",
        "UTC",
        "2026-05-01T00:00:00+00:00",
        "2027-01-01T12:00:00+00:00",
        "2029-01-01T12:00:00+00:00",
        "2031-01-01T12:00:00+00:00",
        count=5,
    ),
    case(
        "0 0 0 29 2 ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
    ),
    case("0 0 0 30 2 ?", "UTC", "2026-01-01T00:00:00+00:00", count=3),
    case(
        "59 59 23 31 12 ? 2199",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2199-12-31T23:59:59+00:00",
        count=3,
    ),
    # -- Unix: 0 and 7 are Sunday; OR when both day fields are restricted
    case(
        "*/5 * * * *",
        "UTC",
        "2026-01-01T00:02:00+00:00",
        "2026-01-01T00:05:00+00:00",
        "2026-01-01T00:10:00+00:00",
        "2026-01-01T00:15:00+00:00",
    ),
    case(
        "0 9 * * 0",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-04T09:00:00+00:00",
        "2026-01-11T09:00:00+00:00",
        "2026-01-18T09:00:00+00:00",
    ),
    case(
        "0 9 * * 7",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-04T09:00:00+00:00",
        "2026-01-11T09:00:00+00:00",
        "2026-01-18T09:00:00+00:00",
    ),
    case(
        "0 9 * * 1",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-05T09:00:00+00:00",
        "2026-01-12T09:00:00+00:00",
    ),
    case(
        "0 9 1 * 1",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T09:00:00+00:00",  # the 1st (a Thursday)
        "2026-01-05T09:00:00+00:00",  # or a Monday
        "2026-01-12T09:00:00+00:00",
        "2026-01-19T09:00:00+00:00",
        "2026-01-26T09:00:00+00:00",
        "2026-02-01T09:00:00+00:00",  # the 1st (a Sunday)
        "2026-02-02T09:00:00+00:00",
    ),
    case(
        "30 8 * * 1-5",
        "UTC",
        "2026-01-02T09:00:00+00:00",
        "2026-01-05T08:30:00+00:00",
        "2026-01-06T08:30:00+00:00",
    ),
    case(
        "0 0 * * SAT,sun",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-03T00:00:00+00:00",
        "2026-01-04T00:00:00+00:00",
        "2026-01-10T00:00:00+00:00",
    ),
    case(
        "0 12 * * 5-7",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-01-02T12:00:00+00:00",
        "2026-01-03T12:00:00+00:00",
        "2026-01-04T12:00:00+00:00",  # 7 is Sunday in a range too
        "2026-01-09T12:00:00+00:00",
    ),
    case(
        "0 0 1 */3 *",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-04-01T00:00:00+00:00",
        "2026-07-01T00:00:00+00:00",
        "2026-10-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    ),
    case(
        "0 0 */10 * 1",  # day-of-month starts with '*': Vixie ANDs, 1st/11th/21st/31st on a Monday
        "UTC",
        "2026-01-01T00:00:00+00:00",
        "2026-05-11T00:00:00+00:00",
        "2026-06-01T00:00:00+00:00",
        "2026-08-31T00:00:00+00:00",
    ),
    # -- fixed offsets: GMT+hh:mm is east, IANA Etc/GMT+8 is west
    case(
        "0 0 8 * * ?",
        "GMT+08:00",
        "2026-01-01T00:00:00+00:00",  # 08:00 there: strictly after
        "2026-01-02T08:00:00+08:00",
        "2026-01-03T08:00:00+08:00",
    ),
    case(
        "0 0 8 * * ?",
        "Etc/GMT+8",
        "2026-01-01T00:00:00+00:00",  # 2025-12-31 16:00 there
        "2026-01-01T08:00:00-08:00",
        "2026-01-02T08:00:00-08:00",
    ),
    case(
        "0 30 9 * * ?",
        "GMT-05:30",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T09:30:00-05:30",
        "2026-01-02T09:30:00-05:30",
    ),
    case(
        "0 0 0 * * ?",
        "GMT+8",
        "2026-01-01T00:00:00+00:00",
        "2026-01-02T00:00:00+08:00",
        "2026-01-03T00:00:00+08:00",
    ),
    case(
        "0 0 2 * * ?",
        "UTC",
        "2026-03-28T00:00:00+00:00",  # UTC has no DST: Berlin's change day is ordinary
        "2026-03-28T02:00:00+00:00",
        "2026-03-29T02:00:00+00:00",
        "2026-03-30T02:00:00+00:00",
    ),
    # -- Europe/Berlin, spring forward 2026-03-29 02:00 -> 03:00
    case(
        "0 30 2 * * ?",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # fixed time in the gap: once, right after it
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ),
    case(
        "0 0 2 * * ?",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ),
    case(
        "0 0,30 2,3 * * ?",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 and 02:30 (both in the gap) and 03:00: one fire
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ),
    case(
        "0 0/30 * * * ?",
        "Europe/Berlin",
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 and 02:30 do not exist: skipped
        "2026-03-29T03:30:00+02:00",
    ),
    case(
        "0 0 * * * ?",
        "Europe/Berlin",
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ),
    case(
        "0 0 0 * * ?",
        "Europe/Berlin",
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
        "2026-03-31T00:00:00+02:00",
    ),
    case(
        "0 0/30 2 * * ?",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        "2026-03-30T02:00:00+02:00",  # the 29th gets only a gap marker, which preview omits
        "2026-03-30T02:30:00+02:00",
    ),
    case(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # a Unix fixed time follows the same rule
        "2026-03-30T02:30:00+02:00",
    ),
    # -- Europe/Berlin, fall back 2026-10-25 03:00 -> 02:00
    case(
        "0 30 2 * * ?",
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        "2026-10-25T02:30:00+02:00",  # fixed time in the overlap: the first occurrence only
        "2026-10-26T02:30:00+01:00",
    ),
    case(
        "0 30 2 * * ?",
        "Europe/Berlin",
        "2026-10-25T02:45:00+02:00",
        "2026-10-26T02:30:00+01:00",  # the second 02:30 is no fire
    ),
    case(
        "0 0/30 * * * ?",
        "Europe/Berlin",
        "2026-10-25T01:45:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ),
    case(
        "0 0/30 * * * ?",
        "Europe/Berlin",
        "2026-10-25T02:45:00+02:00",  # inside the first pass: the second pass is still ahead
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ),
    case(
        "0 0/30 * * * ?",
        "Europe/Berlin",
        "2026-10-25T02:15:00+01:00",  # inside the second pass
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ),
    case(
        "0 0/30 * * * ?",
        "Europe/Berlin",
        "2026-10-25T00:10:00+00:00",  # after given in UTC: 02:10 in the first pass
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
    ),
    case(
        "0 0/30 2 * * ?",
        "Europe/Berlin",
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-26T02:00:00+01:00",
    ),
    case(
        "0 0 0 * * ?",
        "Europe/Berlin",
        "2026-10-24T00:00:00+02:00",
        "2026-10-25T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
        "2026-10-27T00:00:00+01:00",
    ),
    # -- America/New_York, spring forward 2026-03-08 02:00 -> 03:00, fall back 2026-11-01
    case(
        "0 30 2 * * ?",
        "America/New_York",
        "2026-03-07T12:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ),
    case(
        "0 0/30 2 * * ?",
        "America/New_York",
        "2026-03-07T12:00:00-05:00",
        "2026-03-09T02:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ),
    case(
        "0 0 0 * * ?",
        "America/New_York",
        "2026-03-07T00:00:00-05:00",
        "2026-03-08T00:00:00-05:00",
        "2026-03-09T00:00:00-04:00",
    ),
    case(
        "0 30 1 * * ?",
        "America/New_York",
        "2026-10-31T12:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ),
    case(
        "0 0/20 1 * * ?",
        "America/New_York",
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:20:00-04:00",
        "2026-11-01T01:40:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:20:00-05:00",
        "2026-11-01T01:40:00-05:00",
        "2026-11-02T01:00:00-05:00",
    ),
    case(
        "0 0 * * * ?",
        "America/New_York",
        "2026-11-01T00:30:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ),
    case(
        "0 0 0 * * ?",
        "America/New_York",
        "2026-10-31T00:00:00-04:00",
        "2026-11-01T00:00:00-04:00",
        "2026-11-02T00:00:00-05:00",
    ),
    # -- a gap at midnight: the fixed midnight fire moves to 01:00, the day is not skipped
    case(
        "0 0 0 * * ?",
        "America/Sao_Paulo",
        "2018-11-03T12:00:00-03:00",
        "2018-11-04T01:00:00-02:00",
        "2018-11-05T00:00:00-02:00",
    ),
]


@pytest.mark.parametrize(("expr", "zone", "start", "count", "expected"), PREVIEWS)
def test_preview(expr: str, zone: str, start: str, count: int, expected: list[str]) -> None:
    fires = parse(expr).preview(datetime.fromisoformat(start), parse_zone(zone), count)
    assert [fire.isoformat() for fire in fires] == expected


def test_the_preview_table_is_large() -> None:
    assert len(PREVIEWS) >= 60


# -- the DST rule through fires(): markers, order, days ----------------------------------------


def events(expr: str, zone: str, start: str, count: int) -> list[tuple[str, bool]]:
    fires = parse(expr).fires(datetime.fromisoformat(start), parse_zone(zone))
    return [(fire.at.isoformat(), fire.dst_gap) for fire in islice(fires, count)]


def test_an_interval_day_wholly_in_the_gap_gets_one_marker() -> None:
    assert events("0 0/30 2 * * ?", "Europe/Berlin", "2026-03-28T12:00:00+01:00", 3) == [
        ("2026-03-29T03:00:00+02:00", True),
        ("2026-03-30T02:00:00+02:00", False),
        ("2026-03-30T02:30:00+02:00", False),
    ]
    assert events("0 0/30 2 * * ?", "America/New_York", "2026-03-07T12:00:00-05:00", 2) == [
        ("2026-03-08T03:00:00-04:00", True),
        ("2026-03-09T02:00:00-04:00", False),
    ]


def test_next_fire_returns_the_marker_first() -> None:
    fire = parse("0 0/30 2 * * ?").next_fire(
        datetime(2026, 3, 28, 12, tzinfo=UTC), ZoneInfo("Europe/Berlin")
    )
    assert fire == Fire(datetime.fromisoformat("2026-03-29T03:00:00+02:00"), dst_gap=True)


def test_a_marker_for_a_midnight_gap() -> None:
    assert events("0 0/30 0 * * ?", "America/Sao_Paulo", "2018-11-03T12:00:00-03:00", 2) == [
        ("2018-11-04T01:00:00-02:00", True),
        ("2018-11-05T00:00:00-02:00", False),
    ]


def test_no_marker_when_the_day_has_a_real_match() -> None:
    assert events("0 0/30 1,2 * * ?", "Europe/Berlin", "2026-03-29T00:00:00+01:00", 3) == [
        ("2026-03-29T01:00:00+01:00", False),
        ("2026-03-29T01:30:00+01:00", False),
        ("2026-03-30T01:00:00+02:00", False),
    ]
    # the day's real matches lie before ``after``: still no marker for it
    assert events("0 0/30 1,2 * * ?", "Europe/Berlin", "2026-03-29T01:45:00+01:00", 1) == [
        ("2026-03-30T01:00:00+02:00", False),
    ]


def test_a_fixed_time_in_the_gap_is_a_real_fire() -> None:
    assert events("0 30 2 * * ?", "Europe/Berlin", "2026-03-28T12:00:00+01:00", 1) == [
        ("2026-03-29T03:00:00+02:00", False),
    ]


def test_a_year_of_half_hours_in_berlin() -> None:
    """17520 half hours in 2026, less the two lost in spring, plus the two repeated in autumn."""
    zone = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 1, 1, tzinfo=zone) - timedelta(seconds=1)
    end = datetime(2027, 1, 1, tzinfo=zone).timestamp()
    instants = []
    for fire in parse("0 0/30 * * * ?").fires(start, zone):
        if fire.at.timestamp() >= end:
            break
        assert not fire.dst_gap
        instants.append(fire.at.timestamp())
    assert len(instants) == 365 * 48
    assert all(later - earlier == 1800 for earlier, later in pairwise(instants))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
def test_midnight_skips_no_day(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=tz) - timedelta(seconds=1)
    fires = parse("0 0 0 * * ?").preview(start, tz, 365)
    assert [fire.date() for fire in fires] == [
        datetime(2026, 1, 1).date() + timedelta(days=n) for n in range(365)
    ]
    assert all(fire.time().hour == 0 for fire in fires)


def test_far_and_impossible_fires_are_quick() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    assert parse("0 0 12 1 1 ? 2030").preview(start, ZoneInfo("Europe/Berlin"), 5) == [
        datetime(2030, 1, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    ]
    assert parse("0 0 0 30 2 ?").next_fire(start, ZoneInfo("Europe/Berlin")) is None
    assert parse("0 0 12 31 2,4,6,9,11 ?").preview(start, UTC, 1) == []
    assert parse("0 0 0 ? 2 2#5 2027").preview(start, UTC, 1) == []
    assert time.perf_counter() - began < 1


def test_fires_need_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse("0 0 12 * * ?").next_fire(datetime(2026, 1, 1), UTC)


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [
        ("0 30 2 * * ?", True),
        ("0 0,30 2 * * ?", True),
        ("30 2 * * *", True),
        ("0 0/30 2 * * ?", False),
        ("0 0 1-3 * * ?", False),
        ("* 30 2 * * ?", False),
        ("*/5 * * * *", False),
    ],
)
def test_fixed_time(expr: str, fixed: bool) -> None:
    assert parse(expr).fixed_time is fixed


def test_an_expression_keeps_its_text() -> None:
    assert parse("0 0 12 ? * fri#3").text == "0 0 12 ? * fri#3"


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "part", "fragment"),
    [
        ("0 0 12 ? * 8", "day-of-week", "8 is out of range 1-7 (SUN-SAT)"),
        ("0 0 12 ? * 6#6", "day-of-week", "#6 is out of range"),
        ("0 0 12 ? * 6#0", "day-of-week", "#0 is out of range"),
        ("0 0 12 ? * 8L", "day-of-week", "8 is out of range"),
        ("0 0 12 ? * FUN", "day-of-week", "'FUN' is not a number or a name"),
        ("0 0 12 ? * 1,L", "day-of-week", "'L' takes a single day"),
        ("0 0 12 ? * 2-6L", "day-of-week", "single day"),
        ("0 0 12 32W * ?", "day-of-month", "32 is out of range 1-31"),
        ("0 0 12 1,15W * ?", "day-of-month", "single day"),
        ("0 0 12 1-15W * ?", "day-of-month", "single day"),
        ("0 0 12 L-31 * ?", "day-of-month", "'L-31' is not one of L-0 to L-30"),
        ("0 0 12 L-3W * ?", "day-of-month", "'L-3W' is not one of L-0 to L-30"),
        ("0 0 12 0 * ?", "day-of-month", "0 is out of range 1-31"),
        ("0 0 12 32 * ?", "day-of-month", "32 is out of range 1-31"),
        ("0 60 * * * ?", "minute", "60 is out of range 0-59"),
        ("60 * * * * ?", "second", "60 is out of range 0-59"),
        ("0 0 24 * * ?", "hour", "24 is out of range 0-23"),
        ("0 0 12 ? 13 *", "month", "13 is out of range 1-12 (JAN-DEC)"),
        ("0 0 12 ? JANUARY *", "month", "'JANUARY' is not a number or a name"),
        ("0 0 17-9 * * ?", "hour", "range 17-9 is inverted"),
        ("0 */0 * * * ?", "minute", "step '0' is out of range 1-60"),
        ("0 0/x * * * ?", "minute", "step 'X' is out of range"),
        ("0 ? * * * ?", "minute", "'?' is not a number"),
        ("0 1,,2 * * * ?", "minute", "'' is not a number"),
        ("0 0 12 ? * ?", "expression", "cannot both be '?'"),
        ("0 0 12 * * *", "expression", "must be '?'"),
        ("0 0 12 1 * MON", "expression", "must be '?'"),
        ("0 0 12 *", "expression", "got 4"),
        ("0 0 12 * * ? 2030 x", "expression", "got 8"),
        ("", "expression", "got 0"),
        ("0 0 12 1 1 ? 1969", "year", "1969 is out of range 1970-2199"),
        ("0 0 12 1 1 ? 2200", "year", "2200 is out of range 1970-2199"),
        ("0 9 * * 8", "day-of-week", "8 is out of range 0-7 (SUN-SAT)"),
        ("0 9 ? * 1", "day-of-month", "'?' is not a number"),
        ("a b c d e f", "second", "'A' is not a number"),
    ],
)
def test_errors(expr: str, part: str, fragment: str) -> None:
    with pytest.raises(CronError) as raised:
        parse(expr)
    assert raised.value.part == part
    assert fragment in str(raised.value)
    assert str(raised.value).startswith(f"{part}: ")


def test_a_year_range_wholly_in_the_past() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(CronError, match="wholly in the past") as raised:
        parse("0 0 12 1 1 ? 2020-2025", now=now)
    assert raised.value.part == "year"
    assert parse("0 0 12 1 1 ? 2020-2026", now=now).fixed_time  # this year still counts
    assert parse("0 0 12 1 1 ? 2020-2025").preview(now, UTC, 1) == []  # no now: no check


def test_cron_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="day-of-week"):
        parse("0 0 12 ? * 8")


# -- zones -----------------------------------------------------------------------------------------

JANUARY = datetime(2026, 1, 15, 12)


@pytest.mark.parametrize(
    ("name", "offset", "label"),
    [
        ("UTC", timedelta(0), "UTC"),
        ("utc", timedelta(0), "UTC"),
        ("GMT", timedelta(0), "GMT"),
        ("GMT+08:00", timedelta(hours=8), "GMT+08:00"),
        ("GMT+8", timedelta(hours=8), "GMT+08:00"),
        ("GMT-05:30", timedelta(hours=-5, minutes=-30), "GMT-05:30"),
        ("GMT+0530", timedelta(hours=5, minutes=30), "GMT+05:30"),
        ("Etc/GMT+8", timedelta(hours=-8), "-08"),
        ("Europe/Berlin", timedelta(hours=1), "CET"),
        ("Asia/Shanghai", timedelta(hours=8), "CST"),
    ],
)
def test_parse_zone(name: str, offset: timedelta, label: str) -> None:
    zone = parse_zone(name)
    assert zone.utcoffset(JANUARY) == offset
    assert zone.tzname(JANUARY) == label


def test_iana_zones_keep_their_rules() -> None:
    assert parse_zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert parse_zone("Europe/Berlin").utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("America", "unknown time zone"),
        ("../etc/passwd", "unknown time zone"),
        ("/etc/localtime", "unknown time zone"),
        ("europe/berlin", "unknown time zone"),
        ("GMT+19:00", "out of range GMT-18:00 to GMT+18:00"),
        ("GMT+08:60", "out of range"),
        ("GMT+8:0", "unknown time zone"),
    ],
)
def test_bad_zone_names(name: str, fragment: str) -> None:
    with pytest.raises(CronError) as raised:
        parse_zone(name)
    assert raised.value.part == "timeZone"
    assert fragment in str(raised.value)


@pytest.mark.parametrize("setting", ["Asia/Tokyo", ":Asia/Tokyo", "/usr/share/zoneinfo/Asia/Tokyo"])
def test_local_zone_from_tz(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("TZ", setting)
    assert parse_zone(None) == ZoneInfo("Asia/Tokyo")
    assert parse_zone("") == ZoneInfo("Asia/Tokyo")


def test_local_zone_empty_tz_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "")
    assert parse_zone(None).utcoffset(JANUARY) == timedelta(0)


def test_local_zone_without_tz_is_the_system_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TZ", raising=False)
    now = datetime.now().astimezone()
    assert parse_zone(None).utcoffset(now.replace(tzinfo=None)) == now.utcoffset()


def test_local_zone_falls_back_to_the_current_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "CST-8")  # a POSIX rule, which zoneinfo cannot read
    zone = parse_zone(None)
    assert isinstance(zone, timezone)
    assert zone.utcoffset(None) == datetime.now().astimezone().utcoffset()


# -- oracles ---------------------------------------------------------------------------------------

QUARTZ_VS_CRONSIM = [
    # Quartz (1 = SUN) and the same schedule for cronsim (seconds first, 0 = SUN)
    ("0 0/15 * * * ?", "0 */15 * * * *"),
    ("0 15 10 ? * *", "0 15 10 * * *"),
    ("0 0 12 ? * MON-FRI", "0 0 12 * * 1-5"),
    ("0 0 12 ? * 2,4,6", "0 0 12 * * 1,3,5"),
    ("0 0 12 ? * 1", "0 0 12 * * 0"),
    ("0 0 12 ? * 7", "0 0 12 * * 6"),
    ("0 0 9 ? * SAT,SUN", "0 0 9 * * SAT,SUN"),
    ("0 0 12 L * ?", "0 0 12 L * *"),
    ("0 0 12 LW * ?", "0 0 12 LW * *"),
    ("0 0 12 ? * 6L", "0 0 12 * * 5L"),
    ("0 0 12 ? * 6#3", "0 0 12 * * 5#3"),
    ("0 0 12 ? * 2#1", "0 0 12 * * 1#1"),
    ("30 5/10 8-18 * * ?", "30 5/10 8-18 * * *"),
    ("0 0 0 1,15 * ?", "0 0 0 1,15 * *"),
    ("0 0 6 ? JAN-MAR,OCT *", "0 0 6 * 1-3,10 *"),
    ("15,45 * 3 * * ?", "15,45 * 3 * * *"),
    ("0 0 */6 * * ?", "0 0 */6 * * *"),
    ("0 0 12 31 * ?", "0 0 12 31 * *"),
    ("0 10-20/5 14 ? * TUE", "0 10-20/5 14 * * 2"),
    ("0 0 12 15 */2 ?", "0 0 12 15 */2 *"),
]

UNIX = [
    "*/5 * * * *",
    "0 9 * * 0",
    "0 9 * * 7",
    "0 9 1 * 1",
    "30 8 * * 1-5",
    "0 0 1 */3 *",
    "15 14 1 * *",
    "0 22 * * 1-5",
    "23 0-20/2 * * *",
    "5 4 * * sun",
    "0 0,12 1 */2 *",
    "0 4 8-14 * *",
    "0 0 1,15 * 3",
]
"""Vixie expressions both oracles read the way we do (none starts a day field with ``*/``)."""

ORACLE_ZONES = [("UTC", "2026-01-01T00:00:00"), ("America/New_York", "2026-04-01T00:00:00")]
"""New York from April: fires at these times never meet a DST gap or overlap."""


def ours(expr: str, zone: str, start: str) -> list[float]:
    tz = ZoneInfo(zone)
    fires = parse(expr).preview(datetime.fromisoformat(start).replace(tzinfo=tz), tz, 50)
    return [fire.timestamp() for fire in fires]


@pytest.mark.parametrize(("zone", "start"), ORACLE_ZONES)
@pytest.mark.parametrize(("quartz", "cronsim_expr"), QUARTZ_VS_CRONSIM)
def test_quartz_against_cronsim(quartz: str, cronsim_expr: str, zone: str, start: str) -> None:
    cronsim = pytest.importorskip("cronsim", reason="cronsim (test oracle) is not installed")
    begin = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(zone))
    theirs = [fire.timestamp() for fire in islice(cronsim.CronSim(cronsim_expr, begin), 50)]
    assert ours(quartz, zone, start) == theirs


@pytest.mark.parametrize(("zone", "start"), ORACLE_ZONES)
@pytest.mark.parametrize("expr", UNIX)
def test_unix_against_cronsim_and_croniter(expr: str, zone: str, start: str) -> None:
    cronsim = pytest.importorskip("cronsim", reason="cronsim (test oracle) is not installed")
    croniter = pytest.importorskip("croniter", reason="croniter (test oracle) is not installed")
    begin = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(zone))
    expected = ours(expr, zone, start)
    by_cronsim = [fire.timestamp() for fire in islice(cronsim.CronSim(expr, begin), 50)]
    iterator = croniter.croniter(expr, begin)
    by_croniter = [iterator.get_next(datetime).timestamp() for _ in range(50)]
    assert expected == by_cronsim
    assert expected == by_croniter
