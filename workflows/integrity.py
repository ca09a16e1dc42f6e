"""Consistency of a case: its workflow state, its work items and its audit trail agree.

Used after a crash (`onewindow check`) and by the tests that kill the server mid-burst.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import engine
from .cases import OPEN_STATES
from .models import AuditEvent, Case, WorkItem
from .processes import definition_for


def case_problems(session: Session, case: Case) -> list[str]:
    problems: list[str] = []
    workflow = engine.load(case.state, definition_for(case.process_version))
    ready = {str(t.id) for t in engine.ready_user_tasks(workflow)}
    items = session.scalars(select(WorkItem).where(WorkItem.case_id == case.id)).all()
    open_ids = {i.task_id for i in items if i.state in OPEN_STATES}
    if ready != open_ids:
        problems.append(f"{case.case_no}: ready tasks {sorted(ready)} but open work items {sorted(open_ids)}")
    audited = set(session.scalars(select(AuditEvent.work_item_id).where(
        AuditEvent.case_id == case.id, AuditEvent.action == "work_item.completed")))
    for item in items:
        if item.state == "completed" and item.id not in audited:
            problems.append(f"{case.case_no}: work item {item.id} completed without an audit event")
    if workflow.completed != (case.status in ("completed", "refused")):
        problems.append(f"{case.case_no}: status {case.status} but workflow completed={workflow.completed}")
    return problems


def all_problems(session: Session) -> list[str]:
    problems: list[str] = []
    for case in session.scalars(select(Case).order_by(Case.id)):
        problems.extend(case_problems(session, case))
    return problems
