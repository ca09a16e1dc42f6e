"""Fields a file's gateways need but no form declares.

Files from other engines often decide on a variable that an external form (a `formKey`) sets: the flows out
of "Request approved?" test `vacationApproved == 'Approve'` and `== 'Reject'`. Such a form cannot be shown
here, so the variable would never be set. Where the flows compare an undeclared variable with literals, the
step just before the gateway (or the start form, when the gateway follows the start) asks for it: a choice of
those literals, a tick box for a flag, a number for a comparison with numbers. Each such field is a warning
at deploy, so the designer can declare it properly.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable

from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.manual_task import ManualTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask

from ..forms import Field


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


def _before(task_spec) -> list:
    """The user tasks (or the start event) whose completion leads straight to this gateway."""
    out, queue, seen = [], list(task_spec.inputs), set()
    while queue:
        spec = queue.pop()
        if spec.name in seen:
            continue
        seen.add(spec.name)
        if isinstance(spec, UserTask | ManualTask | StartEvent):
            out.append(spec)
        elif type(spec).__name__.endswith("Gateway") or spec.name.endswith("__split"):
            queue.extend(spec.inputs)  # through an implicit or a plain gateway
    return out


def infer(specs: Iterable, steps: dict, start_fields: tuple[Field, ...], main_spec
          ) -> tuple[dict, tuple[Field, ...], list[str]]:
    declared = {f.name for f in start_fields} | {f.name for s in steps.values() for f in s.fields}
    warnings: list[str] = []
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
                if name in declared or name in ("True", "False", "None"):
                    continue
                field = _field_for(name, literals)
                if field is None:
                    continue
                for source in _before(task_spec):
                    if isinstance(source, StartEvent) and spec is main_spec:
                        start_fields = (*start_fields, field)
                        where = "the start form"
                    elif source.bpmn_id in steps:
                        step = steps[source.bpmn_id]
                        steps[source.bpmn_id] = dataclasses.replace(step, fields=(*step.fields, field))
                        where = f"the step '{source.bpmn_id}'"
                    else:
                        continue
                    declared.add(name)
                    warnings.append(f"gateway '{task_spec.bpmn_id}' decides on '{name}', which no form declares; "
                                    f"{where} asks for it ({field.type}" +
                                    (f": {', '.join(field.options)})" if field.options else ")"))
                    break
    return steps, start_fields, warnings
