"""Tasks other modelers bind to code OneWindow does not run.

A service task that calls a Java class, an expression, a connector, a Zeebe job or an external worker is
refused with what it calls and what to use instead (a script task runs sandboxed Python; a user task is
worked by a person). A service, send or receive task bound to nothing is a step that does nothing here: it is
read as a plain task, with a warning.

A hall that runs such a process by hand until its systems are connected can deploy with `code_tasks="steps"`
(`onewindow deploy --code-tasks-as-steps`, or the admin upload's box): each code-bound service task is then a
step a person works (sending the e-mail, checking the register), with a warning naming what it called. An
expression that only sets variables (`${execution.setVariable('x', 'y')}`) is no external code: it becomes a
script task.
"""

from __future__ import annotations

import re

from lxml import etree

from ...errors import InvalidProcess, Msg
from . import expressions, wording
from .assignment import NAMESPACES


class CodeBound(InvalidProcess):
    """A service task bound to code OneWindow does not run (deployable with code_tasks="steps")."""
_SET_VARIABLE = re.compile(r"""execution\.setVariable\(\s*(['"])(\w+)\1\s*,\s*(.+)\)""", re.S)

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def _binding(element: etree._Element) -> tuple[Msg, str] | None:
    """What the task calls and the attribute saying so, or None when it calls nothing."""
    for prefix in ("camunda", "activiti", "flowable"):
        ns = NAMESPACES[prefix]
        for attribute, what in (("class", Msg("the Java class '{value}'")),
                                ("delegateExpression", Msg("the delegate expression '{value}'")),
                                ("expression", Msg("the expression '{value}'"))):
            value = element.get(f"{{{ns}}}{attribute}")
            if value:
                return Msg(what, {"value": value}), f"{prefix}:{attribute}"
        kind = element.get(f"{{{ns}}}type")
        if kind == "external":
            return Msg("external workers on the topic '{value}'", {"value": element.get(f"{{{ns}}}topic") or ""}), \
                f"{prefix}:type"
        if kind:
            return Msg("the {engine} '{value}' task", {"engine": prefix.title(), "value": kind}), f"{prefix}:type"
    zeebe = NAMESPACES["zeebe"]
    for definition in element.iter(f"{{{zeebe}}}taskDefinition"):
        return Msg("Zeebe job workers of the type '{value}'", {"value": definition.get("type") or ""}), \
            "zeebe:taskDefinition"
    camunda = NAMESPACES["camunda"]
    for connector in element.iter(f"{{{camunda}}}connectorId"):
        return Msg("the connector '{value}'", {"value": (connector.text or "").strip()}), "camunda:connector"
    if element.get("operationRef"):
        return Msg("the web service operation '{value}'", {"value": element.get("operationRef")}), "operationRef"
    return None


def _assignment_script(element: etree._Element) -> str | None:
    """The Python for a service task whose expression only sets a variable, or None."""
    for prefix in ("camunda", "activiti", "flowable"):
        value = (element.get(f"{{{NAMESPACES[prefix]}}}expression") or "").strip()
        if not value or expressions.dialect(value) != "juel":
            continue
        match = _SET_VARIABLE.fullmatch(value[2:-1].strip())
        if match is None:
            return None
        try:
            return f"{match.group(2)} = {expressions.translate('${' + match.group(3) + '}')}"
        except expressions.Unsupported:
            return None
    return None


def read_tasks(tree: etree._ElementTree, code_tasks: str = "refuse") -> list[str]:
    """Refuse tasks bound to code (or, with code_tasks="steps", make them steps people work); turn unbound
    service, send and receive tasks into plain tasks. Returns the warnings for the tasks so turned. Spiff's own
    service tasks (spiffworkflow:serviceTaskOperator) pass."""
    warnings: list[str] = []
    for element in list(tree.iter(f"{{{BPMN}}}serviceTask", f"{{{BPMN}}}sendTask", f"{{{BPMN}}}receiveTask")):
        kind = etree.QName(element).localname
        if any(etree.QName(child).localname == "serviceTaskOperator" for child in element.iter()
               if isinstance(child.tag, str)):
            continue
        where = wording.named(element.get("id"), element.get("name"), kind)
        bound = _binding(element)
        if bound is not None and kind == "serviceTask":
            what, attribute = bound
            script = _assignment_script(element)
            if script is not None:
                element.tag = f"{{{BPMN}}}scriptTask"
                element.set("scriptFormat", "python")
                etree.SubElement(element, f"{{{BPMN}}}script").text = script
                continue
            if code_tasks == "steps":
                element.tag = f"{{{BPMN}}}userTask"
                for attribute_name in ("implementation", "operationRef"):
                    element.attrib.pop(attribute_name, None)
                warnings.append(Msg("{where}: the service task calls {what}; a person works it as a step instead",
                                    {"where": where, "what": what}))
                continue
            problem = Msg("the service task calls {what} ({attribute}); OneWindow runs no external code: do the "
                          "work in a script task (Python, run sandboxed), or make it a user task that a department "
                          "works", {"what": what, "attribute": attribute})
            raise CodeBound("{where}: {problem}", {"where": where, "problem": problem}, element=element.get("id"))
        if kind in ("sendTask", "receiveTask") and element.get("messageRef"):
            continue  # a message the engine sends or waits for
        element.tag = f"{{{BPMN}}}task"
        for attribute in ("implementation", "operationRef", "messageRef", "instantiate"):  # not a plain task's
            element.attrib.pop(attribute, None)
        warnings.append(Msg("{where} calls nothing here; it passes as a plain task", {"where": where}))
    return warnings
