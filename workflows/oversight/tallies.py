"""Daily tallies: the statistics' totals per closed day, so a month's report reads ~30 days of small rows
instead of a month of cases and clocks.

A closed day (before today in the hall, an hour past its midnight) does not change: cases, clocks,
pauses and ratings are written at the project clock's "now". The exceptions forget the day they touch:
a BPMN timer fired late at its own past instant (`late_write`), and the manual clock moved back
(`forget`). A report uses the tallies of built days and counts every other day of its period
live with the same queries, so it is right whether or not the scheduler has tallied yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import case as when
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from timers.clock import SHANGHAI, now, to_local

from ..db import Database
from ..models import Case, DailyTally, Pause, Rating, SlaClock, TalliedDay

KEY_FIELDS = ("kind", "process_key", "matter_code", "department", "scope", "state", "budget")
# a day is tallied only this long after its midnight: a transaction still open across midnight is done
SETTLE = timedelta(hours=1)
_LOCK_KEY = 0x4F57_7461_6C6C  # "OWtall": tally builds and late writes take turns on PostgreSQL


@dataclass
class Tally:
    kind: str
    process_key: str | None = None
    matter_code: str | None = None
    department: str | None = None
    scope: str | None = None
    state: str | None = None
    budget: str | None = None
    n: int = 0
    n_used: int = 0
    used_sum: int = 0
    hist: dict[int, int] = field(default_factory=dict)


def bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Days in the hall's time zone: [start 00:00, end+1 00:00) Asia/Shanghai."""
    return (datetime.combine(start, time(0), tzinfo=SHANGHAI),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=SHANGHAI))


def collect(session: Session, start: date, end: date) -> list[Tally]:
    """Count the days start..end from the rows themselves."""
    lo, hi = bounds(start, end)
    out: list[Tally] = []
    tolerated = func.coalesce(Case.materials["tolerated"].as_string(), "") != ""
    for process, matter, n, n_tolerated in session.execute(
            select(Case.process_key, Case.matter_code, func.count(), func.count(when((tolerated, 1))))
            .where(Case.created_at >= lo, Case.created_at < hi).group_by(Case.process_key, Case.matter_code)):
        out.append(Tally("received", process, matter, n=n))
        if n_tolerated:
            out.append(Tally("tolerated", process, matter, n=n_tolerated))
    for process, matter, status, n in session.execute(
            select(Case.process_key, Case.matter_code, Case.status, func.count())
            .where(Case.completed_at >= lo, Case.completed_at < hi)
            .group_by(Case.process_key, Case.matter_code, Case.status)):
        out.append(Tally("finished", process, matter, state=status, n=n))
    for process, matter, n in session.execute(
            select(SlaClock.process_key, SlaClock.matter_code, func.count())
            .where(SlaClock.scope == "case", SlaClock.started_at >= lo, SlaClock.started_at < hi)
            .group_by(SlaClock.process_key, SlaClock.matter_code)):
        out.append(Tally("accepted", process, matter, n=n))
    # clocks that stopped in time or late: one row per key and minutes used, folded into a histogram
    keys = (SlaClock.process_key, SlaClock.matter_code, SlaClock.department, SlaClock.scope, SlaClock.state,
            SlaClock.budget)
    clocks: dict[tuple, Tally] = {}
    for process, matter, dept, scope, state, budget, used, n in session.execute(
            select(*keys, SlaClock.used_minutes, func.count())
            .where(SlaClock.stopped_at >= lo, SlaClock.stopped_at < hi, SlaClock.state.in_(("met", "met_late")),
                   SlaClock.scope.in_(("case", "step")))
            .group_by(*keys, SlaClock.used_minutes)):
        t = clocks.setdefault((process, matter, dept, scope, state, budget),
                              Tally("clock", process, matter, dept, scope, state, budget))
        t.n += n
        if used is not None:
            t.n_used += n
            t.used_sum += used * n
            t.hist[used] = t.hist.get(used, 0) + n
    out.extend(clocks.values())
    for kind, process, matter, n, minutes in session.execute(
            select(Pause.kind, Case.process_key, Case.matter_code, func.count(), func.sum(Pause.working_minutes))
            .join(Case, Case.id == Pause.case_id).where(Pause.ended_at >= lo, Pause.ended_at < hi)
            .group_by(Pause.kind, Case.process_key, Case.matter_code)):
        out.append(Tally("paused", process, matter, state=kind, n=n, used_sum=int(minutes or 0)))
    for process, matter, n in session.execute(
            select(Case.process_key, Case.matter_code, func.count()).select_from(Pause)
            .join(Case, Case.id == Pause.case_id)
            .where(Pause.kind == "supplement", Pause.started_at >= lo, Pause.started_at < hi)
            .group_by(Case.process_key, Case.matter_code)):
        out.append(Tally("supplement", process, matter, n=n))
    for process, matter, score, n in session.execute(
            select(Case.process_key, Case.matter_code, Rating.score, func.count()).select_from(Rating)
            .join(Case, Case.id == Rating.case_id).where(Rating.at >= lo, Rating.at < hi)
            .group_by(Case.process_key, Case.matter_code, Rating.score)):
        out.append(Tally("rating", process, matter, state=str(score), n=n))
    return out


