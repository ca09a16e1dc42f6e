"""SLA maths: due and warning instants of a clock, time used and left. Pure functions of a calendar.

A pause moves the due (and warning) instant out by the working time it consumed: the clock's total
paused minutes are added to the instants computed from the start, so recomputing after a calendar
change gives the same answer as shifting at every resume.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime

from timers.calendar import WorkingCalendar
from timers.durations import WorkingDuration


@dataclass(frozen=True)
class WarningPolicy:
    """Yellow when this share of the budget is used, or when at most this much is left."""

    used_ratio: float = 0.8
    hours_left_minutes: int = 60  # for hour budgets: ≤ 1 working hour left
    days_left: int = 1  # for day budgets: ≤ 1 working day left

    @classmethod
    def from_env(cls) -> WarningPolicy:
        return cls(float(os.environ.get("ONEWINDOW_WARN_RATIO", "0.8")),
                   int(os.environ.get("ONEWINDOW_WARN_MINUTES_LEFT", "60")),
                   int(os.environ.get("ONEWINDOW_WARN_DAYS_LEFT", "1")))


@dataclass(frozen=True)
class ClockTimes:
    due_at: datetime
    warn_at: datetime
    budget_minutes: int


def clock_times(cal: WorkingCalendar, started_at: datetime, duration: WorkingDuration, paused_minutes: int,
                policy: WarningPolicy, extended_days: int = 0) -> ClockTimes:
    """Raises CalendarMissing when a year on the way has no schedule. An approved 延期 of
    `extended_days` working days moves both instants that many working days out: a day budget's due is
    then close of business of the n-th working day after its due day, an hour budget's the same time
    of day n working days later."""
    base_due = cal.due(started_at, duration)
    budget = cal.budget_minutes(started_at, duration)
    by_ratio = cal.add_minutes(started_at, math.ceil(budget * policy.used_ratio))
    if duration.days:
        # ≤ n working days left: close of business n working days before the due day
        left = policy.days_left * cal.minutes_per_day(base_due.date())
    else:
        left = policy.hours_left_minutes
    by_left = cal.subtract_minutes(base_due, min(left, budget))
    warn = min(by_ratio, by_left)
    if paused_minutes:
        base_due = cal.add_minutes(base_due, paused_minutes)
        warn = cal.add_minutes(warn, paused_minutes)
    if extended_days:
        if duration.days:
            moved = cal.add_days(base_due, extended_days)
            warn = cal.add_minutes(warn, cal.elapsed_minutes(base_due, moved))
        else:
            moved = cal.add_minutes(base_due, extended_days * cal.minutes_per_day(base_due.date()))
            warn = cal.add_minutes(warn, extended_days * cal.minutes_per_day(base_due.date()))
        base_due = moved
        budget += extended_days * cal.minutes_per_day(base_due.date())
    return ClockTimes(base_due, warn, budget)


def used_minutes(cal: WorkingCalendar, started_at: datetime, until: datetime, paused_minutes: int) -> int:
    return max(0, cal.elapsed_minutes(started_at, until) - paused_minutes)


def left_minutes(cal: WorkingCalendar, at: datetime, due_at: datetime) -> int:
    """Working minutes from `at` to the due instant; negative when overdue."""
    return cal.elapsed_minutes(at, due_at)
