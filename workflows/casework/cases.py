"""The case service: start a case, claim, release and complete its work items, read it back.

Each action is one transaction: the case row is locked, the workflow is loaded, stepped and saved,
work items are reconciled with the ready tasks and an audit event is appended — all or nothing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from timers.clock import SHANGHAI, now, to_local
from timers.durations import parse_duration

from ..administration.calendar_store import calendar_version, remember_calendar_version
from ..definitions import engine
from ..definitions.catalogue import catalogue
from ..definitions.forms import required_text, validate
from ..definitions.processes import (
    FROM_CATALOGUE,
    UNTIL,
    ProcessDefinition,
    Step,
    cached_version,
    definition_for,
    latest_version,
)
from ..definitions.script_limits import ScriptLimitExceeded
from ..definitions.scripting import evaluate
from ..definitions.timer_events import shift_timers, use_calendar
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Problems
from ..models import AuditEvent, Case, CaseSequence, Pause, SlaClock, WorkItem
from ..oversight import sla, tallies
from .applicants import check_applicant

log = logging.getLogger(__name__)
OPEN_STATES = ("open", "claimed")
COUNT_CAP = 10_000
ITEM_STATES = ("open", "claimed", "completed", "cancelled", "returned")
QUERY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out over the phone


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, or the system itself (scheduler, CLI)."""

    username: str
    role: str
    department: str | None = None  # the home department
    # (department, position or None) held besides: a 承办人 of one department may be a 科长 of another
    memberships: frozenset[tuple[str, str | None]] = frozenset()

    @property
    def sees_everything(self) -> bool:
        return self.role in ("admin", "supervisor")

    @property
    def departments(self) -> frozenset[str]:
        home = {self.department} if self.department else set()
        return frozenset(home | {department for department, _ in self.memberships})

    def holds(self, department: str | None, position: str) -> bool:
        return (department, position) in self.memberships


def actor_of(user) -> Actor:
    """The actor a signed-in user is, with every membership they hold."""
    return Actor(user.username, user.role, user.department,
                 frozenset((m.department, m.position) for m in user.memberships))


SYSTEM = Actor("system", "admin")


def _budget(fixed: str | None, expression: str | None, data: dict[str, Any], what: str) -> str | None:
    if fixed:
        return parse_duration(fixed).iso()
    if not expression:
        return None
    try:
        value = evaluate(expression, data)
        return parse_duration(value).iso()
    except Exception as exc:  # a data-dependent budget the data cannot decide
        raise InvalidInput("{what}: the time limit cannot be worked out from the case data ({exc})",
                           {"what": what, "exc": exc}) from None


def _until(deadline: Any) -> str | None:
    """A deadline given as a date (a reform task's 完成时限): natural days from today to it, so the clock is due
    at close of business that day (or the next working day). None for no deadline (长期) or one already past
    (the case starts overdue; the board counts it by its date)."""
    if not deadline:
        return None
    days = (date.fromisoformat(str(deadline)) - now().astimezone(SHANGHAI).date()).days
    return f"natural:P{days}D" if days >= 1 else None


def _budget_of(step: Step, task) -> str | None:
    """A step's or stage's limit, fixed or worked out from its task's data."""
    label = "stage" if step.kind == "stage" else "step"
    return _budget(step.budget, step.budget_expr, task.data, f"{label} {step.bpmn_id}")


_BUMP_SEQUENCE = (update(CaseSequence).where(CaseSequence.year == bindparam("y"),
                                              CaseSequence.matter_code == bindparam("m"))
                  .values(last=CaseSequence.last + 1).returning(CaseSequence.last))


def _next_case_no(session: Session, matter_code: str) -> str:
    year = to_local(now()).year
    params = {"y": year, "m": matter_code}
    number = session.execute(_BUMP_SEQUENCE, params).scalar()
    if number is None:
        try:
            with session.begin_nested():
                session.add(CaseSequence(year=year, matter_code=matter_code, last=1))
            number = 1
        except IntegrityError:  # another transaction created the row first
            number = session.execute(_BUMP_SEQUENCE, params).scalar()
    return f"{year}{matter_code}{number:06d}"


_INSERT_AUDIT = insert(AuditEvent.__table__)


def _audit(session: Session, case: Case | None, actor: Actor, action: str, *, step: str | None = None,
           item: WorkItem | None = None, before: dict | None = None, after: dict | None = None) -> None:
    # a Core insert: nothing reads the event back in the transaction, so the unit of work need not track it
    session.execute(_INSERT_AUDIT, dict(
        case_id=case.id if case else None, at=now(), actor=actor.username, action=action, step=step,
        work_item_id=item.id if item else None, before=before, after=after))


@dataclass
class PreparedStart:
    """A new case worked out without the write lock: checked, its start run, its limits evaluated."""

    process_key: str
    version: Any
    definition: ProcessDefinition
    person: Any
    clean: dict[str, Any]
    code: str
    budget: str | None
    workflow: Any
    state: bytes
    budgets: dict[str, str | None]


