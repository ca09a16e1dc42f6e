"""The service window's actions on a case as a whole: intake (受理 / 不予受理 / 补正 / 容缺受理),
ending a case whose tolerated materials never came, delivering the result.

Each action is one call in one transaction; the form token makes a double-submitted form harmless.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from timers.clock import SHANGHAI, now

from ..definitions import engine
from ..definitions.catalogue import catalogue
from ..definitions.forms import required_text
from ..definitions.processes import definition_for
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Problems, problem
from ..models import Alert, Case, FormSubmission, Pause, WorkItem
from ..oversight import sla
from . import cases

ACTIONS = ("accept", "refuse", "supplement", "tolerate")


def used_token(session: Session, token: str | None) -> FormSubmission | None:
    if not token:
        return None
    return session.get(FormSubmission, token)


def spend_token(session: Session, token: str | None, actor: cases.Actor, result: str) -> None:
    """Record the form token with what it produced; a second use then finds it (unique key)."""
    if not token:
        return
    if len(token) > 64:
        raise InvalidInput("form token too long")
    try:
        with session.begin_nested():
            session.add(FormSubmission(token=token, actor=actor.username, result=result, at=now()))
    except IntegrityError:
        raise Conflict("this form was already submitted") from None


def _check_intake(matter_code: str, received: list[str], missing: list[str], action: str, reason: str,
                  deadline: date | None, problems: Problems):
    """The window's checks of an intake form: the matter and the cleaned reason; each problem of the form
    goes into `problems` (keyed by the form's fields: missing, reason, deadline)."""
    matter = catalogue().matters.get(matter_code)
    if matter is None or matter.internal:
        raise NotFound("no matter {matter_code}", {"matter_code": matter_code})
    if action not in ACTIONS:
        raise InvalidInput("action: one of {actions}", {"actions": ", ".join(ACTIONS)})
    listed = set(matter.materials.get("required", [])) | set(matter.materials.get("optional", []))
    unknown = [m for m in [*received, *missing] if m not in listed]
    if unknown:
        raise InvalidInput("materials: {material} is not on the checklist of {code}",
                           {"material": unknown[0], "code": matter.code})
    reason = (reason or "").strip()
    key = set(matter.materials.get("key", []))
    both = [m for m in received if m in missing]
    if both:  # a clerk's slip the notice would carry to the applicant
        problems.add(problem("missing", "{material} is ticked both received and missing; untick one",
                             {"material": "、".join(both)}))
    elif action == "accept" and set(matter.materials.get("required", [])) - set(received):
        problems.add(problem("missing", "every required material must be received to accept (or choose 补正/容缺): "
                                        "{materials}",
                             {"materials": "、".join(sorted(set(matter.materials["required"]) - set(received)))}))
    elif action == "supplement" and not missing:
        problems.add(problem("missing", "tick every missing material at once (一次性告知)"))
    elif action == "tolerate" and not missing:
        problems.add(problem("missing", "容缺受理 needs the missing minor materials"))
    elif action == "tolerate" and key & set(missing):
        problems.add(problem("missing", "{material} is a key material; 容缺 is only for minor ones",
                             {"material": "、".join(sorted(key & set(missing)))}))
    if action in ("refuse", "supplement") and not reason:
        problems.add(problem("reason", "say why"))
    if action == "tolerate" and (deadline is None or deadline <= now().astimezone(SHANGHAI).date()):
        problems.add(problem("deadline", "a day after today"))
    return matter, reason


def _decision(action: str, reason: str) -> dict[str, Any] | None:
    """The 受理 step's submission for an action (补正 leaves the step open: the case waits)."""
    if action in ("accept", "tolerate"):
        return {"decision": "accept"}
    if action == "refuse":
        return {"decision": "refuse", "reason": reason}
    return None


def _prepare_intake(session: Session, matter_code: str, applicant: Any, data: Any, received: list[str],
                    missing: list[str], action: str, reason: str, actor: cases.Actor, deadline: date | None):
    """Everything an intake computes, read-only: the checks, the start of the process and the 受理 step
    run on it (scripts and limits evaluated here, never under the write lock)."""
    problems = Problems()  # every problem of the form at once: materials, applicant, data, reason, deadline
    matter, reason = _check_intake(matter_code, received, missing, action, reason, deadline, problems)
    with problems.collecting():
        start = cases.prepare_start(session, matter.process, applicant, data, actor, matter_code=matter.code)
    problems.check()
    decision = _decision(action, reason)
    step = cases.prepare_first_step(session, start, "accept", decision, actor) if decision else None
    return matter, reason, start, step


def _write_intake(session: Session, prepared, received: list[str], missing: list[str], action: str,
                  actor: cases.Actor, deadline: date | None, token: str | None) -> Case:
    _, reason, start, step = prepared
    case = cases.apply_start(session, start, actor)
    spend_token(session, token, actor, case.case_no)
    case.materials = {"received": received, "missing": missing, "notice": reason}
    if step is not None:
        cases.apply_first_step(session, case, "accept", step, actor)
    if action == "supplement":
        notice = "补正材料：" + "、".join(missing) + (f"。{reason}" if reason else "")
        cases.pause(session, case.case_no, "supplement", notice[:500], actor)
    elif action == "tolerate":
        case.supplement_due_at = datetime.combine(deadline, time(18), tzinfo=SHANGHAI)
        case.materials = {**case.materials, "tolerated": missing, "deadline": deadline.isoformat()}
    return case


def intake(session: Session, matter_code: str, applicant: Any, data: Any, received: list[str],
           missing: list[str], action: str, reason: str, actor: cases.Actor, deadline: date | None = None,
           token: str | None = None) -> Case:
    """收件 and the window's decision in one go, inside a transaction the caller holds."""
    prepared = _prepare_intake(session, matter_code, applicant, data, received, missing, action, reason, actor,
                               deadline)
    return _write_intake(session, prepared, received, missing, action, actor, deadline, token)


def intake_case(db, matter_code: str, applicant: Any, data: Any, received: list[str], missing: list[str],
                action: str, reason: str, actor: cases.Actor, deadline: date | None = None,
                token: str | None = None) -> Case:
    """收件 and the window's decision: worked out first with no lock held, then written in one short
    transaction (the new case and its 受理 together, or nothing)."""
    with db.read() as session:
        prepared = _prepare_intake(session, matter_code, applicant, data, received, missing, action, reason,
                                   actor, deadline)
    return db.transaction(lambda session: _write_intake(session, prepared, received, missing, action, actor,
                                                        deadline, token))


def confirm_supplement(session: Session, case_no: str, actor: cases.Actor) -> Case:
    """The clerk has the missing materials: the clock resumes. A case that waited at intake goes back to
    the clerk's 受理 decision (accept or refuse, at its own time)."""
    case = cases.get_case(session, case_no)
    materials = dict(case.materials or {})
    if case.status == "paused":
        cases.resume(session, case_no, actor)
    elif case.supplement_due_at is None:
        raise Conflict("case {case_no} waits for no materials", {"case_no": case_no})
    materials["received"] = sorted(set(materials.get("received", [])) | set(materials.get("missing", [])))
    if materials.get("tolerated"):
        materials["tolerated_supplied"] = True  # kept: the statistics count 容缺 cases
    case.materials = {**materials, "missing": []}
    case.supplement_due_at = None
    return case


def terminate(session: Session, case: Case, reason: str, actor: cases.Actor, outcome: str = "terminated") -> None:
    """End a case outside its process — 终止 (容缺 materials never came, or a supervisor's decision) or the
    applicant's 撤回申请 (outcome "withdrawn"): items cancelled, clocks stopped, the process cancelled."""
    at = now()
    why = "application withdrawn" if outcome == "withdrawn" else "case terminated"
    for item in session.scalars(select(WorkItem).where(WorkItem.case_id == case.id,
                                                       WorkItem.state.in_(cases.OPEN_STATES))):
        before = {"state": item.state, "assignee": item.assignee}
        item.state, item.completed_at = "cancelled", at
        cases._audit(session, case, actor, "work_item.cancelled", step=item.step, item=item, before=before,
                     after={"state": "cancelled", "reason": why})
    stopped = sla.stop_clocks(session, case.id, cancelled=True)
    if stopped:
        cases._audit(session, case, actor, "clocks.stopped", after={
            "reason": why, "clocks": sorted(f"{c.scope}:{c.step or ''}" for c in stopped)})
    # the process itself is cancelled too, so the case's state and its (no) open items agree
    workflow = engine.load(case.state, definition_for(cases.version_of(session, case)))
    workflow.cancel()
    case.state = engine.dump(workflow)
    before = case.status
    case.status, case.outcome, case.completed_at, case.updated_at = "terminated", outcome, at, at
    case.next_timer_at = case.supplement_due_at = None
    paused = session.scalar(select(Pause).where(Pause.case_id == case.id, Pause.ended_at.is_(None)))
    if paused is not None:
        paused.ended_at, paused.ended_by = at, actor.username
    cases._audit(session, case, actor, "case.withdrawn" if outcome == "withdrawn" else "case.terminated",
                 before={"status": before}, after={"status": "terminated", "outcome": outcome, "reason": reason})


def end_case(session: Session, case_no: str, reason: Any, actor: cases.Actor, outcome: str = "terminated") -> Case:
    """终止 by a supervisor or admin, or 撤回申请 taken at the window (outcome "withdrawn"), with a reason."""
    reason = required_text(reason)
    if outcome == "terminated" and actor.role not in ("supervisor", "admin"):
        raise Forbidden("a case is terminated by a supervisor or an admin")
    if outcome == "withdrawn" and actor.role not in ("clerk", "admin", "applicant"):
        raise Forbidden("an application is withdrawn by the applicant, at the window or on the progress page")
    case = session.scalars(select(Case).where(Case.case_no == case_no).with_for_update()).first()
    if case is None:
        raise NotFound("no case {case_no}", {"case_no": case_no})
    if case.status not in ("received", "in_progress", "paused"):
        raise Conflict("case {case_no} is {status}; only a running case is ended",
                       {"case_no": case_no, "status": case.status})
    terminate(session, case, reason, actor, outcome)
    return case


def tolerated_due(session: Session) -> list[tuple[int, str]]:
    """容缺受理 cases whose deadline has passed without the materials."""
    return list(session.execute(select(Case.id, Case.case_no).where(
        Case.supplement_due_at <= now(), Case.status.in_(("received", "in_progress", "paused")))))


def expire_tolerated_case(session: Session, case_id: int) -> bool:
    """End one 容缺受理 case whose deadline passed; the window is told."""
    at = now()
    case = session.scalars(select(Case).where(Case.id == case_id, Case.supplement_due_at <= at,
                                              Case.status.in_(("received", "in_progress", "paused")))
                           .with_for_update()).first()
    if case is None:
        return False  # supplied or ended meanwhile
    missing = "、".join((case.materials or {}).get("tolerated", []))
    terminate(session, case, f"容缺材料逾期未补齐：{missing}", cases.SYSTEM)
    session.add(Alert(dedupe_key=f"case:{case.id}:tolerance", level="terminated", case_id=case.id,
                      case_no=case.case_no, department="window", concerned=["department:window",
                                                                             f"user:{case.created_by}"],
                      message=f"容缺受理到期未补齐材料，办件 {case.case_no} 已终止", at=at, created_at=at))
    return True
