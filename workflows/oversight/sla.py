"""SLA clocks of cases, stages and steps: start, stop, pause, resume, sweep, recompute.

Every clock is a row. The sweep reads only rows whose warning or due instant has passed (indexed),
records each warning and breach at its true instant, and makes one alert of each; the alert's unique
`dedupe_key` makes a second sweep — or a second scheduler — unable to produce it again. On
PostgreSQL due rows are claimed with FOR UPDATE SKIP LOCKED so several schedulers share the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, inspect, select, union, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from timers.calendar import CalendarMissing, WorkingCalendar
from timers.clock import now, to_local
from timers.durations import parse_duration
from timers.sla import WarningPolicy, clock_times, left_minutes, used_minutes

from ..administration.calendar_store import working_calendar
from ..db import insert_ignoring_duplicates
from ..models import PENDING_BREACH, PENDING_WARNING, Alert, Case, SlaClock, WorkItem

RUNNING = ("running", "warned", "breached")
ACTIVE = (*RUNNING, "paused")
POLICY = WarningPolicy.from_env()


def _place(cal: WorkingCalendar, clock: SlaClock) -> None:
    """Work out due and warning instants, or mark the calendar missing."""
    try:
        times = clock_times(cal, clock.started_at, parse_duration(clock.budget), clock.paused_minutes, POLICY,
                            clock.extended_days or 0)
    except CalendarMissing as missing:
        clock.due_at = clock.warn_at = None
        clock.calendar_missing = missing.year
        return
    clock.due_at, clock.warn_at, clock.budget_minutes = times.due_at, times.warn_at, times.budget_minutes
    clock.calendar_missing = None


def calendar_missing_alert(session: Session, year: int, at: datetime) -> None:
    record_alerts(session, [dict(
        dedupe_key=f"calendar:{year}", level="calendar_missing", concerned=["role:admin"], at=at, created_at=now(),
        message=f"{year} 年节假日安排未载入，期限无法计算")])


def start_clock(session: Session, case: Case, scope: str, budget: str, name: str, *, step: str | None = None,
                task_id: str | None = None, item: WorkItem | None = None, department: str | None = None,
                at: datetime | None = None) -> SlaClock:
    at = at or now()
    clock = SlaClock(case_id=case.id, case_no=case.case_no, process_key=case.process_key,
                     matter_code=case.matter_code, scope=scope, step=step, name=name, task_id=task_id,
                     work_item_id=item.id if item else None, department=department, budget=budget,
                     started_at=at, state="running", paused_minutes=0)
    cal = working_calendar(session)
    _place(cal, clock)
    if case.status == "paused":
        clock.state, clock.paused_at = "paused", at
    session.add(clock)
    if clock.calendar_missing:
        calendar_missing_alert(session, clock.calendar_missing, at)
    return clock


_STOP = (update(SlaClock.__table__).where(SlaClock.__table__.c.id == bindparam("clock_id"))
         .values(state=bindparam("new_state"), stopped_at=bindparam("at"), used_minutes=bindparam("used")))


def stop_clock(session: Session, clock: SlaClock, at: datetime | None = None, cancelled: bool | str = False) -> None:
    """Stop a clock: met / met_late, or `cancelled` (True: "cancelled", or the state to record, e.g.
    "returned" for a step sent back)."""
    at = at or now()
    paused = clock.state == "paused"
    if paused:
        _unpause(session, clock, at)
    if cancelled:
        state = cancelled if isinstance(cancelled, str) else "cancelled"
    else:
        late = clock.breached_at is not None or (clock.due_at is not None and at > clock.due_at)
        state = "met_late" if late else "met"
    try:
        used = used_minutes(working_calendar(session), clock.started_at, at, clock.paused_minutes)
    except CalendarMissing:
        used = None
    values = {"state": state, "stopped_at": at, "used_minutes": used}
    if paused or clock.id is None or inspect(clock).modified:
        for key, value in values.items():  # a clock with other pending changes goes with the unit of work
            setattr(clock, key, value)
        return
    # the common case: one prebuilt UPDATE, and the object told the row's new values without a flush
    session.execute(_STOP, {"clock_id": clock.id, "new_state": state, "at": at, "used": used})
    for key, value in values.items():
        set_committed_value(clock, key, value)


def stop_clocks(session: Session, case_id: int, *, task_ids: set[str] | None = None, scope: str | None = None,
                cancelled: bool | str = False, clocks: list[SlaClock] | None = None, at: datetime | None = None
                ) -> list[SlaClock]:
    """Stop the case's active clocks (only those of `task_ids` / `scope` when given) and return them.
    A caller that already read the case's active clocks passes them in."""
    if clocks is None:
        stmt = select(SlaClock).where(SlaClock.case_id == case_id, SlaClock.state.in_(ACTIVE))
        clocks = list(session.scalars(stmt))
    stopped = []
    for clock in clocks:
        if clock.state not in ACTIVE or (scope and clock.scope != scope):
            continue
        if task_ids is None or clock.task_id in task_ids:
            stop_clock(session, clock, at, cancelled=cancelled)
            stopped.append(clock)
    return stopped


