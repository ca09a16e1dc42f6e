"""Formal 督办: a supervisor asks the department working a case (or one of its steps) for a reply within a
working-time limit. The 督办 has a clock of its own (scope "oversight": on the SLA board, warned and
breached like any other), the department is alerted, and its reply closes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from timers.clock import now
from timers.durations import parse_duration

from ..casework.cases import OPEN_STATES, Actor, _audit
from ..definitions.catalogue import catalogue
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..models import Case, SlaClock, Supervision, WorkItem
from . import sla


def open_supervision(session: Session, case_no: str, actor: Actor, item_id: Any, reply_within: Any,
                     message: Any, department: Any = None) -> Supervision:
    if actor.role not in ("supervisor", "admin"):
        raise Forbidden("a supervisor opens a 督办")
    if not isinstance(message, str) or not message.strip() or len(message) > 1000:
        raise InvalidInput("message: what is asked, at most 1,000 characters", fields={"message": "required"})
    try:
        budget = parse_duration(reply_within).iso() if isinstance(reply_within, str) else None
    except ValueError:
        budget = None
    if budget is None:
        raise InvalidInput("reply_within: a working-time limit such as PT4H or P1D", fields={"reply_within": "invalid"})
    case = session.scalars(select(Case).where(Case.case_no == case_no).with_for_update()).first()
    if case is None:
        raise NotFound("no case {case_no}", {"case_no": case_no})
    if case.status not in ("received", "in_progress", "paused"):
        raise Conflict("case {case_no} is {status}; a 督办 is for a running case",
                       {"case_no": case_no, "status": case.status})
    item = None
    if item_id is not None:
        item = session.get(WorkItem, item_id) if isinstance(item_id, int) else None
        if item is None or item.case_id != case.id or item.state not in OPEN_STATES:
            raise InvalidInput("item_id: an open step of this case", fields={"item_id": "invalid"})
        department = item.department
    if not isinstance(department, str) or department not in catalogue().departments:
        raise InvalidInput("department: the department asked (or give item_id)", fields={"department": "invalid"})
    at = now()
    record = Supervision(case_id=case.id, case_no=case.case_no, work_item_id=item.id if item else None,
                         department=department, message=message.strip(), reply_within=budget, state="open",
                         opened_by=actor.username, opened_at=at)
    session.add(record)
    session.flush()
    name = f"督办 #{record.id}" + (f"「{item.name}」" if item else "")
    sla.start_clock(session, case, "oversight", budget, name, step=item.step if item else None,
                    task_id=f"supervision:{record.id}", department=department, at=at)
    sla.record_alerts(session, [dict(
        dedupe_key=f"supervision:{record.id}", level="escalation", case_id=case.id, case_no=case.case_no,
        step=item.step if item else None, department=department, concerned=[f"department:{department}"],
        at=at, created_at=at, message=f"督办：{case.case_no} {record.message.removeprefix('督办：')}"
                                      f"（请于 {parse_duration(budget).words()}内答复）")])
    _audit(session, case, actor, "supervision.opened", step=item.step if item else None, item=item,
           after={"supervision": record.id, "department": department, "reply_within": budget,
                  "message": record.message})
    return record


def reply(session: Session, supervision_id: int, actor: Actor, text: Any) -> Supervision:
    """The department answers: the 督办's clock stops, the supervisor who opened it is told."""
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise InvalidInput("reply: at most 2,000 characters", fields={"reply": "required"})
    record = session.get(Supervision, supervision_id, with_for_update=True)
    if record is None:
        raise NotFound("no 督办 {supervision_id}", {"supervision_id": supervision_id})
    if actor.role != "admin" and record.department not in actor.departments:
        raise Forbidden("督办 {supervision_id} asks the {department} department",
                        {"supervision_id": supervision_id, "department": record.department})
    if record.state != "open":
        raise Conflict("督办 {supervision_id} was answered already", {"supervision_id": supervision_id})
    at = now()
    record.state, record.reply, record.replied_by, record.replied_at = "replied", text.strip(), actor.username, at
    case = session.get(Case, record.case_id)
    clock = session.scalar(select(SlaClock).where(SlaClock.case_id == case.id,
                                                  SlaClock.task_id == f"supervision:{record.id}",
                                                  SlaClock.state.in_(sla.ACTIVE)))
    if clock is not None:
        sla.stop_clock(session, clock, at)
    sla.record_alerts(session, [dict(
        dedupe_key=f"supervision:{record.id}:reply", level="notice", case_id=case.id, case_no=case.case_no,
        department=record.department, assignee=record.opened_by, concerned=[f"user:{record.opened_by}"],
        at=at, created_at=at, message=f"督办已答复：{case.case_no}（{actor.username}）{record.reply[:200]}")])
    _audit(session, case, actor, "supervision.replied", after={"supervision": record.id, "reply": record.reply})
    return record


def of_case(session: Session, case_id: int) -> list[Supervision]:
    return list(session.scalars(select(Supervision).where(Supervision.case_id == case_id).order_by(Supervision.id)))
