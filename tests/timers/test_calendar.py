"""Working-time maths against the 2026 official calendar and the default office hours."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from timers.calendar import CalendarMissing, OfficeHours, WorkingCalendar, from_chinese_calendar, official_schedule
from timers.clock import SHANGHAI
from timers.durations import parse_duration

CAL = from_chinese_calendar([2025, 2026])


def at(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def due(start: datetime, text: str) -> datetime:
    return CAL.due(start, parse_duration(text)).astimezone(SHANGHAI)


# --- the DOMAIN.md examples -------------------------------------------------------------------
def test_eight_working_hours_from_friday_afternoon_end_on_the_make_up_saturday():
    assert due(at(2026, 2, 13, 15), "PT8H") == at(2026, 2, 14, 15)


def test_five_working_days_across_national_day_and_its_make_up_saturday():
    assert due(at(2026, 9, 30, 10), "P5D") == at(2026, 10, 13, 18)


# --- more of our own --------------------------------------------------------------------------
@pytest.mark.parametrize("start, budget, expected", [
    (at(2026, 3, 6, 16), "PT3H", at(2026, 3, 9, 10)),          # Friday 16:00 over the weekend
    (at(2026, 3, 6, 10), "P1D", at(2026, 3, 9, 18)),           # a day budget skips Sat/Sun
    (at(2026, 3, 9, 11), "PT2H", at(2026, 3, 9, 14)),          # lunch break 12-13 not counted
    (at(2026, 3, 9, 12, 30), "PT1H", at(2026, 3, 9, 14)),      # started in the lunch break
    (at(2026, 3, 9, 7), "PT1H30M", at(2026, 3, 9, 10, 30)),    # before office hours
    (at(2026, 3, 9, 20), "PT3H", at(2026, 3, 10, 12)),         # evening: counts from next morning
    (at(2026, 3, 9, 17), "PT1H", at(2026, 3, 9, 18)),          # ends exactly at close of business
    (at(2026, 3, 9, 9), "PT8H", at(2026, 3, 9, 18)),           # a whole working day
    (at(2026, 3, 7, 10), "P1D", at(2026, 3, 9, 18)),           # accepted on a Saturday
    (at(2026, 2, 13, 10), "P2D", at(2026, 2, 24, 18)),         # Spring Festival: 14th (make-up), then 24th
    (at(2026, 2, 13, 17), "PT3H", at(2026, 2, 14, 11)),        # into the make-up Saturday
    (at(2026, 2, 14, 17), "PT2H", at(2026, 2, 24, 10)),        # from the make-up day over nine days off
    (at(2026, 9, 30, 17), "PT2H", at(2026, 10, 8, 10)),        # National Day: Oct 1-7 off, Oct 8 is Thursday
    (at(2026, 10, 9, 17), "PT2H", at(2026, 10, 10, 10)),       # the make-up Saturday 10-10 counts
    (at(2026, 9, 18, 17), "PT2H", at(2026, 9, 20, 10)),        # and the make-up Sunday 09-20 before it
    (at(2026, 9, 18, 10), "P1D", at(2026, 9, 20, 18)),         # a day budget lands on that Sunday
    (at(2026, 10, 1, 10), "P1D", at(2026, 10, 8, 18)),         # accepted on a holiday
    (at(2025, 12, 31, 17), "PT3H", at(2026, 1, 4, 11)),        # New Year: Jan 1-3 off, Sun Jan 4 make-up
])
def test_due(start, budget, expected):
    assert due(start, budget) == expected


def test_elapsed_is_the_inverse_of_due():
    for start in (at(2026, 2, 13, 15), at(2026, 9, 30, 17), at(2026, 3, 9, 12, 30)):
        for minutes in (1, 59, 60, 90, 480, 481, 2000):
            end = CAL.add_minutes(start, minutes)
            # from inside office hours the round trip is exact
            assert CAL.elapsed_minutes(start, end) == minutes
    assert CAL.elapsed_minutes(at(2026, 3, 9, 11), at(2026, 3, 9, 14)) == 120
    assert CAL.elapsed_minutes(at(2026, 3, 6, 17), at(2026, 3, 9, 10)) == 120
    assert CAL.elapsed_minutes(at(2026, 3, 9, 14), at(2026, 3, 9, 11)) == -120


def test_subtract_minutes():
    assert CAL.subtract_minutes(at(2026, 2, 24, 10), 120).astimezone(SHANGHAI) == at(2026, 2, 14, 17)
    assert CAL.subtract_minutes(at(2026, 3, 9, 14), 90).astimezone(SHANGHAI) == at(2026, 3, 9, 11, 30)


def test_a_year_without_schedule_is_never_guessed():
    with pytest.raises(CalendarMissing) as missing:
        due(at(2026, 12, 28, 10), "P5D")
    assert missing.value.year == 2027
    with pytest.raises(CalendarMissing):
        official_schedule(2099)


def test_official_schedule_2026():
    holidays, workdays = official_schedule(2026)
    assert date(2026, 10, 1) in holidays and date(2026, 2, 17) in holidays
    assert sorted(workdays) == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                                date(2026, 9, 20), date(2026, 10, 10)]


def test_seasonal_office_hours():
    summer = OfficeHours(((time(9), time(12)), (time(14), time(18))), date(2026, 6, 1), date(2026, 9, 30), "summer")
    cal = WorkingCalendar({2026}, CAL.holidays, CAL.workdays, [OfficeHours(), summer])
    # in summer the lunch break is two hours
    assert cal.add_minutes(at(2026, 7, 6, 11), 120).astimezone(SHANGHAI) == at(2026, 7, 6, 15)
    assert cal.add_minutes(at(2026, 5, 6, 11), 120).astimezone(SHANGHAI) == at(2026, 5, 6, 14)
    assert cal.minutes_per_day(date(2026, 7, 6)) == 420
    with pytest.raises(ValueError):
        OfficeHours(((time(13), time(18)), (time(9), time(12))))


@pytest.mark.parametrize("text", ["P1DT2H", "P0D", "PT", "3 hours", "PT-1H", "", "P1W"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_seconds_are_kept_at_a_period_end():
    """11:58:30 + 2 working minutes: 90 s before noon, 30 s after lunch — 13:00:30, not 13:01."""
    from datetime import datetime

    from timers.calendar import from_chinese_calendar
    from timers.clock import SHANGHAI

    cal = from_chinese_calendar([2026])
    start = datetime(2026, 3, 2, 11, 58, 30, tzinfo=SHANGHAI)
    assert cal.add_minutes(start, 2) == datetime(2026, 3, 2, 13, 0, 30, tzinfo=SHANGHAI)
    assert cal.add_minutes(start, 1) == datetime(2026, 3, 2, 11, 59, 30, tzinfo=SHANGHAI)
    assert cal.subtract_minutes(datetime(2026, 3, 2, 13, 0, 30, tzinfo=SHANGHAI), 2) == start
    assert cal.elapsed_minutes(start, datetime(2026, 3, 2, 13, 0, 30, tzinfo=SHANGHAI)) == 2


# --- natural days (自然日): the start day not counted, a last day off moves to the next working day --------
@pytest.mark.parametrize("start, text, expected", [
    (at(2026, 3, 2, 10), "natural:P20D", at(2026, 3, 23, 18)),  # the 20th day is a Sunday: Monday
    (at(2026, 3, 6, 16), "natural:P1D", at(2026, 3, 9, 18)),  # "1 天内" from a Friday: Saturday, so Monday
    (at(2026, 9, 24, 10), "natural:P7D", at(2026, 10, 8, 18)),  # lands in National Day: the day after it
    (at(2026, 3, 2, 10), "natural:P3D", at(2026, 3, 5, 18)),  # an ordinary Thursday
])
def test_natural_day_limits(start, text, expected):
    assert due(start, text) == expected


def test_natural_days_are_written_distinctly_and_read_back():
    natural = parse_duration("natural:P20D")
    assert natural.natural and natural.days == 20 and natural.iso() == "natural:P20D"
    assert parse_duration("P20D").natural is False and natural != parse_duration("P20D")
    assert natural.words() == "20 个自然日"
    assert due(at(2026, 3, 2, 10), "natural:P20D") < due(at(2026, 3, 2, 10), "P20D")
    with pytest.raises(ValueError, match="natural:PnD"):
        parse_duration("natural:PT3H")
