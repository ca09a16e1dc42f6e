"""The working calendar: which days are worked, the office hours of each, and working-time maths.

Working time follows 行政许可法 art. 82: weekends and public holidays do not count, 调休 make-up days
(a Saturday or Sunday declared a working day) do. A date in a year with no loaded schedule is never
guessed: every call that needs it raises CalendarMissing.

Hour budgets count minutes inside office hours from the start instant. Day budgets do not count the
start day and end at close of business of the nth working day after it (民法典 arts. 201, 203).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from timers.clock import SHANGHAI
from timers.durations import WorkingDuration

DEFAULT_PERIODS: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13), time(18)))
MAX_SCAN_DAYS = 3660  # ten years of days: a budget that runs further is a data error


class CalendarMissing(LookupError):
    """No holiday schedule is loaded for this year."""

    def __init__(self, year: int) -> None:
        super().__init__(f"no holiday schedule is loaded for {year}")
        self.year = year


@dataclass(frozen=True)
class OfficeHours:
    """Office hours from `valid_from` to `valid_to` (inclusive; None for open-ended)."""

    periods: tuple[tuple[time, time], ...] = DEFAULT_PERIODS
    valid_from: date | None = None
    valid_to: date | None = None
    name: str = "default"

    def __post_init__(self) -> None:
        last = time(0)
        for start, end in self.periods:
            if not (last <= start < end):
                raise ValueError(f"office hours {self.name}: periods must be ordered and not overlap")
            last = end
        if not self.periods:
            raise ValueError(f"office hours {self.name}: at least one period")

    def covers(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)

    @property
    def minutes_per_day(self) -> int:
        return sum((_minutes(e) - _minutes(s)) for s, e in self.periods)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


@dataclass
class WorkingCalendar:
    """Holidays and make-up workdays of the loaded years, and the office hours."""

    loaded_years: set[int] = field(default_factory=set)
    holidays: set[date] = field(default_factory=set)
    workdays: set[date] = field(default_factory=set)  # 调休: weekend days that are worked
    hours: list[OfficeHours] = field(default_factory=lambda: [OfficeHours()])

    # --- days ---------------------------------------------------------------------------------
    def is_workday(self, day: date) -> bool:
        if day.year not in self.loaded_years:
            raise CalendarMissing(day.year)
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return day.weekday() < 5

    def office_hours(self, day: date) -> OfficeHours:
        # seasonal variants (with a date range) win over the open-ended default
        dated = [h for h in self.hours if h.covers(day) and (h.valid_from or h.valid_to)]
        if dated:
            return dated[-1]
        return next((h for h in self.hours if h.covers(day)), OfficeHours())

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The office periods of a day as UTC instants; empty on a day off."""
        if not self.is_workday(day):
            return []
        return [(_instant(day, s), _instant(day, e)) for s, e in self.office_hours(day).periods]

    def close_of_business(self, day: date) -> datetime:
        return _instant(day, self.office_hours(day).periods[-1][1])

    def _days_from(self, day: date, step: int = 1) -> Iterator[date]:
        for offset in range(MAX_SCAN_DAYS):
            yield day + timedelta(days=offset * step)
        raise ValueError("the working-time computation ran past ten years")

    # --- durations ----------------------------------------------------------------------------
    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        """The instant when `minutes` of working time have passed since `start`."""
        if minutes < 0:
            return self.subtract_minutes(start, -minutes)
        start = start.astimezone(UTC)
        # counted in seconds: a start at 11:58:30 has 90 s left before noon, not one minute
        left = timedelta(minutes=minutes)
        for day in self._days_from(_local_date(start)):
            for p_start, p_end in self.periods(day):
                if p_end <= start:
                    continue
                begin = max(p_start, start)
                available = p_end - begin
                if left <= available:
                    return begin + left
                left -= available
        raise AssertionError("unreachable")

    def subtract_minutes(self, end: datetime, minutes: int) -> datetime:
        """The instant `minutes` of working time before `end`."""
        end = end.astimezone(UTC)
        left = timedelta(minutes=minutes)
        for day in self._days_from(_local_date(end), step=-1):
            for p_start, p_end in reversed(self.periods(day)):
                if p_start >= end:
                    continue
                finish = min(p_end, end)
                available = finish - p_start
                if left <= available:
                    return finish - left
                left -= available
        raise AssertionError("unreachable")

    def add_days(self, start: datetime, days: int) -> datetime:
        """Close of business of the `days`-th working day after the start day (not counted)."""
        counted = 0
        for day in self._days_from(_local_date(start) + timedelta(days=1)):
            if self.is_workday(day):
                counted += 1
                if counted == days:
                    return self.close_of_business(day)
        raise AssertionError("unreachable")

    def add_natural_days(self, start: datetime, days: int) -> datetime:
        """Close of business of the `days`-th natural day after the start day (not counted); a last day
        that is a rest day or a holiday moves to the next working day (民法典 art. 203)."""
        day = _local_date(start) + timedelta(days=days)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return self.close_of_business(day)

    def due(self, start: datetime, duration: WorkingDuration) -> datetime:
        if duration.natural:
            return self.add_natural_days(start, duration.days)
        if duration.days:
            return self.add_days(start, duration.days)
        return self.add_minutes(start, duration.minutes)

    def elapsed_minutes(self, start: datetime, end: datetime) -> int:
        """Working minutes between two instants (negative when end is before start)."""
        if end < start:
            return -self.elapsed_minutes(end, start)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = 0.0
        day = _local_date(start)
        last = _local_date(end)
        while day <= last:
            for p_start, p_end in self.periods(day):
                lo, hi = max(p_start, start), min(p_end, end)
                if hi > lo:
                    total += (hi - lo).total_seconds() / 60
            day += timedelta(days=1)
        return int(total)

    def budget_minutes(self, start: datetime, duration: WorkingDuration) -> int:
        """A budget in working minutes (a day budget: from the start to its due instant)."""
        if duration.days:
            return self.elapsed_minutes(start, self.due(start, duration))
        return duration.minutes

    def minutes_per_day(self, day: date) -> int:
        return self.office_hours(day).minutes_per_day