def prepare_start(session: Session, process_key: Any, applicant: Any, data: Any, actor: Actor,
                  matter_code: str | None = None) -> PreparedStart:
    if actor.role not in ("clerk", "admin"):
        raise Forbidden("only a window clerk or an admin starts a case")
    if not isinstance(process_key, str) or not process_key:
        raise InvalidInput("process: required")
    problems = Problems()  # the applicant's and the data's problems are reported together
    with problems.collecting():
        person = check_applicant(applicant)
    version = latest_version(session, process_key)
    definition = definition_for(version)
    internal = catalogue().matter_for_process(process_key)
    if internal is not None and internal.internal and actor is not SYSTEM:
        raise Forbidden("{process_key} is started by the system itself (e.g. after a bad rating), not by hand",
                        {"process_key": process_key})
    with problems.collecting():
        clean = validate(list(definition.start_fields), data, "data")
    problems.check()
    if matter_code:
        matter = catalogue().matters.get(matter_code)
        if matter is None or matter.process != process_key:
            raise InvalidInput("matter: {matter_code} is not a matter of process '{process_key}'",
                               {"matter_code": matter_code, "process_key": process_key})
        code = matter.code
    else:
        matter = catalogue().matter_for_process(process_key)
        # a process deployed before its catalogue entry still numbers its cases
        code = matter.code if matter else process_key.upper().replace("_", "")[:12]
    if definition.case_budget and definition.case_budget.startswith(UNTIL):
        budget = _until(clean.get(definition.case_budget[len(UNTIL):]))
    elif definition.case_budget == FROM_CATALOGUE:  # the promised limit of the matter, its region and kind
        limit = matter.promised_for(clean) if matter else None
        if limit is None:
            raise InvalidInput("{field}: the catalogue gives no time limit for this choice",
                               {"field": matter.promised_limit_by if matter else "matter"},
                               fields={matter.promised_limit_by if matter and matter.promised_limit_by
                                       else "matter": "invalid"})
        budget = parse_duration(limit).iso()
    else:
        budget = _budget(definition.case_budget, definition.case_budget_expr, clean, "case")
    workflow, state = run_engine(sla.working_calendar(session),
                                 lambda: engine.new_workflow(definition, clean, actor.username), "from its start")
    return PreparedStart(process_key, version, definition, person, clean, code, budget, workflow, state,
                         budgets_for(workflow, definition, engine.ready_user_tasks(workflow)))


def apply_start(session: Session, prepared: PreparedStart, actor: Actor) -> Case:
    """The write of a new case: its number, the row, its first work items and clocks, the history."""
    p, at = prepared, now()
    case = Case(case_no=_next_case_no(session, p.code),
                query_code="".join(secrets.choice(QUERY_ALPHABET) for _ in range(8)),
                process_version_id=p.version.id, process_key=p.process_key, matter_code=p.code,
                status="received", applicant_type=p.person.type, applicant_name=p.person.name,
                applicant_id_no=p.person.id_no, applicant_contact=p.person.contact, data=p.clean, budget=p.budget,
                state=p.state, created_by=actor.username, created_at=at, updated_at=at)
    case.next_timer_at = engine.next_timer_at(p.workflow)
    session.add(case)
    session.flush()
    _audit(session, case, actor, "case.started",
           after={"status": case.status, "process": p.process_key, "version": p.version.version,
                  "applicant": p.person.as_dict(), "data": p.clean, "budget": p.budget})
    if p.definition.case_clock == "start":
        case.status = "in_progress"
        if p.budget:
            sla.start_clock(session, case, "case", p.budget, p.version.name, at=at)
    # a new case has no items or clocks yet
    _sync_work_items(session, case, p.workflow, p.definition, open_items=[], clocks=[], budgets=p.budgets)
    if p.workflow.completed:  # a fully automatic process ends as it starts
        case.outcome = engine.finished_outcome(p.workflow, p.definition)
        case.status = "refused" if case.outcome == "refused" else "completed"
        case.completed_at, case.next_timer_at = at, None
        sla.stop_clocks(session, case.id, at=at)
        _audit(session, case, SYSTEM, "case.completed", after={"status": case.status, "outcome": case.outcome})
    return case


def start_case(session: Session, process_key: Any, applicant: Any, data: Any, actor: Actor,
               matter_code: str | None = None) -> Case:
    """A new case inside a transaction the caller holds (the window's intake, a rating's follow-up)."""
    prepared = prepare_start(session, process_key, applicant, data, actor, matter_code)
    return apply_start(session, prepared, actor)


def open_case(db, process_key: Any, applicant: Any, data: Any, actor: Actor, matter_code: str | None = None,
              then=None):
    """A new case on its own: its start is run without any lock, then written in a short transaction;
    `then(session, case)` adds to that transaction and its result is returned."""
    with db.read() as session:
        prepared = prepare_start(session, process_key, applicant, data, actor, matter_code)

    def write(session: Session):
        case = apply_start(session, prepared, actor)
        return then(session, case) if then is not None else case
    return db.transaction(write)


def _step_of(definition: ProcessDefinition, task) -> Step:
    return definition.steps[task.task_spec.bpmn_id]


