"""Every error leaves as JSON {"error": code, "message": text} with a 4xx status (5xx only for our faults)."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import InternalError, OperationalError
from werkzeug.exceptions import HTTPException

from webapp.messages import field_errors, say
from workflows.errors import Conflict, DomainError, Forbidden, InvalidInput, InvalidProcess, NotFound

STATUS = {InvalidInput: 400, InvalidProcess: 400, Forbidden: 403, NotFound: 404, Conflict: 409}
log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30


def error_response(status: int, code: str, message: str, **extra):
    body = {"error": code, "message": message}
    body.update({k: v for k, v in extra.items() if v})
    return jsonify(body), status


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        status = getattr(exc, "http_status", None) or next(
            (s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        retry_after = exc.details.get("retry_after")
        message = say(exc)
        if not _is_api():
            response = _page(status, message)
        else:
            details = dict(exc.details)
            if isinstance(details.get("fields"), dict):
                details["fields"] = field_errors(exc)
            response = error_response(status, exc.code, message, **details)
        if retry_after:
            response[0].headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if not _is_api():
            return _page(exc.code or 500, _http_words(exc))
        data = getattr(exc, "data", None) or {}
        fields = _translated(data.get("messages") or data.get("errors"))
        message = data.get("message") or _http_words(exc)
        if fields and exc.code in (400, 422):
            # webargs reports schema failures as 422 and unreadable JSON as 400; both are bad input.
            return error_response(400, "invalid_input", _flatten(fields), fields=fields)
        code = exc.name.lower().replace(" ", "_")
        return error_response(exc.code or 500, code, message, fields=fields)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InternalError)
    def _database_unavailable(exc: Exception):
        """Unreachable, locked past the wait, read-only or out of disk: nothing was written (the
        transaction rolled back), so the answer is "try again", and the next request opens fresh
        connections (the pool's may be broken, or carry the old settings)."""
        log.warning("database unavailable: %s", str(getattr(exc, "orig", exc))[:300])
        database = app.extensions.get("onewindow.db")
        if database is not None:
            database.engine.dispose()
        if _is_api():
            response, status = error_response(
                503, "unavailable", gettext("the service cannot use its database right now; nothing was changed, "
                                            "try again shortly"))
        else:
            response, status = make_response(render_template("unavailable.html")), 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        if not _is_api():
            return _page(500, gettext("internal error; nothing was changed"))
        return error_response(500, "internal_error", gettext("an internal error occurred; nothing was changed"))


# The standard HTTP refusals in the reader's language (werkzeug's own descriptions are English).
HTTP_WORDS = {400: _l("The request could not be read."), 401: _l("Please sign in first."),
              403: _l("You may not do this."), 404: _l("The page or record asked for does not exist."),
              405: _l("This address does not take this kind of request."),
              409: _l("The record changed meanwhile; reload and try again."),
              413: _l("The upload is too large."), 415: _l("This kind of content is not accepted."),
              429: _l("Too many requests; wait a moment and try again."),
              500: _l("internal error; nothing was changed")}


def _http_words(exc: HTTPException) -> str:
    if exc.description and exc.description != type(exc).description:  # a reason the view gave
        return gettext(exc.description)
    words = HTTP_WORDS.get(exc.code or 500)
    return str(words) if words is not None else gettext(exc.name)


def _translated(fields):
    """webargs' per-field messages (dicts and lists of English sentences) in the request's language."""
    if isinstance(fields, dict):
        return {k: _translated(v) for k, v in fields.items()}
    if isinstance(fields, list):
        return [_translated(v) for v in fields]
    return gettext(fields) if isinstance(fields, str) else fields


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _page(status: int, message: str):
    return make_response(render_template("error.html", status=status, message=message)), status


def _flatten(messages, prefix: str = "") -> str:
    parts: list[str] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "form") and not prefix:
                parts.append(_flatten(value, ""))
            else:
                parts.append(_flatten(value, f"{prefix}{key}."))
    elif isinstance(messages, list):
        parts.append(f"{prefix.rstrip('.')}: " + " ".join(str(m) for m in messages) if prefix
                     else " ".join(str(m) for m in messages))
    else:
        parts.append(f"{prefix.rstrip('.')}: {messages}")
    return "; ".join(p for p in parts if p)
