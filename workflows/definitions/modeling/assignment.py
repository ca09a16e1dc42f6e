"""Who works a task of a BPMN file drawn in another modeler.

OneWindow gives every step to a department of the catalogue. A file says who works a task in one of several
ways; they are tried in this order, and the first that names a department wins:

1. a `department` property (spiffworkflow:property name="department"): a department code;
2. the task's lane, by the department's name, code, English name or an alias;
3. the modeler's candidate groups: `camunda:candidateGroups`, `activiti:candidateGroups`,
   `flowable:candidateGroups`, Zeebe `assignmentDefinition candidateGroups` — each through the same names;
4. a named assignee or candidate user (`camunda:assignee="zhangsan"`, Zeebe `assignee`): a user who exists
   takes the step into their own list, in their home department;
5. the default department the admin names when deploying.

An expression (`${initiator}`, `=assignee`) is not a name: it is reported as a warning and the next way is
tried. A task none of these places is refused with the names found and the departments that exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from ...errors import Msg

NAMESPACES = {
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "activiti": "http://activiti.org/bpmn",
    "flowable": "http://flowable.org/bpmn",
    "zeebe": "http://camunda.org/schema/zeebe/1.0",
}
_EXPRESSION = re.compile(r"^\s*(?:[$#]\{.*\}|=.*)\s*$", re.S)


@dataclass
class Candidates:
    """What a task's own markup says about who works it."""

    groups: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    assignee: str | None = None
    expressions: list[str] = field(default_factory=list)  # ${…} / =… : not resolvable at deploy


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in re.split(r"[,，;；]", value or "") if part.strip()]


def candidates(element: etree._Element | None) -> Candidates:
    """Candidate groups, users and the assignee a modeler wrote on a task element."""
    found = Candidates()
    if element is None:
        return found

    def take(kind: str, raw: str | None) -> None:
        for value in _split(raw) if kind != "assignee" else ([raw.strip()] if raw and raw.strip() else []):
            if _EXPRESSION.match(value):
                found.expressions.append(value)
            elif kind == "groups":
                found.groups.append(value)
            elif kind == "users":
                found.users.append(value)
            elif found.assignee is None:
                found.assignee = value

    for prefix in ("camunda", "activiti", "flowable"):
        ns = NAMESPACES[prefix]
        take("groups", element.get(f"{{{ns}}}candidateGroups"))
        take("users", element.get(f"{{{ns}}}candidateUsers"))
        take("assignee", element.get(f"{{{ns}}}assignee"))
    zeebe = NAMESPACES["zeebe"]
    for definition in element.iter(f"{{{zeebe}}}assignmentDefinition"):
        take("groups", definition.get("candidateGroups"))
        take("users", definition.get("candidateUsers"))
        take("assignee", definition.get("assignee"))
    return found


@dataclass(frozen=True)
class Assignment:
    department: str
    assignee: str | None
    how: str  # property | lane | group | user | default


class Unassigned(Exception):
    """No way of the file names a department; the message lists what was found and what exists."""

    def __init__(self, template: str, params: dict) -> None:
        self.template, self.params = template, params
        super().__init__(template.format(**params))


def resolve(task_id: str, lane: str | None, department_property: str | None, found: Candidates,
            department_named: Callable[[str], str | None], user_department: Callable[[str], str | None],
            default_department: str | None, departments: list[str]) -> tuple[Assignment, list[str]]:
    """The department (and maybe the user) that works a task, and warnings about what was not honoured."""
    warnings = [Msg("task '{task}': '{expression}' is an expression; OneWindow assigns at deploy and ignored it",
                    {"task": task_id, "expression": expr}) for expr in found.expressions]
    listed = ", ".join(departments)
    if department_property:
        code = department_named(department_property)
        if code is None:
            raise Unassigned("the department property '{name}' names no department (departments: {departments})",
                             {"name": department_property, "departments": listed})
        return Assignment(code, None, "property"), warnings
    if lane:
        code = department_named(lane)
        if code is not None:
            return Assignment(code, None, "lane"), warnings
    for group in found.groups:
        code = department_named(group)
        if code is not None:
            return Assignment(code, None, "group"), warnings
    for user in [found.assignee, *found.users]:
        if user and (home := user_department(user)):
            return Assignment(home, user if user == found.assignee else None, "user"), warnings
    if default_department:
        code = department_named(default_department)
        if code is None:
            raise Unassigned("the default department '{name}' is not a department (departments: {departments})",
                             {"name": default_department, "departments": listed})
        names = [n for n in [lane, *found.groups, found.assignee, *found.users] if n]
        if names:
            warnings.append(Msg("task '{task}': {names} named no department or user; it goes to the default "
                                "department {department}", {"task": task_id, "names": ", ".join(repr(n) for n in names),
                                                            "department": code}))
        return Assignment(code, None, "default"), warnings
    names = [Msg("lane '{name}'", {"name": lane})] if lane else []
    names += [Msg("candidate group '{name}'", {"name": g}) for g in found.groups]
    names += [Msg("user '{name}'", {"name": u}) for u in [found.assignee, *found.users] if u]
    said = names if names else [Msg("no lane, department property, candidate group or assignee")]
    raise Unassigned("who works it is not known ({said}). Name a department of the catalogue ({departments}) in "
                     "its lane, a 'department' property or a candidate group, add an alias for the name in the "
                     "catalogue, or deploy with a default department",
                     {"said": Msg("; ".join(f"{{n{i}}}" for i in range(len(said))),
                                  {f"n{i}": m for i, m in enumerate(said)}), "departments": listed})