def _sync_work_items(session: Session, case: Case, workflow, definition: ProcessDefinition,
                     at: datetime | None = None, *, ready: list | None = None,
                     open_items: list[WorkItem] | None = None, clocks: list[SlaClock] | None = None,
                     budgets: dict[str, str | None] | None = None, returned: str | None = None) -> list[WorkItem]:
    """Make the open work items of the case match the ready user tasks of its workflow.

    A step passes what it already holds (the ready tasks, the open items and active clocks it read
    after locking the case) so nothing is walked or read twice. `returned` says the items withdrawn now
    were withdrawn by a 退回 (their clocks stop as "returned")."""
    if open_items is None:
        open_items = list(session.scalars(
            select(WorkItem).where(WorkItem.case_id == case.id, WorkItem.state.in_(OPEN_STATES))))
    existing = {item.task_id: item for item in open_items if item.state in OPEN_STATES}
    created: list[WorkItem] = []
    tasks = {str(task.id): task for task in (engine.ready_user_tasks(workflow) if ready is None else ready)}
    at = at or now()
    for task_id, task in tasks.items():
        if task_id in existing:
            continue
        step = _step_of(definition, task)
        budget = budgets[task_id] if budgets is not None and task_id in budgets else _budget_of(step, task)
        item = WorkItem(case_id=case.id, case_no=case.case_no, task_id=task_id, step=step.bpmn_id,
                        name=step.name, role=step.role, department=step.department, lane=step.lane,
                        budget=budget, state="open", created_at=at, position=step.position)
        _for_instance(session, item, task, at)
        if step.assignee and item.assignee is None:
            _to_named_user(session, item, step.assignee, at)
        created.append(item)
    withdrawn = set()
    for task_id, item in existing.items():
        if task_id not in tasks:  # withdrawn by the process (an interrupting event, the end of the case)
            item.state = "cancelled"
            item.completed_at = at
            withdrawn.add(task_id)
            why = "case ended" if workflow.completed else f"returned: {returned}" if returned \
                else "withdrawn by the process"
            _audit(session, case, SYSTEM, "work_item.cancelled", step=item.step, item=item,
                   before={"state": "open" if item.assignee is None else "claimed", "assignee": item.assignee},
                   after={"state": "cancelled", "reason": why})
    if created:
        session.add_all(created)
        session.flush()  # the new items' ids go into their clocks and alerts
    if withdrawn:
        sla.stop_clocks(session, case.id, task_ids=withdrawn, cancelled="returned" if returned else True,
                        clocks=clocks, at=at)
    for item in created:
        if item.role == "supervisor":  # 督办 and follow-ups: the supervisors hear of them at once
            sla.escalation_alert(session, case, item, at)
        if item.budget:
            sla.start_clock(session, case, "step", item.budget, item.name, step=item.step, task_id=item.task_id,
                            item=item, department=item.department, at=at)
        step = definition.steps.get(item.step)
        if step is not None and step.respond_within and item.state == "open":  # 签收时限: until taken up
            sla.start_clock(session, case, "response", step.respond_within, item.name, step=item.step,
                            task_id=item.task_id, item=item, department=item.department, at=at)
    _sync_stage_clocks(session, case, workflow, definition, at, budgets, returned)
    return created


def _to_named_user(session: Session, item: WorkItem, username: str, at: datetime) -> None:
    """A step the file gives to a named user (camunda:assignee) is in that user's list, claimed, while they
    are active; otherwise it waits for their department like any step."""
    from ..models import User
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is not None and user.works_in(item.department):
        item.state, item.assignee, item.claimed_at = "claimed", user.username, at


def _for_instance(session: Session, item: WorkItem, task, at: datetime) -> None:
    """An instance of a multi-instance step (会签 / 或签 / 票签) goes to the department or person its
    element names (the step's input item): a department code gives the item to that department, a
    username to that person (claimed)."""
    parent = task.parent
    input_item = getattr(getattr(parent, "task_spec", None), "input_item", None)
    # only the instances themselves: the step after a multi-instance task also has it as its parent
    if input_item is None or getattr(parent.task_spec, "task_spec", None) != task.task_spec.name:
        return
    element = task.data.get(input_item.bpmn_id)
    if not isinstance(element, str):
        return
    if element in catalogue().departments:
        item.department = element
        item.name = f"{item.name}（{catalogue().departments[element].name}）"
        return
    from ..models import User
    user = session.scalar(select(User).where(User.username == element, User.active.is_(True)))
    if user is not None and user.department:
        item.department, item.role = user.department, user.role
        item.state, item.assignee, item.claimed_at = "claimed", user.username, at
        item.name = f"{item.name}（{user.display_name or user.username}）"


def _sync_stage_clocks(session: Session, case: Case, workflow, definition: ProcessDefinition, at,
                       budgets: dict[str, str | None] | None = None, returned: str | None = None) -> None:
    if not any(step.kind == "stage" for step in definition.steps.values()):
        return
    running = {str(t.id): t for t in engine.running_stages(workflow, definition)}
    clocks = {c.task_id: c for c in session.scalars(select(SlaClock).where(
        SlaClock.case_id == case.id, SlaClock.scope == "stage", SlaClock.state.in_(sla.ACTIVE)))}
    for task_id, clock in clocks.items():
        if task_id not in running:  # done — or, after a 退回 to before it, abandoned
            sla.stop_clock(session, clock, at, cancelled="returned" if returned else False)
    for task_id, task in running.items():
        if task_id in clocks:  # running already (a stage run again after a 退回 gets a clock of its own)
            continue
        step = definition.steps[task.task_spec.bpmn_id]
        budget = budgets[task_id] if budgets is not None and task_id in budgets else _budget_of(step, task)
        if budget:
            sla.start_clock(session, case, "stage", budget, step.name, step=step.bpmn_id, task_id=task_id,
                            department=step.department, at=at)


def _item_for_update(session: Session, item_id: int) -> tuple[WorkItem, Case]:
    # Lock the case: every change to a case and its items goes through this row.
    row = session.execute(select(Case, WorkItem).join(WorkItem, WorkItem.case_id == Case.id)
                          .where(WorkItem.id == item_id).with_for_update(of=Case)).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    case, item = row
    if session.get_bind().dialect.name == "postgresql":
        # the item was read with the statement's snapshot; after waiting for the lock, read it again
        session.refresh(item)
    return item, case


