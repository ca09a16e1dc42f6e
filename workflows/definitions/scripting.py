"""Scripts and expressions from BPMN files run under RestrictedPython, within budgets.

A BPMN upload is untrusted: a script task must not import, open files, or climb out through
dunder attributes such as `__subclasses__`, and it must not run for ever or fill the memory: the
compiler adds the budget checks of `script_limits` (a tick in every loop and function, guarded
operators and iterators). Compiled code is cached by its source text.
"""

from __future__ import annotations

import ast
import operator
from functools import lru_cache
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted,
    limited_builtins,
    safe_builtins,
    utility_builtins,
)
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from . import script_limits
from .script_limits import ScriptLimitExceeded, binop, budget, guard_method, guarded_iter, tick

_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "|=": operator.ior, "&=": operator.iand, "^=": operator.ixor,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    if op in ("*=", "**=", "<<=", "+=", "%="):
        return binop(op[:-1], x, y)
    return _INPLACE[op](x, y)


def _getattr(obj: Any, name: str, *default: Any) -> Any:
    return guard_method(obj, name, safer_getattr(obj, name, *default))


def _builtins() -> dict[str, Any]:
    allowed = dict(safe_builtins)
    allowed.update(limited_builtins)
    allowed.update({k: v for k, v in utility_builtins.items() if not isinstance(v, ModuleType)})
    for name in ("dict", "list", "sum", "min", "max", "any", "all", "sorted", "enumerate",
                 "map", "filter", "reversed", "zip"):
        allowed[name] = __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    allowed.pop("__import__", None)
    allowed["range"] = script_limits.guarded_range
    allowed["pow"] = script_limits.guarded_pow
    return allowed


GUARDS: dict[str, Any] = {
    "__builtins__": _builtins(),
    "__name__": "bpmn_script",
    "_getattr_": _getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": guarded_iter,
    "_tick_": tick,
    "_binop_": binop,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
}


class ScriptRefused(ValueError):
    """The script or expression uses something RestrictedPython does not allow."""


