"""Domain messages in the request's language.

The domain raises English templates with named parameters (workflows/errors.py); here the template is looked
up in the translation catalogue (Chinese in `zh`, itself in `en`) and the parameters are filled in — codes
among them (a case's status, a role, a department) in words too. Pages default to Chinese; the API answers in
the language of `Accept-Language` (default Chinese) and keeps its machine code in `error`."""

from __future__ import annotations

from typing import Any

from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l

from workflows.errors import DomainError, Msg

# Problems the domain names by a short word (fields={"reason": "required"}) and the marshmallow messages of
# the API's schemas: listed here so that the extractor finds them for the catalogue.
SHORT_WORDS = (
    _l("required"), _l("invalid"), _l("not a colleague"), _l("bad text"), _l("too long"), _l("too short"),
    _l("too many"), _l("too deep"), _l("too common"), _l("unknown department"), _l("quota"), _l("over the cap"),
    _l("not allowed"), _l("contains the username"), _l("1-5"), _l("unknown field"),
    _l("Missing data for required field."), _l("Unknown field."), _l("Field may not be null."),
    _l("Not a valid string."), _l("Not a valid integer."), _l("Not a valid number."), _l("Not a valid boolean."),
    _l("Not a valid datetime."), _l("Not a valid date."), _l("Not a valid list."), _l("Invalid input type."),
    _l("Not a valid mapping type."), _l("Invalid value."), _l("String does not match expected pattern."),
    _l("Invalid JSON body."),
)


def _shown(key: str, value: Any, labels: dict[str, str] | None) -> Any:
    """A parameter as the reader should see it: a message translated, a code in words, a field by its label."""
    from webapp.ui.helpers import department_name
    from webapp.ui.words import CASE_STATUS, EXTENSION_STATE, ITEM_STATE, ROLE, person, word

    if isinstance(value, Msg):
        return say(value, labels=labels)
    if not isinstance(value, str):
        return value
    if key == "field" and labels:
        return labels.get(value, value)
    if key == "department":
        return department_name(value)
    if key in ("assignee", "acknowledged_by"):
        return person(value)
    if get_locale() is not None and get_locale().language == "en":
        return value  # codes are English words already ("work item 3 is cancelled")
    if key == "status":
        return word(CASE_STATUS, value)
    if key == "state":
        return word({**EXTENSION_STATE, **ITEM_STATE, "open": ITEM_STATE["open"]}, value)
    if key == "role":
        return word(ROLE, value)
    return value


def say(message: str | Msg | DomainError, params: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None) -> str:
    """A message in the request's language; `labels` name form fields ("applicant.name" → "名称")."""
    if isinstance(message, DomainError):
        if message.parts:
            listed = "；".join(say(part, labels=labels) for part in message.parts)
            return gettext("{count} problems: {listed}").format(count=len(message.parts), listed=listed)
        template, values = message.template, message.params
    else:
        template = getattr(message, "template", message)
        values = params if params is not None else getattr(message, "params", {})
    translated = gettext(template)
    if not values:
        return translated
    try:
        return translated.format(**{k: _shown(k, v, labels) for k, v in values.items()})
    except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder: the English is right
        return template.format(**values)


def field_errors(error: DomainError, labels: dict[str, str] | None = None) -> dict[str, str]:
    """Each field's problem, for showing beside the field."""
    fields = error.details.get("fields") or {}
    if not isinstance(fields, dict):
        return {}
    return {str(k): say(v, labels=labels) if isinstance(v, str) else str(v) for k, v in fields.items()}