def _may_work(actor: Actor, item: WorkItem) -> None:
    if actor.role == "admin" or (actor.role == item.role == "supervisor"):
        return
    if actor.role != item.role or item.department not in actor.departments:
        raise Forbidden("work item {id} ({name}) belongs to the {department} department's {role}s",
                        {"id": item.id, "name": item.name, "department": item.department, "role": item.role})


def may_hold(actor: Actor, item: WorkItem) -> None:
    """Acting on an item as its holder (return, transfer, copy): its department's worker while nobody else
    holds it, or a supervisor or admin on any item."""
    if actor.role in ("admin", "supervisor"):
        return
    _may_work(actor, item)
    if item.state == "claimed" and item.assignee != actor.username:
        raise Forbidden("work item {id} is claimed by {assignee}", {"id": item.id, "assignee": item.assignee})


def holds_position(session: Session, actor: Actor, item: WorkItem) -> None:
    """Roles are the coarse permission; a step that names a position is worked by those who hold it."""
    if not item.position or actor.role == "admin":
        return
    from ..models import Membership, User
    # read afresh: a position taken away counts at once, whatever the session or token remembers
    held = session.scalar(select(Membership.id).join(User, User.id == Membership.user_id).where(
        User.username == actor.username, Membership.department == item.department,
        Membership.position == item.position))
    if held is None:
        raise Forbidden("step {name} is worked by a {position} of the department",
                        {"name": item.name, "position": item.position})


def claim(session: Session, item_id: int, actor: Actor) -> WorkItem:
    item, case = _item_for_update(session, item_id)
    _may_work(actor, item)
    holds_position(session, actor, item)
    if item.state == "claimed" and item.assignee == actor.username:
        return item
    if item.state == "claimed":
        raise Conflict("work item {item_id} is claimed by {assignee}", {"item_id": item_id, "assignee": item.assignee})
    if item.state != "open":
        raise Conflict("work item {item_id} is {state}", {"item_id": item_id, "state": item.state})
    item.state, item.assignee, item.claimed_at = "claimed", actor.username, now()
    sla.stop_clocks(session, case.id, task_ids={item.task_id}, scope="response", at=item.claimed_at)  # taken up
    _audit(session, case, actor, "work_item.claimed", step=item.step, item=item,
           before={"state": "open", "assignee": None}, after={"state": "claimed", "assignee": actor.username})
    return item


def release(session: Session, item_id: int, actor: Actor) -> WorkItem:
    item, case = _item_for_update(session, item_id)
    _may_work(actor, item)
    if item.state != "claimed":
        raise Conflict("work item {item_id} is {state}, not claimed", {"item_id": item_id, "state": item.state})
    if item.assignee != actor.username and actor.role != "admin":
        raise Forbidden("work item {item_id} is claimed by {assignee}", {"item_id": item_id, "assignee": item.assignee})
    before = {"state": "claimed", "assignee": item.assignee}
    item.state, item.assignee, item.claimed_at = "open", None, None
    _audit(session, case, actor, "work_item.released", step=item.step, item=item, before=before,
           after={"state": "open", "assignee": None})
    return item


# A step's reads, built once: building a statement costs more than SQLite takes to run it.
_LOCK_CASE_OF_ITEM = (select(Case, calendar_version()).join(WorkItem, WorkItem.case_id == Case.id)
                      .where(WorkItem.id == bindparam("item_id")).with_for_update(of=Case))
_ITEMS_OF_STEP = (select(WorkItem).where(WorkItem.case_id == bindparam("case_id"), or_(
    WorkItem.state.in_(OPEN_STATES), WorkItem.id == bindparam("item_id"))).execution_options(populate_existing=True))
_ACTIVE_CLOCKS = select(SlaClock).where(SlaClock.case_id == bindparam("case_id"), SlaClock.state.in_(sla.ACTIVE))


_COMPLETE_ITEM = (update(WorkItem.__table__).where(WorkItem.__table__.c.id == bindparam("item_id"))
                  .values(state="completed", completed_at=bindparam("at"), completed_by=bindparam("by"),
                          assignee=bindparam("who"), data=bindparam("data")))


def _complete_item(session: Session, item: WorkItem, at: datetime, by: str, data: dict[str, Any]) -> None:
    """One prebuilt UPDATE; the object is told the row's new values without going through a flush."""
    values = {"state": "completed", "completed_at": at, "completed_by": by, "assignee": item.assignee or by,
              "data": data}
    session.execute(_COMPLETE_ITEM, {"item_id": item.id, "at": at, "by": by, "who": values["assignee"],
                                     "data": data})
    for key, value in values.items():
        set_committed_value(item, key, value)


class DelegatedStep(Exception):
    """The step was delegated to the one submitting: their submission is a draft for its holder."""


class CaseChanged(Exception):
    """The case moved on between the evaluation of a step and its write: evaluate again."""


@dataclass
class PreparedStep:
    """A step worked out without the write lock: the engine has run, scripts and budgets are evaluated."""

    item_id: int
    revision: int
    clean: dict[str, Any]
    workflow: Any
    state: bytes
    ready: list
    budgets: dict[str, str | None]


def _check_may_complete(actor: Actor, item: WorkItem, case: Case, session: Session, locked: bool = False
                        ) -> None:
    """Who may complete the item, and whether it can be completed now. What other rows tell (opinions
    still asked) is read once, under the case's lock."""
    _may_work(actor, item)
    if item.state not in OPEN_STATES:
        raise Conflict("work item {id} is already {state}", {"id": item.id, "state": item.state})
    if item.state == "claimed" and item.assignee != actor.username and actor.role != "admin":
        raise Forbidden("work item {id} is claimed by {assignee}", {"id": item.id, "assignee": item.assignee})
    if case.status == "paused":
        raise Conflict("case {case_no} is paused; resume it before completing a step", {"case_no": case.case_no})
    holds_position(session, actor, item)
    if locked:
        from .copies import pending_opinions
        waiting = pending_opinions(session, item.id)
        if waiting:  # 加签: every opinion asked comes first (or the question is withdrawn)
            names = "、".join(c.to_user or c.to_department for c in waiting)
            raise Conflict("step {name} waits for the opinions asked of {names}", {"name": item.name, "names": names})


