"""Domain errors. The web layer maps each kind to its HTTP status and says the message in the request's
language; the CLI prints the English.

A message is an English template with named parameters ("no case {case_no}", {"case_no": …}): the template
is the message id of the translation catalogue (extracted by the error classes' names, see babel.cfg), and
the web layer fills in the parameters after translating it. The domain itself never imports Flask."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class Msg(str):
    """A short message (a field's problem) as English text that still knows its template and parameters."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None) -> Msg:
        values = dict(params or {})
        self = super().__new__(cls, template.format(**values) if values else template)
        self.template, self.params = template, values
        return self


class DomainError(Exception):
    code = "error"
    parts: list[DomainError] | None = None

    def __init__(self, message: str, params: Mapping[str, Any] | None = None, /, **details: Any) -> None:
        self.template = getattr(message, "template", message)
        self.params = dict(params or getattr(message, "params", None) or {})
        self.message = self.template.format(**self.params) if self.params else str(message)
        super().__init__(self.message)
        self.details = details


class InvalidInput(DomainError):
    code = "invalid_input"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    """The request is well formed but the case is not in a state that allows it."""

    code = "conflict"


class InvalidProcess(DomainError):
    """A BPMN file that cannot be deployed; `element` names the offending element when known."""

    code = "invalid_process"


def problem(field: str, text: str, params: Mapping[str, Any] | None = None) -> InvalidInput:
    """One field's problem as an error of its own: "{field}: …", and the field → message for the form."""
    message = Msg(text, params)
    return InvalidInput("{field}: {problem}", {"field": field, "problem": message}, fields={field: message})


class Problems:
    """The problems of one form, gathered so that all of them are reported at once."""

    def __init__(self) -> None:
        self.parts: list[InvalidInput] = []

    def add(self, error: InvalidInput) -> None:
        self.parts.extend(getattr(error, "parts", None) or [error])

    @contextmanager
    def collecting(self) -> Iterator[None]:
        try:
            yield
        except InvalidInput as exc:
            self.add(exc)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def check(self) -> None:
        """Raise the one problem as it is, or all of them as one InvalidInput listing them."""
        if len(self.parts) == 1:
            raise self.parts[0]
        if self.parts:
            raise gathered(self.parts)


def gathered(parts: list[InvalidInput]) -> InvalidInput:
    fields: dict[str, Any] = {}
    for part in parts:
        for key, value in (part.details.get("fields") or {}).items():
            fields.setdefault(key, value)
    error = InvalidInput("{count} problems: {listed}",
                         {"count": len(parts), "listed": "; ".join(p.message for p in parts)}, fields=fields)
    error.parts = parts  # the web layer says each in the request's language
    return error
