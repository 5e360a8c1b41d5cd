"""EventBridge Scheduler's schedule expressions (rate, cron in AWS's six-field dialect, at) and when each next fires.

Pure Python, no Django. `expression_parse("cron(0 8 ? * MON-FRI *)")` returns a `Rate`, `Cron` or `At`, or raises
`ExpressionError`; each answers `next_at_or_after(instant, timezone=..., anchor=...)` with the first instant (aware,
UTC) at or after `instant` when the schedule fires, or None when it never fires again.

Why not croniter: as its source reads, it evaluates Unix cron, not AWS's dialect. Its sixth field is seconds, not the
year; it numbers the days of the week 0-6 from Sunday where AWS numbers them 1-7 (so "1" would be Monday, not
Sunday); it ORs a day-of-month and a day-of-week where AWS requires `?` in one of them; and it has no `W`. Translating
expressions into its dialect would be more code, and more ways to be wrong, than evaluating AWS's directly.

What AWS does, and where we learned it:
- Six fields `minutes hours day-of-month month day-of-week year`; `?` in exactly one of day-of-month and day-of-week;
  wildcards `, - * /` everywhere except day-of-week (`, - * ? L #`), day-of-month adds `? L W`; day-of-week 1-7 or
  SUN-SAT; year 1970-2199 (AWS's "Cron expressions reference", EventBridge User Guide).
- "If you use a '#' character, you can define only one expression in the day-of-week field" (same page).
- `nW` is the weekday nearest day n without leaving the month, `LW` the month's last weekday, `nL` in day-of-week the
  month's last such day, `L` alone there Saturday, the week's last day (the Quartz semantics AWS's dialect comes from).
- A wall-clock time the clocks skip in spring is skipped; one they repeat in autumn fires once; a rate counts real
  elapsed time, so `rate(1 day)` fires 24 hours after the last time whatever the clocks did (AWS knowledge center,
  "How can I adjust my Amazon EventBridge schedule for daylight saving?").
- `rate(value unit)`: a positive integer, singular unit for 1 and plural above (the Rate expressions reference says
  "rate(1 hours) and rate(5 hour) aren't valid"). Note: LocalStack's recorded AWS responses show Scheduler's
  UpdateSchedule accepting `rate(2 minute)`, so Scheduler may be laxer than the rules' documentation; we keep the
  documented rule.
- `at(yyyy-mm-ddThh:mm:ss)` exactly: `at(2021-12-31T23:59:59Z)` and `at(2021-12-31)` are refused.
- The message for any refused expression is "Invalid Schedule Expression <expression>." (confirmed: LocalStack's
  snapshots recorded against AWS, Jan 2025, for `cron(0 1 * * * *)`, `cron(71 8 1 * ? *)`, `rate(10 minutess)`,
  `rate( 10 minutes )`, ` rate(10 minutes)`, `at(2021-12-31T23:59:59Z)` and others). AWS says no more than that;
  `ExpressionError.reason` says, for the console, what exactly is wrong.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt_timezone.utc

SYNTAX = ("A schedule expression is rate(value unit), cron(minutes hours day-of-month month day-of-week year) or "
          "at(yyyy-mm-ddThh:mm:ss).")


class ExpressionError(ValueError):
    """An expression AWS refuses: `message` is AWS's answer, `reason` a plain sentence saying what is wrong."""

    def __init__(self, expression: str, reason: str):
        super().__init__(reason)
        self.expression = expression
        self.reason = reason

    @property
    def message(self) -> str:
        return f"Invalid Schedule Expression {self.expression}."


class TimezoneError(ValueError):
    """A ScheduleExpressionTimezone that names no time zone in the IANA database."""

    def __init__(self, name: str):
        super().__init__(f"{name!r} is not a time zone name such as UTC, Europe/Paris or America/New_York.")
        self.name = name


def timezone_parse(name: str) -> ZoneInfo:
    """The IANA time zone `name` (what ScheduleExpressionTimezone takes: "UTC", "Europe/Paris"), or TimezoneError."""
    # ZoneInfo reads files below the tz database: a key that could leave it is refused before it is looked up.
    if not name or name != name.strip() or name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise TimezoneError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimezoneError(name) from None


# --- wall clock ↔ instants ----------------------------------------------------------------------------------------

