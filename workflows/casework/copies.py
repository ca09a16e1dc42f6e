"""抄送: a case copied to people or departments who should know of it without working it.

A step's BPMN may name whom to copy when it completes (`cc` property: department codes or usernames,
comma separated), and the holder of an item may copy ad hoc. Those copied see the case read-only (the
visibility rules include them), find it in "抄送我的", and the copy is marked read when they open it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from timers.clock import now

from ..definitions.catalogue import catalogue
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..models import Case, CaseCopy, User, WorkItem
from ..oversight import sla
from .cases import OPEN_STATES, Actor, _audit, _may_work, may_hold

MAX_TARGETS = 20


def _targets(session: Session, to: Any) -> list[tuple[str | None, str | None]]:
    if not isinstance(to, list) or not to or len(to) > MAX_TARGETS or not all(isinstance(t, str) for t in to):
        raise InvalidInput("to: 1 to {max_targets} usernames or department codes",
                           {"max_targets": MAX_TARGETS}, fields={"to": "invalid"})
    found = []
    for target in dict.fromkeys(t.strip() for t in to):
        if target in catalogue().departments:
            found.append((None, target))
            continue
        user = session.scalar(select(User).where(User.username == target))
        if user is None or not user.active:
            raise InvalidInput("to: '{target}' is neither an active user nor a department",
                               {"target": target}, fields={"to": target})
        found.append((user.username, None))
    return found


def copy(session: Session, case: Case, targets: list[tuple[str | None, str | None]], by: str,
         step: str | None = None) -> list[CaseCopy]:
    at = now()
    existing = {(c.to_user, c.to_department) for c in session.scalars(select(CaseCopy).where(
        CaseCopy.case_id == case.id))}
    made = []
    for user, department in targets:
        if (user, department) in existing:
            continue
        row = CaseCopy(case_id=case.id, case_no=case.case_no, to_user=user, to_department=department, step=step,
                       by=by, at=at)
        session.add(row)
        made.append(row)
    session.flush()
    for row in made:
        sla.record_alerts(session, [dict(
            dedupe_key=f"copy:{row.id}", level="notice", case_id=case.id, case_no=case.case_no, step=step,
            department=row.to_department, assignee=row.to_user, at=at, created_at=at,
            concerned=[f"user:{row.to_user}"] if row.to_user else [f"department:{row.to_department}"],
            message=f"抄送：{case.case_no}（{by} 抄送，仅供阅知）")])
    return made


def copy_item(session: Session, item_id: int, actor: Actor, to: Any) -> list[CaseCopy]:
    """The holder of an open item copies the case ad hoc."""
    item = session.get(WorkItem, item_id)
    if item is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    may_hold(actor, item)
    if item.state not in OPEN_STATES:
        raise Conflict("work item {item_id} is {state}", {"item_id": item_id, "state": item.state})
    case = session.get(Case, item.case_id)
    made = copy(session, case, _targets(session, to), actor.username, item.step)
    _audit(session, case, actor, "case.copied", step=item.step, item=item,
           after={"to": [c.to_user or c.to_department for c in made]})
    return made


def on_completion(session: Session, case: Case, cc: tuple[str, ...], step: str, actor: Actor) -> None:
    """A step whose BPMN names whom to copy: they get the case when it completes (unknown names are skipped:
    the file was checked at deploy time, people may have left since)."""
    targets = []
    for target in cc:
        if target in catalogue().departments:
            targets.append((None, target))
        elif session.scalar(select(User.id).where(User.username == target, User.active.is_(True))):
            targets.append((target, None))
    made = copy(session, case, targets, actor.username, step)
    if made:
        _audit(session, case, actor, "case.copied", step=step, after={"to": [c.to_user or c.to_department
                                                                                 for c in made]})


def copied_to(actor: Actor):
    """The copies meant for this person: to them, or to a department they work in."""
    return or_(CaseCopy.to_user == actor.username, CaseCopy.to_department.in_(actor.departments))


def for_actor(session: Session, actor: Actor, unread_only: bool = False, limit: int = 100) -> list[CaseCopy]:
    stmt = select(CaseCopy).where(copied_to(actor))
    if unread_only:
        stmt = stmt.where(CaseCopy.read_at.is_(None))
    return list(session.scalars(stmt.order_by(CaseCopy.at.desc(), CaseCopy.id.desc()).limit(limit)))


def mark_read(session: Session, case_id: int, actor: Actor) -> None:
    session.execute(update(CaseCopy).where(CaseCopy.case_id == case_id, copied_to(actor), CaseCopy.read_at.is_(None))
                    .values(read_at=now(), read_by=actor.username))


# --- 加签 (征求意见): opinions asked before a step is decided ----------------------------------------

def consult(session: Session, item_id: int, actor: Actor, to: Any, question: Any) -> list:
    """The holder asks people or departments for an opinion; the step cannot be completed until each has
    answered (or the holder withdraws the question). Those asked see the case read-only meanwhile."""
    from ..models import Consultation

    if not isinstance(question, str) or not question.strip() or len(question) > 1000:
        raise InvalidInput("question: what is asked, at most 1,000 characters", fields={"question": "required"})
    item = session.get(WorkItem, item_id, with_for_update=True)
    if item is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    if actor.role != "admin":
        _may_work(actor, item)
        if item.state == "claimed" and item.assignee != actor.username:
            raise Forbidden("work item {item_id} is claimed by {assignee}",
                            {"item_id": item_id, "assignee": item.assignee})
    if item.state not in OPEN_STATES:
        raise Conflict("work item {item_id} is {state}", {"item_id": item_id, "state": item.state})
    case = session.get(Case, item.case_id)
    targets = _targets(session, to)
    at = now()
    asked = []
    for user, department in targets:
        row = Consultation(case_id=case.id, work_item_id=item.id, to_user=user, to_department=department,
                           question=question.strip(), state="open", asked_by=actor.username, asked_at=at)
        session.add(row)
        asked.append(row)
    session.flush()
    copy(session, case, targets, actor.username, item.step)  # they may read the case to answer
    for row in asked:
        sla.record_alerts(session, [dict(
            dedupe_key=f"consult:{row.id}", level="notice", case_id=case.id, case_no=case.case_no, step=item.step,
            department=row.to_department, assignee=row.to_user, at=at, created_at=at,
            concerned=[f"user:{row.to_user}"] if row.to_user else [f"department:{row.to_department}"],
            message=f"征求意见：{case.case_no}「{item.name}」{row.question[:200]}（{actor.username}）")])
    _audit(session, case, actor, "work_item.consulted", step=item.step, item=item,
           after={"to": [r.to_user or r.to_department for r in asked], "question": question.strip()})
    return asked


def answer(session: Session, consultation_id: int, actor: Actor, text: Any):
    from ..models import Consultation

    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise InvalidInput("answer: at most 2,000 characters", fields={"answer": "required"})
    row = session.get(Consultation, consultation_id, with_for_update=True)
    if row is None:
        raise NotFound("no consultation {consultation_id}", {"consultation_id": consultation_id})
    if actor.role != "admin" and actor.username != row.to_user and \
            (row.to_department is None or row.to_department not in actor.departments):
        raise Forbidden("consultation {consultation_id} asks someone else", {"consultation_id": consultation_id})
    if row.state != "open":
        raise Conflict("consultation {consultation_id} is {state}",
                       {"consultation_id": consultation_id, "state": row.state})
    row.state, row.answer, row.answered_by, row.answered_at = "answered", text.strip(), actor.username, now()
    case = session.get(Case, row.case_id)
    sla.record_alerts(session, [dict(
        dedupe_key=f"consult:{row.id}:answer", level="notice", case_id=case.id, case_no=case.case_no,
        assignee=row.asked_by, concerned=[f"user:{row.asked_by}"], at=row.answered_at, created_at=row.answered_at,
        message=f"意见已答复：{case.case_no}（{actor.username}）{row.answer[:200]}")])
    _audit(session, case, actor, "consultation.answered", after={"consultation": row.id, "answer": row.answer})
    return row


def withdraw_question(session: Session, consultation_id: int, actor: Actor):
    from ..models import Consultation

    row = session.get(Consultation, consultation_id, with_for_update=True)
    if row is None:
        raise NotFound("no consultation {consultation_id}", {"consultation_id": consultation_id})
    if actor.username != row.asked_by and actor.role != "admin":
        raise Forbidden("whoever asked withdraws the question")
    if row.state != "open":
        raise Conflict("consultation {consultation_id} is {state}",
                       {"consultation_id": consultation_id, "state": row.state})
    row.state = "withdrawn"
    _audit(session, session.get(Case, row.case_id), actor, "consultation.withdrawn",
           after={"consultation": row.id})
    return row


def pending_opinions(session: Session, item_id: int) -> list:
    from ..models import Consultation

    return list(session.scalars(select(Consultation).where(Consultation.work_item_id == item_id,
                                                           Consultation.state == "open")))


def opinions_of_case(session: Session, case_id: int) -> list:
    from ..models import Consultation

    return list(session.scalars(select(Consultation).where(Consultation.case_id == case_id)
                                .order_by(Consultation.id)))
