"""The live SLA board: every running clock, filtered, sorted by what falls due first, with counts per state.

Everything here is an indexed query on `sla_clocks`; time left is worked out only for the rows shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from timers.clock import now, to_local

from ..models import ACTIVE_CLOCK, SlaClock, WorkItem
from . import sla

BOARD_STATES = ("running", "warned", "breached", "paused")


@dataclass(frozen=True)
class BoardQuery:
    process: str | None = None
    matter: str | None = None
    department: str | None = None
    assignee: str | None = None
    state: str | None = None
    scope: str | None = None
    page: int = 1
    per_page: int = 50


@dataclass
class BoardRow:
    view: sla.ClockView
    assignee: str | None


@dataclass
class Board:
    rows: list[BoardRow]
    counts: dict[str, int]
    total: int
    query: BoardQuery


def _filtered(query: BoardQuery):
    # the partial indexes' predicate, literally: a bound IN list would keep a generic plan off them
    stmt = select(SlaClock).where(ACTIVE_CLOCK)
    if query.process:
        stmt = stmt.where(SlaClock.process_key == query.process)
    if query.matter:
        stmt = stmt.where(SlaClock.matter_code == query.matter)
    if query.department:
        stmt = stmt.where(SlaClock.department == query.department)
    if query.scope:
        stmt = stmt.where(SlaClock.scope == query.scope)
    if query.assignee:
        stmt = stmt.join(WorkItem, WorkItem.id == SlaClock.work_item_id).where(WorkItem.assignee == query.assignee)
    return stmt


def board(session: Session, query: BoardQuery, at: datetime | None = None) -> Board:
    at = at or now()
    base = _filtered(query)
    counted = base.with_only_columns(SlaClock.state, func.count()).group_by(SlaClock.state)
    counts = {state: 0 for state in BOARD_STATES}
    counts.update({state: n for state, n in session.execute(counted)})
    if query.state:
        base = base.where(SlaClock.state == query.state)
    total = counts.get(query.state, 0) if query.state else sum(counts.values())
    page = (base.order_by(SlaClock.due_at.asc().nulls_last(), SlaClock.id)
            .limit(query.per_page).offset((query.page - 1) * query.per_page))
    clocks = session.scalars(page).all()
    ids = [c.work_item_id for c in clocks if c.work_item_id]
    assignees = {i: a for i, a in session.execute(
        select(WorkItem.id, WorkItem.assignee).where(WorkItem.id.in_(ids)))} if ids else {}
    rows = [BoardRow(sla.view(session, c, at), assignees.get(c.work_item_id)) for c in clocks]
    return Board(rows, counts, total, query)


@dataclass
class DeadlineRow:
    """Open cases of a matter tracked by a date in their data (reform tasks by their 完成时限), per unit."""

    matter: str
    unit: str
    open: int
    overdue: int


def deadlines(session: Session, at: datetime | None = None) -> list[DeadlineRow]:
    """For each matter the catalogue tracks by a deadline field (`deadline_field`, `unit_field`): its open
    cases per unit, and how many are past their deadline — the most overdue units first."""
    from ..definitions.catalogue import catalogue
    from ..models import Case

    today = to_local(at or now()).date().isoformat()
    rows: list[DeadlineRow] = []
    for code, matter in catalogue().matters.items():
        field, unit = matter.extra.get("deadline_field"), matter.extra.get("unit_field")
        if not field or not unit:
            continue
        counts: dict[str, list[int]] = {}
        for data in session.scalars(select(Case.data).where(
                Case.matter_code == code, Case.status.in_(("received", "in_progress", "paused")))):
            data = data or {}
            entry = counts.setdefault(str(data.get(unit) or "?"), [0, 0])
            entry[0] += 1
            deadline = data.get(field)
            entry[1] += bool(deadline and str(deadline) < today)
        rows += [DeadlineRow(code, u, n, late) for u, (n, late) in counts.items()]
    return sorted(rows, key=lambda r: (r.matter, -r.overdue, -r.open, r.unit))
