"""Server-rendered pages: the service window, worklists, case pages, applicant tracking, the service guide.

Chinese by default, English on request (?lang=en, remembered in a cookie). Staff log in with
Flask-Login; every form carries a CSRF token (Flask-WTF) and a one-time form token so a double
submission does not act twice.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask import session as session_cookie
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from webapp.ui import public, staff, supervision
from webapp.ui.helpers import register_filters
from workflows.casework.cases import Actor
from workflows.models import User

LANGUAGES = ("zh", "en")


class StaffUser:
    """The logged-in staff member, as Flask-Login wants it."""

    def __init__(self, user: User) -> None:
        self.id, self.username, self.role = user.id, user.username, user.role
        self.department, self.display_name = user.department, user.display_name
        self.memberships = frozenset((m.department, m.position) for m in user.memberships)
        self.is_authenticated, self.is_active, self.is_anonymous = True, user.active, False
        self.credential_version = user.credential_version

    def get_id(self) -> str:
        return str(self.id)

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.role, self.department, self.memberships)


def _locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    if request.path.startswith("/api/"):  # the API follows Accept-Language; pages are Chinese unless asked
        return request.accept_languages.best_match(LANGUAGES, default="zh") or "zh"
    return "zh"


def register(app: Flask, csrf: CSRFProtect) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path + "/ui/translations"))
    Babel(app, locale_selector=_locale)

    login = LoginManager(app)
    login.login_view = "staff.login"
    login.login_message = None

    @login.user_loader
    def _load(user_id: str):
        db = app.extensions["onewindow.db"]
        with db.read() as session:
            user = session.get(User, int(user_id)) if user_id.isdigit() else None
            # the session is the user's as long as no reset, logout, disable or role change came since
            if user is None or not user.active or session_cookie.get("cv") != user.credential_version:
                return None
            return StaffUser(user)

    @app.before_request
    def _remember_language():
        g.lang = _locale()

    @app.after_request
    def _set_language_cookie(response):
        if request.args.get("lang") in LANGUAGES:
            response.set_cookie("lang", request.args["lang"], max_age=365 * 86400, samesite="Lax")
        return response

    register_filters(app)
    app.register_blueprint(staff.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(supervision.bp)
