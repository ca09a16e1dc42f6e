"""Benchmarks that print numbers (`onewindow bench …`): the database is filled in bulk with a realistic
spread of cases, clocks and work items, then the supervisor's queries are timed.

Bulk rows are written with executemany in batches; every case of a kind shares one real serialized
workflow state (the board and the statistics never read it).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import resource
import statistics as pystats
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select

from timers.clock import SHANGHAI, now

from .administration import calendar_store
from .casework import cases
from .db import Database
from .definitions.catalogue import catalogue
from .models import Case, ProcessVersion, Rating, SlaClock, WorkItem
from .oversight import board, sla, statistics, tallies

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


def _case_row(case_id: int, case_no: str, version_id: int, state: bytes, created: datetime,
              completed: datetime | None) -> dict:
    """A company-setup case row for bulk loading: running, or completed (approved) at `completed`."""
    return dict(id=case_id, case_no=case_no, query_code="BENCHMRK", process_version_id=version_id,
                process_key="company_setup", matter_code="QYKB", status="completed" if completed else "in_progress",
                outcome="approved" if completed else None, applicant_type="company", applicant_name=f"企业{case_id}",
                applicant_id_no="91350100M000100Y43", applicant_contact=None, data={}, budget="PT8H", state=state,
                created_by="bench", created_at=created, updated_at=created, completed_at=completed, revision=1,
                next_timer_at=None, materials=None, supplement_due_at=None)


def _bulk(db: Database, batches: list[tuple[type, list[dict]]]) -> None:
    """Write rows in one transaction: COPY on PostgreSQL (an order of magnitude faster than INSERT for
    a million rows), executemany elsewhere."""
    if db.dialect != "postgresql":
        def write(s):
            for model, rows in batches:
                if rows:
                    s.execute(insert(model), rows)
        db.transaction(write)
        return
    from psycopg.types.json import Json

    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for model, rows in batches:
                if not rows:
                    continue
                columns = list(rows[0])
                with cur.copy(f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([Json(v) if isinstance(v, dict | list) else v for v in
                                        (row[c] for c in columns)])
        raw.commit()
    finally:
        raw.close()


def populate(db: Database, open_cases: int, completed_cases: int, month: date, seed: int = 7,
             months: int = 1) -> dict:
    """Add `open_cases` running company-setup cases and `completed_cases` finished over `months` months
    ending with `month` (spread evenly, so the measured month holds its share)."""
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
                       else month_start - timedelta(days=30 * rng.randrange(months))
                       + timedelta(minutes=rng.randint(0, 60 * 24 * 27)))
            case_no = f"B{case_id:011d}"
            case_rows.append(_case_row(
                case_id, case_no, version.id, state, created,
                None if is_open else created + timedelta(hours=rng.randint(2, 30))))
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

        _bulk(db, [(Case, case_rows), (SlaClock, clock_rows), (WorkItem, item_rows), (Rating, rating_rows)])
        written["cases"] += len(case_rows)
        written["clocks"] += len(clock_rows)
        written["work_items"] += len(item_rows)
        written["ratings"] += len(rating_rows)
    _after_bulk_import(db, start_id + total)
    return written


def _after_bulk_import(db: Database, next_case_id: int) -> None:
    """Rows written past the ORM: their past days' tallies (if any) are counted again; on PostgreSQL
    the planner learns the new sizes and the case id sequence moves past the ids used."""
    db.transaction(lambda s: tallies.forget(s, date(1900, 1, 1)))
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql(f"SELECT setval('cases_id_seq', {next_case_id})")
            conn.commit()


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
    # the scheduler tallies closed days as they close; after a bulk import, all of them at once
    started = time.perf_counter()
    days = tallies.build_missing(db)
    took = round((time.perf_counter() - started) * 1000, 1)
    timings.append(Timing(f"tally {days} closed days (scheduler job, once)", 1, took, took, took))
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


def environment(db: Database) -> dict:
    """What a benchmark ran on: machine, date, versions and database, for the JSON and the table."""
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    with db.engine.connect() as conn:
        server = conn.exec_driver_sql("SELECT sqlite_version()" if db.dialect == "sqlite"
                                      else "SHOW server_version").scalar()
    return {"date": now().astimezone(SHANGHAI).date().isoformat(), "machine": platform.machine(),
            "cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "database": f"{db.dialect} {server}",
            **{name: version(name) for name in ("SpiffWorkflow", "SQLAlchemy", "Flask")}}


def describe(env: dict) -> str:
    return (f"{env['date']} · {env['cpus']} × {env['cpu']}, {env['memory_gib']} GiB, {env['machine']} · "
            f"Python {env['python']} · SpiffWorkflow {env['SpiffWorkflow']} · SQLAlchemy {env['SQLAlchemy']} · "
            f"{env['database']}")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def dump(result: dict, path: str, env: dict | None = None) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({**result, "environment": env} if env else result, fh, ensure_ascii=False, indent=2)


# --- throughput and the engine floor (issue 6) --------------------------------------------------
COMPANY = {"type": "company", "name": "基准测试有限公司", "id_no": "91350100M000100Y43"}
REVIEWERS = {"registration": cases.Actor("samr", "reviewer", "samr"),
             "seal": cases.Actor("police", "reviewer", "police"), "invoice": cases.Actor("tax", "reviewer", "tax"),
             "accept": cases.Actor("clerk", "clerk", "window"), "deliver": cases.Actor("clerk", "clerk", "window")}
STEP_DATA = {"accept": {"decision": "accept"}, "registration": {"approval": "approve", "license_no": "L"},
             "seal": {"seal_no": "S"}, "invoice": {"taxpayer_no": "T"}, "deliver": {"delivery_method": "window"}}


def _percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)

    def rank(q):
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3) if ordered else None
    return {"p50_ms": rank(0.5), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return round(int(fh.read().split()[1]) * resource.getpagesize() / 2**20, 1)


def _run_cases(url: str, n: int, out) -> None:
    """One worker: n company-setup cases from intake to delivery through the service layer."""
    db = Database(url)
    latencies: list[float] = []
    rss: list[float] = []
    started = time.perf_counter()
    for done in range(n):
        if n >= 10 and done % max(1, n // 10) == 0:
            rss.append(current_rss_mb())
        t = time.perf_counter()
        case = db.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, cases.SYSTEM))
        latencies.append((time.perf_counter() - t) * 1000)
        while True:
            with db.read() as s:
                items = s.scalars(select(WorkItem).where(WorkItem.case_id == case.id,
                                                         WorkItem.state == "open")).all()
            if not items:
                break
            for item in items:
                t = time.perf_counter()
                # the API's path: evaluated without the write lock, then written with the revision check
                cases.complete_step(db, item.id, REVIEWERS[item.step], STEP_DATA[item.step])
                latencies.append((time.perf_counter() - t) * 1000)
    rss.append(current_rss_mb())
    out.put({"seconds": time.perf_counter() - started, "latencies": latencies, "rss_mb": peak_rss_mb(),
             "rss_samples": rss})
    db.dispose()


def throughput(url: str, n_cases: int, workers: int) -> dict:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    share = [n_cases // workers + (1 if i < n_cases % workers else 0) for i in range(workers)]
    started = time.perf_counter()
    procs = [ctx.Process(target=_run_cases, args=(url, n, queue)) for n in share]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    del started  # process start-up (imports) is not the system's throughput: the workers time themselves
    wall = max(r["seconds"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    return {"workload": "throughput", "cases": n_cases, "workers": workers, "steps": len(latencies),
            "seconds": round(wall, 2), "cases_per_s": round(n_cases / wall, 1),
            "steps_per_s": round(len(latencies) / wall, 1), **_percentiles(latencies),
            "step_mean_ms": round(sum(latencies) / len(latencies), 3),
            "worker_rss_mb": max(r["rss_mb"] for r in results),
            # memory of the first worker at every tenth of its run: flat means no leak per step
            "rss_samples_mb": results[0]["rss_samples"]}


def floor(n_cases: int, serialize: bool) -> dict:
    """The same steps on bare SpiffWorkflow in memory; optionally serialized to JSON and back every step
    (the standard serializer, spec included), as an engine that persists per step must."""
    from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG
    from SpiffWorkflow.util.task import TaskState

    from timers.calendar import from_chinese_calendar

    from .definitions.processes import bundled_files, parse_definition
    from .definitions.timer_events import use_calendar

    path = next(p for p in bundled_files() if p.name == "company_setup.bpmn")
    definition = parse_definition(path.read_bytes(), path.name)
    from copy import deepcopy

    from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
        DurationTimerEventDefinition,
        TimeDateEventDefinition,
    )

    from .definitions.timer_events import ClockTimeDateTimer, WorkingDurationTimer

    config = deepcopy(DEFAULT_CONFIG)
    config[WorkingDurationTimer] = config[DurationTimerEventDefinition]
    config[ClockTimeDateTimer] = config[TimeDateEventDefinition]
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    calendar = from_chinese_calendar([now().astimezone(SHANGHAI).year])
    latencies: list[float] = []
    started = time.perf_counter()
    with use_calendar(calendar):
        for _ in range(n_cases):
            t = time.perf_counter()
            workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs)
            workflow.do_engine_steps()
            state = serializer.serialize_json(workflow) if serialize else None
            latencies.append((time.perf_counter() - t) * 1000)
            while True:
                if serialize:
                    workflow = serializer.deserialize_json(state)
                ready = workflow.get_tasks(state=TaskState.READY, manual=True)
                if not ready:
                    break
                for task in ready:
                    t = time.perf_counter()
                    if serialize:
                        workflow = serializer.deserialize_json(state)
                        task = workflow.get_task_from_id(task.id)
                    task.set_data(**STEP_DATA[task.task_spec.bpmn_id])
                    task.run()
                    workflow.do_engine_steps()
                    if serialize:
                        state = serializer.serialize_json(workflow)
                    latencies.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - started
    return {"workload": "floor", "serialize": serialize, "cases": n_cases, "steps": len(latencies),
            "seconds": round(wall, 2), "steps_per_s": round(len(latencies) / wall, 1),
            "step_mean_ms": round(sum(latencies) / len(latencies), 3), **_percentiles(latencies),
            "rss_mb": peak_rss_mb()}


def completed_case_bytes(db: Database) -> dict:
    """Average stored size of a completed case: its row (state, data) and its work items, clocks and audit."""
    from .models import AuditEvent

    with db.read() as s:
        done = s.scalars(select(Case).where(Case.status == "completed").limit(200)).all()
        if not done:
            return {}
        ids = [c.id for c in done]
        state = sum(len(c.state) for c in done) / len(done)
        data = sum(len(json.dumps(c.data, ensure_ascii=False)) for c in done) / len(done)
        counts = {m.__tablename__: (s.scalar(select(func.count()).select_from(m).where(m.case_id.in_(ids))) or 0)
                  / len(done) for m in (WorkItem, SlaClock, AuditEvent)}
        audit_json = sum(len(json.dumps(e.before or {}, ensure_ascii=False)) + len(json.dumps(e.after or {},
                         ensure_ascii=False)) for e in s.scalars(select(AuditEvent).where(
                             AuditEvent.case_id.in_(ids)))) / len(done)
    result = {"state_bytes": round(state), "data_bytes": round(data), "rows_per_case": counts,
              "audit_json_bytes": round(audit_json)}
    if db.dialect == "postgresql":
        result.update(_bytes_on_disk_per_case(db))
    return result


CASE_TABLES = ("cases", "work_items", "sla_clocks", "audit_events")


def _bytes_on_disk_per_case(db: Database) -> dict:
    """PostgreSQL: what the case tables occupy per case, rows and indexes, after compacting them
    (meaningful on a database of finished benchmark cases)."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM FULL ANALYZE " + ", ".join(CASE_TABLES))
        n = conn.exec_driver_sql("SELECT count(*) FROM cases").scalar() or 1
        rows = sum(conn.exec_driver_sql(f"SELECT pg_table_size('{t}')").scalar() for t in CASE_TABLES)
        indexes = sum(conn.exec_driver_sql(f"SELECT pg_indexes_size('{t}')").scalar() for t in CASE_TABLES)
    return {"cases_on_disk": n, "rows_bytes_per_case": round(rows / n),
            "with_indexes_bytes_per_case": round((rows + indexes) / n)}


