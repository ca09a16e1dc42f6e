"""A file from another modeler, made readable by the engine before it parses it: JUEL and FEEL expressions
translated to Python (conditions, multi-instance counts and completion conditions, timer expressions), timers
written the Camunda and Flowable way read as working-time timers, and scripts in other languages refused.
Each refusal names the element (id and name) and quotes what it refused; each liberty taken is a warning."""

from __future__ import annotations

import re

from lxml import etree

from timers.durations import parse_duration

from ..errors import InvalidProcess
from . import expressions

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
_CRON = re.compile(r"^\S+(\s+\S+){4,6}$")


def _where(element: etree._Element) -> str:
    """The element a problem is on: itself, or the flow or task that holds it."""
    holder = element
    while holder is not None and not holder.get("id"):
        holder = holder.getparent()
    if holder is None:
        return "the file"
    kind = etree.QName(holder).localname
    name = " ".join((holder.get("name") or "").split())
    label = {"sequenceFlow": "sequence flow"}.get(kind, kind)
    return f"{label} '{holder.get('id')}'" + (f" ({name})" if name else "")


def _refuse(element: etree._Element, message: str) -> InvalidProcess:
    holder = element
    while holder is not None and not holder.get("id"):
        holder = holder.getparent()
    text = f"{_where(element)}: {message}"
    return InvalidProcess(text, element=holder.get("id") if holder is not None else None)


def _python(element: etree._Element, text: str, what: str) -> str:
    try:
        return expressions.translate(text)
    except expressions.Unsupported as exc:
        raise _refuse(element, f"the {what} {text.strip()!r} is outside the expressions OneWindow reads "
                               f"({exc}); write it in Python or within the subset in docs/interop.md") from None


ACTIVITIES = ("task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
              "businessRuleTask", "subProcess", "callActivity")


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
            etree.SubElement(activity, f"{{{BPMN}}}outgoing").text = entry.get("id")
            incoming = etree.Element(f"{{{BPMN}}}incoming")
            incoming.text = entry.get("id")
            gateway.insert(0, incoming)
            process.append(gateway)
            process.append(entry)
            name = " ".join((activity.get("name") or "").split())
            warnings.append(f"element '{activity.get('id')}'" + (f" ({name})" if name else "") +
                            f": {len(leaving)} flows leave it; read through an implicit {kind[:-7]} gateway")
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
        python = _python(loop, collection, "multi-instance collection") if expressions.dialect(collection) \
            else collection.strip()
        if not re.fullmatch(r"[A-Za-z_]\w*", python):
            raise _refuse(loop, f"the multi-instance collection {collection.strip()!r} is not a variable; name "
                                "the case data that holds the list (a department code or a username per element)")
        element_name = (element_name or "item").strip()
        if not re.fullmatch(r"[A-Za-z_]\w*", element_name):
            raise _refuse(loop, f"the multi-instance element variable {element_name!r} is not a plain name")
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


def rewrite(tree: etree._ElementTree) -> list[str]:
    """Rewrite the tree in place; return the warnings."""
    warnings: list[str] = implicit_gateways(tree)
    collections(tree)
    decisions(tree)
    for script in tree.iter(f"{{{BPMN}}}scriptTask"):
        language = (script.get("scriptFormat") or "python").strip().lower()
        if language not in ("python", "py", "text/x-python", "spiff"):
            raise _refuse(script, f"the script is written in {script.get('scriptFormat')!r}; OneWindow runs "
                                  "Python scripts only (scriptFormat=\"python\"), in a sandbox")
    for tag, what in (("conditionExpression", "condition"), ("loopCardinality", "multi-instance count"),
                      ("completionCondition", "completion condition")):
        for element in tree.iter(f"{{{BPMN}}}{tag}"):
            text = (element.text or "").strip()
            if not text:
                continue
            language = (element.get("language") or "").lower()
            if language and not any(k in language for k in ("python", "juel", "feel", "el")):
                raise _refuse(element, f"the {what} is written in {element.get('language')!r}; OneWindow reads "
                                       "Python, JUEL (${…}) and FEEL (=…) expressions")
            translated = _python(element, text, what)
            if translated != text:
                element.text = translated
    for kind in ("timeDuration", "timeDate", "timeCycle"):
        for element in tree.iter(f"{{{BPMN}}}{kind}"):
            warning = _timer(element, kind)
            if warning:
                warnings.append(warning)
    return warnings


def _timer(element: etree._Element, kind: str) -> str | None:
    text = (element.text or "").strip()
    if not text:
        raise _refuse(element, f"the timer's {kind} is empty; give a duration such as PT2H or P3D")
    unquoted = text[1:-1] if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" else None
    literal = unquoted if unquoted is not None else text
    if expressions.dialect(text):
        element.text = _python(element, text, "timer expression")
        return None
    if kind == "timeCycle":
        if _CRON.match(literal):
            raise _refuse(element, f"the timer cycle {literal!r} is a cron expression; write an ISO 8601 "
                                   "repetition such as R3/PT10H")
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
            return (f"{_where(element)}: the duration {literal} mixes days and hours; counted as {total} working "
                    "minutes (a working day has 8 hours)")
        if seconds and float(seconds) > 0 or (not days and not hours and not minutes):
            whole = int(hours or 0) * 60 + int(minutes or 0) + (1 if seconds and float(seconds) > 0 else 0)
            whole = max(whole, 1)
            element.text = repr(f"PT{whole}M")
            return (f"{_where(element)}: the duration {literal} is counted in whole working minutes: "
                    f"PT{whole}M")
        parse_duration(literal)  # a plain working-time duration
        element.text = repr(literal)
        return None
    if unquoted is None and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})?", literal):
        element.text = repr(literal)  # an instant written bare, as Camunda and Flowable do
    return None
