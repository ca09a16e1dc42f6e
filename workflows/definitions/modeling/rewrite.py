"""A file from another modeler, made readable by the engine before it parses it: JUEL and FEEL expressions
translated to Python (conditions, multi-instance counts and completion conditions, timer expressions), timers
written the Camunda and Flowable way read as working-time timers, and scripts in other languages refused.
Each refusal names the element (id and name) and quotes what it refused; each liberty taken is a warning."""

from __future__ import annotations

import re

from lxml import etree

from timers.durations import parse_duration

from ...errors import InvalidProcess, Msg
from . import expressions, wording

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
_CRON = re.compile(r"^\S+(\s+\S+){4,6}$")


def _where(element: etree._Element) -> Msg:
    return wording.of(element)


def _refuse(element: etree._Element, template: str, params: dict | None = None) -> InvalidProcess:
    """A refusal naming the element the problem is on: "{where}: {problem}", both parts translated."""
    holder = element
    while holder is not None and not holder.get("id"):
        holder = holder.getparent()
    return InvalidProcess("{where}: {problem}", {"where": _where(element), "problem": Msg(template, params)},
                          element=holder.get("id") if holder is not None else None)


def _python(element: etree._Element, text: str, what: Msg) -> str:
    try:
        return expressions.translate(text)
    except expressions.Unsupported as exc:
        raise _refuse(element, "the {what} '{text}' is outside the expressions OneWindow reads ({reason}); write "
                               "it in Python or within the subset in docs/interop.md",
                      {"what": what, "text": text.strip(), "reason": str(exc)}) from None


ACTIVITIES = ("task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
              "businessRuleTask", "subProcess", "callActivity")


_BEFORE_FLOWS = ("documentation", "extensionElements", "auditing", "monitoring", "categoryValueRef", "incoming",
                 "outgoing")


def add_flow_ref(node: etree._Element, kind: str, flow_id: str) -> None:
    """An <incoming> or <outgoing> where the schema wants it: after the node's own incoming and outgoing (and
    its documentation and extensions), before what is particular to it (a script, a loop)."""
    position = 0
    for index, child in enumerate(node):
        if isinstance(child.tag, str) and etree.QName(child).localname in _BEFORE_FLOWS and not (
                kind == "incoming" and etree.QName(child).localname == "outgoing"):
            position = index + 1
    ref = etree.Element(f"{{{BPMN}}}{kind}")
    ref.text = flow_id
    node.insert(position, ref)


def implicit_gateways(tree: etree._ElementTree) -> list[str]:
    """Several flows leaving an activity (the 同意 / 驳回 style of many Flowable files) mean, in BPMN, that each
    flow whose condition holds is taken, an unconditional one always, the activity's default flow when none
    holds. The engine wants a gateway for that: one is put in between, inclusive (or parallel when no flow has
    a condition), taking over the conditions and the default."""
    warnings: list[str] = []
    for process in tree.iter(f"{{{BPMN}}}process", f"{{{BPMN}}}subProcess"):
        flows = [f for f in process if isinstance(f.tag, str) and etree.QName(f).localname == "sequenceFlow"]
        for activity in list(process):
            if not isinstance(activity.tag, str) or etree.QName(activity).localname not in ACTIVITIES:
                continue
            leaving = [f for f in flows if f.get("sourceRef") == activity.get("id")]
            if len(leaving) < 2:
                continue
            conditional = any(f.find(f"{{{BPMN}}}conditionExpression") is not None for f in leaving)
            kind = "inclusiveGateway" if conditional else "parallelGateway"
            gateway_id = f"{activity.get('id')}__split"
            gateway = etree.Element(f"{{{BPMN}}}{kind}", id=gateway_id)
            default = activity.attrib.pop("default", None)
            if default and conditional:
                gateway.set("default", default)
            for flow in leaving:
                flow.set("sourceRef", gateway_id)
                if conditional and flow.get("id") != default and flow.find(f"{{{BPMN}}}conditionExpression") is None:
                    always = etree.SubElement(flow, f"{{{BPMN}}}conditionExpression")
                    always.text = "True"  # an unconditional flow beside conditional ones is always taken
            entry = etree.Element(f"{{{BPMN}}}sequenceFlow", id=f"{activity.get('id')}__to_split",
                                  sourceRef=activity.get("id"), targetRef=gateway_id)
            for outgoing in activity.findall(f"{{{BPMN}}}outgoing"):
                activity.remove(outgoing)
                etree.SubElement(gateway, f"{{{BPMN}}}outgoing").text = outgoing.text
            add_flow_ref(activity, "outgoing", entry.get("id"))
            incoming = etree.Element(f"{{{BPMN}}}incoming")
            incoming.text = entry.get("id")
            gateway.insert(0, incoming)
            process.append(gateway)
            process.append(entry)
            name = " ".join((activity.get("name") or "").split())
            warnings.append(Msg("{where}: {count} flows leave it; read through an implicit {kind} gateway",
                                {"where": wording.named(activity.get("id"), name), "count": len(leaving),
                                 "kind": Msg("inclusive") if conditional else Msg("parallel")}))
    return warnings


