"""SpiffWorkflow, as the cases use it: create, load, save and step a workflow.

The serialized state kept with a case leaves out the process spec: the spec is stored once per
process version and its parsed form is cached, so a case row holds only its own tasks and data
(compressed). The script engine is not serialized; it is attached on every load. A serializer is
not thread-safe, so each thread has its own.
"""

from __future__ import annotations

import json
import threading
import zlib
from copy import deepcopy
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.none_task import NoneTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .processes import ProcessDefinition
from .scripting import make_script_engine
from .timer_events import ClockTimeDateTimer, WorkingCycleTimer, WorkingDurationTimer, timer_due_instants

STATE_FORMAT = b"OW1"  # prefix of the stored state: zlib-compressed JSON without specs


class _SharedSpecWorkflowConverter(BpmnWorkflowConverter):
    """Serialize a workflow without its specs; restore it around the cached, shared spec objects."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], definition: ProcessDefinition | None = None) -> BpmnWorkflow:
        if definition is None:
            raise ValueError("a workflow is restored with its process definition")
        workflow = self.target_class(definition.spec, definition.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_CONFIG = deepcopy(DEFAULT_CONFIG)
_CONFIG[BpmnWorkflow] = _SharedSpecWorkflowConverter
# the working-time timers are saved the way the engine saves its own (an event-based gateway keeps the events
# it saw, timers among them, in the state)
for _ours, _theirs in ((WorkingDurationTimer, DurationTimerEventDefinition),
                       (ClockTimeDateTimer, TimeDateEventDefinition), (WorkingCycleTimer, CycleTimerEventDefinition)):
    _CONFIG[_ours] = _CONFIG[_theirs]
_local = threading.local()


def _serializer() -> BpmnWorkflowSerializer:
    serializer = getattr(_local, "serializer", None)
    if serializer is None:
        serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_CONFIG))
        _local.serializer = serializer
    return serializer


def _script_engine():
    engine = getattr(_local, "script_engine", None)
    if engine is None:
        engine = _local.script_engine = make_script_engine()
    return engine


INITIATOR = "initiator"  # in the workflow's own data (not the case data): who started the case


class UnsavableData(ValueError):
    """A script left a value in the task data that the case's state cannot hold (JSON)."""


def new_workflow(definition: ProcessDefinition, data: dict[str, Any], initiator: str | None = None) -> BpmnWorkflow:
    """A new case's engine state. Who started it is kept with the workflow (for spiff-arena's
    get_process_initiator_user()) and, where the start event names a variable for it (Camunda's, Flowable's
    and Activiti's `initiator` attribute), in that variable."""
    workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs, script_engine=_script_engine())
    workflow.data[INITIATOR] = initiator
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(deepcopy(data))
        if definition.initiator_variable and initiator is not None:
            task.data[definition.initiator_variable] = initiator
    advance(workflow)
    return workflow


def advance(workflow: BpmnWorkflow) -> None:
    """Run the engine as far as it goes. A plain `bpmn:task` has nothing for anyone to do: it is run
    like an engine step (a `manualTask` is a step of the hall, like a user task)."""
    workflow.do_engine_steps()
    while idle := [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                   if isinstance(t.task_spec, NoneTask)]:
        for task in idle:
            task.run()
        workflow.do_engine_steps()


def reset_to(workflow: BpmnWorkflow, task_id: UUID) -> None:
    """The engine's own reset (a 退回): the task is ready again and what followed it is gone. Waiting
    events (timers) of the removed branch are dropped from the event manager too — SpiffWorkflow 3.2
    leaves them registered, and the next timer refresh would then touch a task without a parent."""
    workflow.reset_from_task_id(task_id)
    alive = set(workflow.tasks)
    for subprocess in workflow.subprocesses.values():
        alive |= set(subprocess.tasks)
    for waiting_id in [t for t in workflow.event_manager.tasks if t not in alive]:
        workflow.event_manager.tasks.pop(waiting_id, None)


def dump(workflow: BpmnWorkflow) -> bytes:
    serializer = _serializer()
    serializer.registry._encoder_mode = True
    try:
        dct = serializer.to_dict(workflow)
        dct[serializer.VERSION_KEY] = serializer.VERSION
        try:
            text = json.dumps(dct, cls=serializer._encoder_cls, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            raise _unsavable(workflow, serializer) from None
    finally:
        serializer.registry._encoder_mode = False
    return STATE_FORMAT + zlib.compress(text.encode("utf-8"), 6)


def _unsavable(workflow: BpmnWorkflow, serializer) -> UnsavableData:
    """Name the variable (and the step that left it) that cannot be saved."""
    for task in workflow.get_tasks():
        for key, value in task.data.items():
            try:
                json.dumps(serializer.registry.convert(value), cls=serializer._encoder_cls)
            except (TypeError, ValueError, RecursionError):
                where = task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name
                return UnsavableData(f"variable {key!r} set at {where!r} holds a {type(value).__name__}, "
                                     "which a case cannot keep (use numbers, text, lists and dicts)")
    return UnsavableData("the process data holds a value a case cannot keep")


def load(state: bytes, definition: ProcessDefinition) -> BpmnWorkflow:
    if not state.startswith(STATE_FORMAT):
        raise ValueError("unknown workflow state format")
    serializer = _serializer()
    dct = json.loads(zlib.decompress(state[len(STATE_FORMAT):]), cls=serializer.json_decoder_cls)
    serializer.migrate(dct)
    workflow = serializer.from_dict(dct, definition=definition)
    workflow.script_engine = _script_engine()
    return workflow


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if not isinstance(t.task_spec, NoneTask)]


def running_stages(workflow: BpmnWorkflow, definition: ProcessDefinition) -> list[Task]:
    """Sub-process tasks with a budget that have started and not finished (the stages)."""
    stages = [bpmn_id for bpmn_id, step in definition.steps.items() if step.kind == "stage"]
    if not stages:
        return []
    return [t for t in workflow.get_tasks(state=TaskState.STARTED) if t.task_spec.bpmn_id in stages]


def finished_outcome(workflow: BpmnWorkflow, definition: ProcessDefinition) -> str | None:
    """The outcome property of the end event the top-level process finished on."""
    if not workflow.completed:
        return None
    for task in workflow.get_tasks(state=TaskState.COMPLETED):
        if task.workflow is workflow and task.task_spec.bpmn_id in definition.outcomes:
            return definition.outcomes[task.task_spec.bpmn_id]
    return "completed"


def next_timer_at(workflow: BpmnWorkflow):
    """The earliest instant a waiting BPMN timer of the workflow falls due (None when none waits)."""
    instants = timer_due_instants(workflow)
    return min(instants) if instants else None