_BUDGETED_OPS = {ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class BudgetedTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy plus the budget checks: ticks in loops and functions, guarded operators."""

    def _ticking(self, body: list[ast.stmt]) -> list[ast.stmt]:
        return [ast.Expr(_call("_tick_")), *body]

    def visit_While(self, node: ast.While):
        node = super().visit_While(node)
        node.body = self._ticking(node.body)
        return ast.fix_missing_locations(node)

    def visit_FunctionDef(self, node: ast.FunctionDef):
        node = super().visit_FunctionDef(node)
        node.body = self._ticking(node.body)
        return ast.fix_missing_locations(node)

    def visit_Lambda(self, node: ast.Lambda):
        node = super().visit_Lambda(node)
        node.body = ast.BoolOp(op=ast.Or(), values=[_call("_tick_"), node.body])
        return ast.fix_missing_locations(node)

    def visit_BinOp(self, node: ast.BinOp):
        node = super().visit_BinOp(node)
        symbol = _BUDGETED_OPS.get(type(node.op))
        if symbol is None:
            return node
        call = ast.copy_location(_call("_binop_", ast.Constant(symbol), node.left, node.right), node)
        return ast.fix_missing_locations(call)

    def visit_JoinedStr(self, node: ast.JoinedStr):
        for value in ast.walk(node):
            spec = getattr(value, "format_spec", None)
            if spec is None:
                continue
            if any(isinstance(part, ast.FormattedValue) for part in spec.values):
                self.error(node, "format widths must be written as numbers in the f-string")
            for part in spec.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    try:
                        script_limits.check_format_spec(part.value)
                    except ScriptLimitExceeded as exc:
                        self.error(node, str(exc))
        return super().visit_JoinedStr(node)


@lru_cache(maxsize=4096)
def compile_script(source: str, mode: str) -> CodeType:
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise ScriptRefused(f"syntax error: {exc.msg} (line {exc.lineno})") from None
    # No __import__ is given at run time either; refusing here tells the author at deploy time.
    if any(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(tree)):
        raise ScriptRefused("import is not allowed in BPMN scripts")
    try:
        return compile_restricted(source, filename="<bpmn>", mode=mode, policy=BudgetedTransformer)
    except SyntaxError as exc:
        raise ScriptRefused(str(exc)) from exc


class RestrictedEnvironment(TaskDataEnvironment):
    """Spiff's task-data environment, with RestrictedPython doing the compiling."""

    def _scope(self, context: dict, external_context: dict | None) -> dict:
        """What a script or expression sees: the guards, the globals, the engine's extras, the task data."""
        return {**GUARDS, **self.globals, **(external_context or {}), **context}

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        scope = self._scope(context, external_context)
        code = compile_script(expression, "eval")
        with budget():
            return eval(code, scope)  # noqa: S307 - restricted bytecode

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        self.check_for_overwrite(context, external_context or {})
        scope = self._scope(context, external_context)
        code = compile_script(script, "exec")
        with budget():
            exec(code, scope)  # noqa: S102 - restricted bytecode
        hidden = set(GUARDS) | set(self.globals) | set(external_context or {})
        for key in list(context):
            if key not in scope:
                del context[key]
        for key, value in scope.items():
            if key in hidden or callable(value) or isinstance(value, ModuleType):
                continue
            context[key] = value
        return True


class HallScriptEngine(PythonScriptEngine):
    """Spiff's engine with one addition for multi-instance steps (会签 / 或签 / 票签): the completion
    condition, evaluated on the instance that just finished, also sees `done` — the outputs of the
    instances finished so far — and `instances`, how many there are; so `done.count('agree') >= 2`
    (票签) or `opinion == 'disagree'` (one 不同意 ends it) can be written; and Camunda's and Flowable's
    `nrOfInstances`, `nrOfCompletedInstances`, `nrOfActiveInstances`."""

    def evaluate(self, task, expression, external_context=None):
        parent = getattr(task, "parent", None)
        spec = getattr(parent, "task_spec", None) if parent is not None else None
        output = getattr(spec, "data_output", None)
        if hasattr(spec, "condition") and hasattr(spec, "data_output"):  # a multi-instance step's condition
            extra = dict(external_context or {})
            try:
                extra.setdefault("done", output.get(parent) if output is not None and output.exists(parent) else [])
            except Exception:  # noqa: BLE001 - the extra names are a convenience, never an error
                extra.setdefault("done", [])
            # the instances, not the task predicted after the step (also a child in the engine's tree)
            count = sum(1 for child in parent.children if child.task_spec.name == getattr(spec, "task_spec", None))
            extra.setdefault("instances", count)
            # the names Camunda, Flowable and Activiti give the same counts
            finished = len(parent.internal_data.get("merged", []))  # the instances finished, this one too
            extra.setdefault("nrOfInstances", count)
            extra.setdefault("nrOfCompletedInstances", finished)
            extra.setdefault("nrOfActiveInstances", count - finished)
            external_context = extra
        return super().evaluate(task, expression, _with_helpers(task, expression, external_context))

    def execute(self, task, script, external_context=None):
        return super().execute(task, script, _with_helpers(task, script, external_context))


def _with_helpers(task, source: str, external_context: dict | None) -> dict | None:
    """Functions a script may call, from spiff-arena's set: who started the case — made only for the code
    that names one (every condition and script passes here)."""
    if not any(name in source for name in HELPERS):
        return external_context
    workflow = getattr(getattr(task, "workflow", None), "top_workflow", None)
    started_by = (getattr(workflow, "data", None) or {}).get("initiator")
    return {"get_process_initiator_user": lambda: {"username": started_by}, **(external_context or {})}


HELPERS = ("get_process_initiator_user",)


def make_script_engine() -> PythonScriptEngine:
    return HallScriptEngine(environment=RestrictedEnvironment())


def evaluate(expression: str, data: dict[str, Any]) -> Any:
    """Evaluate one expression against case data (budgets, conditions outside Spiff)."""
    return RestrictedEnvironment().evaluate(expression, dict(data))
