"""The working calendar as data in the database: loaded years, holidays, make-up days, office hours.

Admins keep it; it is pre-filled from the chinese-calendar package. Loaded calendars are cached per
process and keyed by a version number in `settings`, bumped on every change, so every web and
scheduler process sees a change on its next look.
"""

from __future__ import annotations

import threading
from datetime import date, time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from timers.calendar import CalendarMissing, OfficeHours, WorkingCalendar, official_schedule
from timers.clock import now

from ..errors import InvalidInput, NotFound
from ..models import CalendarDay, CalendarYear, OfficeHoursRule, Setting
from . import settings

VERSION_KEY = "calendar_version"
_cache: tuple[int, WorkingCalendar] | None = None
_lock = threading.Lock()


def _version(session: Session) -> int:
    row = session.get(Setting, VERSION_KEY)
    return int(row.value.get("v", 0)) if row else 0


def calendar_version():
    """The calendar version as a scalar subquery, for a statement that reads it alongside other rows."""
    return select(Setting.value).where(Setting.key == VERSION_KEY).scalar_subquery()


def remember_calendar_version(session: Session, value) -> None:
    session.info[VERSION_KEY] = int(value.get("v", 0)) if isinstance(value, dict) else 0


def _bump(session: Session) -> None:
    settings.put(session, VERSION_KEY, {"v": _version(session) + 1})
    session.info.pop(VERSION_KEY, None)


def working_calendar(session: Session) -> WorkingCalendar:
    """The calendar in force; its version is read once per transaction (session), not per clock."""
    global _cache
    version = session.info.get(VERSION_KEY)
    if version is None:
        version = session.info[VERSION_KEY] = _version(session)
    with _lock:
        if _cache is not None and _cache[0] == version:
            return _cache[1]
    cal = WorkingCalendar(loaded_years=set(session.scalars(select(CalendarYear.year))))
    for row in session.scalars(select(CalendarDay)):
        (cal.holidays if row.kind == "holiday" else cal.workdays).add(row.day)
    rules = session.scalars(select(OfficeHoursRule).order_by(OfficeHoursRule.id)).all()
    if rules:
        cal.hours = [_office_hours(r) for r in rules]
    with _lock:
        _cache = (version, cal)
    return cal


def _office_hours(rule: OfficeHoursRule) -> OfficeHours:
    periods = tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in rule.periods)
    return OfficeHours(periods, rule.valid_from, rule.valid_to, rule.name)


def load_official_year(session: Session, year: int, actor: str) -> int:
    """Load a year's schedule from chinese-calendar; raises CalendarMissing when it does not know it."""
    holidays, workdays = official_schedule(year)
    return load_year(session, year, holidays, workdays, actor, source="chinese-calendar")


def load_year(session: Session, year: int, holidays: dict[date, str], workdays: dict[date, str], actor: str,
              source: str = "admin") -> int:
    for day in [*holidays, *workdays]:
        if day.year != year:
            raise InvalidInput("{day} is not in {year}", {"day": day, "year": year})
    overlap = set(holidays) & set(workdays)
    if overlap:
        raise InvalidInput("{overlap} cannot be both a holiday and a workday", {"overlap": sorted(overlap)[0]})
    for day in workdays:
        if day.weekday() < 5:
            raise InvalidInput("{day} is a weekday; a make-up workday (调休) is a Saturday or Sunday", {"day": day})
    session.execute(delete(CalendarDay).where(CalendarDay.day >= date(year, 1, 1),
                                              CalendarDay.day <= date(year, 12, 31)))
    for day, name in holidays.items():
        session.add(CalendarDay(day=day, kind="holiday", name=name))
    for day, name in workdays.items():
        session.add(CalendarDay(day=day, kind="workday", name=name))
    row = session.get(CalendarYear, year)
    if row is None:
        session.add(CalendarYear(year=year, source=source, loaded_at=now(), loaded_by=actor))
    else:
        row.source, row.loaded_at, row.loaded_by = source, now(), actor
    _bump(session)
    return len(holidays) + len(workdays)


