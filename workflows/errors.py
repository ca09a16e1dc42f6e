"""Domain errors. The web layer maps each kind to its HTTP status; the CLI prints the message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
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