def pause_clocks(session: Session, case: Case, at: datetime) -> None:
    for clock in session.scalars(select(SlaClock).where(SlaClock.case_id == case.id,
                                                        SlaClock.state.in_(RUNNING))):
        clock.state, clock.paused_at = "paused", at


def _unpause(session: Session, clock: SlaClock, at: datetime) -> int:
    cal = working_calendar(session)
    try:
        consumed = max(0, cal.elapsed_minutes(clock.paused_at, at))
    except CalendarMissing as missing:
        calendar_missing_alert(session, missing.year, at)
        consumed = 0
    clock.paused_minutes += consumed
    clock.paused_at = None
    clock.state = "breached" if clock.breached_at else "warned" if clock.warned_at else "running"
    _place(cal, clock)
    return consumed


def resume_clocks(session: Session, case: Case, at: datetime) -> None:
    for clock in session.scalars(select(SlaClock).where(SlaClock.case_id == case.id,
                                                        SlaClock.state == "paused")):
        _unpause(session, clock, at)


def recompute(session: Session) -> list[SlaClock]:
    """After a calendar change: place every running or paused clock again; return those that moved."""
    cal = working_calendar(session)
    moved = []
    for clock in session.scalars(select(SlaClock).where(SlaClock.state.in_(ACTIVE))):
        before = (clock.due_at, clock.calendar_missing)
        _place(cal, clock)
        if (clock.due_at, clock.calendar_missing) != before:
            moved.append(clock)
        if clock.calendar_missing:
            calendar_missing_alert(session, clock.calendar_missing, now())
    return moved


def record_alerts(session: Session, rows: list[dict]) -> int:
    """Insert alerts, skipping any whose dedupe_key exists (a repeated sweep, another scheduler), and
    queue the deliveries of those that are new. Returns how many were new."""
    if not rows:
        return 0
    from .delivery import queue_deliveries_for

    inserted = session.execute(insert_ignoring_duplicates(session, Alert, ["dedupe_key"]).values(rows)
                               .returning(Alert.id, Alert.level)).all()
    queue_deliveries_for(session, inserted)
    return len(inserted)


def escalation_alert(session: Session, case: Case, item: WorkItem, at: datetime) -> None:
    """A work item a BPMN timer created (督办), or a follow-up: the people it concerns hear of it."""
    record_alerts(session, [dict(
        dedupe_key=f"item:{item.id}:escalation", level="escalation", case_id=case.id, case_no=case.case_no,
        step=item.step, department=item.department, concerned=[f"role:{item.role}", f"department:{item.department}"],
        message=f"督办：{case.case_no}「{item.name}」", at=at, created_at=now())])


@dataclass
class SweepResult:
    warnings: int = 0
    breaches: int = 0


