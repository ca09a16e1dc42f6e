"""How a refusal or a warning about a file names the element it is about: "script task 'work' (Work)". The
words are messages (English templates the pages translate), so an admin reading a Chinese page reads
"脚本任务「work」（Work）"."""

from __future__ import annotations

from lxml import etree

from ...errors import Msg

KINDS = {
    "sequenceFlow": Msg("sequence flow"), "userTask": Msg("user task"), "manualTask": Msg("manual task"),
    "scriptTask": Msg("script task"), "serviceTask": Msg("service task"), "sendTask": Msg("send task"),
    "receiveTask": Msg("receive task"), "businessRuleTask": Msg("business rule task"), "task": Msg("task"),
    "subProcess": Msg("sub-process"), "callActivity": Msg("call activity"), "startEvent": Msg("start event"),
    "endEvent": Msg("end event"), "boundaryEvent": Msg("boundary event"),
    "intermediateCatchEvent": Msg("intermediate event"), "intermediateThrowEvent": Msg("intermediate event"),
    "exclusiveGateway": Msg("gateway"), "inclusiveGateway": Msg("gateway"), "parallelGateway": Msg("gateway"),
    "eventBasedGateway": Msg("gateway"), "process": Msg("process"),
}


def named(element_id: str | None, name: str | None = None, kind: str | None = None) -> Msg:
    """An element by its kind, id and (when it has one) name."""
    words = KINDS.get(kind or "", Msg("element"))
    name = " ".join((name or "").split())
    if name:
        return Msg("{kind} '{id}' ({name})", {"kind": words, "id": element_id or "", "name": name})
    return Msg("{kind} '{id}'", {"kind": words, "id": element_id or ""})


def of(element: etree._Element) -> Msg:
    """The element a problem is on: itself, or the flow or task that holds it."""
    holder = element
    while holder is not None and not holder.get("id"):
        holder = holder.getparent()
    if holder is None:
        return Msg("the file")
    return named(holder.get("id"), holder.get("name"), etree.QName(holder).localname)


def of_spec(task_spec) -> Msg:
    """An element the engine parsed, by its id and name."""
    return named(task_spec.bpmn_id, task_spec.bpmn_name)
