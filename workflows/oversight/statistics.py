"""Statistics for a period: volumes, time limits kept, working time against promised and statutory
limits (and the seeds' targets), pauses, 补正 and 容缺, satisfaction and rectification.

Time used comes from the clocks (fixed when each stopped), so no calendar maths runs here; the totals
come from daily tallies (`tallies`), so a month costs about thirty days of small rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from timers.durations import parse_duration

from ..definitions.catalogue import catalogue
from ..models import Case, Extension, Rating
from . import tallies

MINUTES_PER_DAY = 480  # "1 个工作日（8 个工作小时）"
# the seeds' targets: promised limits ≥ 60 % shorter than statutory, actual time ≥ 30 % shorter than promised
TARGET_PROMISED_TO_STATUTORY = 0.4
TARGET_ACTUAL_TO_PROMISED = 0.7


@lru_cache(maxsize=256)
def budget_minutes(text: str | None) -> int | None:
    if not text:
        return None
    d = parse_duration(text)
    if d.natural:  # about five working days in seven natural ones
        return d.days * MINUTES_PER_DAY * 5 // 7
    return d.days * MINUTES_PER_DAY if d.days else d.minutes


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
    extended: int = 0  # cases whose limit was extended (延期 approved in the period)
    paused_by_matter: dict[str, dict[str, int]] = field(default_factory=dict)  # matter → pause kind → minutes
    targets: list[TargetRow] = field(default_factory=list)

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None

    @property
    def rectification_rate(self) -> float | None:
        owed = self.bad - self.appeals_upheld  # a rating found mistaken or malicious needs no rectification
        return self.rectified / owed if owed > 0 else None


@dataclass
class TargetRow:
    """A target the source documents set for a matter, with what the period achieved."""

    matter: str
    name: str
    kind: str  # average_days | share | special_share
    label: str  # the catalogue's own words for it
    target: float | None
    actual: float | None

    @property
    def met(self) -> bool | None:
        if self.actual is None or self.target is None:
            return None
        return self.actual <= self.target if self.kind == "average_days" else self.actual >= self.target


def _targets(session: Session, start: date, end: date, report: Report, matter_filter: str | None) -> list[TargetRow]:
    """Each matter's `targets` from the catalogue (the region in force), measured in the period:
    - average_days: N — the average working days of the case clocks against N;
    - a share: {step, field?, good?, at_least, label} — of the cases accepted (or received, for a matter
      without a case clock), how many completed the step
      (with the field among the good values): a reply rate, a call-back satisfaction;
    - special_share: {label} — the share of the matter's working time excluded as 特别程序 (testing, appraisal)."""
    rows: list[TargetRow] = []
    for code, matter in catalogue().matters.items():
        wanted = matter.extra.get("targets") or {}
        if not wanted or (matter_filter and code != matter_filter):
            continue
        stats = report.matters.get(code)
        for key, spec in wanted.items():
            spec = spec if isinstance(spec, dict) else {"value": spec}
            label = str(spec.get("label") or key)
            if key == "average_days":
                avg = stats.times.avg if stats else None
                rows.append(TargetRow(code, matter.name, "average_days", label, float(spec.get("value")),
                                      None if avg is None else round(avg / MINUTES_PER_DAY, 2)))
            elif key == "special_share":
                paused = report.paused_by_matter.get(code, {})
                used = (stats.times.used_sum if stats else 0) + sum(paused.values())
                rows.append(TargetRow(code, matter.name, "special_share", label, None,
                                      round(paused.get("special", 0) / used, 3) if used else None))
            elif "step" in spec:
                rows.append(TargetRow(code, matter.name, "share", label, float(spec.get("at_least", 1.0)),
                                      _step_share(session, start, end, code, spec, stats)))
    return rows


def _step_share(session: Session, start: date, end: date, code: str, spec: dict, stats) -> float | None:
    from ..models import WorkItem

    lo, hi = tallies.bounds(start, end)
    rows = session.execute(select(WorkItem.data).join(Case, Case.id == WorkItem.case_id).where(
        Case.matter_code == code, WorkItem.step == spec["step"], WorkItem.state == "completed",
        WorkItem.completed_at >= lo, WorkItem.completed_at < hi)).scalars().all()
    if spec.get("field"):
        good = set(spec.get("good") or [])
        answered = [r for r in rows if isinstance(r, dict) and spec["field"] in r]
        return round(sum(r[spec["field"]] in good for r in answered) / len(answered), 3) if answered else None
    base = (stats.accepted or stats.received) if stats else 0  # matters without a case clock count no acceptance
    return round(min(len(rows) / base, 1.0), 3) if base else None


def p90_of(hist: dict[int, int]) -> float | None:
    """Nearest-rank 90th percentile of values given as {value: how many}."""
    total = sum(hist.values())
    if not total:
        return None
    rank, seen = math.ceil(0.9 * total), 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return float(value)
    return None


