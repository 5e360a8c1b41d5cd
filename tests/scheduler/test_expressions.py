"""Schedule expressions in AWS's dialect: what is refused, and when a valid one fires next (time zones, DST, calendar
edges). Pure logic: no database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sandbox.scheduler.expressions import (At, Cron, ExpressionError, Rate, TimezoneError, expression_parse,
                                           timezone_parse)

UTC = timezone.utc


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def next_fire(expression: str, after: datetime, zone: str = "UTC", anchor: datetime | None = None):
    parsed = expression_parse(expression)
    return parsed.next_at_or_after(after, timezone=timezone_parse(zone), anchor=anchor or after)


def fires(expression: str, after: datetime, count: int, zone: str = "UTC") -> list[datetime]:
    """The next `count` firings, each searched from just after the one before (as the dispatcher moves on)."""
    found, at = [], after
    for _ in range(count):
        at = next_fire(expression, at, zone)
        found.append(at)
        at = at + timedelta(seconds=1)
    return found


# --- what is refused, in AWS's words -------------------------------------------------------------------------------

REFUSED = [
    # Each of these was refused by AWS itself in LocalStack's recorded snapshots.
    "cron(0 1 * * * *)", "cron(7 20 * * NOT *)", "cron(INVALID)", "cron(0 dummy ? * MON-FRI *)",
    "cron(71 8 1 * ? *)", "cron()", "rate(10 seconds)", "rate(10 years)", "rate()", "rate(10)", "rate(10 minutess)",
    "rate(foo minutes)", "rate(-10 minutes)", "rate( 10 minutes )", " rate(10 minutes)",
    "at(2021-12-31T23:59:59Z)", "at(2021-12-31)",
    # AWS's documented rules.
    "rate(1 minutes)", "rate(5 hour)", "rate(0 minutes)", "cron(0 8 * * ? )", "cron(0 8 * * ? * *)",
    "cron(0 8 ? * ? *)", "cron(0 24 * * ? *)", "cron(0 0 32 * ? *)", "cron(0 0 0 * ? *)", "cron(0 0 * 13 ? *)",
    "cron(0 0 ? * 0 *)", "cron(0 0 ? * 8 *)", "cron(0 0 1 1 ? 1969)", "cron(0 0 1 1 ? 2200)",
    "cron(0 8 ? * 3#1,6#3 *)", "cron(0 8 ? * 2#6 *)", "cron(0 8 ? * 2#0 *)", "cron(0 8 ? * MON/2 *)",
    "cron(0 8 15W,20 * ? *)", "cron(5-1 * * * ? *)", "cron(*/0 * * * ? *)", "cron( 0 8 * * ? * )",
    "cron(0 8 L-2 * ? *)", "at(2025-02-30T00:00:00)", "at(2025-1-1T00:00:00)", "at(2025-01-01 00:00:00)",
    "Rate(5 minutes)", "every 5 minutes", "",
]


@pytest.mark.parametrize("expression", REFUSED)
def test_an_expression_aws_refuses_is_refused_with_awss_message(expression):
    with pytest.raises(ExpressionError) as refused:
        expression_parse(expression)
    assert refused.value.message == f"Invalid Schedule Expression {expression}."
    assert refused.value.reason  # and a plain sentence for the console


@pytest.mark.parametrize("expression, reason", [
    ("cron(0 1 * * * *)", "Exactly one of day-of-month and day-of-week must be ?"),
    ("cron(0 8 * * ?)", "six fields"),
    ("cron(71 8 1 * ? *)", "71 is outside the minutes field's 0-59"),
    ("cron(0 0 ? * 0 *)", "0 is outside the day-of-week field's 1-7 (or SUN-SAT)"),
    ("rate(1 minutes)", "rate(1 minute)"),
    ("rate(5 hour)", "rate(5 hours)"),
    ("at(2021-12-31T23:59:59Z)", "no time zone suffix"),
])
def test_the_plain_reason_says_what_to_change(expression, reason):
    with pytest.raises(ExpressionError) as refused:
        expression_parse(expression)
    assert reason in refused.value.reason


@pytest.mark.parametrize("expression, kind", [
    ("rate(1 minute)", Rate), ("rate(5 minutes)", Rate), ("rate(1 hour)", Rate), ("rate(12 hours)", Rate),
    ("rate(1 day)", Rate), ("rate(7 days)", Rate),
    ("cron(15 10 * * ? *)", Cron), ("cron(0 18 ? * MON-FRI *)", Cron), ("cron(0 8 1 * ? *)", Cron),
    ("cron(0/15 10-16 ? * MON-FRI *)", Cron), ("cron(0 8 ? * 6#3 *)", Cron), ("cron(0 8 LW * ? *)", Cron),
    ("cron(0 8 L * ? *)", Cron), ("cron(0 8 15W * ? *)", Cron), ("cron(0 8 ? * 6L *)", Cron),
    ("cron(0 8 ? * L *)", Cron), ("cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)", Cron), ("cron(30-30 13-13 ? * 2,4,6 *)", Cron),
    ("cron(1-31/30 1-1 ? * 1,7 *)", Cron), ("cron(0 0 1 jan,jul ? 2030-2035)", Cron),
    ("at(2030-01-31T08:00:00)", At),
])
def test_an_expression_aws_accepts_is_accepted(expression, kind):
    assert isinstance(expression_parse(expression), kind)


# --- rate --------------------------------------------------------------------------------------------------------

def test_a_rate_fires_at_its_anchor_and_then_every_interval():
    anchor = utc(2025, 1, 1, 12, 0, 0)
    assert next_fire("rate(5 minutes)", anchor, anchor=anchor) == anchor
    assert next_fire("rate(5 minutes)", anchor + timedelta(seconds=1), anchor=anchor) == utc(2025, 1, 1, 12, 5)
    assert next_fire("rate(5 minutes)", utc(2025, 1, 1, 12, 10), anchor=anchor) == utc(2025, 1, 1, 12, 10)
    assert next_fire("rate(2 hours)", utc(2025, 1, 1, 13, 30), anchor=anchor) == utc(2025, 1, 1, 14, 0)


def test_a_rate_not_yet_started_waits_for_its_anchor():
    anchor = utc(2025, 6, 1)
    assert next_fire("rate(1 day)", utc(2025, 1, 1), anchor=anchor) == anchor


def test_a_missed_stretch_of_a_rate_resumes_on_its_grid_after_now():
    # Given a rate(1 minute) last due at 10:00 and a platform that comes back at 10:05:30,
    # when the next firing after now is asked for, then it is 10:06, not each missed minute.
    assert next_fire("rate(1 minute)", utc(2025, 1, 1, 10, 5, 30), anchor=utc(2025, 1, 1, 10)) == \
        utc(2025, 1, 1, 10, 6)


def test_a_daily_rate_counts_real_hours_across_a_dst_change():
    # AWS: "days represents a 24-hour duration", so across the spring change the wall-clock time moves by an hour.
    anchor = utc(2025, 3, 8, 17, 0)  # 12:00 in New York (EST)
    assert next_fire("rate(1 day)", anchor + timedelta(seconds=1), "America/New_York", anchor=anchor) == \
        utc(2025, 3, 9, 17, 0)  # 13:00 EDT


# --- cron: the basics ---------------------------------------------------------------------------------------------

def test_a_daily_cron_fires_at_its_time_every_day():
    assert fires("cron(15 10 * * ? *)", utc(2025, 1, 1, 11), 2) == [utc(2025, 1, 2, 10, 15), utc(2025, 1, 3, 10, 15)]


def test_a_cron_due_at_this_very_minute_fires_now_and_a_second_later_is_too_late():
    assert next_fire("cron(15 10 * * ? *)", utc(2025, 1, 1, 10, 15)) == utc(2025, 1, 1, 10, 15)
    assert next_fire("cron(15 10 * * ? *)", utc(2025, 1, 1, 10, 15, 0, 1)) == utc(2025, 1, 2, 10, 15)


def test_weekdays_at_six_pm_skip_the_weekend():
    # 2025-01-03 is a Friday.
    assert fires("cron(0 18 ? * MON-FRI *)", utc(2025, 1, 3, 18, 0, 1), 2) == \
        [utc(2025, 1, 6, 18), utc(2025, 1, 7, 18)]


def test_increments_count_from_their_start():
    assert fires("cron(1/10 * * * ? *)", utc(2025, 1, 1, 10, 2), 3) == \
        [utc(2025, 1, 1, 10, 11), utc(2025, 1, 1, 10, 21), utc(2025, 1, 1, 10, 31)]
    assert fires("cron(0/15 10-16 ? * MON-FRI *)", utc(2025, 1, 3, 16, 40), 2) == \
        [utc(2025, 1, 3, 16, 45), utc(2025, 1, 6, 10, 0)]


@pytest.mark.parametrize("day_of_week, weekday", [
    ("1", "Sunday"), ("SUN", "Sunday"), ("2", "Monday"), ("6", "Friday"), ("7", "Saturday"), ("sat", "Saturday"),
])
def test_days_of_the_week_are_numbered_from_sunday_as_aws_numbers_them(day_of_week, weekday):
    fired = next_fire(f"cron(0 12 ? * {day_of_week} *)", utc(2025, 1, 1))
    assert fired.strftime("%A") == weekday


def test_months_by_name_and_a_year_range():
    assert fires("cron(0 0 1 JAN,jul ? 2030-2031)", utc(2025, 1, 1), 4) == \
        [utc(2030, 1, 1), utc(2030, 7, 1), utc(2031, 1, 1), utc(2031, 7, 1)]
    assert next_fire("cron(0 0 1 JAN,jul ? 2030-2031)", utc(2031, 7, 1, 0, 1)) is None


def test_a_cron_whose_years_have_passed_never_fires():
    assert next_fire("cron(0 0 1 1 ? 2020)", utc(2025, 1, 1)) is None


# --- cron: the calendar's edges ------------------------------------------------------------------------------------

def test_the_31st_skips_the_months_without_one():
    assert fires("cron(0 0 31 * ? *)", utc(2025, 4, 1), 2) == [utc(2025, 5, 31), utc(2025, 7, 31)]


def test_february_the_29th_waits_for_a_leap_year_and_2100_is_not_one():
    assert next_fire("cron(0 0 29 2 ? *)", utc(2025, 3, 1)) == utc(2028, 2, 29)
    assert next_fire("cron(0 0 29 2 ? *)", utc(2096, 3, 1)) == utc(2104, 2, 29)


@pytest.mark.parametrize("after, last_day", [
    (utc(2024, 2, 1), utc(2024, 2, 29)),  # leap year
    (utc(2025, 2, 1), utc(2025, 2, 28)),
    (utc(2025, 4, 1), utc(2025, 4, 30)),
    (utc(2025, 12, 31, 0, 0, 1), utc(2026, 1, 31)),
])
def test_l_in_day_of_month_is_the_months_last_day(after, last_day):
    assert next_fire("cron(0 0 L * ? *)", after) == last_day


@pytest.mark.parametrize("expression, month, fired_day", [
    ("cron(0 9 15W * ? *)", (2025, 3), 14),  # the 15th is a Saturday: the Friday before
    ("cron(0 9 15W * ? *)", (2025, 6), 16),  # the 15th is a Sunday: the Monday after
    ("cron(0 9 15W * ? *)", (2025, 1), 15),  # a Wednesday: that day
    ("cron(0 9 1W * ? *)", (2025, 3), 3),  # the 1st is a Saturday: not back into February but Monday the 3rd
    ("cron(0 9 1W * ? *)", (2025, 6), 2),  # the 1st is a Sunday: Monday the 2nd
    ("cron(0 9 31W * ? *)", (2025, 8), 29),  # the 31st is a Sunday: not into September but Friday the 29th
    ("cron(0 9 30W * ? *)", (2024, 11), 29),  # the 30th, last of the month, is a Saturday: Friday the 29th
    ("cron(0 9 LW * ? *)", (2025, 5), 30),  # the 31st is a Saturday
    ("cron(0 9 LW * ? *)", (2025, 8), 29),  # the 31st is a Sunday
    ("cron(0 9 LW * ? *)", (2025, 10), 31),  # the 31st is a Friday
])
def test_w_is_the_nearest_weekday_without_leaving_the_month(expression, month, fired_day):
    assert next_fire(expression, utc(*month, 1)) == utc(*month, fired_day, 9)


def test_a_w_day_past_the_months_end_skips_that_month():
    assert next_fire("cron(0 9 31W * ? *)", utc(2025, 4, 1)) == utc(2025, 5, 30, 9)  # May 31st is a Saturday


@pytest.mark.parametrize("expression, after, fired", [
    ("cron(0 9 ? * 2#1 *)", utc(2025, 9, 2), utc(2025, 10, 6)),  # the first Monday
    ("cron(0 9 ? * 6#3 *)", utc(2025, 1, 1), utc(2025, 1, 17)),  # the third Friday
    ("cron(0 9 ? * FRI#3 *)", utc(2025, 1, 1), utc(2025, 1, 17)),
    # The fifth Thursday: January 2025 has one (30th); February to April do not, May does (29th).
    ("cron(0 9 ? * 5#5 *)", utc(2025, 1, 1), utc(2025, 1, 30, 9)),
    ("cron(0 9 ? * 5#5 *)", utc(2025, 2, 1), utc(2025, 5, 29, 9)),
    ("cron(0 9 ? * 6L *)", utc(2025, 1, 1), utc(2025, 1, 31)),  # the last Friday
    ("cron(0 9 ? * 6L *)", utc(2025, 2, 1), utc(2025, 2, 28)),
    ("cron(0 9 ? * 2L *)", utc(2025, 3, 1), utc(2025, 3, 31)),  # the last Monday is the 31st
    ("cron(0 9 ? * L *)", utc(2025, 1, 1), utc(2025, 1, 4)),  # L alone: the week's last day, Saturday
])
def test_hash_and_l_in_day_of_week(expression, after, fired):
    assert next_fire(expression, after) == fired.replace(hour=9)


# --- cron: time zones and daylight saving time ------------------------------------------------------------------

def test_a_cron_reads_its_time_in_the_schedules_time_zone():
    assert next_fire("cron(0 9 * * ? *)", utc(2025, 1, 15), "Europe/Paris") == utc(2025, 1, 15, 8)  # CET
    assert next_fire("cron(0 9 * * ? *)", utc(2025, 7, 15), "Europe/Paris") == utc(2025, 7, 15, 7)  # CEST
    assert next_fire("cron(0 9 * * ? *)", utc(2025, 7, 15), "Asia/Kolkata") == utc(2025, 7, 15, 3, 30)


def test_a_time_the_clocks_skip_in_spring_does_not_fire_that_day():
    # New York, 2025-03-09: 02:00 EST becomes 03:00 EDT, so 02:30 does not exist that day.
    assert fires("cron(30 2 * * ? *)", utc(2025, 3, 8, 8), 2, "America/New_York") == \
        [utc(2025, 3, 10, 6, 30), utc(2025, 3, 11, 6, 30)]
    assert next_fire("cron(30 2 * * ? *)", utc(2025, 3, 8, 0), "America/New_York") == utc(2025, 3, 8, 7, 30)


def test_a_time_the_clocks_repeat_in_autumn_fires_once():
    # New York, 2025-11-02: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice; AWS fires it once.
    assert fires("cron(30 1 * * ? *)", utc(2025, 11, 2, 0), 2, "America/New_York") == \
        [utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]


def test_an_hourly_cron_does_not_fire_twice_in_the_repeated_hour():
    assert fires("cron(0 * * * ? *)", utc(2025, 11, 2, 4, 30), 3, "America/New_York") == \
        [utc(2025, 11, 2, 5), utc(2025, 11, 2, 7), utc(2025, 11, 2, 8)]


# --- at -----------------------------------------------------------------------------------------------------------

def test_at_fires_once_at_its_wall_clock_time_in_the_schedules_zone():
    assert next_fire("at(2030-01-31T08:00:00)", utc(2025, 1, 1)) == utc(2030, 1, 31, 8)
    assert next_fire("at(2030-01-31T08:00:00)", utc(2025, 1, 1), "Europe/Paris") == utc(2030, 1, 31, 7)
    assert next_fire("at(2030-01-31T08:00:00)", utc(2030, 1, 31, 8, 0, 1)) is None


def test_at_a_time_the_clocks_skip_never_fires():
    assert next_fire("at(2025-03-09T02:30:00)", utc(2025, 1, 1), "America/New_York") is None


# --- time zones, and how often a cron can fire ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_iana_time_zone_names_are_accepted(name):
    assert str(timezone_parse(name)) == name


@pytest.mark.parametrize("name", ["", " UTC", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe"])
def test_anything_else_is_not_a_time_zone(name):
    with pytest.raises(TimezoneError):
        timezone_parse(name)


@pytest.mark.parametrize("expression, gap", [
    ("cron(* * * * ? *)", timedelta(minutes=1)),
    ("cron(0,30 * * * ? *)", timedelta(minutes=30)),
    ("cron(0 8 * * ? *)", timedelta(hours=24)),
    ("cron(0 8,20 ? * MON *)", timedelta(hours=12)),
    ("cron(55 23 * * ? *)", timedelta(hours=24)),
    ("cron(0,55 0,23 * * ? *)", timedelta(minutes=5)),  # 23:55 then 00:00 the next day
])
def test_a_crons_shortest_gap_between_firings(expression, gap):
    assert expression_parse(expression).shortest_gap() == gap


def test_a_naive_instant_is_refused_rather_than_read_in_the_servers_zone():
    with pytest.raises(ValueError):
        expression_parse("cron(0 8 * * ? *)").next_at_or_after(datetime(2025, 1, 1))
