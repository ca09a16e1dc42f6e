"""Staff accounts and API bearer tokens. Only a token's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from timers.clock import now

from .catalogue import ROLES, catalogue
from .errors import Conflict, Forbidden, InvalidInput
from .models import ApiToken, User

TOKEN_LIFETIME = timedelta(hours=12)
# werkzeug's default (scrypt) unless told otherwise; the test suite uses a cheap pbkdf2 to stay fast.
PASSWORD_METHOD = os.environ.get("ONEWINDOW_PASSWORD_METHOD", "scrypt")
_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,100}$")


def add_user(session: Session, username: str, role: str, password: str, department: str | None = None,
             display_name: str = "") -> User:
    if not _USERNAME.match(username or ""):
        raise InvalidInput("username: 2-100 letters, digits, dot, dash or underscore")
    if role not in ROLES:
        raise InvalidInput(f"role: one of {', '.join(ROLES)}")
    if not password or len(password) < 8:
        raise InvalidInput("password: at least 8 characters")
    departments = catalogue().departments
    if role in ("clerk", "reviewer"):
        if department is None:
            department = "window" if role == "clerk" else None
        if department not in departments:
            raise InvalidInput(f"department: a {role} needs one of {', '.join(departments)}")
    elif department is not None and department not in departments:
        raise InvalidInput(f"department: one of {', '.join(departments)}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, role=role, department=department, display_name=display_name or username,
                password_hash=generate_password_hash(password, method=PASSWORD_METHOD))
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, username: str, password: str) -> tuple[str, ApiToken]:
    user = session.scalar(select(User).where(User.username == username))
    # Same answer for an unknown user and a wrong password.
    if user is None or not user.active or not check_password_hash(user.password_hash, password or ""):
        raise Forbidden("wrong username or password")
    token = secrets.token_urlsafe(32)
    issued = now()
    row = ApiToken(user_id=user.id, token_hash=_digest(token), created_at=issued,
                   expires_at=issued + TOKEN_LIFETIME)
    session.add(row)
    session.flush()
    return token, row


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.expires_at <= now() or not row.user.active:
        return None
    return row.user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
