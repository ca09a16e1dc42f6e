"""Scripts and expressions from BPMN files run under RestrictedPython.

A BPMN upload is untrusted: a script task must not import, open files, or climb out through
dunder attributes such as `__subclasses__`. Compiled code is cached by its source text.
"""

from __future__ import annotations

import ast
import operator
from functools import lru_cache
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython import compile_restricted, limited_builtins, safe_builtins, utility_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "|=": operator.ior, "&=": operator.iand, "^=": operator.ixor,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    return _INPLACE[op](x, y)


def _builtins() -> dict[str, Any]:
    allowed = dict(safe_builtins)
    allowed.update(limited_builtins)
    allowed.update({k: v for k, v in utility_builtins.items() if not isinstance(v, ModuleType)})
    for name in ("dict", "list", "sum", "min", "max", "any", "all", "sorted", "enumerate",
                 "map", "filter", "reversed", "zip"):
        allowed[name] = __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    allowed.pop("__import__", None)
    return allowed


GUARDS: dict[str, Any] = {
    "__builtins__": _builtins(),
    "__name__": "bpmn_script",
    "_getattr_": safer_getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
}


class ScriptRefused(ValueError):
    """The script or expression uses something RestrictedPython does not allow."""


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
        return compile_restricted(source, filename="<bpmn>", mode=mode)
    except SyntaxError as exc:
        raise ScriptRefused(str(exc)) from exc


class RestrictedEnvironment(TaskDataEnvironment):
    """Spiff's task-data environment, with RestrictedPython doing the compiling."""

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        scope = dict(GUARDS)
        scope.update(self.globals)
        scope.update(external_context or {})
        scope.update(context)
        return eval(compile_script(expression, "eval"), scope)  # noqa: S307 - restricted bytecode

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        self.check_for_overwrite(context, external_context or {})
        scope = dict(GUARDS)
        scope.update(self.globals)
        scope.update(external_context or {})
        scope.update(context)
        exec(compile_script(script, "exec"), scope)  # noqa: S102 - restricted bytecode
        hidden = set(GUARDS) | set(self.globals) | set(external_context or {})
        for key in list(context):
            if key not in scope:
                del context[key]
        for key, value in scope.items():
            if key in hidden or callable(value) or isinstance(value, ModuleType):
                continue
            context[key] = value
        return True


def make_script_engine() -> PythonScriptEngine:
    return PythonScriptEngine(environment=RestrictedEnvironment())


def evaluate(expression: str, data: dict[str, Any]) -> Any:
    """Evaluate one expression against case data (budgets, conditions outside Spiff)."""
    return RestrictedEnvironment().evaluate(expression, dict(data))