def sweep(session: Session, at: datetime | None = None, batch: int = 5000) -> SweepResult:
    """Record every warning and breach whose instant has passed, once, at its true time.

    A batch is one query for the clocks, one for their assignees and one INSERT … ON CONFLICT DO NOTHING
    for the alerts (the unique key drops what another scheduler already made)."""
    at = at or now()
    result = SweepResult()
    # Two selects whose conditions are exactly the partial indexes' predicates (written literally, so the
    # planner can prove them): each is a scan of a tiny index, however many clocks have ever run.
    # ORDER BY the indexed instant: with a LIMIT it steers the planner to the partial index
    warn = select(SlaClock.id).where(PENDING_WARNING, SlaClock.warn_at <= at).order_by(SlaClock.warn_at) \
        .limit(batch).subquery()
    due = select(SlaClock.id).where(PENDING_BREACH, SlaClock.due_at <= at).order_by(SlaClock.due_at) \
        .limit(batch).subquery()
    pending = union(select(warn.c.id), select(due.c.id)).subquery()
    stmt = select(SlaClock).where(SlaClock.id.in_(select(pending.c.id))).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    clocks = session.scalars(stmt).all()
    item_ids = [c.work_item_id for c in clocks if c.work_item_id]
    assignees = {i: a for i, a in session.execute(
        select(WorkItem.id, WorkItem.assignee).where(WorkItem.id.in_(item_ids)))} if item_ids else {}
    rows: list[dict] = []
    created = now()
    for clock in clocks:
        assignee = assignees.get(clock.work_item_id)
        concerned = ["role:supervisor"]
        if clock.department:
            concerned.append(f"department:{clock.department}")
        if assignee:
            concerned.append(f"user:{assignee}")
        label = {"case": "办件", "stage": "阶段", "step": "环节", "oversight": "督办", "response": "签收"}.get(
            clock.scope, "")
        common = dict(case_id=clock.case_id, case_no=clock.case_no, clock_id=clock.id, step=clock.step,
                      department=clock.department, assignee=assignee, concerned=concerned, created_at=created)
        if clock.warned_at is None and clock.warn_at is not None and clock.warn_at <= at:
            clock.warned_at = clock.warn_at
            clock.state = "warned"
            result.warnings += 1
            rows.append(dict(common, dedupe_key=f"clock:{clock.id}:warning", level="warning", at=clock.warn_at,
                             message=f"预警：{clock.case_no} {label}「{clock.name}」将于 {_show(clock.due_at)} 到期"))
        if clock.breached_at is None and clock.due_at is not None and clock.due_at <= at:
            clock.breached_at = clock.due_at
            clock.state = "breached"
            result.breaches += 1
            rows.append(dict(common, dedupe_key=f"clock:{clock.id}:breach", level="breach", at=clock.due_at,
                             message=f"超期：{clock.case_no} {label}「{clock.name}」已于 {_show(clock.due_at)} "
                                     "超过时限"))
    session.flush()
    record_alerts(session, rows)
    return result


def _show(instant: datetime | None) -> str:
    return to_local(instant).strftime("%Y-%m-%d %H:%M") if instant else "?"


@dataclass(frozen=True)
class ClockView:
    clock: SlaClock
    used_minutes: int | None
    left_minutes: int | None
    colour: str  # green | yellow | red | grey (stopped) | unknown (calendar missing)


def view(session: Session, clock: SlaClock, at: datetime | None = None) -> ClockView:
    at = at or now()
    cal = working_calendar(session)
    until = clock.stopped_at or clock.paused_at or at
    try:
        used = used_minutes(cal, clock.started_at, until, clock.paused_minutes)
        left = left_minutes(cal, until, clock.due_at) if clock.due_at else None
    except CalendarMissing:
        used = left = None
    if clock.due_at is None:
        colour = "unknown"
    elif clock.state in ("met", "cancelled"):
        colour = "grey"
    elif clock.breached_at or clock.state == "met_late" or (left is not None and left < 0):
        colour = "red"
    elif clock.warned_at or (clock.warn_at and until >= clock.warn_at):
        colour = "yellow"
    else:
        colour = "green"
    return ClockView(clock, used, left, colour)