def parse_year_file(year: int, content: bytes) -> tuple[dict[date, str], dict[date, str]]:
    """A year's schedule as JSON: {"holidays": {"YYYY-MM-DD": name}, "workdays": {"YYYY-MM-DD": name}}
    (the State Council's notice, for a year chinese-calendar does not know yet)."""
    import json

    try:
        raw = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput('the file is not JSON like {"holidays": {"2027-01-01": "元旦"}, '
                           '"workdays": {"2027-02-07": "春节调休"}}') from None
    if not isinstance(raw, dict) or set(raw) - {"holidays", "workdays"}:
        raise InvalidInput('the file holds an object with "holidays" and "workdays" only')
    parsed: list[dict[date, str]] = []
    for key in ("holidays", "workdays"):
        entries = raw.get(key, {})
        if not isinstance(entries, dict):
            raise InvalidInput("\"{key}\": an object of \"YYYY-MM-DD\": name", {"key": key})
        days: dict[date, str] = {}
        for text, name in entries.items():
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise InvalidInput("\"{key}\": '{text}' is not a date YYYY-MM-DD", {"key": key, "text": text}) from None
            if not isinstance(name, str) or len(name) > 100:
                raise InvalidInput("\"{key}\": the name of {text} must be text of at most 100 characters",
                                   {"key": key, "text": text})
            days[day] = name
        parsed.append(days)
    if not any(d.year == year for d in [*parsed[0], *parsed[1]]) and (parsed[0] or parsed[1]):
        raise InvalidInput("the file lists no day of {year}", {"year": year})
    return parsed[0], parsed[1]


def set_day(session: Session, day: date, kind: str, name: str, actor: str) -> None:
    """Correct one day: `holiday`, `workday` (调休) or `normal` (back to the weekday rule)."""
    if session.get(CalendarYear, day.year) is None:
        raise InvalidInput("{year} is not loaded; load the year first", {"year": day.year})
    if kind not in ("holiday", "workday", "normal"):
        raise InvalidInput("kind: holiday, workday or normal")
    if kind == "workday" and day.weekday() < 5:
        raise InvalidInput("{day} is a weekday; a make-up workday (调休) is a Saturday or Sunday", {"day": day})
    row = session.get(CalendarDay, day)
    if kind == "normal":
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(CalendarDay(day=day, kind=kind, name=name))
    else:
        row.kind, row.name = kind, name
    _bump(session)


def set_office_hours(session: Session, name: str, periods: list[tuple[str, str]], valid_from: date | None,
                     valid_to: date | None) -> OfficeHoursRule:
    try:
        rule = OfficeHoursRule(name=name, periods=[list(p) for p in periods], valid_from=valid_from,
                               valid_to=valid_to)
        _office_hours(rule)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("office hours: {exc}", {"exc": exc}) from None
    if (valid_from is None) != (valid_to is None):
        raise InvalidInput("office hours: give both valid_from and valid_to, or neither for the default")
    if valid_from is not None and valid_to < valid_from:
        raise InvalidInput("office hours '{name}': {valid_to} is before {valid_from}",
                           {"name": name, "valid_to": valid_to, "valid_from": valid_from})
    # rules are addressed by name; two rules may not claim the same day (one would silently lose)
    for other in session.scalars(select(OfficeHoursRule).where(OfficeHoursRule.name != name)):
        if valid_from is None and other.valid_from is None:
            raise InvalidInput("office hours: '{name}' is already the rule for every day without a season; "
                               "change '{name}' instead, or give '{name2}' dates",
                               {"name": other.name, "name2": name})
        if valid_from is not None and other.valid_from is not None and \
                valid_from <= other.valid_to and other.valid_from <= valid_to:
            raise InvalidInput("office hours '{name}' ({valid_from}–{valid_to}) overlaps '{name2}' "
                               "({valid_from2}–{valid_to2})",
                               {"name": name, "valid_from": valid_from, "valid_to": valid_to, "name2": other.name,
                                "valid_from2": other.valid_from, "valid_to2": other.valid_to})
    existing = session.scalar(select(OfficeHoursRule).where(OfficeHoursRule.name == name))
    if existing is not None:
        existing.periods, existing.valid_from, existing.valid_to = rule.periods, valid_from, valid_to
        rule = existing
    else:
        session.add(rule)
    _bump(session)
    return rule


def year_days(session: Session, year: int) -> list[CalendarDay]:
    if session.get(CalendarYear, year) is None:
        raise NotFound("{year} is not loaded", {"year": year})
    return list(session.scalars(select(CalendarDay).where(
        CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)).order_by(CalendarDay.day)))


def seed_official_years(session: Session, actor: str = "system") -> list[int]:
    """Load every year chinese-calendar knows that is not loaded yet."""
    from timers.calendar import supported_years

    loaded = set(session.scalars(select(CalendarYear.year)))
    added = []
    for year in supported_years():
        if year not in loaded:
            try:
                load_official_year(session, year, actor)
                added.append(year)
            except CalendarMissing:
                break
    return added
