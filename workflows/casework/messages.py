"""Messages and signals from outside a case: a payment system saying the fee is paid, another body's reply,
a hall-wide signal. A BPMN message or signal catch event (intermediate, boundary, receive task, a message start
of an event sub-process or of the process) makes the case wait; `deliver()` hands it what it waits for.

The case is evaluated with no lock held, then written in a short transaction with the revision check, like a
step or a timer. The message's data join the case data, checked first: plain names, plain values, bounded.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from sqlalchemy import select
from sqlalchemy.orm import Session

from timers.clock import now

from ..definitions import engine
from ..errors import Conflict, Forbidden, InvalidInput, Msg, NotFound
from ..models import Case
from ..oversight import sla
from .cases import (
    Actor,
    PreparedTimer,
    _audit,
    _open_steps,
    _settle,
    budgets_for,
    definition_for,
    lock_prepared,
    prepared_write,
    run_engine,
    version_of,
)

KINDS = {"message": MessageEventDefinition, "signal": SignalEventDefinition}
WORDS = {"message": Msg("message"), "signal": Msg("signal")}
MAX_DATA_BYTES = 20_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
WHO = ("admin", "supervisor")


@dataclass(frozen=True)
class Waiting:
    """One thing a case waits for from outside."""
    kind: str  # message | signal
    name: str | None  # the message's or signal's name (None: the file left it unnamed)
    element: str  # the catching element's id
    element_name: str | None
    carries: tuple[str, ...] = ()  # the values its data must hold: what the process matches the message by


def waiting(workflow) -> list[Waiting]:
    """What the case waits for: each message or signal catch event that is waiting now."""
    out = []
    for task in workflow.event_manager.tasks.values():
        for definition in _definitions(task):
            kind = next((k for k, cls in KINDS.items() if isinstance(definition, cls)), None)
            if kind is not None:
                out.append(Waiting(kind, definition.name, task.task_spec.bpmn_id, task.task_spec.bpmn_name,
                                   _carries(definition)))
    return sorted(out, key=lambda w: (w.kind, w.name or "", w.element))


def _definitions(task) -> list:
    """What a waiting task waits for: its event, or each of an event-based gateway's events."""
    definition = task.task_spec.event_definition
    return list(definition.event_definitions) if isinstance(definition, MultipleEventDefinition) else [definition]


def _carries(definition) -> tuple[str, ...]:
    """The names a message's correlation expressions read from its data."""
    names: set[str] = set()
    for prop in getattr(definition, "correlation_properties", None) or []:
        try:
            tree = ast.parse(prop.retrieval_expression or "", mode="eval")
        except SyntaxError:
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return tuple(sorted(names))


def waiting_for(session: Session, case: Case) -> list[Waiting]:
    if case.status not in ("received", "in_progress"):
        return []
    return waiting(engine.load(case.state, definition_for(version_of(session, case))))


def _checked_request(kind: Any, name: Any, data: Any, actor: Actor) -> dict[str, Any]:
    """Who asks, what for, and the data it carries, checked once: the data as they will join the case."""
    if actor.role not in WHO:
        raise Forbidden("only a supervisor or an admin hands a case a message or a signal")
    if kind not in KINDS:
        raise InvalidInput("kind: message or signal", fields={"kind": "invalid"})
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("name: the message's or signal's name, or the id of the event that waits for it",
                           fields={"name": "required"})
    return _checked_data(data)


def _checked_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput("data: must be an object of named values", fields={"data": "invalid"})
    for key in data:
        if not isinstance(key, str) or not _NAME.match(key):
            raise InvalidInput("data: {key} is not a plain name (letters, digits, _)", {"key": str(key)[:40]},
                               fields={"data": "invalid"})
    try:
        size = len(json.dumps(data, ensure_ascii=False))
    except (TypeError, ValueError):
        raise InvalidInput("data: only plain values (text, numbers, true/false, lists, objects)",
                           fields={"data": "invalid"}) from None
    if size > MAX_DATA_BYTES:
        raise InvalidInput("data: at most {limit} bytes", {"limit": MAX_DATA_BYTES}, fields={"data": "too long"})
    return data


def prepare(session: Session, case_no: str, kind: str, name: str, payload: dict[str, Any],
            actor: Actor) -> PreparedTimer:
    """Deliver in memory (scripts run here, with no lock held); the request as `_checked_request()` left it."""
    case = session.scalar(select(Case).where(Case.case_no == case_no))
    if case is None:
        raise NotFound("case {case_no} not found", {"case_no": case_no})
    if case.status == "paused":
        raise Conflict("case {case_no} is paused; resume it before recording what came", {"case_no": case_no})
    if case.status not in ("received", "in_progress"):
        raise Conflict("case {case_no} is {status}; it waits for nothing", {"case_no": case_no,
                                                                          "status": case.status})
    definition = definition_for(version_of(session, case))
    workflow = engine.load(case.state, definition)
    name = name.strip()
    tasks = [(t, d) for t in workflow.event_manager.tasks.values() for d in _definitions(t)
             if isinstance(d, KINDS[kind]) and name in (d.name, t.task_spec.bpmn_id)]
    if not tasks:
        expected = "、".join(w.name or w.element for w in waiting(workflow) if w.kind == kind) or "—"
        raise Conflict("case {case_no} waits for no {kind} called {name} (it waits for: {expected})",
                       {"case_no": case_no, "kind": WORDS[kind], "name": name, "expected": expected})
    if kind == "message":
        tasks = tasks[:1]  # a message is caught once; a signal by everything that waits for it

    def catch():
        for task, definition in tasks:
            event = BpmnEvent(definition, payload=dict(payload))
            try:
                task.task_spec.catch(task, event)
            except (NameError, KeyError) as exc:  # the process correlates the message by a value it lacks
                missing = getattr(exc, "name", None) or (exc.args[0] if exc.args else "?")
                raise InvalidInput("data: the {kind} must carry {missing}, which the process matches it by",
                                   {"kind": WORDS[kind], "missing": missing}, fields={"data": "invalid"}) from None
            task.task_spec._update(task)
        return workflow

    _, state = run_engine(sla.working_calendar(session), catch, f"on the {kind} {name}")
    # what the history calls it: the waiting event's name in the diagram ("缴费到账"), else the message's
    label = tasks[0][0].task_spec.bpmn_name or tasks[0][1].name or name
    return PreparedTimer(case.id, case.case_no, case.revision, now(), workflow, state,
                         budgets_for(workflow, definition, engine.ready_user_tasks(workflow)), label)


def apply(session: Session, prepared: PreparedTimer, actor: Actor, kind: str, name: str,
          payload: dict[str, Any]) -> Case:
    case = lock_prepared(session, prepared)
    definition = definition_for(version_of(session, case))
    before = {"status": case.status, "open_steps": _open_steps(session, case)}
    _settle(session, case, prepared.workflow, definition, prepared.at, budgets=prepared.budgets,
            state=prepared.state)
    if payload:
        case.data = {**case.data, **payload}
    _audit(session, case, actor, f"{kind}.received", before=before,
           after={"status": case.status, "open_steps": _open_steps(session, case),
                  "name": prepared.label or name.strip()})
    return case


def deliver(db, case_no: str, kind: str, name: str, data: Any, actor: Actor) -> Case:
    """Hand the case a message or a signal it waits for; the case goes on from there."""
    payload = _checked_request(kind, name, data, actor)  # once, however often the case is evaluated again
    return prepared_write(db, lambda session: prepare(session, case_no, kind, name, payload, actor),
                          lambda session, prepared: apply(session, prepared, actor, kind, name, payload),
                          f"case {case_no}")
