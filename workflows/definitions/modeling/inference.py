"""Fields a file's process reads but no form declares.

Files from other engines often decide on a variable that an external form (a `formKey`) sets: the flows out
of "Request approved?" test `vacationApproved == 'Approve'` and `== 'Reject'`. Such a form cannot be shown
here, so the variable would never be set. Where the flows compare an undeclared variable with literals, the
step just before the gateway (or the start form, when the gateway follows the start) asks for it: a choice of
those literals, a tick box for a flag, a number for a comparison with numbers. Each such field is a warning
at deploy, so the designer can declare it properly.

The same holds for what scripts, timers and multi-instance steps read: a variable a script reads that no form,
no script and no decision sets (a number when the script computes with it, text otherwise), a timer date
(`${timerDate}`), a multi-instance step's list (the departments or staff who each get an item), and the value
each instance of a multi-instance step returns — asked where the case last passes through a person before it
is needed. A script that calls a function OneWindow's scripts do not have is refused, naming it.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from collections.abc import Iterable

from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.manual_task import ManualTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask

from ...errors import InvalidProcess, Msg
from ..forms import Field
from . import wording

FIELD_KINDS = {"string": Msg("text"), "number": Msg("number"), "boolean": Msg("tick box"), "date": Msg("date"),
               "list": Msg("list of names"), "choice": Msg("choice")}


def _uses(condition: str) -> dict[str, set]:
    """variable → the literals it is compared with (True stands for a bare flag, 0 for a number)."""
    try:
        tree = ast.parse(condition, mode="eval")
    except SyntaxError:
        return {}
    found: dict[str, set] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and len(node.comparators) == 1:
            other = node.comparators[0]
            if isinstance(other, ast.Constant) and isinstance(node.ops[0], ast.Eq | ast.NotEq):
                found.setdefault(node.left.id, set()).add(other.value)
            elif isinstance(other, ast.Constant) and isinstance(other.value, int | float):
                found.setdefault(node.left.id, set()).add(0.5)  # an order comparison: a number
        elif isinstance(node, ast.BoolOp | ast.UnaryOp):
            for operand in (node.values if isinstance(node, ast.BoolOp) else [node.operand]):
                if isinstance(operand, ast.Name):
                    found.setdefault(operand.id, set()).add(True)
    if isinstance(tree.body, ast.Name):
        found.setdefault(tree.body.id, set()).add(True)
    return found


def _field_for(name: str, literals: set) -> Field | None:
    if literals and all(isinstance(v, str) for v in literals):
        options = tuple(sorted(literals))
        return Field(name, "choice", True, options, name, options)
    if literals and all(isinstance(v, bool) or v is None for v in literals):
        return Field(name, "boolean", False, (), name)
    if literals and all(isinstance(v, int | float) and not isinstance(v, bool) for v in literals):
        return Field(name, "number", True, (), name)
    return None


def _before(task_spec, through_all: bool = False) -> list:
    """The user tasks (or the start event) whose completion leads straight to this gateway (or, with
    `through_all`, the last ones the case passes through on its way to this element)."""
    out, queue, seen = [], list(task_spec.inputs), set()
    while queue:
        spec = queue.pop()
        if spec.name in seen:
            continue
        seen.add(spec.name)
        if isinstance(spec, UserTask | ManualTask | StartEvent):
            out.append(spec)
        elif through_all or type(spec).__name__.endswith("Gateway") or spec.name.endswith("__split"):
            queue.extend(spec.inputs)  # through an implicit or a plain gateway
    return out


_METHODS = {"get", "items", "keys", "values", "append", "extend", "pop", "upper", "lower", "strip", "split",
            "join", "replace", "startswith", "endswith", "format", "count", "index", "update", "setdefault",
            "isoformat", "copy", "insert", "remove", "sort", "title", "zfill", "find"}


def _provided() -> set[str]:
    from ..scripting import GUARDS, HELPERS

    return set(GUARDS["__builtins__"]) | set(HELPERS) | {"done", "instances", "True", "False", "None",
                                                          "nrOfInstances", "nrOfCompletedInstances",
                                                          "nrOfActiveInstances"}


@dataclasses.dataclass(frozen=True)
class _Reads:
    """What one piece of code reads and sets (kept once per text: read, never changed)."""
    reads: dict[str, str] = dataclasses.field(default_factory=dict)  # name → field type
    sets: set[str] = dataclasses.field(default_factory=set)
    objects: set[str] = dataclasses.field(default_factory=set)  # names used as another engine's objects
    calls: set[str] = dataclasses.field(default_factory=set)


@functools.lru_cache(maxsize=1024)  # each script is read twice at deploy: for what it sets, for what it reads
def _code(text: str, mode: str) -> _Reads:
    out = _Reads()
    try:
        tree = ast.parse(text, mode=mode)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            out.sets.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            out.sets.add(node.name)
        elif isinstance(node, ast.arg):
            out.sets.add(node.arg)
    numeric = {side.id for node in ast.walk(tree) if isinstance(node, ast.BinOp)
               for side in (node.left, node.right) if isinstance(side, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            out.calls.add(node.func.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr not in _METHODS:
            out.objects.add(node.value.id)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in out.sets:
            out.reads.setdefault(node.id, "number" if node.id in numeric else "string")
    return out


def _label(name: str, task_spec) -> str:
    from .rewrite import route_variable

    if name == route_variable(task_spec.bpmn_id):
        return " ".join((task_spec.bpmn_name or "").split()) or "去向"
    return name


def _put(field: Field, sources: list, _spec, _main_spec, steps: dict, start_fields: tuple[Field, ...]
         ) -> tuple[Msg | None, tuple[Field, ...]]:
    """Ask for the field in the first of `sources` that can; where it went (None: nowhere)."""
    for source in sources:
        if isinstance(source, StartEvent):  # a sub-process's start too: asked at intake
            return Msg("the start form"), (*start_fields, field)
        if source.bpmn_id in steps:
            step = steps[source.bpmn_id]
            steps[source.bpmn_id] = dataclasses.replace(step, fields=(*step.fields, field))
            return wording.named(source.bpmn_id, source.bpmn_name, "userTask"), start_fields
    return None, start_fields


def _scripts_of(task_spec) -> list[str]:
    texts = [getattr(task_spec, "script", None), getattr(task_spec, "prescript", None),
             getattr(task_spec, "postscript", None)]
    return [t for t in texts if isinstance(t, str) and t.strip()]


def _dmn_outputs(task_spec) -> set[str]:
    engine = getattr(task_spec, "dmnEngine", None)
    table = getattr(engine, "decision_table", None)
    return {o.name for o in getattr(table, "outputs", None) or [] if getattr(o, "name", None)}


def _refused(task_spec, problem: Msg) -> InvalidProcess:
    return InvalidProcess("{where}: {problem}", {"where": _where(task_spec), "problem": problem},
                          element=task_spec.bpmn_id)


def _where(task_spec) -> Msg:
    return wording.of_spec(task_spec)


def infer(specs: Iterable, steps: dict, start_fields: tuple[Field, ...], main_spec
          ) -> tuple[dict, tuple[Field, ...], list[str]]:
    specs = list(specs)
    declared = {f.name for f in start_fields} | {f.name for s in steps.values() for f in s.fields}
    provided = _provided()
    warnings: list[str] = []
    # everything set anywhere: scripts, multi-instance items, decisions
    for spec in specs:
        for task_spec in spec.task_specs.values():
            for text in _scripts_of(task_spec):
                declared |= _code(text, "exec").sets
            for attribute in ("input_item", "output_item", "data_output"):
                ref = getattr(task_spec, attribute, None)
                if getattr(ref, "bpmn_id", None):
                    declared.add(ref.bpmn_id)
            declared |= _dmn_outputs(task_spec)
    for spec in specs:
        for task_spec in spec.task_specs.values():
            conditions = [getattr(c, "args", [None])[0] for c, _t in getattr(task_spec, "cond_task_specs", None) or []
                          if c is not None]
            uses: dict[str, set] = {}
            for condition in conditions:
                if isinstance(condition, str):
                    for name, values in _uses(condition).items():
                        uses.setdefault(name, set()).update(values)
            for name, literals in uses.items():
                if name in declared or name in provided:
                    continue
                field = _field_for(name, literals)
                if field is None:
                    continue
                field = dataclasses.replace(field, label=_label(name, task_spec))
                sources = _before(task_spec) or _before(task_spec, through_all=True)
                where, start_fields = _put(field, sources, spec, main_spec, steps, start_fields)
                if where is None:
                    continue
                declared.add(name)
                warnings.append(Msg("{where} decides on '{name}', which no form declares; {asker} asks for it "
                                    "({kind})", {"where": _where(task_spec), "name": name, "asker": where,
                                                 "kind": FIELD_KINDS.get(field.type, field.type) if not field.options
                                                 else " / ".join(field.options)}))
            # what scripts, timers and multi-instance steps read
            wanted: dict[str, tuple[str, Msg]] = {}  # name → (type, what reads it)
            for text in _scripts_of(task_spec):
                code = _code(text, "exec")
                unknown = sorted(code.calls - code.sets - declared - provided)
                if unknown:
                    raise _refused(task_spec, Msg("the script calls {name}(), which OneWindow's scripts do not have; "
                                                  "compute the value in the script itself or ask for it in a form",
                                                  {"name": unknown[0]}))
                objects = sorted(code.objects - code.sets - declared - provided)
                if objects:
                    raise _refused(task_spec, Msg("the script uses '{name}', an object of the engine the file was "
                                                  "made for, which OneWindow's scripts do not have; compute the value "
                                                  "in the script itself or ask for it in a form", {"name": objects[0]}))
                for name, kind in code.reads.items():
                    wanted.setdefault(name, (kind, Msg("script")))
            definition = getattr(task_spec, "event_definition", None)
            if type(definition).__name__ in ("ClockTimeDateTimer", "TimeDateEventDefinition") and \
                    isinstance(getattr(definition, "expression", None), str):
                for name in _code(definition.expression, "eval").reads:
                    wanted.setdefault(name, ("date", Msg("timer")))
            elif type(definition).__name__ == "ConditionalEventDefinition" and \
                    isinstance(getattr(definition, "expression", None), str):
                for name, kind in _code(definition.expression, "eval").reads.items():
                    wanted.setdefault(name, (kind, Msg("condition")))
            elif isinstance(getattr(definition, "expression", None), str) and "Timer" not in type(definition).__name__:
                for name, kind in _code(definition.expression, "eval").reads.items():  # an event's payload
                    wanted.setdefault(name, (kind, Msg("event")))
            completion = getattr(task_spec, "condition", None) if hasattr(task_spec, "data_output") else None
            if isinstance(completion, str):  # a multi-instance step's completion condition: read as it finishes
                unknown = sorted(set(_code(completion, "eval").reads) - declared - provided)
                if unknown:
                    raise _refused(task_spec, Msg("the completion condition reads '{name}', which nothing in the "
                                                  "process sets; use the instances' output, done, instances or "
                                                  "nrOfCompletedInstances", {"name": unknown[0]}))
            collection = getattr(getattr(task_spec, "data_input", None), "bpmn_id", None)
            if collection:
                wanted.setdefault(collection, ("list", Msg("multi-instance list")))
            for name, (kind, what) in wanted.items():
                if name in declared or name in provided:
                    continue
                label = {"list": "会签人员或部门"}.get(kind, name)
                field = Field(name, kind, kind in ("list", "date", "number"), (), label)
                where, start_fields = _put(field, _before(task_spec, through_all=True), spec, main_spec, steps,
                                           start_fields)
                if where is None:
                    continue
                declared.add(name)
                warnings.append(Msg("{where}: its {what} reads '{name}', which no form declares; {asker} asks for "
                                    "it ({kind})", {"where": _where(task_spec), "what": what, "name": name,
                                                    "asker": where, "kind": FIELD_KINDS.get(kind, kind)}))
            output = getattr(getattr(task_spec, "output_item", None), "bpmn_id", None)
            child = getattr(task_spec, "task_spec", None)
            step = steps.get(task_spec.bpmn_id)
            if output and isinstance(child, str) and step is None and child in spec.task_specs:
                inner = spec.task_specs[child]
                produced = set().union(*(_code(t, "exec").sets for t in _scripts_of(inner)), _dmn_outputs(inner))
                if output not in produced and not getattr(inner, "spec", None):  # a called process may set it
                    raise _refused(task_spec, Msg("each instance must return '{name}', which nothing in it sets; set "
                                                  "it in the task's script, or make the task a step a person works",
                                                  {"name": output}))
            if output and isinstance(child, str) and step is not None and \
                    not any(f.name == output for f in step.fields):
                returned = Field(output, "string", True, (), output)
                steps[task_spec.bpmn_id] = dataclasses.replace(step, fields=(*step.fields, returned))
                warnings.append(Msg("{where}: each instance returns '{name}', which its form does not declare; the "
                                    "step asks for it", {"where": _where(task_spec), "name": output}))
    return steps, start_fields, warnings
