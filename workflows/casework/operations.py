"""Approval work off the happy path: 退回 (return a step to an earlier one).

Like a completion, a return is worked out with no lock held (the engine's own reset, the budgets of what
opens again) and then written in a short transaction that checks the case's revision.

Semantics (docs/operations.md):
- the target is an earlier user step on the way to this one — the step before it by default, the
  window's 受理审查 with "window", or any earlier step a supervisor or admin picks (a step's BPMN
  `return_to` property limits what its own reviewers may pick);
- SpiffWorkflow's `reset_from_task_id` re-opens the target and removes what followed it: returning
  inside one branch of a parallel stage re-runs that branch only (its siblings keep their work and
  clocks); returning to a step before the split cancels the open sibling items (their submissions stay
  in the step records and the history) and the stage runs again after the target;
- the returned-to step gets a new work item, claimed by whoever completed it before if they still can
  (else open to the department), with the reason as its note; the clocks of the returning and cancelled
  items stop as "returned"; the case clock keeps running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from timers.clock import now, to_local

from ..administration import users
from ..definitions import engine
from ..definitions.forms import required_text
from ..definitions.processes import ProcessDefinition, definition_for
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..models import User, WorkItem
from ..oversight import sla
from .cases import (
    _ACTIVE_CLOCKS,
    _ITEMS_OF_STEP,
    _LOCK_CASE_OF_ITEM,
    _READ_CASE_OF_ITEM,
    OPEN_STATES,
    Actor,
    CaseChanged,
    _audit,
    _item_for_update,
    _settle,
    budgets_for,
    may_hold,
    prepared_write,
    run_engine,
    task_of,
    version_of,
)

WINDOW = "window"


@dataclass
class Target:
    step: str
    name: str
    task_id: str
    completed_by: str | None


def _earlier_steps(workflow, task, definition: ProcessDefinition) -> list:
    """The completed user steps on the way to `task`, nearest first: its ancestors, out of a stage's
    sub-process into the main process, and the steps inside the completed stages it came through."""
    found, seen = [], set()

    def take(candidate) -> None:
        spec = candidate.task_spec
        step = definition.steps.get(getattr(spec, "bpmn_id", None) or "")
        if step is not None and step.kind == "task" and candidate.state == TaskState.COMPLETED \
                and spec.bpmn_id not in seen:
            found.append(candidate)
            seen.add(spec.bpmn_id)

    current = task.parent
    while current is not None:
        take(current)
        stage = workflow.subprocesses.get(current.id) if current.state == TaskState.COMPLETED else None
        if stage is not None:  # a completed stage before this one: its steps, last finished first
            for inner in sorted(stage.get_tasks(state=TaskState.COMPLETED), key=lambda t: -t.last_state_change):
                take(inner)
        parent = current.parent
        if parent is None and current.workflow.parent_task_id is not None:  # out of a stage's sub-process
            parent = workflow.get_task_from_id(current.workflow.parent_task_id)
        current = parent
    return found


def targets(session: Session, item_id: int, actor: Actor) -> list[Target]:
    """Where this item may be returned to by this actor, nearest first."""
    row = session.execute(_READ_CASE_OF_ITEM, {"item_id": item_id}).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    case, item = row
    definition = definition_for(version_of(session, case))
    workflow = engine.load(case.state, definition)
    task = workflow.get_task_from_id(UUID(item.task_id))
    if task is None:
        return []
    return _allowed(session, case, item, actor, definition, _earlier_steps(workflow, task, definition))


def _allowed(session, case, item: WorkItem, actor: Actor, definition: ProcessDefinition, earlier: list
             ) -> list[Target]:
    limit = definition.steps[item.step].return_to
    chosen = [t for t in earlier if actor.role in ("admin", "supervisor") or not limit
              or t.task_spec.bpmn_id in limit]
    done = {i.task_id: i.completed_by for i in session.scalars(select(WorkItem).where(
        WorkItem.case_id == case.id, WorkItem.state == "completed"))}
    return [Target(t.task_spec.bpmn_id, definition.steps[t.task_spec.bpmn_id].name, str(t.id), done.get(str(t.id)))
            for t in chosen]


@dataclass
class PreparedReturn:
    item_id: int
    revision: int
    target: Target
    reason: str
    workflow: Any
    state: bytes
    ready: list
    budgets: dict[str, str | None]


def prepare_return(session: Session, item_id: int, actor: Actor, to: Any, reason: Any) -> PreparedReturn:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise InvalidInput("reason: say why the step goes back (at most 500 characters)",
                           fields={"reason": "required"})
    if to is not None and (not isinstance(to, str) or not to.strip() or len(to) > 100):
        raise InvalidInput("to: an earlier step, or \"window\"", fields={"to": "invalid"})
    row = session.execute(_READ_CASE_OF_ITEM, {"item_id": item_id}).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    case, item = row
    may_hold(actor, item)
    if item.state not in OPEN_STATES:
        raise Conflict("work item {item_id} is {state}; only an open step is returned",
                       {"item_id": item_id, "state": item.state})
    if case.status == "paused":
        raise Conflict("case {case_no} is paused; resume it before returning a step", {"case_no": case.case_no})
    definition = definition_for(version_of(session, case))
    workflow, task = task_of(case, item, definition, TaskState.READY, "ready")
    earlier = _earlier_steps(workflow, task, definition)
    allowed = _allowed(session, case, item, actor, definition, earlier)
    if not earlier:
        raise Conflict("step {step} has no earlier step to return to", {"step": item.step})
    if to is None:
        target = allowed[0] if allowed else None
    elif to == WINDOW:
        target = next((t for t in allowed if definition.steps[t.step].department == WINDOW), None)
    else:
        target = next((t for t in allowed if t.step == to), None)
    if target is None:
        names = "、".join(f"{t.step}（{t.name}）" for t in allowed) or "none"
        raise InvalidInput("to: step {step} may be returned to {names}",
                           {"step": item.step, "names": names}, fields={"to": "not allowed"})

    def reset():
        engine.reset_to(workflow, UUID(target.task_id))
        return workflow

    _, state = run_engine(sla.working_calendar(session), reset, f"back to step {target.step}")
    ready = engine.ready_user_tasks(workflow)
    return PreparedReturn(item_id, case.revision, target, reason.strip(), workflow, state, ready,
                          budgets_for(workflow, definition, ready))


def apply_return(session: Session, prepared: PreparedReturn, actor: Actor) -> WorkItem:
    """Write a prepared return; the new item of the returned-to step comes back."""
    row = session.execute(_LOCK_CASE_OF_ITEM.execution_options(populate_existing=True),
                          {"item_id": prepared.item_id}).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": prepared.item_id})
    case, _ = row
    if case.revision != prepared.revision:
        raise CaseChanged(case.case_no)
    items = session.scalars(_ITEMS_OF_STEP, {"case_id": case.id, "item_id": prepared.item_id}).all()
    item = next(i for i in items if i.id == prepared.item_id)
    may_hold(actor, item)
    clocks = list(session.scalars(_ACTIVE_CLOCKS, {"case_id": case.id}))
    definition = definition_for(version_of(session, case))
    at = now()
    before = {"status": case.status, "state": item.state, "assignee": item.assignee,
              "open_steps": sorted(i.step for i in items if i.state in OPEN_STATES)}
    target = prepared.target
    item.state, item.completed_at, item.completed_by = "returned", at, actor.username
    item.note = f"退回至「{target.name}」：{prepared.reason}"[:1000]
    sla.stop_clocks(session, case.id, task_ids={item.task_id}, cancelled="returned", clocks=clocks, at=at)
    others = [i for i in items if i.id != item.id]
    created = _settle(session, case, prepared.workflow, definition, at, ready=prepared.ready, open_items=others,
                      clocks=clocks, budgets=prepared.budgets, state=prepared.state, returned=prepared.reason)
    reopened = next((i for i in created if i.task_id == target.task_id), None)
    if reopened is None:
        raise Conflict("step {step} did not open again",
                       {"step": target.step})  # the engine disagrees: nothing is written
    reopened.note = f"被「{item.name}」退回：{prepared.reason}"[:1000]
    # back to whoever did it — or to their stand-in while they are away (代理)
    name, acting = users.assignee_for(session, target.completed_by, to_local(at).date())
    holder = session.scalar(select(User).where(User.username == name)) if name else None
    if holder is not None and holder.active and holder.role == reopened.role and \
            (holder.works_in(reopened.department) or reopened.role == "supervisor"):
        reopened.state, reopened.assignee, reopened.claimed_at = "claimed", holder.username, at
        if acting:
            reopened.note = f"{reopened.note}（{acting}）"[:1000]
    _audit(session, case, actor, "work_item.returned", step=item.step, item=item, before=before,
           after={"to": target.step, "to_name": target.name, "reason": prepared.reason,
                  "assignee": reopened.assignee,
                  "open_steps": sorted(t.task_spec.bpmn_id for t in prepared.ready)})
    return reopened


def return_to(db, item_id: int, actor: Actor, to: Any, reason: Any) -> WorkItem:
    """退回: evaluated with no lock held, then written with the case's revision checked."""
    return prepared_write(db, lambda s: prepare_return(s, item_id, actor, to, reason),
                          lambda s, p: apply_return(s, p, actor), f"work item {item_id}")


