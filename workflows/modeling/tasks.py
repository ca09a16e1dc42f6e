"""Tasks other modelers bind to code OneWindow does not run.

A service task that calls a Java class, an expression, a connector, a Zeebe job or an external worker is
refused with what it calls and what to use instead (a script task runs sandboxed Python; a user task is
worked by a person). A service, send or receive task bound to nothing is a step that does nothing here: it is
read as a plain task, with a warning.
"""

from __future__ import annotations

from lxml import etree

from ..errors import InvalidProcess
from .assignment import NAMESPACES

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
INSTEAD = ("OneWindow runs no external code: do the work in a script task (Python, run sandboxed), or make it a "
           "user task that a department works")


def _binding(element: etree._Element) -> tuple[str, str] | None:
    """What the task calls and the attribute saying so, or None when it calls nothing."""
    for prefix in ("camunda", "activiti", "flowable"):
        ns = NAMESPACES[prefix]
        for attribute, what in (("class", "the Java class"), ("delegateExpression", "the delegate expression"),
                                ("expression", "the expression")):
            value = element.get(f"{{{ns}}}{attribute}")
            if value:
                return f"{what} '{value}'", f"{prefix}:{attribute}"
        kind = element.get(f"{{{ns}}}type")
        if kind == "external":
            return f"external workers on the topic '{element.get(f'{{{ns}}}topic') or ''}'", f"{prefix}:type"
        if kind:
            return f"the {prefix.title()} '{kind}' task", f"{prefix}:type"
    zeebe = NAMESPACES["zeebe"]
    for definition in element.iter(f"{{{zeebe}}}taskDefinition"):
        return f"Zeebe job workers of the type '{definition.get('type') or ''}'", "zeebe:taskDefinition"
    camunda = NAMESPACES["camunda"]
    for connector in element.iter(f"{{{camunda}}}connectorId"):
        return f"the connector '{(connector.text or '').strip()}'", "camunda:connector"
    if element.get("operationRef"):
        return f"the web service operation '{element.get('operationRef')}'", "operationRef"
    return None


def read_tasks(tree: etree._ElementTree) -> list[str]:
    """Refuse tasks bound to code; turn unbound service, send and receive tasks into plain tasks. Returns the
    warnings for the tasks so turned. Spiff's own service tasks (spiffworkflow:serviceTaskOperator) pass."""
    warnings: list[str] = []
    for element in list(tree.iter(f"{{{BPMN}}}serviceTask", f"{{{BPMN}}}sendTask", f"{{{BPMN}}}receiveTask")):
        kind = etree.QName(element).localname
        if any(etree.QName(child).localname == "serviceTaskOperator" for child in element.iter()
               if isinstance(child.tag, str)):
            continue
        name = " ".join((element.get("name") or "").split())
        where = f"element '{element.get('id')}'" + (f" ({name})" if name else "")
        bound = _binding(element)
        if bound is not None and kind == "serviceTask":
            what, attribute = bound
            raise InvalidProcess(f"{where}: the service task calls {what} ({attribute}); {INSTEAD}",
                                 element=element.get("id"))
        if kind in ("sendTask", "receiveTask") and element.get("messageRef"):
            continue  # a message the engine sends or waits for
        element.tag = f"{{{BPMN}}}task"
        for attribute in ("implementation", "operationRef", "messageRef", "instantiate"):  # not a plain task's
            element.attrib.pop(attribute, None)
        warnings.append(f"{where}: a {kind} that calls nothing here; it passes as a plain task")
    return warnings