CONTAINERS = ("process", "subProcess", "transaction", "adHocSubProcess")
FLOW_NODES = (*ACTIVITIES, "transaction", "adHocSubProcess", "startEvent", "intermediateCatchEvent",
              "intermediateThrowEvent", "boundaryEvent")


def _children(container: etree._Element, *kinds: str) -> list[etree._Element]:
    return [c for c in container if isinstance(c.tag, str) and etree.QName(c).namespace == BPMN and
            (not kinds or etree.QName(c).localname in kinds)]


def flow_ids(tree: etree._ElementTree) -> None:
    """Test files of Flowable and Activiti leave sequence flows without an id; the engine keys flows by id."""
    for number, flow in enumerate(tree.iter(f"{{{BPMN}}}sequenceFlow")):
        if not flow.get("id"):
            flow.set("id", f"Flow_unnamed_{number}")


def implicit_ends(tree: etree._ElementTree) -> None:
    """In BPMN a token that reaches an activity or event with no flow leaving it simply ends there (an implicit
    end); the engine wants an end event, so one is drawn behind each such element."""
    for container in tree.iter(*(f"{{{BPMN}}}{kind}" for kind in CONTAINERS)):
        flows = _children(container, "sequenceFlow")
        sources = {f.get("sourceRef") for f in flows}
        for node in _children(container, *FLOW_NODES):
            node_id = node.get("id")
            if not node_id or node_id in sources or node.get("isForCompensation") == "true" or \
                    node.get("triggeredByEvent") == "true":
                continue
            if etree.QName(node).localname == "boundaryEvent" and \
                    node.find(f"{{{BPMN}}}compensateEventDefinition") is not None:
                continue
            if node.find(f"{{{BPMN}}}linkEventDefinition") is not None:
                continue  # a link event goes on at its partner
            end = etree.SubElement(container, f"{{{BPMN}}}endEvent", id=f"{node_id}__end")
            flow = etree.SubElement(container, f"{{{BPMN}}}sequenceFlow", id=f"{node_id}__to_end",
                                    sourceRef=node_id, targetRef=end.get("id"))
            etree.SubElement(end, f"{{{BPMN}}}incoming").text = flow.get("id")
            add_flow_ref(node, "outgoing", flow.get("id"))


def route_variable(gateway_id: str) -> str:
    """The case data that holds the way a person chose at a gateway whose flows carry no condition."""
    return "route_" + re.sub(r"\W", "_", gateway_id).strip("_")


def chosen_routes(tree: etree._ElementTree) -> list[str]:
    """An exclusive gateway whose flows carry no condition (a drawing made for reading, or a modeler that left
    the decision to a person) is a choice the step before it makes: each flow's name (or its target's) is an
    option and becomes the flow's condition. An inclusive gateway's unconditional flows are always taken, and
    an unconditional flow beside conditional ones is read as Camunda and Flowable read it: true."""
    warnings: list[str] = []
    elements = {el.get("id"): el for el in tree.iter() if isinstance(el.tag, str) and el.get("id")}
    for gateway in tree.iter(f"{{{BPMN}}}exclusiveGateway", f"{{{BPMN}}}inclusiveGateway"):
        container = gateway.getparent()
        leaving = [f for f in _children(container, "sequenceFlow") if f.get("sourceRef") == gateway.get("id")]
        bare = [f for f in leaving if f.get("id") != gateway.get("default") and
                f.find(f"{{{BPMN}}}conditionExpression") is None]
        if len(leaving) < 2 or not bare:
            continue
        exclusive = etree.QName(gateway).localname == "exclusiveGateway"
        if exclusive and len(bare) == len([f for f in leaving if f.get("id") != gateway.get("default")]):
            labels: list[str] = []
            for flow in bare:
                target = elements.get(flow.get("targetRef"))
                label = " ".join((flow.get("name") or "").split()) or \
                    " ".join(((target.get("name") if target is not None else "") or "").split()) or \
                    flow.get("targetRef") or flow.get("id")
                while label in labels:
                    label += "′"
                labels.append(label)
            variable = route_variable(gateway.get("id"))
            for flow, label in zip(bare, labels, strict=True):
                etree.SubElement(flow, f"{{{BPMN}}}conditionExpression").text = f"{variable} == {label!r}"
            name = " ".join((gateway.get("name") or "").split())
            warnings.append(Msg("{where}: its flows carry no condition; the step before it chooses the way: "
                                "{ways}", {"where": wording.named(gateway.get("id"), name, "exclusiveGateway"),
                                           "ways": " / ".join(labels)}))
            continue
        for flow in bare:
            etree.SubElement(flow, f"{{{BPMN}}}conditionExpression").text = "True"
    return warnings