def _instant_of(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC instant a wall-clock time names in `zone`; None when the clocks skip it (spring forward). A time the
    clocks repeat (autumn) names its first occurrence, so a schedule fires there once."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _aware(instant: datetime) -> None:
    # A naive datetime would be read in the server's local time by astimezone(): never what a caller means.
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone")


def _whole_minute_at_or_after(wall: datetime) -> datetime:
    if wall.second or wall.microsecond:
        return wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return wall


# --- rate(value unit) ---------------------------------------------------------------------------------------------

_RATE = re.compile(r"rate\(([0-9]+) ([a-z]+)\)")
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Rate:
    """rate(value unit): every `interval` of real time from an anchor (the StartDate, else when it was created)."""

    text: str
    value: int
    unit: str  # singular: minute, hour, day
    recurring = True

    @property
    def interval(self) -> timedelta:
        return self.value * _RATE_UNITS[self.unit]

    def next_at_or_after(self, instant: datetime, *, timezone: ZoneInfo = UTC, anchor: datetime) -> datetime | None:
        """The first of anchor, anchor + interval, anchor + 2 × interval, ... that is not before `instant`."""
        _aware(instant)
        _aware(anchor)
        if instant <= anchor:
            return anchor
        interval = self.interval
        steps = (instant - anchor) // interval
        try:
            candidate = anchor + steps * interval
            return candidate if candidate >= instant else candidate + interval
        except OverflowError:
            return None


def _rate_parse(text: str) -> Rate:
    found = _RATE.fullmatch(text)
    if found is None:
        raise ExpressionError(text, "A rate expression is rate(value unit), e.g. rate(5 minutes), with one space "
                                    "and nothing else inside the brackets.")
    value, unit = int(found.group(1)), found.group(2)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise ExpressionError(text, f"{unit!r} is not a unit of a rate: use minute(s), hour(s) or day(s).")
    if value < 1:
        raise ExpressionError(text, "The value of a rate must be a positive whole number.")
    if value == 1 and unit != singular:
        raise ExpressionError(text, f"For a value of 1 the unit is singular: rate(1 {singular}).")
    if value > 1 and unit == singular:
        raise ExpressionError(text, f"For a value above 1 the unit is plural: rate({value} {singular}s).")
    return Rate(text=text, value=value, unit=singular)


# --- at(yyyy-mm-ddThh:mm:ss) --------------------------------------------------------------------------------------

_AT = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)")


@dataclass(frozen=True)
class At:
    """at(yyyy-mm-ddThh:mm:ss): once, at that wall-clock time in the schedule's time zone."""

    text: str
    when: datetime  # naive: a wall-clock time, read in the schedule's time zone
    recurring = False

    def next_at_or_after(self, instant: datetime, *, timezone: ZoneInfo = UTC,
                         anchor: datetime | None = None) -> datetime | None:
        _aware(instant)
        fires = _instant_of(self.when, timezone)
        return fires if fires is not None and fires >= instant else None


def _at_parse(text: str) -> At:
    found = _AT.fullmatch(text)
    if found is None:
        raise ExpressionError(text, "A one-time expression is at(yyyy-mm-ddThh:mm:ss), e.g. at(2030-01-31T08:00:00), "
                                    "with no time zone suffix: the schedule's time zone applies.")
    try:
        when = datetime(*map(int, found.groups()))
    except ValueError:
        raise ExpressionError(text, "The date or time in at(...) does not exist.") from None
    return At(text=text, when=when)


# --- cron(minutes hours day-of-month month day-of-week year) ------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low + 1, ...

    def value(self, text: str, expression: str) -> int:
        upper = text.upper()
        if self.names and upper in self.names:
            return self.low + self.names.index(upper)
        if not text.isdigit():
            raise ExpressionError(expression, f"{text!r} is not a value of the {self.name} field"
                                              f"{self._named()}.")
        number = int(text)
        if not self.low <= number <= self.high:
            raise ExpressionError(expression, f"{number} is outside the {self.name} field's "
                                              f"{self.low}-{self.high}{self._named()}.")
        return number

    def _named(self) -> str:
        return f" (or {self.names[0]}-{self.names[-1]})" if self.names else ""


