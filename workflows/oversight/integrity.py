"""Consistency of a case: its workflow state, its work items and its audit trail agree.

Used after a crash (`onewindow check`) and by the tests that kill the server mid-burst. Cases are read
in batches by id (items and audit events of a batch in one query each) and let go after each batch, so
checking a million cases takes steady memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..casework.cases import OPEN_STATES
from ..definitions import engine
from ..definitions.processes import cached_version, definition_for
from ..models import AuditEvent, Case, WorkItem

RUNNING = ("received", "in_progress", "paused")


def case_problems(session: Session, case: Case, items: list[WorkItem] | None = None,
                  audited: set[int] | None = None) -> list[str]:
    problems: list[str] = []
    workflow = engine.load(case.state, definition_for(cached_version(session, case.process_version_id)))
    ready = {str(t.id) for t in engine.ready_user_tasks(workflow)}
    if items is None:
        items = list(session.scalars(select(WorkItem).where(WorkItem.case_id == case.id)))
    if audited is None:
        audited = set(session.scalars(select(AuditEvent.work_item_id).where(
            AuditEvent.case_id == case.id, AuditEvent.action == "work_item.completed")))
    open_ids = {i.task_id for i in items if i.state in OPEN_STATES}
    if case.status == "terminated":  # ended outside its process (终止, 撤回申请, 容缺 expiry): nothing stays open
        if open_ids:
            problems.append(f"{case.case_no}: terminated but work items {sorted(open_ids)} are open")
        return problems
    if ready != open_ids:
        problems.append(f"{case.case_no}: ready tasks {sorted(ready)} but open work items {sorted(open_ids)}")
    for item in items:
        if item.state == "completed" and item.id not in audited:
            problems.append(f"{case.case_no}: work item {item.id} completed without an audit event")
    if workflow.completed != (case.status in ("completed", "refused")):
        problems.append(f"{case.case_no}: status {case.status} but workflow completed={workflow.completed}")
    if case.status in RUNNING and not workflow.completed and not ready and not _waiting(workflow):
        problems.append(f"{case.case_no}: stuck — running with no open step, no waiting timer or event and no "
                        "running sub-process")
    return problems


def _waiting(workflow) -> bool:
    """Something the case waits for that will come by itself: a timer, a message or signal, a call."""
    if engine.next_timer_at(workflow) is not None:
        return True
    return any(getattr(t.task_spec, "event_definition", None) is not None or isinstance(t.task_spec, SubWorkflowTask)
               for t in workflow.get_tasks(state=TaskState.WAITING | TaskState.STARTED))


def problems(session: Session, *, since: datetime | None = None, everything: bool = True,
             batch: int = 500, checked: list[int] | None = None) -> Iterator[str]:
    """The problems of every case, or (everything=False) of the running cases and of those changed
    since `since` — what a crash can have touched. `checked` gets the number of cases looked at."""
    stmt = select(Case).order_by(Case.id).limit(batch)
    if not everything:
        scope = Case.status.in_(RUNNING)
        stmt = stmt.where(or_(scope, Case.updated_at >= since) if since else scope)
    last_id, count = 0, 0
    while True:
        cases = session.scalars(stmt.where(Case.id > last_id)).all()
        if not cases:
            break
        ids = [c.id for c in cases]
        items: dict[int, list[WorkItem]] = defaultdict(list)
        for item in session.scalars(select(WorkItem).where(WorkItem.case_id.in_(ids))):
            items[item.case_id].append(item)
        audited: dict[int, set[int]] = defaultdict(set)
        for case_id, item_id in session.execute(select(AuditEvent.case_id, AuditEvent.work_item_id).where(
                AuditEvent.case_id.in_(ids), AuditEvent.action == "work_item.completed")):
            audited[case_id].add(item_id)
        for case in cases:
            yield from case_problems(session, case, items[case.id], audited[case.id])
        count += len(cases)
        last_id = ids[-1]
        session.expunge_all()  # a million cases must not pile up in the identity map
    if checked is not None:
        checked.append(count)


def all_problems(session: Session) -> list[str]:
    return list(problems(session))