# --- 撤回 (拿回): whoever completed a step takes it back ---------------------------------------------

@dataclass
class PreparedWithdrawal:
    item_id: int
    revision: int
    step: str
    followers: list[int]
    workflow: Any
    state: bytes
    ready: list
    budgets: dict[str, str | None]


def prepare_withdrawal(session: Session, item_id: int, actor: Actor) -> PreparedWithdrawal:
    """Take back a completed step while no one has acted on what followed it: the items its completion
    opened are all still open and unclaimed."""
    row = session.execute(_READ_CASE_OF_ITEM, {"item_id": item_id}).first()
    if row is None:
        raise NotFound("no work item {item_id}", {"item_id": item_id})
    case, item = row
    if item.state != "completed":
        raise Conflict("work item {item_id} is {state}; only a completed step is taken back",
                       {"item_id": item_id, "state": item.state})
    if item.completed_by != actor.username and actor.role != "admin":
        raise Forbidden("only {completed_by}, who completed it, takes work item {item_id} back",
                        {"completed_by": item.completed_by, "item_id": item_id})
    if case.status not in ("received", "in_progress"):
        raise Conflict("case {case_no} is {status}; a step of it cannot be taken back",
                       {"case_no": case.case_no, "status": case.status})
    after = list(session.scalars(select(WorkItem).where(WorkItem.case_id == case.id,
                                                        WorkItem.created_at >= item.completed_at,
                                                        WorkItem.id != item.id)))
    acted = [i for i in after if i.state != "open"]
    if acted:
        first = acted[0]
        who = f" by {first.assignee or first.completed_by}" if (first.assignee or first.completed_by) else ""
        raise Conflict("step {name} that followed is already {state}{who}; it cannot be taken back",
                       {"name": first.name, "state": first.state, "who": who})
    definition = definition_for(version_of(session, case))
    workflow, task = task_of(case, item, definition, TaskState.COMPLETED, "a completed step")

    def reset():
        engine.reset_to(workflow, task.id)
        return workflow

    _, state = run_engine(sla.working_calendar(session), reset, f"back to step {item.step}")
    ready = engine.ready_user_tasks(workflow)
    still = {str(t.id) for t in ready}
    if any(i.task_id in still for i in after):  # the process went on past a join: not this step's alone
        raise Conflict("what followed step {step} does not depend on it alone; ask a supervisor to return it",
                       {"step": item.step})
    return PreparedWithdrawal(item_id, case.revision, item.step, [i.id for i in after], workflow, state, ready,
                              budgets_for(workflow, definition, ready))


