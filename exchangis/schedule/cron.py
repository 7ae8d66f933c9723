"""Quartz cron expressions (and Unix 5-field ones), evaluated on a zone's wall clock.

Why our own evaluator: croniter lacks ``LW``, ``L-n`` and Quartz ``nL``, numbers Sunday 0 and
fires twice in an autumn overlap; cronsim has no ``?``, no ``W`` with a day and no year field;
APScheduler 3 numbers Monday 0. Plans come from Quartz-speaking clients, so we speak Quartz.

Expressions match *wall-clock* times in a zone; :meth:`CronExpr.fires` turns the matches into
instants, one DST rule deciding what a skipped or repeated wall-clock time means:

- a matching time in a spring-forward gap: a fixed-time expression (no ``*``, ``/`` or ``-`` in
  its second, minute and hour fields) fires once at the first instant after the gap; an
  interval expression skips it, but a local day whose every matching time falls in a gap gets
  one ``Fire(dst_gap=True)`` marker there, so the scheduler records a skip instead of silence;
- a matching time in an autumn overlap: a fixed-time expression fires at its first occurrence
  only; an interval expression fires at every occurrence, in instant order.

Matching jumps field by field (year, month, day, hour, minute, second), so a far or impossible
fire costs a few hundred steps at most: the search ends with the year 2199.
"""

from __future__ import annotations

import calendar
import os
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CronError", "CronExpr", "Fire", "parse", "parse_zone"]

FIRST_YEAR = 1970
LAST_YEAR = 2199
"""Quartz's year range; fires end with the last year, which bounds every search."""

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_WEEKDAYS = frozenset(range(2, 7))
"""Monday to Friday, in Quartz day-of-week numbers (1 = Sunday ... 7 = Saturday)."""


class CronError(ValueError):
    """An invalid expression or zone name; ``part`` names the field at fault.

    ``part`` is one of ``second``, ``minute``, ``hour``, ``day-of-month``, ``month``,
    ``day-of-week``, ``year``, ``expression`` (field count, the ``?`` rule) or ``timeZone``,
    so an API can point at the field; ``str()`` starts with it, then names the rule broken.
    """

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part


@dataclass(frozen=True)
class Fire:
    """One event of an expression: a run at ``at``, or (``dst_gap``) a marker, not a run.

    ``at`` is aware, in the evaluation zone, with ``fold`` set in an autumn overlap. Compare
    fires as instants (``at.timestamp()``): Python compares two datetimes of the same zone by
    their wall clocks, ignoring ``fold``.
    """

    at: datetime
    dst_gap: bool = False


# -- zones ---------------------------------------------------------------------------------------

_GMT_OFFSET = re.compile(r"GMT(?:(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?", re.I)
_MAX_OFFSET = timedelta(hours=18)
"""java.time's bound on a fixed offset, which Quartz clients send as ``GMT+hh:mm``."""


