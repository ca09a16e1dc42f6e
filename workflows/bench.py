"""Benchmarks that print numbers (`onewindow bench …`): the database is filled in bulk with a realistic
spread of cases, clocks and work items, then the supervisor's queries are timed.

Bulk rows are written with executemany in batches; every case of a kind shares one real serialized
workflow state (the board and the statistics never read it).
"""

from __future__ import annotations

import json
import platform
import random
import resource
import statistics as pystats
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select

from timers.clock import SHANGHAI, now

from . import board, cases, statistics
from .catalogue import catalogue
from .db import Database
from .models import Case, ProcessVersion, Rating, SlaClock, WorkItem

STEPS = [("registration", "企业设立登记", "samr", "PT3H", 180), ("seal", "印章刻制", "police", "PT3H", 180),
         ("invoice", "发票申领及涉税事项", "tax", "PT1H30M", 90)]
BATCH = 5000


@dataclass
class Timing:
    name: str
    runs: int
    p50_ms: float
    p95_ms: float
    max_ms: float


def _time(name: str, runs: int, call) -> Timing:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[max(0, int(round(0.95 * len(samples))) - 1)]
    return Timing(name, runs, round(pystats.median(samples), 2), round(p95, 2), round(samples[-1], 2))


def populate(db: Database, open_cases: int, completed_cases: int, month: date, seed: int = 7) -> dict:
    """Add `open_cases` running company-setup cases and `completed_cases` finished in `month`."""
    rng = random.Random(seed)
    with db.read() as s:
        version = s.scalar(select(ProcessVersion).where(ProcessVersion.process_key == "company_setup")
                           .order_by(ProcessVersion.version.desc()))
        if version is None:
            raise RuntimeError("deploy the bundled processes first (onewindow deploy --bundled)")
    # one real state to copy
    sample = db.transaction(lambda s: cases.start_case(
        s, "company_setup", {"type": "company", "name": "样本", "id_no": "91350100M000100Y43"}, {}, cases.SYSTEM))
    state = sample.state
    with db.read() as s:
        start_id = (s.scalar(select(func.max(Case.id))) or 0) + 1
    at = now()
    month_start = datetime.combine(month, datetime.min.time(), tzinfo=SHANGHAI)
    written = {"cases": 0, "clocks": 0, "work_items": 0, "ratings": 0}
    total = open_cases + completed_cases
    for offset in range(0, total, BATCH):
        case_rows, clock_rows, item_rows, rating_rows = [], [], [], []
        for n in range(offset, min(total, offset + BATCH)):
            case_id = start_id + n
            is_open = n < open_cases
            created = (at - timedelta(minutes=rng.randint(0, 60 * 24 * 5)) if is_open
                       else month_start + timedelta(minutes=rng.randint(0, 60 * 24 * 27)))
            case_no = f"B{case_id:011d}"
            case_rows.append(dict(
                id=case_id, case_no=case_no, query_code="BENCHMRK", process_version_id=version.id,
                process_key="company_setup", matter_code="QYKB", status="in_progress" if is_open else "completed",
                outcome=None if is_open else "approved", applicant_type="company", applicant_name=f"企业{case_id}",
                applicant_id_no="91350100M000100Y43", applicant_contact=None, data={}, budget="PT8H", state=state,
                created_by="bench", created_at=created, updated_at=created,
                completed_at=None if is_open else created + timedelta(hours=rng.randint(2, 30)), revision=1,
                next_timer_at=None, materials=None, supplement_due_at=None))
            used = rng.randint(60, 700)
            due = created + timedelta(hours=rng.randint(1, 30))
            clock_rows.append(dict(
                case_id=case_id, case_no=case_no, process_key="company_setup", matter_code="QYKB", scope="case",
                step=None, name="企业开办", task_id=None, work_item_id=None, department="window", budget="PT8H",
                budget_minutes=480, started_at=created, due_at=due, warn_at=due - timedelta(hours=1),
                calendar_missing=None, state=rng.choice(("running", "running", "warned", "breached", "paused"))
                if is_open else ("met" if used <= 480 else "met_late"), paused_at=None, paused_minutes=0,
                warned_at=None, breached_at=None, stopped_at=None if is_open else created + timedelta(hours=6),
                used_minutes=None if is_open else used))
            for step, name, dept, budget, minutes in STEPS:
                if is_open and rng.random() < 0.5:
                    continue  # some branches are already done
                step_due = created + timedelta(minutes=rng.randint(30, 600))
                clock_rows.append(dict(
                    case_id=case_id, case_no=case_no, process_key="company_setup", matter_code="QYKB", scope="step",
                    step=step, name=name, task_id=None, work_item_id=None, department=dept, budget=budget,
                    budget_minutes=minutes, started_at=created, due_at=step_due, warn_at=step_due - timedelta(hours=1),
                    calendar_missing=None, state=rng.choice(("running", "warned", "breached")) if is_open
                    else ("met" if used <= minutes * 2 else "met_late"), paused_at=None, paused_minutes=0,
                    warned_at=None, breached_at=None, stopped_at=None if is_open else created + timedelta(hours=3),
                    used_minutes=None if is_open else rng.randint(20, minutes * 2)))
                if is_open:
                    item_rows.append(dict(
                        case_id=case_id, case_no=case_no, task_id=f"bench-{case_id}-{step}", step=step, name=name,
                        role="reviewer", department=dept, lane=None, budget=budget, state="open", assignee=None,
                        created_at=created, claimed_at=None, completed_at=None, completed_by=None))
            if not is_open and rng.random() < 0.3:
                rating_rows.append(dict(case_id=case_id, score=rng.choice((5, 5, 5, 4, 4, 3, 2, 1)), comment="",
                                        at=created + timedelta(days=1), followup_case_id=None))

        def write(s, c=case_rows, k=clock_rows, i=item_rows, r=rating_rows):
            s.execute(insert(Case), c)
            s.execute(insert(SlaClock), k)
            if i:
                s.execute(insert(WorkItem), i)
            if r:
                s.execute(insert(Rating), r)
        db.transaction(write)
        written["cases"] += len(case_rows)
        written["clocks"] += len(clock_rows)
        written["work_items"] += len(item_rows)
        written["ratings"] += len(rating_rows)
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql(f"SELECT setval('cases_id_seq', {start_id + total})")
            conn.commit()
    return written


