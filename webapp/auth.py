"""Bearer-token authentication for the API: the token names a staff user, who becomes the Actor."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, request

from workflows.cases import Actor
from workflows.errors import DomainError
from workflows.users import user_for_token


class Unauthorized(DomainError):
    code = "unauthorized"
    http_status = 401


def database():
    return current_app.extensions["onewindow.db"]


def current_actor() -> Actor:
    return g.actor


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send Authorization: Bearer <token> (POST /api/v1/auth/token to get one)")
        with database().read() as session:
            user = user_for_token(session, token.strip())
            if user is None:
                raise Unauthorized("the token is unknown or expired")
            g.actor = Actor(user.username, user.role, user.department)
        return view(*args, **kwargs)

    return wrapper