def apply_withdrawal(session: Session, prepared: PreparedWithdrawal, actor: Actor) -> WorkItem:
    row = session.execute(_LOCK_CASE_OF_ITEM.execution_options(populate_existing=True),
                          {"item_id": prepared.item_id}).first()
    case, _ = row
    if case.revision != prepared.revision:
        raise CaseChanged(case.case_no)
    items = session.scalars(_ITEMS_OF_STEP, {"case_id": case.id, "item_id": prepared.item_id}).all()
    item = next(i for i in items if i.id == prepared.item_id)
    if any(i.state != "open" for i in items if i.id in prepared.followers):
        raise CaseChanged(case.case_no)  # someone took one up meanwhile: look again
    clocks = list(session.scalars(_ACTIVE_CLOCKS, {"case_id": case.id}))
    definition = definition_for(version_of(session, case))
    at = now()
    before = {"status": case.status, "open_steps": sorted(i.step for i in items if i.state in OPEN_STATES)}
    open_items = [i for i in items if i.state in OPEN_STATES]
    created = _settle(session, case, prepared.workflow, definition, at, ready=prepared.ready, open_items=open_items,
                      clocks=clocks, budgets=prepared.budgets, state=prepared.state,
                      returned=f"taken back by {actor.username}")
    again = next((i for i in created if i.task_id == item.task_id), None)
    if again is None:
        raise Conflict("step {step} did not open again", {"step": prepared.step})
    again.state, again.assignee, again.claimed_at = "claimed", item.completed_by, at
    again.note = f"已撤回，由 {actor.username} 重新办理"
    item.note = f"已被 {actor.username} 撤回"
    _audit(session, case, actor, "work_item.withdrawn", step=item.step, item=item, before=before,
           after={"step": item.step, "new_item": again.id, "cancelled": prepared.followers,
                  "open_steps": sorted(t.task_spec.bpmn_id for t in prepared.ready)})
    return again