def _take_turn(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


def today() -> date:
    return to_local(now()).date()


def last_closed_day() -> date:
    """The latest day whose tallies may be built (an hour after its midnight)."""
    return to_local(now() - SETTLE).date() - timedelta(days=1)


def build_day(session: Session, day: date) -> bool:
    """Tally one closed day; False when it is already tallied (by another scheduler) or not yet closed."""
    if day > last_closed_day():
        return False
    _take_turn(session)
    if session.get(TalliedDay, day) is not None:
        return False
    rows = collect(session, day, day)
    if rows:
        session.execute(DailyTally.__table__.insert(), [
            {"day": day, **{f: getattr(t, f) for f in KEY_FIELDS}, "n": t.n, "n_used": t.n_used,
             "used_sum": t.used_sum, "hist": {str(k): v for k, v in t.hist.items()} or None} for t in rows])
    session.add(TalliedDay(day=day, built_at=now()))
    session.flush()
    return True


def untallied_days(session: Session) -> list[date]:
    """Closed days since the first case that have no tallies yet."""
    first = session.scalar(select(func.min(Case.created_at)))
    if first is None:
        return []
    start, last = to_local(first).date(), last_closed_day()
    done = set(session.scalars(select(TalliedDay.day).where(TalliedDay.day >= start)))
    return [d for d in _days(start, last) if d not in done]


@dataclass(frozen=True)
class TallyStatus:
    last_closed: date
    tallied: int
    latest: date | None
    missing: int


def status(session: Session) -> TallyStatus:
    """How far the tallies have come: for the admin's command and the metrics."""
    tallied, latest = session.execute(select(func.count(), func.max(TalliedDay.day))).one()
    return TallyStatus(last_closed_day(), tallied, latest, len(untallied_days(session)))


def build_missing(db: Database) -> int:
    """The scheduler's job: tally every closed day not tallied yet, one transaction per day."""
    with db.read() as session:
        days = untallied_days(session)
    return sum(1 for day in days if db.transaction(lambda s, d=day: build_day(s, d)))


def forget(session: Session, start: date, end: date | None = None) -> None:
    """Drop the tallies of start..end (start onwards when no end): they are counted live again."""
    _take_turn(session)
    cond = [DailyTally.day >= start] + ([DailyTally.day <= end] if end else [])
    session.execute(delete(DailyTally).where(*cond))
    cond = [TalliedDay.day >= start] + ([TalliedDay.day <= end] if end else [])
    session.execute(delete(TalliedDay).where(*cond))


def late_write(session: Session, at: datetime) -> None:
    """Something is being recorded at a past instant (a timer fired late): its day is counted anew."""
    day = to_local(at).date()
    if day < today():
        forget(session, day, day)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)] if end >= start else []


def for_period(session: Session, start: date, end: date) -> list[Tally]:
    """Every tally of start..end: built days from their rows, the others (today, untallied) counted live."""
    built = set(session.scalars(select(TalliedDay.day).where(TalliedDay.day >= start, TalliedDay.day <= end)))
    out: list[Tally] = []
    if built:
        for row in session.scalars(select(DailyTally).where(DailyTally.day >= start, DailyTally.day <= end)):
            if row.day in built:
                out.append(Tally(row.kind, row.process_key, row.matter_code, row.department, row.scope, row.state,
                                 row.budget, row.n, row.n_used, row.used_sum,
                                 {int(k): v for k, v in (row.hist or {}).items()}))
    run: list[date] = []
    for day in [*_days(start, end), None]:  # contiguous runs of untallied days, one live count each
        if day is not None and day not in built:
            run.append(day)
            continue
        if run:
            out.extend(collect(session, run[0], run[-1]))
            run = []
    return out
