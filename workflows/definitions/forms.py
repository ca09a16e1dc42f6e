"""Step forms: the fields a BPMN task declares, and checking what a user submits against them.

A task declares a field with a spiffworkflow property `field:NAME` whose value is
`TYPE [required]`, TYPE one of string, text, integer, number, boolean, date, list (several short values:
department codes or usernames for a 会签, say) or choice(a,b,...);
a choice option may carry its label as `value:label`. A property `label:NAME` names the field for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..errors import InvalidInput, Msg, Problems, problem

TYPES = ("string", "text", "integer", "number", "boolean", "date", "list", "choice")
MAX_ITEMS = 50
_SEPARATORS = re.compile(r"[,，、;；\s]+")
MAX_LENGTH = {"string": 500, "text": 10_000}
_SPEC = re.compile(r"^\s*(?P<type>[a-z]+)(?:\((?P<options>[^)]*)\))?\s*(?P<required>required)?\s*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    options: tuple[str, ...] = ()
    label: str = ""
    option_labels: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required,
                               "label": self.label or self.name}
        if self.options:
            out["options"] = list(self.options)
            out["option_labels"] = dict(zip(self.options, self.option_labels, strict=True))
        return out

    @property
    def choices(self) -> list[tuple[str, str]]:
        return list(zip(self.options, self.option_labels, strict=True))


def parse_field(name: str, spec: str, label: str = "") -> Field:
    if not _NAME.match(name):
        raise ValueError(f"field name {name!r} is not an identifier")
    match = _SPEC.match(spec)
    if not match or match["type"] not in TYPES:
        raise ValueError(f"field {name!r}: cannot read {spec!r} (expected one of {', '.join(TYPES)})")
    pairs = [o.strip().split(":", 1) for o in (match["options"] or "").split(",") if o.strip()]
    options = tuple(p[0].strip() for p in pairs)
    labels = tuple((p[1] if len(p) == 2 else p[0]).strip() for p in pairs)
    if match["type"] == "choice" and not options:
        raise ValueError(f"field {name!r}: choice() needs options")
    return Field(name, match["type"], bool(match["required"]), options, label, labels)


def fields_from_properties(properties: dict[str, str]) -> list[Field]:
    return [parse_field(key[len("field:"):], value, properties.get("label:" + key[len("field:"):], ""))
            for key, value in properties.items() if key.startswith("field:")]


def _coerce(f: Field, value: Any) -> Any:
    if f.type in ("string", "text"):
        if not isinstance(value, str):
            raise ValueError(Msg("must be a string"))
        if len(value) > MAX_LENGTH[f.type]:
            raise ValueError(Msg("must be at most {limit} characters", {"limit": MAX_LENGTH[f.type]}))
        if f.required and not value.strip():
            raise ValueError(Msg("must not be blank"))
        return value
    if f.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(Msg("must be an integer"))
        return value
    if f.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(Msg("must be a number"))
        return value
    if f.type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(Msg("must be true or false"))
        if f.required and not value:  # a required tick box is a confirmation: it must be ticked
            raise ValueError(Msg("must be ticked"))
        return value
    if f.type == "date":
        if not isinstance(value, str):
            raise ValueError(Msg("must be a date YYYY-MM-DD"))
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(Msg("must be a date YYYY-MM-DD")) from None
        return value
    if f.type == "list":
        items = _SEPARATORS.split(value) if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(Msg("must be a list of names"))
        items = [i.strip() for i in items if i.strip()]
        if len(items) > MAX_ITEMS or any(len(i) > 100 for i in items):
            raise ValueError(Msg("at most {limit} names of at most 100 characters", {"limit": MAX_ITEMS}))
        if f.required and not items:
            raise ValueError(Msg("must not be blank"))
        return items
    if value not in f.options:
        raise ValueError(Msg("must be one of {options}", {"options": ", ".join(f.options)}))
    return value


def required_text(value: Any, name: str = "reason", limit: int = 500) -> str:
    """A free-text field an action cannot go without (a reason, a message): stripped, or InvalidInput."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput("{name}: required, at most {limit} characters",
                           {"name": name, "limit": limit}, fields={name: "required"})
    return value.strip()


def validate(fields: list[Field], data: Any, what: str) -> dict[str, Any]:
    """Return the checked data or raise InvalidInput listing every problem at once."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("{what}: data must be an object", {"what": what})
    known = {f.name: f for f in fields}
    problems = Problems()
    for key in data:
        if key not in known:
            problems.add(problem(str(key), "unknown field"))
    clean: dict[str, Any] = {}
    for f in fields:
        if f.name not in data or data[f.name] is None:
            if f.required:
                problems.add(problem(f.name, "required"))
            continue
        try:
            clean[f.name] = _coerce(f, data[f.name])
        except ValueError as exc:
            reason = exc.args[0] if exc.args else "invalid"
            problems.add(problem(f.name, getattr(reason, "template", str(reason)), getattr(reason, "params", None)))
    problems.check()
    return clean
