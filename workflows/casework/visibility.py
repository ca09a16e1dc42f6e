"""Which cases a member of staff may see.

- Supervisors and admins see every case; clerks see the cases of their window (every case is received
  at the window, so every case).
- A reviewer sees a case while or after a step of it is or was in their department — not before, and
  not a case that never reached them.
- The query code (what lets an applicant act on the case) is shown to the window only: the clerk who
  hands it over, and admins.

A case a reviewer may not see answers as if it did not exist (no hint for enumerating case numbers).
"""

from __future__ import annotations

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..models import Case, CaseCopy, CaseNote, WorkItem
from .cases import Actor, get_case
from .copies import copied_to

ALL_CASES = ("admin", "supervisor", "clerk")
QUERY_CODE = ("admin", "clerk")


def _reached(departments: frozenset[str]):
    return exists(select(WorkItem.id).where(WorkItem.case_id == Case.id, WorkItem.department.in_(departments)))


def _copied(actor: Actor):
    return exists(select(CaseCopy.id).where(CaseCopy.case_id == Case.id, copied_to(actor)))


def may_see(session: Session, actor: Actor, case: Case) -> bool:
    """…and anyone a case was copied to (抄送), read-only. The same rule as `visible`, for one case."""
    if actor.role in ALL_CASES:
        return True
    return session.scalar(visible(select(Case.id).where(Case.id == case.id), actor)) is not None


def visible(stmt, actor: Actor):
    """A select of cases narrowed to those the actor may see."""
    if actor.role in ALL_CASES:
        return stmt
    if actor.role != "reviewer" or not actor.departments:
        return stmt.where(Case.id.is_(None))
    return stmt.where(or_(_reached(actor.departments), _copied(actor)))


def case_for(session: Session, case_no: str, actor: Actor) -> Case:
    case = get_case(session, case_no)
    if not may_see(session, actor, case):
        raise NotFound("no case {case_no}", {"case_no": case_no})
    return case


def sees_query_code(actor: Actor) -> bool:
    return actor.role in QUERY_CODE


def add_note(session: Session, case_no: str, actor: Actor, text) -> CaseNote:
    """A line in the case's internal thread, by anyone of staff who sees the case (never the applicant)."""
    from timers.clock import now

    from ..errors import InvalidInput
    from .cases import _audit

    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise InvalidInput("text: 1 to 2,000 characters", fields={"text": "required"})
    case = case_for(session, case_no, actor)
    note = CaseNote(case_id=case.id, author=actor.username, at=now(), text=text.strip())
    session.add(note)
    session.flush()
    _audit(session, case, actor, "case.noted", after={"note": note.id})
    return note


def notes(session: Session, case_id: int) -> list[CaseNote]:
    return list(session.scalars(select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)))