def start_timers(tree: etree._ElementTree) -> list[str]:
    """A timer on a process's start event starts instances on a schedule in Camunda and Flowable; here a case
    starts when the window takes it in, so the timer is set aside (event sub-processes keep theirs)."""
    warnings: list[str] = []
    for process in tree.iter(f"{{{BPMN}}}process"):
        for start in _children(process, "startEvent"):
            timer = start.find(f"{{{BPMN}}}timerEventDefinition")
            if timer is not None:
                start.remove(timer)
                warnings.append(Msg("{where}: a case starts when it is taken in; its timer is not used",
                                    {"where": wording.named(start.get("id"), start.get("name"), "startEvent")}))
    return warnings


def collections(tree: etree._ElementTree) -> None:
    """Multi-instance by collection, written the Camunda, Flowable or Zeebe way (`camunda:collection=
    "${approvers}" camunda:elementVariable="approver"`, Zeebe `inputCollection="=approvers" inputElement=
    "approver"`), becomes BPMN's own loop data input and input item, which the engine reads: one instance, and
    one 会签 work item, per element (a department code or a username gives the item to them)."""
    from .assignment import NAMESPACES

    for loop in tree.iter(f"{{{BPMN}}}multiInstanceLoopCharacteristics"):
        if loop.find(f"{{{BPMN}}}loopDataInputRef") is not None or loop.find(f"{{{BPMN}}}loopCardinality") is not None:
            continue
        collection = element_name = None
        for prefix in ("camunda", "flowable", "activiti"):
            ns = NAMESPACES[prefix]
            collection = collection or loop.get(f"{{{ns}}}collection")
            element_name = element_name or loop.get(f"{{{ns}}}elementVariable")
        zeebe = NAMESPACES["zeebe"]
        for definition in loop.iter(f"{{{zeebe}}}loopCharacteristics"):
            collection = collection or definition.get("inputCollection")
            element_name = element_name or definition.get("inputElement")
        if not collection:
            continue
        python = _python(loop, collection, Msg("multi-instance collection")) if expressions.dialect(collection) \
            else collection.strip()
        if not re.fullmatch(r"[A-Za-z_]\w*", python):
            raise _refuse(loop, "the multi-instance collection '{collection}' is not a variable; name the case "
                                "data that holds the list (a department code or a username per element)",
                          {"collection": collection.strip()})
        element_name = (element_name or "item").strip()
        if not re.fullmatch(r"[A-Za-z_]\w*", element_name):
            raise _refuse(loop, "the multi-instance element variable '{name}' is not a plain name",
                          {"name": element_name})
        data_input = etree.Element(f"{{{BPMN}}}loopDataInputRef")
        data_input.text = python
        data_item = etree.Element(f"{{{BPMN}}}inputDataItem", id=element_name, name=element_name)
        loop.insert(0, data_item)
        loop.insert(0, data_input)


SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def decisions(tree: etree._ElementTree) -> None:
    """A business rule task that names its DMN decision the Camunda (or Flowable) way, `camunda:decisionRef`,
    names it the way the engine reads (spiffworkflow:calledDecisionId)."""
    from .assignment import NAMESPACES

    names = [f"{{{NAMESPACES[p]}}}{attribute}" for p in ("camunda", "flowable", "activiti")
             for attribute in ("decisionRef", "decisionTableReferenceKey")]
    for task in tree.iter(f"{{{BPMN}}}businessRuleTask"):
        ref = next((task.get(name) for name in names if task.get(name)), None)
        if ref is None or task.find(f".//{{{SPIFF}}}calledDecisionId") is not None:
            continue
        extensions = task.find(f"{{{BPMN}}}extensionElements")
        if extensions is None:
            extensions = etree.Element(f"{{{BPMN}}}extensionElements")
            task.insert(0, extensions)
        etree.SubElement(extensions, f"{{{SPIFF}}}calledDecisionId").text = ref


