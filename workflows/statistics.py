"""Statistics for a period: volumes, time limits kept, working time against promised and statutory
limits (and the seeds' targets), pauses, 补正 and 容缺, satisfaction and rectification.

Time used comes from the clocks (fixed when each stopped), so no calendar maths runs here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from timers.clock import SHANGHAI
from timers.durations import parse_duration

from .catalogue import catalogue
from .models import Case, Pause, Rating, SlaClock

MINUTES_PER_DAY = 480  # "1 个工作日（8 个工作小时）"
# the seeds' targets: promised limits ≥ 60 % shorter than statutory, actual time ≥ 30 % shorter than promised
TARGET_PROMISED_TO_STATUTORY = 0.4
TARGET_ACTUAL_TO_PROMISED = 0.7


@lru_cache(maxsize=256)
def budget_minutes(text: str | None) -> int | None:
    if not text:
        return None
    d = parse_duration(text)
    return d.days * MINUTES_PER_DAY if d.days else d.minutes


def p90(values: list[int]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)])


def mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class TimeStats:
    """Clocks that stopped in the period: how many, how many in time, working time used and budgeted."""

    count: int = 0
    on_time: int = 0
    late: int = 0
    used_sum: int = 0
    used_count: int = 0
    budget_sum: int = 0
    budget_count: int = 0
    p90: float | None = None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / (self.on_time + self.late) if self.on_time + self.late else None

    @property
    def avg(self) -> float | None:
        return self.used_sum / self.used_count if self.used_count else None

    @property
    def avg_budget(self) -> float | None:
        return self.budget_sum / self.budget_count if self.budget_count else None


@dataclass
class MatterStats:
    code: str
    name: str
    received: int = 0
    accepted: int = 0
    refused: int = 0
    completed: int = 0
    terminated: int = 0
    times: TimeStats = field(default_factory=TimeStats)
    statutory_minutes: int | None = None

    @property
    def promised_to_statutory(self) -> float | None:
        avg = self.times.avg_budget
        return avg / self.statutory_minutes if avg and self.statutory_minutes else None

    @property
    def actual_to_promised(self) -> float | None:
        avg, budget = self.times.avg, self.times.avg_budget
        return avg / budget if avg is not None and budget else None


@dataclass
class Report:
    start: date
    end: date
    matters: dict[str, MatterStats]
    departments: dict[str, TimeStats]
    paused_minutes: dict[str, int]
    supplements: int
    tolerated: int
    ratings: int
    satisfied: int
    bad: int
    appeals_upheld: int
    rectified: int

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None

    @property
    def rectification_rate(self) -> float | None:
        owed = self.bad - self.appeals_upheld  # a rating found mistaken or malicious needs no rectification
        return self.rectified / owed if owed > 0 else None


def _p90s(session: Session, base) -> list[tuple[str, str, str | None, float | None]]:
    """The 90th percentile (nearest rank) of working time used per case matter and per step department."""
    out = []
    for scope, key in (("case", SlaClock.matter_code), ("step", SlaClock.department)):
        where = base.whereclause
        if session.get_bind().dialect.name == "postgresql":
            stmt = select(key, func.percentile_disc(0.9).within_group(SlaClock.used_minutes)).where(
                SlaClock.scope == scope, SlaClock.used_minutes.is_not(None)).group_by(key)
            if where is not None:
                stmt = stmt.where(where)
            rows = session.execute(stmt).all()
            values = {k: float(v) if v is not None else None for k, v in rows}
        else:  # the embedded database: the values are few enough to rank here
            stmt = select(key, SlaClock.used_minutes).where(SlaClock.scope == scope,
                                                            SlaClock.used_minutes.is_not(None))
            if where is not None:
                stmt = stmt.where(where)
            lists: dict = defaultdict(list)
            for k, used in session.execute(stmt):
                lists[k].append(used)
            values = {k: p90(v) for k, v in lists.items()}
        for k, v in values.items():
            out.append((scope, k, k, v) if scope == "step" else (scope, k, None, v))
    return out


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The period in the hall's days: [start 00:00, end+1 00:00) Asia/Shanghai."""
    return (datetime.combine(start, time(0), tzinfo=SHANGHAI),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=SHANGHAI))