def engine_failure(exc: BaseException) -> tuple[str, str]:
    """What went wrong in the engine, naming the element: (for the person acting, for the log and the
    admins). A script's own exception text stays out of the first: it may show the data or the code."""
    spec = getattr(exc, "task_spec", None)
    element = (getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None)) if spec else None
    cause, seen = exc, 0
    while isinstance(cause, WorkflowException) and seen < 10:  # Spiff wraps the script's own error
        cause, seen = (cause.__cause__ or cause.__context__ or cause), seen + 1
        if cause is exc:
            break
    if isinstance(cause, ScriptLimitExceeded):
        shown = full = str(cause)
    else:
        shown = "the script or condition there failed"
        full = f"{str(exc).strip().rstrip('.')}: {cause.__class__.__name__}: {cause}"[:2000] if cause is not exc \
            else str(exc).strip() or exc.__class__.__name__
    where = f"{element}: " if element else ""
    return where + shown, where + full


def budgets_for(workflow, definition: ProcessDefinition, ready: list) -> dict[str, str | None]:
    """The limits of the steps and stages about to start, evaluated from their data now (never under
    the write lock)."""
    budgets = {str(task.id): _budget_of(_step_of(definition, task), task) for task in ready}
    if any(step.kind == "stage" for step in definition.steps.values()):
        for task in engine.running_stages(workflow, definition):
            budgets[str(task.id)] = _budget_of(definition.steps[task.task_spec.bpmn_id], task)
    return budgets


def run_engine(calendar, action, what: str) -> tuple[Any, bytes]:
    """Run the engine (`action` returns the workflow it stepped) and save its state; a script or
    expression that fails or goes past its budget, or a value the state cannot hold, is a 409 naming it."""
    try:
        with use_calendar(calendar):
            workflow = action()
            engine.advance(workflow)
        return workflow, engine.dump(workflow)
    except WorkflowException as exc:
        shown, full = engine_failure(exc)
        log.warning("the process could not go on %s: %s", what, full)
        refused = Conflict("the process could not go on {what}: {shown}", {"what": what, "shown": shown})
        refused.internal = full  # for the incident an admin reads, never for the answer
        raise refused from None
    except (ScriptLimitExceeded, engine.UnsavableData) as exc:
        raise Conflict("the process could not go on {what}: {exc}", {"what": what, "exc": exc}) from None
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
        # the engine tripped on this case's data (a multi-instance collection that is not a list, say):
        # the case stays as it was, the answer says so, the log keeps the traceback for us
        log.warning("the engine failed %s", what, exc_info=True)
        raise Conflict("the process could not go on {what}: the engine could not use the case data here "
                       "({exc})", {"what": what, "exc": f"{type(exc).__name__}: {exc}"[:200]}) from None


_READ_CASE_OF_ITEM = (select(Case, WorkItem).join(WorkItem, WorkItem.case_id == Case.id)
                      .where(WorkItem.id == bindparam("item_id")).execution_options(populate_existing=True))


def prepare_step(session: Session, item_id: int, actor: Actor, data: Any) -> PreparedStep:
    """Everything a step computes, read-only: checks, form validation, the engine run, the budgets."""
    row = session.execute(_READ_CASE_OF_ITEM, {"item_id": item_id}).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    case, item = row
    if item.delegated_by and item.assignee == actor.username and item.state == "claimed":
        raise DelegatedStep(item.id)  # 委派: the colleague's submission goes back to the holder
    _check_may_complete(actor, item, case, session)
    definition = definition_for(version_of(session, case))
    clean = validate(list(definition.steps[item.step].fields), data, f"step {item.step}")
    workflow, task = task_of(case, item, definition, TaskState.READY, "ready")
    return _run_step(session, item_id, case.revision, workflow, task, clean, definition, item.step)


def task_of(case: Case, item: WorkItem, definition: ProcessDefinition, state: int, what: str):
    """The case's workflow and the item's task in it, which must be in `state` (else a 409)."""
    workflow = engine.load(case.state, definition)
    task = workflow.get_task_from_id(UUID(item.task_id))
    if task is None or task.state != state:
        raise Conflict("work item {id} is no longer {what} in the process", {"id": item.id, "what": what})
    return workflow, task


def _run_step(session: Session, item_id: int, revision: int, workflow, task, clean: dict[str, Any],
              definition: ProcessDefinition, step_id: str) -> PreparedStep:
    """Run a ready task with its submission and the engine after it; what the write needs."""
    def work():
        task.set_data(**clean)
        task.run()
        return workflow

    _, state = run_engine(sla.working_calendar(session), work, f"from step {step_id}")
    ready = engine.ready_user_tasks(workflow)
    return PreparedStep(item_id, revision, clean, workflow, state, ready, budgets_for(workflow, definition, ready))