def parse_zone(name: str | None) -> tzinfo:
    """Return the zone a plan names: an IANA name, ``UTC``, ``GMT±h[h][:mm]``, or none (local).

    ``GMT+08:00`` is a fixed offset east of Greenwich (Java's custom zone ids), while the IANA
    ``Etc/GMT+8`` is eight hours *west* (POSIX sign): both are accepted, each with its own
    meaning. ``UTC`` and the ``GMT`` forms are case-insensitive; IANA names are not.
    """
    if not name:
        return _local_zone()
    if name.upper() == "UTC":
        return UTC
    offset = _GMT_OFFSET.fullmatch(name)
    if offset:
        return _fixed_zone(name, offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError("timeZone", f"unknown time zone {name!r}") from None


def _fixed_zone(name: str, offset: re.Match[str]) -> timezone:
    """Return the fixed offset a ``GMT±hh:mm`` match names, named like Java names it."""
    sign = offset["sign"]
    if not sign:
        return timezone(timedelta(0), "GMT")
    hours, minutes = int(offset["hours"]), int(offset["minutes"] or 0)
    delta = timedelta(hours=hours, minutes=minutes)
    if minutes > 59 or delta > _MAX_OFFSET:
        raise CronError("timeZone", f"{name!r} is out of range GMT-18:00 to GMT+18:00")
    return timezone(-delta if sign == "-" else delta, f"GMT{sign}{hours:02d}:{minutes:02d}")


def _local_zone() -> tzinfo:
    """Return the server's zone the way the C library picks it, but with its DST rules.

    ``TZ`` wins when set (``:`` prefix allowed, empty meaning UTC), else ``/etc/localtime``;
    either may be an IANA key or a TZif file. Only when neither gives a zone (say a POSIX rule
    such as ``CST-8``) do we fall back to the current fixed offset, which knows no DST.
    """
    setting = os.environ.get("TZ")
    source = "/etc/localtime" if setting is None else setting.removeprefix(":") or "UTC"
    try:
        return _zone_from_file(Path(source)) if source.startswith("/") else ZoneInfo(source)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return datetime.now().astimezone().tzinfo or UTC


def _zone_from_file(path: Path) -> ZoneInfo:
    """Return the zone in a TZif file, by its IANA key when it links into a zoneinfo tree."""
    _, found, key = str(path.resolve()).partition("/zoneinfo/")
    if found:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # a key the zone database lacks: read the file itself
    with path.open("rb") as file:
        return ZoneInfo.from_file(file, key=str(path))


# -- fields --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """One cron field's name (as ``CronError.part``), bounds and symbolic names."""

    part: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)

    @property
    def range_text(self) -> str:
        """The bounds as the error messages state them, e.g. ``1-7 (SUN-SAT)``."""
        if not self.names:
            return f"{self.low}-{self.high}"
        names = list(self.names)
        return f"{self.low}-{self.high} ({names[0]}-{names[-1]})"


_SECONDS = _Field("second", 0, 59)
_MINUTES = _Field("minute", 0, 59)
_HOURS = _Field("hour", 0, 23)
_DAYS_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTHS = _Field("month", 1, 12, {name: i for i, name in enumerate(_MONTH_NAMES, 1)})
_DAYS_OF_WEEK = _Field("day-of-week", 1, 7, {name: i for i, name in enumerate(_DAY_NAMES, 1)})
_UNIX_DAYS_OF_WEEK = _Field("day-of-week", 0, 7, {name: i for i, name in enumerate(_DAY_NAMES)})
_YEARS = _Field("year", FIRST_YEAR, LAST_YEAR)


def _value(spec: _Field, text: str) -> int:
    """Return one number or name of a field, checked against the field's bounds."""
    if text.isascii() and text.isdigit():
        value = int(text)
    elif text in spec.names:
        value = spec.names[text]
    else:
        kind = "a number or a name" if spec.names else "a number"
        raise CronError(spec.part, f"{text!r} is not {kind}")
    if not spec.low <= value <= spec.high:
        raise CronError(spec.part, f"{value} is out of range {spec.range_text}")
    return value


def _values(spec: _Field, text: str) -> frozenset[int]:
    """Return the values a list of ``*``, ``a``, ``a-b`` items (each with ``/step``) covers."""
    values: set[int] = set()
    for item in text.split(","):
        values.update(_item(spec, item))
    return frozenset(values)


def _item(spec: _Field, item: str) -> range:
    """Return the values of one list item; ``a/s`` runs from ``a`` to the field's top."""
    body, slash, step_text = item.partition("/")
    step = _step(spec, step_text) if slash else 1
    if body == "*":
        return range(spec.low, spec.high + 1, step)
    first, dash, last = body.partition("-")
    low = _value(spec, first)
    if not dash:
        return range(low, (spec.high if slash else low) + 1, step)
    high = _value(spec, last)
    if high < low:
        raise CronError(spec.part, f"range {body} is inverted ({low} > {high})")
    return range(low, high + 1, step)


def _step(spec: _Field, text: str) -> int:
    """Return a ``/step``: at least 1, at most the field's span (anything more is a typo)."""
    span = spec.high - spec.low + 1
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= span:
        raise CronError(spec.part, f"step {text!r} is out of range 1-{span}")
    return int(text)


