"""Template helpers: local times, working-time amounts, clock colours, one-time form tokens."""

from __future__ import annotations

import secrets
from functools import wraps

from flask import Flask, abort, current_app, render_template
from flask_babel import gettext as _
from flask_login import current_user, login_required

from timers.clock import to_local


def db():
    return current_app.extensions["onewindow.db"]


def local(instant, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(instant).strftime(fmt) if instant else ""


def working(minutes: int | None, budget: str | None = None) -> str:
    """Time left or used, in the budget's own unit: working days for day budgets, hours otherwise."""
    if minutes is None:
        return _("日历缺失")
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    if budget and budget.endswith("D") and minutes >= 480:
        return sign + _("%(n).1f 个工作日", n=minutes / 480)
    h, m = divmod(minutes, 60)
    return sign + (_("%(h)d 小时 %(m)d 分", h=h, m=m) if h else _("%(m)d 分钟", m=m))


COLOURS = {"green": "正常", "yellow": "预警", "red": "超期", "grey": "已完成", "unknown": "日历缺失"}
CLOCK_STATES = {"running": "计时中", "warned": "预警", "breached": "已超期", "paused": "暂停计时", "met": "按时办结",
                "met_late": "超期办结", "cancelled": "已取消", "returned": "已退回"}
STATUSES = {"received": "已收件", "in_progress": "办理中", "paused": "挂起", "completed": "已办结",
            "refused": "不予受理", "terminated": "已终止"}


def form_token() -> str:
    return secrets.token_urlsafe(24)


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["local"] = local
    app.jinja_env.filters["working"] = working
    app.jinja_env.globals["form_token"] = form_token
    app.jinja_env.globals["COLOURS"] = COLOURS
    app.jinja_env.globals["STATUSES"] = STATUSES
    app.jinja_env.globals["CLOCK_STATES"] = CLOCK_STATES
    app.jinja_env.globals["department_name"] = department_name


def department_name(code: str | None) -> str:
    from flask import g

    from workflows.catalogue import catalogue

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
