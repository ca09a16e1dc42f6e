"""Form fields other modelers declare on user tasks and start events, read as OneWindow step fields:
`camunda:formData` / `camunda:formField`, `flowable:formProperty` / `activiti:formProperty`, and the JSON
forms Camunda 8 embeds (`zeebe:userTaskForm`). Id, label, type, required and enum values are kept; an external
form (`camunda:formKey`, `flowable:formKey`, a linked Zeebe form) cannot be shown here and is warned about.
"""

from __future__ import annotations

import json
import re

from lxml import etree

from ...errors import Msg
from ..forms import Field
from .assignment import NAMESPACES

TYPES = {"string": "string", "text": "text", "textfield": "string", "textarea": "text", "long": "integer",
         "integer": "integer", "int": "integer", "short": "integer", "double": "number", "number": "number",
         "boolean": "boolean", "checkbox": "boolean", "date": "date", "datetime": "date", "enum": "choice",
         "select": "choice", "radio": "choice"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _field(name: str | None, kind: str | None, label: str | None, required: bool,
           values: list[tuple[str, str]], where: Msg, warnings: list[str]) -> Field | None:
    if not name or not _NAME.match(name):
        warnings.append(Msg("{where}: the form field '{name}' is not a plain name and is left out",
                            {"where": where, "name": name}))
        return None
    mapped = TYPES.get((kind or "string").strip().lower())
    if mapped is None:
        warnings.append(Msg("{where}: the form field '{name}' has the type '{kind}'; it is read as text",
                            {"where": where, "name": name, "kind": kind}))
        mapped = "string"
    if mapped == "choice" and not values:
        mapped = "string"
    options = tuple(v for v, _ in values) if mapped == "choice" else ()
    labels = tuple(text or v for v, text in values) if mapped == "choice" else ()
    return Field(name, mapped, required, options, (label or "").strip()[:200], labels)


def modeler_fields(element: etree._Element | None, where: Msg, warnings: list[str]) -> list[Field]:
    """The fields a task or start event element declares in a modeler's own markup."""
    if element is None:
        return []
    found: list[Field] = []
    camunda = NAMESPACES["camunda"]
    for field in element.iter(f"{{{camunda}}}formField"):
        required = any(c.get("name") == "required" for c in field.iter(f"{{{camunda}}}constraint"))
        values = [(v.get("id") or "", v.get("name") or "") for v in field.iter(f"{{{camunda}}}value")]
        made = _field(field.get("id"), field.get("type"), field.get("label"), required, values, where, warnings)
        if made:
            found.append(made)
    for prefix in ("flowable", "activiti"):
        ns = NAMESPACES[prefix]
        for prop in element.iter(f"{{{ns}}}formProperty"):
            if (prop.get("writable") or "true").lower() == "false":
                continue  # shown to the worker, not asked of them
            values = [(v.get("id") or "", v.get("name") or "") for v in prop.iter(f"{{{ns}}}value")]
            made = _field(prop.get("id"), prop.get("type"), prop.get("name"),
                          (prop.get("required") or "").lower() == "true", values, where, warnings)
            if made:
                found.append(made)
    zeebe = NAMESPACES["zeebe"]
    for form in element.getroottree().iter(f"{{{zeebe}}}userTaskForm"):
        if not _zeebe_form_is_for(element, form):
            continue
        found += _zeebe_fields(form.text or "", where, warnings)
    for prefix in ("camunda", "flowable", "activiti"):
        key = element.get(f"{{{NAMESPACES[prefix]}}}formKey")
        if key:
            warnings.append(Msg("{where}: the form '{key}' ({prefix}:formKey) lives outside the file; OneWindow "
                                "shows the fields the file declares", {"where": where, "key": key, "prefix": prefix}))
    for definition in element.iter(f"{{{zeebe}}}formDefinition"):
        if definition.get("formId") or definition.get("externalReference"):
            warnings.append(Msg("{where}: the linked Camunda form cannot be read from the file; OneWindow shows "
                                "the fields the file declares", {"where": where}))
    unique: dict[str, Field] = {}
    for field in found:
        unique.setdefault(field.name, field)
    return list(unique.values())


def _zeebe_form_is_for(element: etree._Element, form: etree._Element) -> bool:
    """A Zeebe user task points at an embedded form by `camunda-forms:bpmn:<form id>`."""
    zeebe = NAMESPACES["zeebe"]
    for definition in element.iter(f"{{{zeebe}}}formDefinition"):
        key = definition.get("formKey") or ""
        if key.endswith(":" + (form.get("id") or "\0")):
            return True
    return False


def _zeebe_fields(text: str, where: Msg, warnings: list[str]) -> list[Field]:
    try:
        schema = json.loads(text)
    except ValueError:
        warnings.append(Msg("{where}: its embedded form is not JSON and is left out", {"where": where}))
        return []
    out: list[Field] = []

    def walk(components):
        for component in components or []:
            if not isinstance(component, dict):
                continue
            if component.get("components"):
                walk(component["components"])
            key, kind = component.get("key"), component.get("type")
            if not key or kind in ("text", "button", "spacer", "separator", "image", "html"):
                continue
            values = [(str(v.get("value")), str(v.get("label") or v.get("value")))
                      for v in component.get("values") or [] if isinstance(v, dict)]
            required = bool((component.get("validate") or {}).get("required"))
            made = _field(key, kind, component.get("label"), required, values, where, warnings)
            if made:
                out.append(made)
    walk(schema.get("components") if isinstance(schema, dict) else None)
    return out



def due_budget(element: etree._Element | None, where: Msg, warnings: list[str]) -> str | None:
    """`camunda:dueDate` / `flowable:dueDate` written as a duration (P2D, PT4H) becomes the step's working-time
    budget; a date or an expression cannot be one and is warned about."""
    if element is None:
        return None
    from timers.durations import parse_duration

    for prefix in ("camunda", "flowable", "activiti"):
        due = (element.get(f"{{{NAMESPACES[prefix]}}}dueDate") or "").strip()
        if not due:
            continue
        try:
            parse_duration(due)
            return due
        except ValueError:
            warnings.append(Msg("{where}: the due date '{due}' ({prefix}:dueDate) is not a working-time duration "
                                "such as P2D or PT4H; the step has no time limit of its own",
                                {"where": where, "due": due, "prefix": prefix}))
    return None
