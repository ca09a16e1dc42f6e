"""The composition root: one Flask app, one Database, the API."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from timers.clock import clock
from workflows.clock_store import sync_clock
from workflows.db import Database

from . import api, errors


def create_app(config: dict[str, Any] | None = None, database: Database | None = None) -> Flask:
    app = Flask(__name__)
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    if config:
        app.config.update(config)
    db = database or Database(app.config.get("DATABASE_URL"))
    app.extensions["onewindow.db"] = db
    api.register(app)
    errors.register(app)

    if clock.manual:
        @app.before_request
        def _adopt_manual_clock():
            # another process may have set the deployment's clock
            with db.read() as session:
                sync_clock(session)

    @app.get("/")
    def index():
        return jsonify({"service": "OneWindow 一窗通办", "api": "/api/v1", "openapi": "/api/v1/openapi.json"})

    return app