def report(session: Session, start: date, end: date, process: str | None = None, matter: str | None = None,
           department: str | None = None) -> Report:
    """The period's statistics, folded from daily tallies (built days) and live counts (the rest)."""
    cat = catalogue()
    internal = {code for code, m in cat.matters.items() if m.internal}
    matters: dict[str, MatterStats] = {}

    def stats_for(code: str) -> MatterStats:
        if code not in matters:
            m = cat.matters.get(code)
            matters[code] = MatterStats(code, m.name if m else code,
                                        statutory_minutes=budget_minutes(m.statutory_limit) if m else None)
        return matters[code]

    departments: dict[str, TimeStats] = defaultdict(TimeStats)
    hists: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # (scope, key) → histogram
    paused: dict[str, int] = defaultdict(int)
    paused_by_matter: dict[str, dict[str, int]] = {}
    supplements = tolerated = ratings = satisfied = bad = 0
    for t in tallies.for_period(session, start, end):
        if t.matter_code in internal or (process and t.process_key != process) or \
                (matter and t.matter_code != matter):
            continue
        if t.kind == "received":
            stats_for(t.matter_code).received += t.n
        elif t.kind == "accepted":
            stats_for(t.matter_code).accepted += t.n
        elif t.kind == "finished" and t.state in ("completed", "refused", "terminated"):
            s = stats_for(t.matter_code)
            setattr(s, t.state, getattr(s, t.state) + t.n)
        elif t.kind == "clock":
            if department and t.scope != "case" and t.department != department:
                continue
            key = ("case", t.matter_code) if t.scope == "case" else ("step", t.department or "?")
            times = stats_for(t.matter_code).times if t.scope == "case" else departments[key[1]]
            times.count += t.n
            if t.state == "met":
                times.on_time += t.n
            else:
                times.late += t.n
            times.used_count += t.n_used
            times.used_sum += t.used_sum
            minutes = budget_minutes(t.budget)
            if minutes is not None:
                times.budget_count += t.n
                times.budget_sum += minutes * t.n
            for value, n in t.hist.items():
                hists[key][value] += n
        elif t.kind == "paused":
            paused[t.state] += t.used_sum
            by_matter = paused_by_matter.setdefault(t.matter_code, {})
            by_matter[t.state] = by_matter.get(t.state, 0) + t.used_sum
        elif t.kind == "supplement":
            supplements += t.n
        elif t.kind == "tolerated":
            tolerated += t.n
        elif t.kind == "rating":
            ratings += t.n
            if int(t.state) >= 3:
                satisfied += t.n
            else:
                bad += t.n
    for code, m in matters.items():
        m.times.p90 = p90_of(hists.get(("case", code), {}))
    for name, times in departments.items():
        times.p90 = p90_of(hists.get(("step", name), {}))
    results = _followup_results(session, start, end, internal, process, matter)
    result = Report(start, end, dict(sorted(matters.items())), dict(sorted(departments.items())), dict(paused),
                    supplements, tolerated, ratings, satisfied, bad, results.count("appeal_upheld"),
                    results.count("rectified"), _extended(session, start, end, process, matter), paused_by_matter)
    result.targets = _targets(session, start, end, result, matter)
    return result


def _extended(session: Session, start: date, end: date, process: str | None, matter: str | None) -> int:
    """Cases whose limit was extended in the period (counted live: extensions are few)."""
    lo, hi = tallies.bounds(start, end)
    stmt = (select(func.count(func.distinct(Extension.case_id))).join(Case, Case.id == Extension.case_id)
            .where(Extension.state == "approved", Extension.decided_at >= lo, Extension.decided_at < hi))
    if process:
        stmt = stmt.where(Case.process_key == process)
    if matter:
        stmt = stmt.where(Case.matter_code == matter)
    return session.scalar(stmt) or 0


def _followup_results(session: Session, start: date, end: date, internal: set[str], process: str | None,
                      matter: str | None) -> list[str | None]:
    """How the follow-ups of the period's bad ratings ended; counted live, as a follow-up ends later."""
    lo, hi = tallies.bounds(start, end)
    rated, followup = aliased(Case), aliased(Case)
    stmt = (select(followup.data).select_from(Rating).join(rated, rated.id == Rating.case_id)
            .join(followup, followup.id == Rating.followup_case_id)
            .where(Rating.at >= lo, Rating.at < hi, Rating.score <= 2, followup.status == "completed"))
    if internal:
        stmt = stmt.where(rated.matter_code.not_in(internal))
    if process:
        stmt = stmt.where(rated.process_key == process)
    if matter:
        stmt = stmt.where(rated.matter_code == matter)
    return [(data or {}).get("result") for (data,) in session.execute(stmt)]
