"""The composition root: one Flask app, one Database, the API and the pages."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from timers.clock import clock
from webapp import api, errors, health, input_guard, policy, security, ui
from workflows.administration import settings
from workflows.administration.clock_store import sync_clock
from workflows.db import Database


def _secret_key(db: Database) -> str:
    """One key for every process and node of the deployment, kept in the database."""
    return db.transaction(
        lambda session: settings.get_or_create(session, "secret_key", {"key": secrets.token_hex(32)})["key"])


def create_app(config: dict[str, Any] | None = None, database: Database | None = None) -> Flask:
    app = Flask(__name__, static_folder="ui/static", template_folder="ui/templates")
    app.json.ensure_ascii = False
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # a form left open at the window all morning still submits
    if config:
        app.config.update(config)
    input_guard.register(app)  # before any blueprint: its converter bounds every <int:…> of their routes
    db = database or Database(app.config.get("DATABASE_URL"))
    app.extensions["onewindow.db"] = db
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(db)
    csrf = CSRFProtect(app)
    for blueprint in api.register(app):
        csrf.exempt(blueprint)  # the API authenticates with bearer tokens, not cookies
    ui.register(app, csrf)
    health.register(app)
    errors.register(app)
    security.register(app)
    policy.register(app)

    if clock.manual:
        @app.before_request
        def _adopt_manual_clock():
            # another process may have set the deployment's clock
            with db.read() as session:
                sync_clock(session)

    return app