def rewrite(tree: etree._ElementTree, code_tasks: str = "refuse") -> list[str]:
    """Rewrite the tree in place; return the warnings. With code_tasks="steps", a script in another language
    becomes a step a person works (as a code-bound service task does)."""
    flow_ids(tree)
    warnings: list[str] = start_timers(tree)
    warnings += implicit_gateways(tree)
    warnings += chosen_routes(tree)
    implicit_ends(tree)
    collections(tree)
    decisions(tree)
    for script in list(tree.iter(f"{{{BPMN}}}scriptTask")):
        language = (script.get("scriptFormat") or "python").strip().lower()
        if language not in ("python", "py", "text/x-python", "spiff"):
            if code_tasks == "steps":  # what the script did, a person does
                written, where = script.attrib.pop("scriptFormat", None), _where(script)
                script.tag = f"{{{BPMN}}}userTask"
                for body in script.findall(f"{{{BPMN}}}script"):
                    script.remove(body)
                warnings.append(Msg("{where}: the script is written in '{language}'; a person works it as a step "
                                    "instead", {"where": where, "language": written}))
                continue
            from .tasks import CodeBound

            problem = Msg("the script is written in '{language}'; OneWindow runs Python scripts only "
                          "(scriptFormat=\"python\"), in a sandbox", {"language": script.get("scriptFormat")})
            raise CodeBound("{where}: {problem}", {"where": _where(script), "problem": problem},
                            element=script.get("id"))
    for tag, what in (("conditionExpression", Msg("condition")), ("loopCardinality", Msg("multi-instance count")),
                      ("completionCondition", Msg("completion condition")), ("condition", Msg("condition"))):
        for element in tree.iter(f"{{{BPMN}}}{tag}"):
            text = (element.text or "").strip()
            if not text:
                continue
            language = (element.get("language") or "").lower()
            if language and not any(k in language for k in ("python", "juel", "feel", "el")):
                raise _refuse(element, "the {what} is written in '{language}'; OneWindow reads Python, JUEL "
                                       "(${{…}}) and FEEL (=…) expressions",
                              {"what": what, "language": element.get("language")})
            translated = _python(element, text, what)
            if translated != text:
                element.text = translated
    for kind in ("timeDuration", "timeDate", "timeCycle"):
        for element in tree.iter(f"{{{BPMN}}}{kind}"):
            warning = _timer(element, kind)
            if warning:
                warnings.append(warning)
    return warnings


def _timer(element: etree._Element, kind: str) -> Msg | None:
    text = (element.text or "").strip()
    if not text:
        raise _refuse(element, "the timer's {kind} is empty; give a duration such as PT2H or P3D", {"kind": kind})
    unquoted = text[1:-1] if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" else None
    literal = unquoted if unquoted is not None else text
    if expressions.dialect(text):
        element.text = _python(element, text, Msg("timer expression"))
        return None
    if kind == "timeCycle":
        if _CRON.match(literal):
            raise _refuse(element, "the timer cycle '{cycle}' is a cron expression; write an ISO 8601 repetition "
                                   "such as R3/PT10H", {"cycle": literal})
        if re.fullmatch(r"R\d*/.+", literal):
            element.text = repr(literal)
            return None
        return None  # Python: checked as an expression
    if kind == "timeDuration":
        match = _ISO_DURATION.fullmatch(literal)
        if match is None or literal == "P":
            return None  # Python (a quoted literal or an expression), checked as such
        days, hours, minutes, seconds = match.groups()
        if days and (hours or minutes or seconds):
            total = int(days) * 480 + int(hours or 0) * 60 + int(minutes or 0)  # a working day is 8 hours
            element.text = repr(f"PT{total}M")
            return Msg("{where}: the duration {duration} mixes days and hours; counted as {total} working minutes "
                       "(a working day has 8 hours)", {"where": _where(element), "duration": literal, "total": total})
        if seconds and float(seconds) > 0 or (not days and not hours and not minutes):
            whole = int(hours or 0) * 60 + int(minutes or 0) + (1 if seconds and float(seconds) > 0 else 0)
            whole = max(whole, 1)
            element.text = repr(f"PT{whole}M")
            return Msg("{where}: the duration {duration} is counted in whole working minutes: PT{whole}M",
                       {"where": _where(element), "duration": literal, "whole": whole})
        parse_duration(literal)  # a plain working-time duration
        element.text = repr(literal)
        return None
    if unquoted is None and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})?", literal):
        element.text = repr(literal)  # an instant written bare, as Camunda and Flowable do
    return None
