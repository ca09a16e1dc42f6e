"""The JSON API under /api/v1 (flask-smorest: marshmallow validation and the OpenAPI document)."""

from flask import Flask
from flask_smorest import Api
from marshmallow import Schema, fields

from webapp.api import alerts, auth, calendar, cases, clock, extensions, incidents, people, processes, work_items


class ErrorOut(Schema):
    """What every error answer of the API carries (documented as it is sent)."""

    error = fields.String(required=True, metadata={"description": "a code: invalid_input, unauthorized, "
                                                                  "forbidden, not_found, conflict, …"})
    message = fields.String(required=True, metadata={"description": "what went wrong, for a person"})
    fields_ = fields.Dict(data_key="fields", metadata={"description": "the fields at fault and why"})
    retry_after = fields.Integer(metadata={"description": "seconds to wait (429, 503)"})


class OneWindowApi(Api):
    ERROR_SCHEMA = ErrorOut


def register(app: Flask) -> list:
    """Register the API; return its blueprints."""
    app.config.setdefault("API_TITLE", "OneWindow 一窗通办")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = OneWindowApi(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}})
    modules = (auth, processes, cases, extensions, work_items, alerts, incidents, people, calendar, clock)
    for module in modules:
        api.register_blueprint(module.blp, url_prefix="/api/v1" + module.PREFIX)
    api.register_blueprint(people.copies_blp, url_prefix="/api/v1/copies")
    api.register_blueprint(work_items.consultations_blp, url_prefix="/api/v1/consultations")
    return [module.blp for module in modules] + [people.copies_blp, work_items.consultations_blp]
