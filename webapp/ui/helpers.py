"""Template helpers: local times, working-time amounts, clock colours, one-time form tokens."""

from __future__ import annotations

import secrets
from functools import wraps

from flask import Flask, abort, current_app, render_template
from flask_login import current_user, login_required

from timers.clock import to_local
from webapp.ui import words


def db():
    return current_app.extensions["onewindow.db"]


def local(instant, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(instant).strftime(fmt) if instant else ""


def form_token() -> str:
    return secrets.token_urlsafe(24)


def register_filters(app: Flask) -> None:
    app.jinja_env.finalize = words.finalize
    app.jinja_env.filters["text"] = words.text
    app.jinja_env.filters["case_no_like"] = words.case_no_like
    app.jinja_env.filters["text_width"] = words.text_width
    app.jinja_env.filters["local"] = local
    app.jinja_env.globals["form_token"] = form_token
    app.jinja_env.globals["department_name"] = department_name
    app.jinja_env.filters["duration"] = words.duration
    app.jinja_env.filters["amount"] = words.amount
    app.jinja_env.filters["time_left"] = words.time_left
    app.jinja_env.filters["yes_no"] = words.yes_no
    app.jinja_env.globals["word"] = words.word
    app.jinja_env.globals["W"] = words
    app.jinja_env.globals["person"] = words.person


def department_name(code: str | None) -> str:
    from flask import g

    from workflows.definitions.catalogue import catalogue

    dept = catalogue().departments.get(code or "")
    if dept is None:
        return code or ""
    return dept.name_en if getattr(g, "lang", "zh") == "en" else dept.name


def roles(*allowed: str):
    """Only these roles may open the page (admins always may)."""
    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if current_user.role not in allowed and current_user.role != "admin":
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def page(template: str, status: int = 200, **context):
    return render_template(template, **context), status
