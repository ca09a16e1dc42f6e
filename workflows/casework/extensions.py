"""延期: extending a case's time limit (行政许可法 art. 42).

The department working the case (or the window) asks for N more working days with a reason; a
supervisor or admin approves or refuses. On approval the case clock — and, when asked for, the clocks
of the open steps — move by exactly N working days (`timers.sla.clock_times`), the applicant's progress
page and a printable 延期告知书 say so with the reason, and the statistics count the case as extended.
A matter allows at most `max_extension` working days in all (catalogue; default 10). No engine runs
here: each action is one short transaction with an audit event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from timers.clock import now

from ..definitions.catalogue import catalogue
from ..definitions.forms import required_text
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..models import Case, Extension, SlaClock, WorkItem
from ..oversight import sla
from .cases import OPEN_STATES, Actor, _audit

DEFAULT_MAX_DAYS = 10


def max_days(case: Case) -> int:
    matter = catalogue().matters.get(case.matter_code)
    return int((matter.extra if matter else {}).get("max_extension", DEFAULT_MAX_DAYS))


def _case(session: Session, case_no: str) -> Case:
    case = session.scalars(select(Case).where(Case.case_no == case_no).with_for_update()).first()
    if case is None:
        raise NotFound("no case {case_no}", {"case_no": case_no})
    return case


def _case_clock(session: Session, case: Case) -> SlaClock | None:
    return session.scalar(select(SlaClock).where(SlaClock.case_id == case.id, SlaClock.scope == "case",
                                                 SlaClock.state.in_(sla.ACTIVE)))


def request(session: Session, case_no: str, actor: Actor, working_days: Any, reason: Any,
            move_steps: bool = False) -> Extension:
    if not isinstance(working_days, int) or isinstance(working_days, bool) or working_days < 1:
        raise InvalidInput("working_days: a whole number of working days, at least 1",
                           fields={"working_days": "invalid"})
    reason = required_text(reason)
    case = _case(session, case_no)
    if actor.role == "reviewer":
        works_it = session.scalar(select(WorkItem.id).where(
            WorkItem.case_id == case.id, WorkItem.department.in_(actor.departments),
            WorkItem.state.in_(OPEN_STATES))) is not None
        if not works_it:
            raise Forbidden("only a department working the case asks to extend it")
    elif actor.role not in ("clerk", "admin"):
        raise Forbidden("the department working the case or the window asks for an extension")
    if case.status not in ("in_progress", "paused"):
        raise Conflict("case {case_no} is {status}; only an accepted, running case is extended",
                       {"case_no": case_no, "status": case.status})
    clock = _case_clock(session, case)
    if clock is None:
        raise Conflict("case {case_no} has no running time limit to extend", {"case_no": case_no})
    if clock.breached_at is not None:
        raise Conflict("the time limit of case {case_no} has passed; an extension is decided before it does",
                       {"case_no": case_no})
    if session.scalar(select(Extension.id).where(Extension.case_id == case.id, Extension.state == "requested")):
        raise Conflict("case {case_no} has an extension waiting for a decision already", {"case_no": case_no})
    granted = session.scalar(select(func.coalesce(func.sum(Extension.working_days), 0)).where(
        Extension.case_id == case.id, Extension.state == "approved")) or 0
    cap = max_days(case)
    if granted + working_days > cap:
        raise InvalidInput("working_days: this matter allows {cap} working days of extension in all "
                           "({granted} granted already)",
                           {"cap": cap, "granted": granted}, fields={"working_days": "over the cap"})
    extension = Extension(case_id=case.id, case_no=case.case_no, working_days=working_days,
                          reason=reason, move_steps=bool(move_steps), state="requested",
                          requested_by=actor.username, requested_at=now())
    session.add(extension)
    session.flush()
    at = now()
    sla.record_alerts(session, [dict(
        dedupe_key=f"extension:{extension.id}:requested", level="notice", case_id=case.id, case_no=case.case_no,
        concerned=["role:supervisor"], at=at, created_at=at,
        message=f"延期申请：{case.case_no} 申请延长 {working_days} 个工作日，待审批（{extension.reason}）")])
    _audit(session, case, actor, "extension.requested",
           after={"extension": extension.id, "working_days": working_days, "reason": extension.reason,
                  "move_steps": extension.move_steps})
    return extension


def decide(session: Session, extension_id: int, actor: Actor, approve: bool, note: Any = None) -> Extension:
    if actor.role not in ("supervisor", "admin"):
        raise Forbidden("a supervisor or an admin decides on an extension")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise InvalidInput("note: at most 500 characters", fields={"note": "too long"})
    extension = session.get(Extension, extension_id, with_for_update=True)
    if extension is None:
        raise NotFound("no extension {extension_id}", {"extension_id": extension_id})
    if extension.state != "requested":
        raise Conflict("extension {extension_id} was {state} already",
                       {"extension_id": extension_id, "state": extension.state})
    case = _case(session, extension.case_no)
    at = now()
    extension.decided_by, extension.decided_at, extension.decision_note = actor.username, at, (note or "").strip()
    if not approve:
        extension.state = "refused"
        _audit(session, case, actor, "extension.refused", before={"state": "requested"},
               after={"extension": extension.id, "state": "refused", "note": extension.decision_note})
        return extension
    clock = _case_clock(session, case)
    if clock is None or clock.breached_at is not None:
        raise Conflict("case {case_no} has no running time limit left to extend", {"case_no": case.case_no})
    cal = sla.working_calendar(session)
    moved = [clock]
    if extension.move_steps:
        moved += list(session.scalars(select(SlaClock).where(
            SlaClock.case_id == case.id, SlaClock.scope.in_(("step", "stage")), SlaClock.state.in_(sla.ACTIVE))))
    extension.old_due_at = clock.due_at
    for moving in moved:
        moving.extended_days = (moving.extended_days or 0) + extension.working_days
        sla._place(cal, moving)
        if moving.warned_at is not None and moving.warn_at is not None and moving.warn_at > at:
            moving.warned_at = None  # its warning is ahead again
            moving.state = "running"
    extension.state, extension.new_due_at = "approved", clock.due_at
    sla.record_alerts(session, [dict(
        dedupe_key=f"extension:{extension.id}:approved", level="notice", case_id=case.id, case_no=case.case_no,
        concerned=["department:window"], department="window", at=at, created_at=at,
        message=f"延期已批准：{case.case_no} 延长 {extension.working_days} 个工作日")])
    _audit(session, case, actor, "extension.approved", before={"due_at": extension.old_due_at.isoformat()
                                                               if extension.old_due_at else None},
           after={"extension": extension.id, "working_days": extension.working_days,
                  "due_at": clock.due_at.isoformat() if clock.due_at else None,
                  "clocks": sorted(f"{c.scope}:{c.step or ''}" for c in moved)})
    return extension


def of_case(session: Session, case_id: int) -> list[Extension]:
    return list(session.scalars(select(Extension).where(Extension.case_id == case_id).order_by(Extension.id)))