def apply_step(session: Session, prepared: PreparedStep, actor: Actor) -> WorkItem:
    """The write of a prepared step: lock the case, check it has not moved on, write. Nothing is
    evaluated here."""
    item_id = prepared.item_id
    # Lock the case first, then read its open items and active clocks once: after waiting for the lock
    # these reads see every change committed before it, and the step needs nothing else from the database.
    row = session.execute(_LOCK_CASE_OF_ITEM, {"item_id": item_id}).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    case, version_no = row
    if case.revision != prepared.revision:
        raise CaseChanged(case.case_no)
    remember_calendar_version(session, version_no)  # read with the lock: one statement fewer per step
    items = session.scalars(_ITEMS_OF_STEP, {"case_id": case.id, "item_id": item_id}).all()
    item = next(i for i in items if i.id == item_id)
    _check_may_complete(actor, item, case, session, locked=True)
    version = version_of(session, case)
    definition = definition_for(version)
    clocks = list(session.scalars(_ACTIVE_CLOCKS, {"case_id": case.id}))
    workflow, ready, clean = prepared.workflow, prepared.ready, prepared.clean
    # the open steps are what the work items mirror: the workflow need not be walked for them
    before = {"status": case.status, "state": item.state, "assignee": item.assignee,
              "open_steps": sorted(i.step for i in items if i.state in OPEN_STATES)}
    at = now()
    sla.stop_clocks(session, case.id, task_ids={item.task_id}, clocks=clocks, at=at)
    _complete_item(session, item, at, actor.username, clean)
    case.data = {**case.data, **clean}
    accepting = case.status == "received"
    _settle(session, case, workflow, definition, at, ready=ready, open_items=items, clocks=clocks,
            budgets=prepared.budgets, state=prepared.state)
    if accepting and case.status == "in_progress" and case.budget:
        # 受理: the case clock runs from the moment the window accepts the case
        # the window that accepted the case answers for its whole clock
        sla.start_clock(session, case, "case", case.budget, version.name, at=at, department=item.department)
    _audit(session, case, actor, "work_item.completed", step=item.step, item=item, before=before,
           after={"status": case.status, "outcome": case.outcome, "data": clean,
                  "open_steps": sorted(t.task_spec.bpmn_id for t in ready)})
    cc = definition.steps[item.step].cc
    if cc:  # 抄送 named in the BPMN
        from . import copies
        copies.on_completion(session, case, cc, item.step, actor)
    return item


def prepare_first_step(session: Session, start: PreparedStart, step_id: str, data: Any, actor: Actor
                       ) -> PreparedStep:
    """A step of a case not written yet (the window's 受理 at intake), worked out on its prepared start."""
    definition = start.definition
    clean = validate(list(definition.steps[step_id].fields), data, f"step {step_id}")
    workflow = engine.load(start.state, definition)
    task = next((t for t in engine.ready_user_tasks(workflow) if t.task_spec.bpmn_id == step_id), None)
    if task is None:
        raise Conflict("the process does not begin with step {step_id}", {"step_id": step_id})
    return _run_step(session, 0, 0, workflow, task, clean, definition, step_id)  # ids known once written


def open_item(session: Session, case: Case, step_id: str) -> WorkItem | None:
    """The case's open (or claimed) item of a step, if it has one."""
    return session.scalar(select(WorkItem).where(WorkItem.case_id == case.id, WorkItem.step == step_id,
                                                 WorkItem.state.in_(OPEN_STATES)))


def apply_first_step(session: Session, case: Case, step_id: str, prepared: PreparedStep, actor: Actor) -> WorkItem:
    """Write a step prepared by `prepare_first_step`, in the transaction that wrote the case."""
    item = open_item(session, case, step_id)
    if item is None:
        raise Conflict("case {case_no} has no open {step_id} step", {"case_no": case.case_no, "step_id": step_id})
    session.flush()
    prepared.item_id, prepared.revision = item.id, case.revision
    return apply_step(session, prepared, actor)


def complete(session: Session, item_id: int, actor: Actor, data: Any) -> WorkItem:
    """A step inside a transaction the caller holds: the case is locked first (PostgreSQL; SQLite's write
    transaction holds it already), so nothing can move it between the evaluation and the write."""
    session.execute(_LOCK_CASE_OF_ITEM.execution_options(populate_existing=True), {"item_id": item_id})
    return apply_step(session, prepare_step(session, item_id, actor, data), actor)


def prepared_write(db, prepare, apply, what: str, attempts: int = 5):
    """Evaluate with no lock held (`prepare(session)` in a read session), then write in a short transaction
    (`apply(session, prepared)`, which checks the case's revision); if the case moved on in between,
    evaluate again."""
    for _ in range(attempts):
        with db.read() as session:
            prepared = prepare(session)
        try:
            return db.transaction(lambda session, p=prepared: apply(session, p))
        except CaseChanged:
            continue
    raise Conflict("{what}: the case kept changing while this was saved; try again", {"what": what})


def complete_step(db, item_id: int, actor: Actor, data: Any, attempts: int = 5, also=None) -> WorkItem:
    """A step on its own, the API's and pages' way: prepared with no lock, written with the revision
    check. `also(session, item)` adds to the same write (a form's token, its uploads). On a delegated
    step (委派) the colleague's submission goes back to the holder as a draft instead."""

    def write(session: Session, prepared: PreparedStep) -> WorkItem:
        item = apply_step(session, prepared, actor)
        if also is not None:
            also(session, item)
        return item

    try:
        return prepared_write(db, lambda session: prepare_step(session, item_id, actor, data), write,
                              f"work item {item_id}", attempts)
    except DelegatedStep:
        from .operations import hand_back

        def draft(session: Session) -> WorkItem:
            item = hand_back(session, item_id, actor, data)
            if also is not None:
                also(session, item)
            return item
        return db.transaction(draft)