def _is_fixed(*time_fields: str) -> bool:
    """Whether second, minute and hour name points in time rather than intervals."""
    return not any(char in text for text in time_fields for char in "*/-")


# -- days ----------------------------------------------------------------------------------------

_DayRule = Callable[[int, int], set[int]]
"""The days of one month (year, month) that a day-of-month/day-of-week rule matches."""


def _month_length(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _weekday(year: int, month: int, day: int) -> int:
    """The Quartz day-of-week number of a date: 1 = Sunday ... 7 = Saturday."""
    return date(year, month, day).isoweekday() % 7 + 1


def _every_day(year: int, month: int) -> set[int]:
    return set(range(1, _month_length(year, month) + 1))


def _listed_days(days: frozenset[int]) -> _DayRule:
    """Days of the month by number; ``31`` matches nothing in a 30-day month."""
    return lambda year, month: _every_day(year, month) & days


def _listed_weekdays(weekdays: frozenset[int]) -> _DayRule:
    """Days whose Quartz day-of-week is listed."""
    return lambda year, month: {
        day for day in _every_day(year, month) if _weekday(year, month, day) in weekdays
    }


def _days_before_last(offset: int) -> _DayRule:
    """``L`` (offset 0) and ``L-n``: the month's last day, or ``n`` days before it, if any."""

    def rule(year: int, month: int) -> set[int]:
        day = _month_length(year, month) - offset
        return {day} if day >= 1 else set()

    return rule


def _last_weekday_of_month(year: int, month: int) -> set[int]:
    """``LW``: the month's last Monday-to-Friday day."""
    day = _month_length(year, month)
    while _weekday(year, month, day) not in _WEEKDAYS:
        day -= 1
    return {day}


def _nearest_weekday(target: int) -> _DayRule:
    """``nW``: the Monday-to-Friday day nearest the ``n``th, never leaving the month.

    A Saturday moves back to Friday (forward to Monday when it is the 1st); a Sunday moves to
    Monday (back to Friday when it is the month's last day). A month shorter than ``n`` days
    has no such day, as a plain ``n`` matches nothing there.
    """

    def rule(year: int, month: int) -> set[int]:
        length = _month_length(year, month)
        if target > length:
            return set()
        weekday = _weekday(year, month, target)
        if weekday == 7:  # Saturday
            return {target + 2 if target == 1 else target - 1}
        if weekday == 1:  # Sunday
            return {target - 2 if target == length else target + 1}
        return {target}

    return rule


def _last_of_weekday(weekday: int) -> _DayRule:
    """``nL``: the month's last day that falls on a given weekday (``6L``: last Friday)."""
    return lambda year, month: {max(_listed_weekdays(frozenset({weekday}))(year, month))}


def _nth_weekday(weekday: int, nth: int) -> _DayRule:
    """``n#k``: the ``k``th given weekday of the month, when the month has one."""

    def rule(year: int, month: int) -> set[int]:
        days = sorted(_listed_weekdays(frozenset({weekday}))(year, month))
        return set(days[nth - 1 : nth])

    return rule


def _either(first: _DayRule, second: _DayRule) -> _DayRule:
    return lambda year, month: first(year, month) | second(year, month)


def _both(first: _DayRule, second: _DayRule) -> _DayRule:
    return lambda year, month: first(year, month) & second(year, month)


def _quartz_days(day_of_month: str, day_of_week: str) -> _DayRule:
    """The day rule of a Quartz expression: exactly one of the two day fields is ``?``."""
    if day_of_month == "?" and day_of_week == "?":
        raise CronError("expression", "day-of-month and day-of-week cannot both be '?'")
    if "?" not in (day_of_month, day_of_week):
        raise CronError(
            "expression", "one of day-of-month and day-of-week must be '?' (Quartz cannot AND them)"
        )
    if day_of_month == "?":
        return _quartz_day_of_week(day_of_week)
    return _quartz_day_of_month(day_of_month)


def _quartz_day_of_month(text: str) -> _DayRule:
    """``L``, ``L-n``, ``LW``, ``nW`` or an ordinary list of days."""
    if text == "L":
        return _days_before_last(0)
    if text == "LW":
        return _last_weekday_of_month
    if text.startswith("L-"):
        offset = text[2:]
        if not (offset.isascii() and offset.isdigit()) or int(offset) > 30:
            raise CronError("day-of-month", f"{text!r} is not one of L-0 to L-30")
        return _days_before_last(int(offset))
    if text.endswith("W"):
        return _nearest_weekday(_single(_DAYS_OF_MONTH, text[:-1], "W"))
    return _listed_days(_values(_DAYS_OF_MONTH, text))


def _quartz_day_of_week(text: str) -> _DayRule:
    """``L`` (Saturday), ``nL``, ``n#k`` or an ordinary list of weekdays (1 = SUN)."""
    if text == "L":
        return _listed_weekdays(frozenset({7}))
    if text.endswith("L"):
        return _last_of_weekday(_single(_DAYS_OF_WEEK, text[:-1], "L"))
    if "#" in text:
        weekday, _, nth = text.partition("#")
        if not (nth.isascii() and nth.isdigit()) or not 1 <= int(nth) <= 5:
            raise CronError("day-of-week", f"#{nth} is out of range #1-#5 (nth weekday of a month)")
        return _nth_weekday(_single(_DAYS_OF_WEEK, weekday, "#"), int(nth))
    return _listed_weekdays(_values(_DAYS_OF_WEEK, text))


def _single(spec: _Field, text: str, suffix: str) -> int:
    """The one value ``W``, ``L`` and ``#`` qualify: Quartz has them on no list or range."""
    if any(char in text for char in ",-/*"):
        raise CronError(spec.part, f"{suffix!r} takes a single day, not a list or range")
    return _value(spec, text)


def _unix_days(day_of_month: str, day_of_week: str) -> _DayRule:
    """Vixie cron's day rule: OR when both day fields are restricted, else AND.

    As in Vixie cron, a field is unrestricted when it starts with ``*`` (so ``*/2`` is too).
    Day-of-week numbers 0 and 7 are Sunday.
    """
    days = _listed_days(_values(_DAYS_OF_MONTH, day_of_month))
    unix = _values(_UNIX_DAYS_OF_WEEK, day_of_week)
    weekdays = _listed_weekdays(frozenset(value % 7 + 1 for value in unix))
    restricted = not day_of_month.startswith("*") and not day_of_week.startswith("*")
    return _either(days, weekdays) if restricted else _both(days, weekdays)


# -- matching wall-clock times -------------------------------------------------------------------


def _from(values: tuple[int, ...], low: int) -> tuple[int, ...]:
    """The sorted ``values`` not below ``low``."""
    return values[bisect_left(values, low) :]


@dataclass(frozen=True)
class _Pattern:
    """The wall-clock times an expression matches, with no notion of zone."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    days: _DayRule

    def next_wall(self, start: datetime) -> datetime | None:
        """The first matching naive wall time at or after ``start``, or None past 2199.

        Each field jumps to its next allowed value, and a field that runs out moves the one
        above it on: at most a few steps per field, never a walk through seconds.
        """
        if start.microsecond:
            start = start.replace(microsecond=0) + _SECOND
        for year in _from(self.years, start.year):
            same_year = year == start.year
            for month in _from(self.months, start.month if same_year else 1):
                same_month = same_year and month == start.month
                days = tuple(sorted(self.days(year, month)))
                for day in _from(days, start.day if same_month else 1):
                    same_day = same_month and day == start.day
                    clock = self._next_time(start.time() if same_day else time())
                    if clock is not None:
                        return datetime.combine(date(year, month, day), clock)
        return None

    def _next_time(self, start: time) -> time | None:
        """The first matching time of day at or after ``start``, or None."""
        for hour in _from(self.hours, start.hour):
            same_hour = hour == start.hour
            for minute in _from(self.minutes, start.minute if same_hour else 0):
                same_minute = same_hour and minute == start.minute
                for second in _from(self.seconds, start.second if same_minute else 0):
                    return time(hour, minute, second)
        return None

    def walls(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The matching wall times in ``[start, end)``, in order."""
        wall = self.next_wall(start)
        while wall is not None and wall < end:
            yield wall
            wall = self.next_wall(wall + _SECOND)


# -- wall clock to instants ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Shift:
    """A change of a zone's UTC offset: its instant, and the wall times it skips or repeats.

    Spring forward: ``[start, end)`` never happens on the wall clock. Fall back: it happens
    twice, first before ``at`` and again from ``at`` on.
    """

    at: datetime
    start: datetime
    end: datetime


def _instants(wall: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants of a wall time read with ``fold=0`` and with ``fold=1``.

    Equal: the time happens once. First earlier: it happens twice (an overlap). First later:
    it never happens (a gap; PEP 495 maps it through the offsets on either side).
    """
    return (
        wall.replace(tzinfo=tz, fold=0).astimezone(UTC),
        wall.replace(tzinfo=tz, fold=1).astimezone(UTC),
    )


def _shift_at(wall: datetime, tz: tzinfo) -> _Shift:
    """The offset change that makes ``wall`` skipped or repeated.

    The two readings of ``wall`` bracket the change; halving the bracket finds its second
    (zone changes fall on whole seconds) in a dozen steps, without private zoneinfo data.
    """
    low, high = sorted(int(instant.timestamp()) for instant in _instants(wall, tz))
    before = datetime.fromtimestamp(low, tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    wall_after = datetime.fromtimestamp(high, tz).replace(tzinfo=None, fold=0)
    wall_before = datetime.fromtimestamp(low, tz).replace(tzinfo=None, fold=0) + _SECOND
    start, end = sorted((wall_after, wall_before))
    return _Shift(datetime.fromtimestamp(high, UTC), start, end)


def _start_wall(after: datetime, tz: tzinfo) -> datetime:
    """Where to start matching for fires after ``after``.

    Inside an overlap, fires may still come at repeated wall times earlier than ``after``'s
    own, so the search starts at the overlap's start (fires not after ``after`` are dropped).
    """
    wall = after.astimezone(tz).replace(tzinfo=None, fold=0, microsecond=0)
    first, second = _instants(wall, tz)
    return _shift_at(wall, tz).start if first < second else wall


def _dates(first: date, last: date) -> Iterator[date]:
    while first <= last:
        yield first
        first += _DAY


# -- expressions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CronExpr:
    """A parsed expression; ``fixed_time`` decides how it meets DST changes (module doc)."""

    text: str
    fixed_time: bool
    _pattern: _Pattern = field(repr=False, compare=False)

    def fires(self, after: datetime, tz: tzinfo) -> Iterator[Fire]:
        """The fires strictly after ``after`` (aware, any zone), lazily, in instant order.

        Ends after the last fire before 2200. ``tz`` must follow PEP 495 (``zoneinfo`` or
        ``datetime.timezone``); the fires are aware datetimes in it.
        """
        if after.utcoffset() is None:
            raise ValueError("after must be an aware datetime")
        last = after.astimezone(UTC)
        for fire in self._events(last, tz):
            instant = fire.at.astimezone(UTC)
            if instant > last:  # drops fires up to ``after`` and a gap fire's twin
                last = instant
                yield fire

    def next_fire(self, after: datetime, tz: tzinfo) -> Fire | None:
        """The first event after ``after``, a DST-gap marker included; None when none is left."""
        return next(self.fires(after, tz), None)

    def preview(self, after: datetime, tz: tzinfo, count: int) -> list[datetime]:
        """The next ``count`` real fires (no gap markers), aware in ``tz``; fewer if they end."""
        runs = (fire.at for fire in self.fires(after, tz) if not fire.dst_gap)
        return list(islice(runs, count))

    def _events(self, after: datetime, tz: tzinfo) -> Iterator[Fire]:
        """Fires from about ``after`` on, in non-decreasing instant order, maybe repeated."""
        wall = _start_wall(after, tz)
        while (found := self._pattern.next_wall(wall)) is not None:
            first, second = _instants(found, tz)
            if first == second or (first < second and self.fixed_time):
                yield Fire(found.replace(tzinfo=tz))
                wall = found + _SECOND
                continue
            shift = _shift_at(found, tz)
            if first < second:
                yield from self._repeated(found, shift, tz)
            elif self.fixed_time or self._gap_empties_a_day(found, shift):
                yield Fire(shift.at.astimezone(tz), dst_gap=not self.fixed_time)
            wall = shift.end

    def _repeated(self, found: datetime, shift: _Shift, tz: tzinfo) -> Iterator[Fire]:
        """An interval expression in an overlap: every match before the change, then again."""
        for wall in self._pattern.walls(found, shift.end):
            yield Fire(wall.replace(tzinfo=tz, fold=0))
        for wall in self._pattern.walls(shift.start, shift.end):
            yield Fire(wall.replace(tzinfo=tz, fold=1))

    def _gap_empties_a_day(self, found: datetime, shift: _Shift) -> bool:
        """Whether a local day the gap touches matches only inside it (so deserves a marker).

        Not when the gap's end itself matches: that fire stands at the marker's instant.
        """
        if self._pattern.next_wall(shift.end) == shift.end:
            return False
        last_day = (shift.end - _SECOND).date()
        return any(self._matches_only_in(day, shift) for day in _dates(found.date(), last_day))

    def _matches_only_in(self, day: date, shift: _Shift) -> bool:
        """Whether ``day`` has matching wall times and all of them fall in the shift's span."""
        start = datetime.combine(day, time())
        end = start + _DAY
        first = self._pattern.next_wall(start)
        if first is None or first >= end or not shift.start <= first < shift.end:
            return False
        later = self._pattern.next_wall(max(start, shift.end))
        return later is None or later >= end


def parse(text: str, *, now: datetime | None = None) -> CronExpr:
    """Parse a Quartz (6 or 7 fields) or Unix (5 fields) expression; raise :class:`CronError`.

    With ``now``, a year field wholly before ``now``'s year is refused: such an expression
    would be saved and never fire.
    """
    fields = text.upper().split()
    if len(fields) == 5:
        return _parse_unix(text, fields)
    if len(fields) in (6, 7):
        return _parse_quartz(text, fields, now)
    raise CronError("expression", f"expected 5 fields (Unix) or 6-7 (Quartz), got {len(fields)}")


def _parse_quartz(text: str, fields: list[str], now: datetime | None) -> CronExpr:
    """second minute hour day-of-month month day-of-week [year]."""
    second, minute, hour, day_of_month, month, day_of_week, *year = fields
    pattern = _Pattern(
        seconds=_sorted(_values(_SECONDS, second)),
        minutes=_sorted(_values(_MINUTES, minute)),
        hours=_sorted(_values(_HOURS, hour)),
        days=_quartz_days(day_of_month, day_of_week),
        months=_sorted(_values(_MONTHS, month)),
        years=_years(year[0], now) if year else tuple(range(FIRST_YEAR, LAST_YEAR + 1)),
    )
    return CronExpr(text, _is_fixed(second, minute, hour), pattern)


def _parse_unix(text: str, fields: list[str]) -> CronExpr:
    """minute hour day-of-month month day-of-week, firing at second 0."""
    minute, hour, day_of_month, month, day_of_week = fields
    pattern = _Pattern(
        seconds=(0,),
        minutes=_sorted(_values(_MINUTES, minute)),
        hours=_sorted(_values(_HOURS, hour)),
        days=_unix_days(day_of_month, day_of_week),
        months=_sorted(_values(_MONTHS, month)),
        years=tuple(range(FIRST_YEAR, LAST_YEAR + 1)),
    )
    return CronExpr(text, _is_fixed(minute, hour), pattern)


def _years(text: str, now: datetime | None) -> tuple[int, ...]:
    """The year field's values, refused when all of them are before ``now``'s year."""
    years = _sorted(_values(_YEARS, text))
    if now is not None and years[-1] < now.year:
        raise CronError("year", f"{text} is wholly in the past (it is {now.year} now)")
    return years


def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))