def withdraw(db, item_id: int, actor: Actor) -> WorkItem:
    """撤回: the completed step is its completer's again; what it had opened is cancelled."""
    return prepared_write(db, lambda s: prepare_withdrawal(s, item_id, actor),
                          lambda s, p: apply_withdrawal(s, p, actor), f"work item {item_id}")


# --- 转办 and 催办: no engine run, one short transaction each ----------------------------------------

def _notice(session: Session, case, item: WorkItem, key: str, message: str, *, user: str | None = None,
            level: str = "notice") -> None:
    at = now()
    sla.record_alerts(session, [dict(
        dedupe_key=key[:100], level=level, case_id=case.id, case_no=case.case_no, step=item.step,
        department=item.department, assignee=user, created_at=at, at=at, message=message[:500],
        concerned=[f"user:{user}"] if user else [f"department:{item.department}"])])


def transfer(session: Session, item_id: int, actor: Actor, to: Any, reason: Any) -> WorkItem:
    """转办: the holder hands the item to a named colleague of the same department and role, with a
    reason; both hear of it (an alert each), and the history says who, to whom and why."""
    reason = required_text(reason)
    item, case = _item_for_update(session, item_id)
    may_hold(actor, item)
    if item.state not in OPEN_STATES:
        raise Conflict("work item {item_id} is {state}", {"item_id": item_id, "state": item.state})
    colleague = users.colleague(session, to, item.role, None if item.role == "supervisor" else item.department)
    if colleague is None:
        raise InvalidInput("to: '{to}' is not an active {role} of the {department} department",
                           {"to": to, "role": item.role, "department": item.department},
                           fields={"to": "not a colleague"})
    if colleague.username == item.assignee:
        raise Conflict("work item {item_id} is with {username} already",
                       {"item_id": item_id, "username": colleague.username})
    before = {"state": item.state, "assignee": item.assignee}
    at = now()
    name, acting = users.assignee_for(session, colleague.username, to_local(at).date())
    colleague = session.scalar(select(User).where(User.username == name))  # their stand-in while away
    item.state, item.assignee, item.claimed_at = "claimed", colleague.username, at
    item.note = f"{actor.username} 转办：{reason}" + (f"（{acting}）" if acting else "")
    _notice(session, case, item, f"item:{item.id}:transfer:{at.timestamp()}:{colleague.username}",
            f"转办：{case.case_no}「{item.name}」由 {actor.username} 转给您办理（{reason}）",
            user=colleague.username)
    if before["assignee"] and before["assignee"] != actor.username:
        _notice(session, case, item, f"item:{item.id}:transfer:{at.timestamp()}:{before['assignee']}",
                f"转办：{case.case_no}「{item.name}」已由 {actor.username} 转给 {colleague.username}",
                user=before["assignee"])
    _audit(session, case, actor, "work_item.transferred", step=item.step, item=item, before=before,
           after={"state": "claimed", "assignee": colleague.username, "reason": reason})
    return item