def report(session: Session, start: date, end: date, process: str | None = None, matter: str | None = None,
           department: str | None = None) -> Report:
    lo, hi = _bounds(start, end)
    cat = catalogue()
    matters: dict[str, MatterStats] = {}

    def stats_for(code: str) -> MatterStats:
        if code not in matters:
            m = cat.matters.get(code)
            matters[code] = MatterStats(code, m.name if m else code,
                                        statutory_minutes=budget_minutes(m.statutory_limit) if m else None)
        return matters[code]

    def scoped(stmt, model):
        if process:
            stmt = stmt.where(model.process_key == process)
        if matter:
            stmt = stmt.where(model.matter_code == matter)
        return stmt

    internal = [code for code, m in cat.matters.items() if m.internal]
    received = scoped(select(Case.matter_code, func.count()).where(Case.created_at >= lo, Case.created_at < hi,
                                                                   Case.matter_code.not_in(internal)), Case)
    for code, n in session.execute(received.group_by(Case.matter_code)):
        stats_for(code).received = n
    finished = scoped(select(Case.matter_code, Case.status, func.count()).where(
        Case.completed_at >= lo, Case.completed_at < hi, Case.matter_code.not_in(internal)), Case)
    for code, status, n in session.execute(finished.group_by(Case.matter_code, Case.status)):
        s = stats_for(code)
        if status == "completed":
            s.completed = n
        elif status == "refused":
            s.refused = n
        elif status == "terminated":
            s.terminated = n
    accepted = scoped(select(SlaClock.matter_code, func.count()).where(
        SlaClock.scope == "case", SlaClock.started_at >= lo, SlaClock.started_at < hi,
        SlaClock.matter_code.not_in(internal)), SlaClock)
    for code, n in session.execute(accepted.group_by(SlaClock.matter_code)):
        stats_for(code).accepted = n

    # stopped clocks, aggregated in the database: one row per (scope, matter, department, state, budget)
    stopped_filter = [SlaClock.stopped_at >= lo, SlaClock.stopped_at < hi, SlaClock.state.in_(("met", "met_late")),
                      SlaClock.scope.in_(("case", "step")), SlaClock.matter_code.not_in(internal)]
    if department:
        stopped_filter.append((SlaClock.department == department) | (SlaClock.scope == "case"))
    grouped = scoped(select(SlaClock.scope, SlaClock.matter_code, SlaClock.department, SlaClock.state,
                            SlaClock.budget, func.count(), func.count(SlaClock.used_minutes),
                            func.coalesce(func.sum(SlaClock.used_minutes), 0)).where(*stopped_filter), SlaClock)
    departments: dict[str, TimeStats] = defaultdict(TimeStats)

    def target(scope: str, code: str, dept: str | None) -> TimeStats:
        return stats_for(code).times if scope == "case" else departments[dept or "?"]

    for scope, code, dept, state, budget, n, n_used, used_sum in session.execute(grouped.group_by(
            SlaClock.scope, SlaClock.matter_code, SlaClock.department, SlaClock.state, SlaClock.budget)):
        t = target(scope, code, dept)
        t.count += n
        if state == "met":
            t.on_time += n
        else:
            t.late += n
        t.used_count += n_used
        t.used_sum += int(used_sum)
        minutes = budget_minutes(budget)
        if minutes is not None:
            t.budget_count += n
            t.budget_sum += minutes * n
    for scope, code, dept, value in _p90s(session, scoped(select(), SlaClock).where(*stopped_filter)):
        target(scope, code, dept).p90 = value

    case_scope = select(Case.id).where(Case.matter_code.not_in(internal))
    if process:
        case_scope = case_scope.where(Case.process_key == process)
    if matter:
        case_scope = case_scope.where(Case.matter_code == matter)
    paused: dict[str, int] = defaultdict(int)
    for kind, minutes in session.execute(select(Pause.kind, func.sum(Pause.working_minutes)).where(
            Pause.ended_at >= lo, Pause.ended_at < hi, Pause.case_id.in_(case_scope)).group_by(Pause.kind)):
        paused[kind] = int(minutes or 0)
    supplements = session.scalar(select(func.count()).select_from(Pause).where(
        Pause.kind == "supplement", Pause.started_at >= lo, Pause.started_at < hi,
        Pause.case_id.in_(case_scope))) or 0
    tolerated = session.scalar(select(func.count()).select_from(Case).where(
        Case.created_at >= lo, Case.created_at < hi, Case.id.in_(case_scope),
        func.coalesce(Case.materials["tolerated"].as_string(), "") != "")) or 0

    ratings = session.execute(select(Rating.score, Rating.followup_case_id).where(
        Rating.at >= lo, Rating.at < hi, Rating.case_id.in_(case_scope))).all()
    followups = [fid for score, fid in ratings if score <= 2 and fid]
    results = [data.get("result") for (data,) in session.execute(
        select(Case.data).where(Case.id.in_(followups), Case.status == "completed"))] if followups else []
    return Report(start, end, dict(sorted(matters.items())), dict(sorted(departments.items())), dict(paused),
                  supplements, tolerated, len(ratings), sum(1 for s, _ in ratings if s >= 3),
                  sum(1 for s, _ in ratings if s <= 2), results.count("appeal_upheld"),
                  results.count("rectified"))
