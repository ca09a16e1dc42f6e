"""Every error leaves as JSON {"error": code, "message": text} with a 4xx status (5xx only for our faults)."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from sqlalchemy.exc import InternalError, OperationalError
from werkzeug.exceptions import HTTPException

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
        if not _is_api():
            response = _page(status, exc.message)
        else:
            response = error_response(status, exc.code, exc.message, **exc.details)
        if retry_after:
            response[0].headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if not _is_api():
            return _page(exc.code or 500, exc.description or exc.name)
        data = getattr(exc, "data", None) or {}
        fields = data.get("messages") or data.get("errors")
        message = data.get("message") or exc.description or exc.name
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
                503, "unavailable", "the service cannot use its database right now; nothing was changed, "
                                    "try again shortly")
        else:
            response, status = make_response(render_template("unavailable.html")), 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        if not _is_api():
            return _page(500, "internal error; nothing was changed")
        return error_response(500, "internal_error", "an internal error occurred; nothing was changed")


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