def version_of(session: Session, case: Case):
    """The case's process version, from the process-wide cache of these immutable rows."""
    return cached_version(session, case.process_version_id)


def _settle(session: Session, case: Case, workflow, definition: ProcessDefinition, at, state: bytes | None = None,
            **held) -> list[WorkItem]:
    """After the engine ran: save the state (dumped already when the engine ran), follow the status,
    reconcile work items and clocks."""
    tallies.late_write(session, at)  # a timer fired late records at its own instant, maybe a tallied day
    case.state = state if state is not None else engine.dump(workflow)
    case.next_timer_at = engine.next_timer_at(workflow)
    case.updated_at = at
    if workflow.completed:
        outcome = engine.finished_outcome(workflow, definition)
        case.outcome = outcome
        case.status = "refused" if outcome == "refused" else "completed"
        case.completed_at = at
        case.next_timer_at = None
    elif case.status != "paused":
        case.status = "in_progress"
    created = _sync_work_items(session, case, workflow, definition, at, **held)
    if workflow.completed:
        # any end of the case (an end event, a terminate end event on rejection) stops every clock
        stopped = sla.stop_clocks(session, case.id, at=at)
        if stopped:
            _audit(session, case, SYSTEM, "clocks.stopped",
                   after={"reason": "case ended", "outcome": case.outcome,
                          "clocks": sorted(f"{c.scope}:{c.step or ''}" for c in stopped)})
    return created


TIMER_JOB = "fire_timers"


def due_timer_cases(session: Session, batch: int = 200) -> list[tuple[int, str]]:
    """Cases (id, number) with a BPMN timer due, leaving out those whose incident waits for its retry."""
    from ..oversight import incidents

    return list(session.execute(
        select(Case.id, Case.case_no).where(Case.next_timer_at <= now(), Case.status.in_(("received", "in_progress")),
                              incidents.waiting(TIMER_JOB, Case.id))
        .order_by(Case.next_timer_at).limit(batch)))


@dataclass
class PreparedTimer:
    case_id: int
    case_no: str
    revision: int
    at: datetime
    workflow: Any
    state: bytes
    budgets: dict[str, str | None]
    label: str | None = None  # what the history calls the event (a message's waiting event)


def prepare_timer(session: Session, case_id: int) -> PreparedTimer | None:
    """Fire a case's due timers in memory (scripts run here, with no lock held)."""
    case = session.get(Case, case_id)
    if case is None or case.next_timer_at is None or case.status not in ("received", "in_progress"):
        return None
    # after downtime the timer fired at its own instant, not when the scheduler came back
    at = min(case.next_timer_at, now())
    definition = definition_for(version_of(session, case))
    workflow = engine.load(case.state, definition)

    def fire():
        workflow.refresh_timers()
        return workflow

    _, state = run_engine(sla.working_calendar(session), fire, "at its timer")
    return PreparedTimer(case.id, case.case_no, case.revision, at, workflow, state,
                         budgets_for(workflow, definition, engine.ready_user_tasks(workflow)))


def lock_prepared(session: Session, prepared: PreparedTimer) -> Case:
    """The case an engine run was evaluated for with no lock held, locked now; CaseChanged if it has moved on
    since (evaluate again)."""
    case = session.scalars(select(Case).where(Case.id == prepared.case_id).with_for_update()
                           .execution_options(populate_existing=True)).first()
    if case is None or case.revision != prepared.revision:
        raise CaseChanged(prepared.case_no)
    return case


def apply_timer(session: Session, prepared: PreparedTimer) -> bool:
    """Write a fired timer: lock the case, check it has not moved on, settle. True if anything moved."""
    from ..oversight import incidents

    case = lock_prepared(session, prepared)
    definition = definition_for(version_of(session, case))
    before = {"status": case.status, "open_steps": _open_steps(session, case)}
    previous = case.next_timer_at
    created = _settle(session, case, prepared.workflow, definition, prepared.at, budgets=prepared.budgets,
                      state=prepared.state)
    incidents.resolve(session, TIMER_JOB, case.id)
    if not created and case.next_timer_at == previous and not prepared.workflow.completed:
        return False  # nothing fell due after all (e.g. another process's clock ran ahead)
    _audit(session, case, SYSTEM, "timer.fired", before=before,
           after={"status": case.status, "open_steps": _open_steps(session, case)})
    return True


PAUSE_KINDS = ("supplement", "special")


def _case_for_update(session: Session, case_no: str) -> Case:
    case = session.scalars(select(Case).where(Case.case_no == case_no).with_for_update()).first()
    if case is None:
        raise NotFound("no case {case_no}", {"case_no": case_no})
    return case


def _may_pause(session: Session, actor: Actor, case: Case) -> None:
    if actor.role in ("admin", "clerk"):
        return
    if actor.role == "reviewer" and session.scalar(select(WorkItem.id).where(
            WorkItem.case_id == case.id, WorkItem.state.in_(OPEN_STATES),
            WorkItem.department.in_(actor.departments))) is not None:
        return
    raise Forbidden("only the window, a department working the case, or an admin pauses or resumes it")