def measure_supervision(db: Database, month: date, runs: int) -> list[Timing]:
    end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    timings = []

    def first_page(**filters):
        with db.read() as s:
            return board.board(s, board.BoardQuery(**filters))

    def month_stats():
        with db.read() as s:
            return statistics.report(s, month, end)

    first_page()  # warm the caches once, as a running server would be
    timings.append(_time("board first page", runs, first_page))
    timings.append(_time("board first page, one department, warned", runs,
                         lambda: first_page(department="police", state="warned")))
    timings.append(_time("month statistics", runs, month_stats))
    return timings


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_scale(db: Database, open_cases: int, completed_cases: int, runs: int, month: date) -> dict:
    started = time.perf_counter()
    written = populate(db, open_cases, completed_cases, month) if open_cases + completed_cases else {}
    built = time.perf_counter() - started
    timings = measure_supervision(db, month, runs)
    with db.read() as s:
        totals = {"cases": s.scalar(select(func.count()).select_from(Case)),
                  "clocks": s.scalar(select(func.count()).select_from(SlaClock))}
    return {"workload": "supervision", "database": db.dialect, "machine": platform.machine(),
            "python": platform.python_version(), "date": now().astimezone(SHANGHAI).date().isoformat(),
            "written": written, "totals": totals, "build_seconds": round(built, 1),
            "timings": [asdict(t) for t in timings], "peak_rss_mb": peak_rss_mb(),
            "matters": len(catalogue().matters)}


def render(result: dict) -> str:
    lines = [f"database {result['database']}, {result['totals']['cases']} cases, {result['totals']['clocks']} clocks "
             f"(built in {result['build_seconds']} s), peak RSS {result['peak_rss_mb']} MB",
             f"{'query':<45} {'runs':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}"]
    for t in result["timings"]:
        lines.append(f"{t['name']:<45} {t['runs']:>5} {t['p50_ms']:>9} {t['p95_ms']:>9} {t['max_ms']:>9}")
    return "\n".join(lines)


def dump(result: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False, indent=2)