def _instant(day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=SHANGHAI).astimezone(UTC)


def _local_date(instant: datetime) -> date:
    return instant.astimezone(SHANGHAI).date()


def from_chinese_calendar(years: Iterable[int]) -> WorkingCalendar:
    """A calendar pre-filled from the chinese-calendar package for the given years."""
    cal = WorkingCalendar()
    for year in years:
        holidays, workdays = official_schedule(year)
        cal.loaded_years.add(year)
        cal.holidays |= set(holidays)
        cal.workdays |= set(workdays)
    return cal


# chinese-calendar names its holidays in English; the hall calls them by their Chinese names
HOLIDAY_NAMES = {"New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
                 "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "National Day": "国庆节",
                 "Mid-autumn Festival": "中秋节",
                 "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利纪念日"}


def official_schedule(year: int) -> tuple[dict[date, str], dict[date, str]]:
    """Holidays (weekday or weekend) and make-up workdays of a year, as chinese-calendar knows them."""
    import chinese_calendar

    holidays: dict[date, str] = {}
    workdays: dict[date, str] = {}
    day = date(year, 1, 1)
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        raise CalendarMissing(year) from None
    while day.year == year:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        name = HOLIDAY_NAMES.get(name, name) if name else name
        if is_holiday and name:
            holidays[day] = name
        elif not is_holiday and day.weekday() >= 5:
            workdays[day] = f"{name}调休" if name else "调休"
        day += timedelta(days=1)
    return holidays, workdays


def supported_years() -> list[int]:
    import chinese_calendar

    years = []
    for year in range(2004, 2100):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            break
        years.append(year)
    return years
