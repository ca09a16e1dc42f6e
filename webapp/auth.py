"""Bearer-token authentication for the API: the token names a staff user, who becomes the Actor."""

from __future__ import annotations

import os
import threading
import time
from functools import wraps

from flask import current_app, g, request

from timers.clock import wall_now
from webapp import policy
from workflows.administration.users import valid_token
from workflows.casework.cases import Actor, actor_of
from workflows.errors import DomainError, Forbidden


class Unauthorized(DomainError):
    code = "unauthorized"
    http_status = 401


class RoleNotAllowed(Forbidden):
    """The policy table (webapp/policy.py) does not give this route to the caller's role."""

    code = "role_not_allowed"


def database():
    return current_app.extensions["onewindow.db"]


def current_actor() -> Actor:
    return g.actor


def client_address() -> str:
    """The client's address: X-Forwarded-For is believed only from a proxy listed in
    ONEWINDOW_TRUSTED_PROXIES (comma separated addresses), else the connection's own address."""
    remote = request.remote_addr or ""
    trusted = {p.strip() for p in os.environ.get("ONEWINDOW_TRUSTED_PROXIES", "").split(",") if p.strip()}
    if remote in trusted:
        # the last address a trusted proxy appended that is not itself a trusted proxy
        for hop in reversed([h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]):
            if hop not in trusted:
                return hop[:64]
    return remote[:64]


class TokenCache:
    """Tokens checked lately, for a few seconds (ONEWINDOW_AUTH_CACHE_SECONDS, 5): an API step then
    costs no database round trip for its token. A revocation in this process clears it at once; in
    another process it holds within those seconds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, Actor, int, float]] = {}

    def get(self, token: str) -> Actor | None:
        with self.lock:
            found = self.entries.get(token)
        if found is None:
            return None
        until, actor, _, expires = found
        moment = time.monotonic()
        if moment > until or wall_now().timestamp() >= expires:
            return None
        return actor

    def put(self, token: str, actor: Actor, user_id: int, expires: float) -> None:
        with self.lock:
            if len(self.entries) > 10_000:
                self.entries.clear()
            self.entries[token] = (time.monotonic() + self.seconds, actor, user_id, expires)

    def forget_user(self, user_id: int) -> None:
        with self.lock:
            for key in [k for k, v in self.entries.items() if v[2] == user_id]:
                del self.entries[key]


TOKENS = TokenCache(float(os.environ.get("ONEWINDOW_AUTH_CACHE_SECONDS", "5")))


def authenticate() -> Actor:
    """The bearer token's staff member (g.actor), checked against the policy table for this route.
    Called by the policy gate before anything else of the request (body validation included)."""
    if getattr(g, "actor", None) is not None:
        return g.actor
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token> (POST /api/v1/auth/token to get one)")
    token = token.strip()
    actor = TOKENS.get(token)
    if actor is None:
        with database().read() as session:
            row = valid_token(session, token)
            if row is None:
                raise Unauthorized("the token is unknown, expired or revoked")
            actor = actor_of(row.user)
            TOKENS.put(token, actor, row.user.id, row.expires_at.timestamp())
    if not policy.allowed(request.endpoint, actor.role):
        raise RoleNotAllowed("a {role} may not use this endpoint", {"role": actor.role})
    g.actor = actor
    return actor


def login_required(view):
    """The view needs a staff member's bearer token (the policy gate has usually checked it already)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        authenticate()
        return view(*args, **kwargs)

    return wrapper