def run_timers(db: Database, clocks: int, due_share: float = 0.1, seed: int = 11) -> dict:
    """`clocks` running step clocks, `due_share` of them past their warning and due instants; one sweep."""
    from .models import Alert
    from .oversight import jobs

    rng = random.Random(seed)
    with db.read() as s:
        version = s.scalar(select(ProcessVersion).where(ProcessVersion.process_key == "company_setup")
                           .order_by(ProcessVersion.version.desc()))
    sample = db.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, cases.SYSTEM))
    with db.read() as s:
        start_id = (s.scalar(select(func.max(Case.id))) or 0) + 1
        alerts_before = s.scalar(select(func.count()).select_from(Alert)) or 0
    at = now()
    per_case = 100
    n_cases = max(1, clocks // per_case)
    due_count = 0
    for offset in range(0, n_cases, BATCH // per_case):
        case_rows, clock_rows = [], []
        for n in range(offset, min(n_cases, offset + BATCH // per_case)):
            case_id = start_id + n
            case_rows.append(_case_row(case_id, f"T{case_id:011d}", version.id, sample.state, at, None))
            for k in range(per_case):
                falls_due = rng.random() < due_share
                due_count += falls_due
                due = at - timedelta(minutes=rng.randint(1, 600)) if falls_due else at + timedelta(days=30)
                clock_rows.append(dict(
                    case_id=case_id, case_no=f"T{case_id:011d}", process_key="company_setup", matter_code="QYKB",
                    scope="step", step=f"s{k}", name="环节", task_id=None, work_item_id=None, department="police",
                    budget="PT3H", budget_minutes=180, started_at=at - timedelta(days=1), due_at=due,
                    warn_at=due - timedelta(hours=1), calendar_missing=None, state="running", paused_at=None,
                    paused_minutes=0, warned_at=None, breached_at=None, stopped_at=None, used_minutes=None))

        def write(s, c=case_rows, k=clock_rows):
            s.execute(insert(Case), c)
            s.execute(insert(SlaClock), k)
        db.transaction(write)
    _after_bulk_import(db, start_id + n_cases)
    started = time.perf_counter()
    result = jobs.sweep_clocks(db)
    seconds = time.perf_counter() - started
    idle_started = time.perf_counter()
    jobs.sweep_clocks(db)  # nothing due any more: the whole job, with its two commits
    idle_ms = (time.perf_counter() - idle_started) * 1000

    def idle_query():
        with db.sessions() as s:
            sla.sweep(s)
            s.rollback()
    idle = _time("sweep query, nothing due", 20, idle_query)
    with db.read() as s:
        made = (s.scalar(select(func.count()).select_from(Alert)) or 0) - alerts_before
    return {"workload": "timers", "database": db.dialect, "clocks": n_cases * per_case, "falling_due": due_count,
            "warnings": result.warnings, "breaches": result.breaches, "alerts": made,
            "sweep_seconds": round(seconds, 2), "alerts_per_s": round(made / seconds, 1),
            "idle_sweep_job_ms": round(idle_ms, 1), "idle_sweep_p50_ms": idle.p50_ms, "idle_sweep_p95_ms": idle.p95_ms,
            "peak_rss_mb": peak_rss_mb()}


def run_scale_queries(db: Database, month: date, runs: int) -> list[Timing]:
    """The hall's everyday reads at scale: a department's worklist, a case page, the SLA sweep with
    nothing due and with 1,000 clocks due, the board, a month's statistics."""
    from sqlalchemy import update

    from .oversight import jobs

    actor = cases.Actor("police", "reviewer", "police")
    with db.read() as s:
        sample_nos = list(s.scalars(select(Case.case_no).where(Case.status == "in_progress").limit(runs)))

    def worklist():
        with db.read() as s:
            return cases.list_work_items(s, cases.WorkItemQuery(state="open", limit=50), actor)

    picks = iter(sample_nos * 3)

    def case_page():
        with db.read() as s:
            case = cases.get_case(s, next(picks))
            return cases.case_view(s, case)

    cleaned_at = now()
    jobs.sweep_clocks(db)  # record everything the bulk data left due, so the next sweeps start clean
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:  # what autovacuum does after such a burst of updates
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE sla_clocks")

    def idle_sweep():
        # at the cleaning instant: the bulk data's due times lie near the present and keep falling due
        with db.sessions() as s:
            sla.sweep(s, at=cleaned_at)
            s.rollback()
    timings = [_time("worklist: a department's open items, first page", runs, worklist),
               _time("case page", runs, case_page),
               _time("SLA sweep, nothing due", runs, idle_sweep)]
    due_runs = []
    for _ in range(max(1, min(runs, 5))):
        def make_due(s):
            ids = list(s.scalars(select(SlaClock.id).where(SlaClock.state == "running").limit(1000)))
            past = now() - timedelta(minutes=5)
            s.execute(update(SlaClock).where(SlaClock.id.in_(ids)).values(
                warn_at=past - timedelta(hours=1), due_at=past, warned_at=None, breached_at=None,
                state="running"))
        db.transaction(make_due)
        started = time.perf_counter()
        jobs.sweep_clocks(db)
        due_runs.append((time.perf_counter() - started) * 1000)
    due_runs.sort()
    timings.append(Timing("SLA sweep, 1,000 clocks due (whole job)", len(due_runs),
                          round(pystats.median(due_runs), 2), round(due_runs[-1], 2), round(due_runs[-1], 2)))
    timings += measure_supervision(db, month, runs)
    return timings


# --- a case returned again and again (issue 12) ---------------------------------------------------
def _open_step(db: Database, case_id: int, step: str) -> WorkItem:
    with db.read() as s:
        return s.scalar(select(WorkItem).where(WorkItem.case_id == case_id, WorkItem.step == step,
                                               WorkItem.state.in_(("open", "claimed"))))


def _finish_timed(db: Database, case_id: int) -> tuple[list[float], int]:
    """Work the three departments' steps and the delivery; their step times (ms) and the final state size."""
    times = []
    for step in ("registration", "seal", "invoice", "deliver"):
        item = _open_step(db, case_id, step)
        started = time.perf_counter()
        cases.complete_step(db, item.id, REVIEWERS[step], STEP_DATA[step])
        times.append((time.perf_counter() - started) * 1000)
    with db.read() as s:
        return times, len(s.get(Case, case_id).state)


def run_returns(db: Database, rounds: int = 20, samples: int = 10) -> dict:
    """Cases returned `rounds` times (the tax step back to the window, the window accepting again) against
    cases never returned: the time of the steps after, and the stored state."""
    from .casework import operations

    db.transaction(lambda s: calendar_store.seed_official_years(s, "bench"))
    plain_ms, returned_ms, plain_bytes, returned_bytes, return_ms = [], [], [], [], []
    for _ in range(samples):
        for returned in (False, True):
            case = db.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, cases.SYSTEM))
            accept = _open_step(db, case.id, "accept")
            cases.complete_step(db, accept.id, REVIEWERS["accept"], STEP_DATA["accept"])
            for _round in range(rounds if returned else 0):
                invoice = _open_step(db, case.id, "invoice")
                started = time.perf_counter()
                operations.return_to(db, invoice.id, REVIEWERS["invoice"], "window", "bench")
                return_ms.append((time.perf_counter() - started) * 1000)
                accept = _open_step(db, case.id, "accept")
                cases.complete_step(db, accept.id, REVIEWERS["accept"], STEP_DATA["accept"])
            times, size = _finish_timed(db, case.id)
            (returned_ms if returned else plain_ms).extend(times)
            (returned_bytes if returned else plain_bytes).append(size)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {"workload": "returns", "rounds": rounds, "samples": samples, "database": db.dialect,
            "step_ms_never_returned": round(mean(plain_ms), 2), "step_ms_returned": round(mean(returned_ms), 2),
            "step_ratio": round(mean(returned_ms) / mean(plain_ms), 2),
            "state_bytes_never_returned": round(mean(plain_bytes)), "state_bytes_returned": round(mean(returned_bytes)),
            "state_ratio": round(mean(returned_bytes) / mean(plain_bytes), 2),
            "return_ms": _percentiles(return_ms)}