def urge(session: Session, item_id: int, actor: Actor, message: Any) -> WorkItem:
    """催办: the window or a supervisor urges an open item; its holder (or its department's queue) is told,
    and the item counts it (shown on the item, the worklist and the board)."""
    if actor.role not in ("clerk", "supervisor", "admin"):
        raise Forbidden("the window or a supervisor urges a step")
    text = (message or "").strip() if isinstance(message, str) else ""
    if len(text) > 500:
        raise InvalidInput("message: at most 500 characters", fields={"message": "too long"})
    item, case = _item_for_update(session, item_id)
    if item.state not in OPEN_STATES:
        raise Conflict("work item {item_id} is {state}; only an open step is urged",
                       {"item_id": item_id, "state": item.state})
    item.urged = (item.urged or 0) + 1
    at = now()
    _notice(session, case, item, f"item:{item.id}:urge:{item.urged}",
            f"催办（第 {item.urged} 次）：{case.case_no}「{item.name}」" + (f"：{text}" if text else ""),
            user=item.assignee, level="urge")
    _audit(session, case, actor, "work_item.urged", step=item.step, item=item, before={"urged": item.urged - 1},
           after={"urged": item.urged, "message": text, "at": at.isoformat()})
    return item


# --- 委派: the holder asks a colleague to do it, and confirms what comes back ------------------------

def delegate(session: Session, item_id: int, actor: Actor, to: Any) -> WorkItem:
    """委派: the holder asks a colleague of the department to do the step; when the colleague submits, it
    comes back to the holder to confirm (complete) or to delegate again."""
    item, case = _item_for_update(session, item_id)
    if item.state != "claimed" or (item.assignee != actor.username and item.delegated_by != actor.username):
        raise Conflict("work item {item_id}: the holder delegates a step they have claimed", {"item_id": item_id})
    colleague = users.colleague(session, to, item.role, item.department)
    if colleague is None or colleague.username == actor.username:
        raise InvalidInput("to: '{to}' is not an active colleague of the {department} department",
                           {"to": to, "department": item.department},
                           fields={"to": "not a colleague"})
    holder = item.delegated_by or actor.username
    before = {"assignee": item.assignee, "delegated_by": item.delegated_by}
    item.assignee, item.delegated_by = colleague.username, holder
    item.note = f"委派：{holder} 请 {colleague.username} 办理，办理后由 {holder} 确认"
    _notice(session, case, item, f"item:{item.id}:delegate:{now().timestamp()}",
            f"委派：{case.case_no}「{item.name}」由 {holder} 请您办理", user=colleague.username)
    _audit(session, case, actor, "work_item.delegated", step=item.step, item=item, before=before,
           after={"assignee": colleague.username, "delegated_by": holder})
    return item


def hand_back(session: Session, item_id: int, actor: Actor, data: Any) -> WorkItem:
    """The colleague's submission on a delegated step: kept as a draft on the item, back to its holder."""
    from ..definitions.forms import validate

    item, case = _item_for_update(session, item_id)
    if item.state != "claimed" or item.assignee != actor.username or not item.delegated_by:
        raise Conflict("work item {item_id} is not delegated to {username}",
                       {"item_id": item_id, "username": actor.username})
    definition = definition_for(version_of(session, case))
    clean = validate(list(definition.steps[item.step].fields), data, f"step {item.step}")
    holder = item.delegated_by
    item.data, item.assignee, item.delegated_by = clean, holder, None
    item.note = f"{actor.username} 已按委派办理，待 {holder} 确认（可直接办结或再次委派）"
    _notice(session, case, item, f"item:{item.id}:handback:{now().timestamp()}",
            f"委派已办理：{case.case_no}「{item.name}」（{actor.username}），请确认", user=holder)
    _audit(session, case, actor, "work_item.delegate_done", step=item.step, item=item,
           after={"draft": clean, "back_to": holder})
    return item