MINUTES = _Field("minutes", 0, 59)
HOURS = _Field("hours", 0, 23)
DAY_OF_MONTH = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
# AWS numbers the days of the week 1-7 from Sunday (Unix cron: 0-6).
DAY_OF_WEEK = _Field("day-of-week", 1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
YEAR = _Field("year", 1970, 2199)


def _values(field: _Field, text: str, expression: str, *, steps: bool = True) -> frozenset[int]:
    """The values a list of `*`, `a`, `a-b`, `a/s`, `a-b/s`, `*/s` items selects."""
    chosen: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        if slash:
            if not steps:
                raise ExpressionError(expression, f"The {field.name} field takes no / increments.")
            if not step_text.isdigit() or int(step_text) < 1:
                raise ExpressionError(expression, f"The increment after / in {item!r} must be a positive number.")
            step = int(step_text)
        else:
            step = 1
        if base == "*":
            first, last = field.low, field.high
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            first, last = field.value(start_text, expression), field.value(end_text, expression)
            if first > last:
                raise ExpressionError(expression, f"The range {base!r} in the {field.name} field runs backwards.")
        else:
            first = field.value(base, expression)
            last = field.high if slash else first
        chosen.update(range(first, last + 1, step))
    return frozenset(chosen)


def _aws_weekday(day: date) -> int:
    """AWS's number for the day of the week: SUN=1 ... SAT=7 (Python's weekday() is MON=0 ... SUN=6)."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int | None:
    """`dayW`: the Monday-to-Friday day nearest `day`, never leaving the month; None when the month is too short."""
    if day > last:
        return None
    weekday = date(year, month, day).weekday()
    if weekday == 5:  # Saturday: the Friday before, unless that is last month: then the Monday after
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, unless that is next month: then the Friday before
        return day + 1 if day < last else day - 2
    return day


@dataclass(frozen=True)
class _DayOfMonth:
    days: frozenset[int] = frozenset()
    last: bool = False  # L
    nearest_weekday: int | None = None  # nW
    last_weekday: bool = False  # LW

    def matches(self, year: int, month: int) -> set[int]:
        last = calendar.monthrange(year, month)[1]
        if self.last_weekday:
            weekday = date(year, month, last).weekday()
            return {last - max(0, weekday - 4)}
        if self.nearest_weekday is not None:
            day = _nearest_weekday(year, month, self.nearest_weekday, last)
            return set() if day is None else {day}
        matched = {day for day in self.days if day <= last}
        if self.last:
            matched.add(last)
        return matched


@dataclass(frozen=True)
class _DayOfWeek:
    weekdays: frozenset[int] = frozenset()  # AWS numbers, 1 = SUN
    last_of_month: int | None = None  # nL: the month's last such day
    nth: tuple[int, int] | None = None  # n#k: the k-th such day of the month

    def matches(self, year: int, month: int) -> set[int]:
        last = calendar.monthrange(year, month)[1]
        if self.last_of_month is not None:
            day = max(d for d in range(last - 6, last + 1) if _aws_weekday(date(year, month, d)) == self.last_of_month)
            return {day}
        if self.nth is not None:
            weekday, k = self.nth
            first = next(d for d in range(1, 8) if _aws_weekday(date(year, month, d)) == weekday)
            day = first + 7 * (k - 1)
            return {day} if day <= last else set()  # "5#5" in a month with four Thursdays: not this month
        return {d for d in range(1, last + 1) if _aws_weekday(date(year, month, d)) in self.weekdays}


def _day_of_month_parse(text: str, expression: str) -> _DayOfMonth:
    upper = text.upper()
    if upper == "LW":
        return _DayOfMonth(last_weekday=True)
    if upper.endswith("W"):
        if "," in upper or "-" in upper or "/" in upper:
            raise ExpressionError(expression, "W takes one day of the month, e.g. 15W, alone in its field.")
        return _DayOfMonth(nearest_weekday=DAY_OF_MONTH.value(upper[:-1], expression))
    items = upper.split(",")
    last = "L" in items
    others = ",".join(item for item in items if item != "L")
    return _DayOfMonth(days=_values(DAY_OF_MONTH, others, expression) if others else frozenset(), last=last)


def _day_of_week_parse(text: str, expression: str) -> _DayOfWeek:
    upper = text.upper()
    if "#" in upper:
        day_text, _, k_text = upper.partition("#")
        if "," in upper or "-" in day_text or not k_text.isdigit():
            raise ExpressionError(expression, "# takes one day and which of them in the month, e.g. 6#3 (the third "
                                              "Friday), alone in the day-of-week field.")
        k = int(k_text)
        if not 1 <= k <= 5:
            raise ExpressionError(expression, f"A month has at most five of any weekday: {upper!r} asks for the "
                                              f"{k}th.")
        return _DayOfWeek(nth=(DAY_OF_WEEK.value(day_text, expression), k))
    if upper == "L":
        return _DayOfWeek(weekdays=frozenset({DAY_OF_WEEK.high}))  # the week's last day: Saturday
    if upper.endswith("L"):
        if "," in upper or "-" in upper:
            raise ExpressionError(expression, "L after a day, e.g. 6L (the last Friday), stands alone in the "
                                              "day-of-week field.")
        return _DayOfWeek(last_of_month=DAY_OF_WEEK.value(upper[:-1], expression))
    return _DayOfWeek(weekdays=_values(DAY_OF_WEEK, upper, expression, steps=False))


@dataclass(frozen=True)
class Cron:
    """cron(minutes hours day-of-month month day-of-week year), read in the schedule's time zone."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _DayOfMonth | _DayOfWeek  # whichever of day-of-month and day-of-week is not `?`
    months: tuple[int, ...]
    years: tuple[int, ...]
    recurring = True

    def wall_times(self, start: datetime):
        """Every wall-clock time the expression names, in order, from the naive `start` on."""
        for year in self.years:
            if year < start.year:
                continue
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                for day in sorted(self.days.matches(year, month)):
                    if (year, month, day) < (start.year, start.month, start.day):
                        continue
                    for hour in self.hours:
                        if (year, month, day, hour) < (start.year, start.month, start.day, start.hour):
                            continue
                        for minute in self.minutes:
                            wall = datetime(year, month, day, hour, minute)
                            if wall >= start:
                                yield wall

    def next_at_or_after(self, instant: datetime, *, timezone: ZoneInfo = UTC,
                         anchor: datetime | None = None) -> datetime | None:
        _aware(instant)
        start = _whole_minute_at_or_after(instant.astimezone(timezone).replace(tzinfo=None))
        for wall in self.wall_times(start):
            fires = _instant_of(wall, timezone)
            # Skipped: a time the clocks jump over, and the first pass of a repeated hour once we are in its second.
            if fires is not None and fires >= instant:
                return fires
        return None

    def shortest_gap(self) -> timedelta:
        """The shortest time between two firings on one day, or across midnight into a day that also fires (a bound
        from below: whether the next day fires too is not looked at)."""
        times = sorted(hour * 60 + minute for hour in self.hours for minute in self.minutes)
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        gaps.append(times[0] + 24 * 60 - times[-1])
        return timedelta(minutes=min(gaps))


def _cron_parse(text: str) -> Cron:
    inner = text[len("cron("):-1] if text.endswith(")") else None
    if inner is None or not inner or inner != inner.strip():
        raise ExpressionError(text, "A cron expression is cron(minutes hours day-of-month month day-of-week year), "
                                    "e.g. cron(0 8 ? * MON-FRI *).")
    fields = inner.split()
    if len(fields) != 6:
        raise ExpressionError(text, f"A cron expression has six fields (minutes hours day-of-month month day-of-week "
                                    f"year); this one has {len(fields)}.")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ExpressionError(text, "Exactly one of day-of-month and day-of-week must be ?, e.g. cron(0 8 * * ? *) "
                                    "or cron(0 8 ? * MON *).")
    days = (_day_of_week_parse(day_of_week, text) if day_of_month == "?"
            else _day_of_month_parse(day_of_month, text))
    return Cron(text=text,
                minutes=tuple(sorted(_values(MINUTES, minutes, text))),
                hours=tuple(sorted(_values(HOURS, hours, text))),
                days=days,
                months=tuple(sorted(_values(MONTH, month, text))),
                years=tuple(sorted(_values(YEAR, year, text))))


def expression_parse(text: str) -> Rate | Cron | At:
    """The schedule `text` names, or ExpressionError with AWS's message and a plain reason."""
    if text.startswith("rate("):
        return _rate_parse(text)
    if text.startswith("cron("):
        return _cron_parse(text)
    if text.startswith("at("):
        return _at_parse(text)
    raise ExpressionError(text, SYNTAX)