def pause(session: Session, case_no: str, kind: Any, reason: Any, actor: Actor) -> Pause:
    """挂起: 补正 (waiting for the applicant's materials) or 特别程序; every clock of the case stops."""
    if kind not in PAUSE_KINDS:
        raise InvalidInput("kind: one of {pause_kinds}", {"pause_kinds": ', '.join(PAUSE_KINDS)})
    reason = required_text(reason)
    case = _case_for_update(session, case_no)
    _may_pause(session, actor, case)
    if case.status not in ("received", "in_progress"):
        raise Conflict("case {case_no} is {status}; only a running case is paused",
                       {"case_no": case_no, "status": case.status})
    at = now()
    record = Pause(case_id=case.id, kind=kind, reason=reason, started_at=at, started_by=actor.username)
    session.add(record)
    before = case.status
    case.status, case.updated_at = "paused", at
    sla.pause_clocks(session, case, at)
    session.flush()
    _audit(session, case, actor, "case.paused", before={"status": before},
           after={"status": "paused", "kind": kind, "reason": record.reason})
    return record


def resume(session: Session, case_no: str, actor: Actor) -> Pause:
    case = _case_for_update(session, case_no)
    _may_pause(session, actor, case)
    record = session.scalar(select(Pause).where(Pause.case_id == case.id, Pause.ended_at.is_(None)))
    if record is None or case.status != "paused":
        raise Conflict("case {case_no} is not paused", {"case_no": case_no})
    at = now()
    record.ended_at, record.ended_by = at, actor.username
    try:
        record.working_minutes = max(0, sla.working_calendar(session).elapsed_minutes(record.started_at, at))
    except sla.CalendarMissing:
        record.working_minutes = None
    sla.resume_clocks(session, case, at)
    if record.working_minutes:
        definition = definition_for(case.process_version)
        workflow = engine.load(case.state, definition)
        shift_timers(workflow, sla.working_calendar(session), record.working_minutes)
        case.state = engine.dump(workflow)
        case.next_timer_at = engine.next_timer_at(workflow)
    done = session.scalar(select(WorkItem.id).where(WorkItem.case_id == case.id, WorkItem.state == "completed"))
    case.status, case.updated_at = ("in_progress" if done else "received"), at
    session.flush()
    _audit(session, case, actor, "case.resumed", before={"status": "paused"},
           after={"status": case.status, "paused_working_minutes": record.working_minutes})
    return record


def _open_steps(session: Session, case: Case) -> list[str]:
    return sorted(session.scalars(select(WorkItem.step).where(
        WorkItem.case_id == case.id, WorkItem.state.in_(OPEN_STATES))))


def get_case(session: Session, case_no: str) -> Case:
    case = session.scalar(select(Case).where(Case.case_no == case_no))
    if case is None:
        raise NotFound("no case {case_no}", {"case_no": case_no})
    return case


def applicant_of(case: Case) -> dict[str, Any]:
    return {"type": case.applicant_type, "name": case.applicant_name, "id_no": case.applicant_id_no,
            "contact": case.applicant_contact}


def case_view(session: Session, case: Case) -> dict[str, Any]:
    items = session.scalars(select(WorkItem).where(WorkItem.case_id == case.id).order_by(WorkItem.id)).all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                             .order_by(AuditEvent.at, AuditEvent.id)).all()
    clocks = session.scalars(select(SlaClock).where(SlaClock.case_id == case.id).order_by(SlaClock.id)).all()
    pauses = session.scalars(select(Pause).where(Pause.case_id == case.id).order_by(Pause.id)).all()
    return {
        "case": case,
        "clocks": [sla.view(session, c) for c in clocks],
        "pauses": pauses,
        "open_items": [i for i in items if i.state in OPEN_STATES],
        "done_items": [i for i in items if i.state == "completed"],
        "history": events,
    }


@dataclass(frozen=True)
class WorkItemQuery:
    role: str | None = None
    department: str | None = None
    assignee: str | None = None
    state: str | None = None
    case_no: str | None = None
    limit: int = 50
    offset: int = 0


def list_work_items(session: Session, query: WorkItemQuery, actor: Actor) -> tuple[list[WorkItem], int]:
    department = query.department
    stmt = select(WorkItem)
    if not actor.sees_everything:
        if department is not None and department not in actor.departments:
            raise Forbidden("you see only your own departments' work items")
        stmt = stmt.where(WorkItem.department.in_(actor.departments))
    if query.state == "active":
        stmt = stmt.where(WorkItem.state.in_(OPEN_STATES))
    elif query.state:
        stmt = stmt.where(WorkItem.state == query.state)
    if query.role:
        stmt = stmt.where(WorkItem.role == query.role)
    if department:
        stmt = stmt.where(WorkItem.department == department)
    if not actor.sees_everything:  # steps that need a position show to those who hold it there
        from ..models import Membership, User
        held = session.execute(select(Membership.department, Membership.position)
                               .join(User, User.id == Membership.user_id)
                               .where(User.username == actor.username, Membership.position.is_not(None))).all()
        stmt = stmt.where(or_(WorkItem.position.is_(None),
                              *(and_(WorkItem.department == d, WorkItem.position == p) for d, p in held)))
    if query.assignee:
        stmt = stmt.where(WorkItem.assignee == query.assignee)
    if query.case_no:
        stmt = stmt.where(WorkItem.case_no == query.case_no)
    # counted up to a cap: a queue of 50,000 shows as "10000+" rather than costing a full count each page
    total = session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(WorkItem.id).limit(COUNT_CAP + 1).subquery())) or 0
    rows = session.scalars(stmt.order_by(WorkItem.created_at, WorkItem.id)
                           .limit(query.limit).offset(query.offset)).all()
    return list(rows), total


def get_work_item(session: Session, item_id: int, actor: Actor) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    if not actor.sees_everything and item.department not in actor.departments:
        raise Forbidden("work item {item_id} belongs to another department", {"item_id": item_id})
    return item
