"""Staff accounts and API bearer tokens. Only a token's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from timers.clock import wall_now as now_wall

from ..definitions.catalogue import ROLES, catalogue
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Problems
from ..models import ApiToken, LoginThrottle, Membership, User
from . import throttle

TOKEN_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 10
# failed sign-ins: after FREE failures each next try waits twice as long as the last (30 s … 15 min);
# a username with LOCK_AFTER failures in a row is locked until an admin lifts it (an address is not:
# a hall's kiosk or a proxy must not lock out everyone behind it for good)
FREE_FAILURES = int(os.environ.get("ONEWINDOW_LOGIN_FREE_FAILURES", "5"))
LOCK_AFTER = int(os.environ.get("ONEWINDOW_LOGIN_LOCK_AFTER", "10"))
MAX_WAIT = timedelta(minutes=15)
# werkzeug's default (scrypt) unless told otherwise; the test suite uses a cheap pbkdf2 to stay fast.
PASSWORD_METHOD = os.environ.get("ONEWINDOW_PASSWORD_METHOD", "scrypt")
_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,100}$")


def add_user(session: Session, username: str, role: str, password: str, department: str | None = None,
             display_name: str = "", positions: tuple[str, ...] | list[str] = (),
             password_hash: str | None = None) -> User:
    """A new staff account. `password_hash`, when given, is `password` as `hash_password()` checked and hashed
    it (the demo's users share one published password: checked and hashed once, not once per user)."""
    problems = Problems()  # every problem of the form at once
    if not _USERNAME.match(username or ""):
        problems.add(InvalidInput("username: 2-100 letters, digits, dot, dash or underscore",
                                  fields={"username": "invalid"}))
    if role not in ROLES:
        problems.add(InvalidInput("role: one of {roles}", {"roles": ', '.join(ROLES)}, fields={"role": "invalid"}))
    if password_hash is None:
        with problems.collecting():
            check_password_policy(username, password)
    departments = catalogue().departments
    if role in ("clerk", "reviewer"):
        if department is None:
            department = "window" if role == "clerk" else None
        if department not in departments:
            problems.add(InvalidInput("department: a {role} needs one of {departments}",
                                      {"role": role, "departments": ', '.join(departments)},
                                      fields={"department": "required"}))
    elif department is not None and department not in departments:
        problems.add(InvalidInput("department: one of {departments}", {"departments": ', '.join(departments)},
                                  fields={"department": "invalid"}))
    problems.check()
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict("user '{username}' already exists", {"username": username})
    user = User(username=username, role=role, department=department, display_name=display_name or username,
                password_hash=password_hash or generate_password_hash(password, method=PASSWORD_METHOD))
    set_memberships(user, [(department, p) for p in positions if department and p and p.strip()])
    session.add(user)
    session.flush()
    return user


def hash_password(password: str) -> str:
    """A password checked against the policy and hashed, for `add_user(password_hash=…)`."""
    check_password_policy("", password)
    return generate_password_hash(password, method=PASSWORD_METHOD)


MAX_MEMBERSHIPS = 20


def _department_code(text: str) -> str | None:
    """A department by its code or its name (中文 or English), as an admin would type it."""
    text = text.strip()
    for code, dept in catalogue().departments.items():
        if text in (code, dept.name, dept.name_en):
            return code
    return None


def parse_memberships(text: Any, home: str | None) -> list[tuple[str, str | None]]:
    """"科长", "住建局/科长", "市场监管局/" (a member there without a position), separated by commas or
    new lines; a bare position is held in the home department."""
    if not isinstance(text, str) or len(text) > 1000:
        raise InvalidInput("memberships: at most 1,000 characters", fields={"memberships": "invalid"})
    pairs: list[tuple[str, str | None]] = []
    for entry in re.split(r"[,，;；、\n]+", text):
        if not entry.strip():
            continue
        where, _, position = entry.rpartition("/") if "/" in entry else ("", "", entry)
        department = _department_code(where) if where.strip() else home
        if department is None:
            names = "、".join(d.name for d in catalogue().departments.values())
            raise InvalidInput("memberships: '{value}' is not a department of the catalogue ({names})",
                               {"value": where.strip() or entry.strip(), "names": names},
                               fields={"memberships": "unknown department"})
        position = position.strip()[:40] or None
        if (department, position) not in pairs:
            pairs.append((department, position))
    if len(pairs) > MAX_MEMBERSHIPS:
        raise InvalidInput("memberships: at most {max_memberships}",
                           {"max_memberships": MAX_MEMBERSHIPS}, fields={"memberships": "too many"})
    return pairs


def set_memberships(user: User, pairs: list[tuple[str, str | None]]) -> None:
    """Replace what the user holds besides their home department; rows kept where unchanged."""
    wanted = list(dict.fromkeys(pairs))
    keep = [m for m in user.memberships if (m.department, m.position) in wanted]
    have = {(m.department, m.position) for m in keep}
    user.memberships = keep + [Membership(department=d, position=p) for d, p in wanted if (d, p) not in have]


def describe_memberships(user: User) -> str:
    """As the admin page shows and takes them: "科长, 市场监管局/承办人"."""
    departments = catalogue().departments
    return ", ".join(p if d == user.department and p else
                     f"{departments[d].name if d in departments else d}/{p or ''}" for d, p in
                     ((m.department, m.position) for m in user.memberships))


def check_password_policy(username: str, password: str | None) -> None:
    """At least 10 characters, not the username, not one of the 30,000 most common passwords (zxcvbn's list)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput("password: at least {min_password} characters",
                           {"min_password": MIN_PASSWORD}, fields={"password": "too short"})
    name = (username or "").lower()
    if password.lower() == name or (len(name) >= 3 and name in password.lower()):
        raise InvalidInput("password: must not contain the username", fields={"password": "contains the username"})
    if password.lower() in _common_passwords(FREQUENCY_LISTS):
        raise InvalidInput("password: one of the most common passwords; choose another",
                           fields={"password": "too common"})


_common: frozenset[str] | None = None


def _common_passwords(lists) -> frozenset[str]:
    global _common
    if _common is None:
        _common = frozenset(lists["passwords"])
    return _common


TooManyAttempts = throttle.TooManyAttempts
_dummy_hash: str | None = None


def _dummy() -> str:
    """An unknown username costs the same hash check as a known one: its answer time tells nothing."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = generate_password_hash(secrets.token_hex(8), method=PASSWORD_METHOD)
    return _dummy_hash


def _wait_after(failures: int) -> timedelta | None:
    if failures < FREE_FAILURES:
        return None
    return min(timedelta(seconds=30) * 2 ** (failures - FREE_FAILURES), MAX_WAIT)


def throttle_keys(username: str, client: str | None) -> list[str]:
    keys = [f"user:{(username or '')[:100].lower()}"]
    if client:
        keys.append(f"addr:{client[:64]}")
    return keys


def _take_attempt(session: Session, keys: list[str]) -> None:
    for key in keys:
        throttle.take(session, key, _wait_after, LOCK_AFTER if key.startswith("user:") else None,
                      "this account is locked after too many failed sign-ins; an admin can unlock it")


def _forgive(session: Session, keys: list[str]) -> None:
    """The username starts afresh; the address (shared by everyone behind it) takes the attempt back."""
    user_key, *address_keys = keys
    throttle.forgive(session, user_key)
    for key in address_keys:
        throttle.forgive(session, key, entirely=False)


def unlock(session: Session, username: str) -> bool:
    """Lift a username's lockout (an admin's action; the caller records it)."""
    return session.execute(delete(LoginThrottle).where(
        LoginThrottle.key == throttle_keys(username, None)[0], LoginThrottle.locked.is_(True))).rowcount > 0


def sign_in(db, username: str, password: str, client: str | None) -> User:
    """Check a username and password. The attempt is counted first (refused with TooManyAttempts while
    the username or the address waits out its back-off or is locked), then the password is checked
    with no transaction open; a success takes the count back."""
    keys = throttle_keys(username if isinstance(username, str) else "", client)
    db.transaction(lambda session: _take_attempt(session, keys))
    with db.read() as session:
        user = session.scalar(select(User).where(User.username == username)) if isinstance(username, str) else None
        ok = check_password_hash(user.password_hash if user is not None else _dummy(), password or "")
        if user is None or not ok or not user.active:
            raise Forbidden("wrong username or password")
    db.transaction(lambda session: _forgive(session, keys))
    return user


def issue_token(session: Session, user: User) -> tuple[str, ApiToken]:
    token = secrets.token_urlsafe(32)
    issued = now_wall()
    row = ApiToken(user_id=user.id, token_hash=_digest(token), created_at=issued,
                   expires_at=issued + TOKEN_LIFETIME, credential_version=user.credential_version)
    session.add(row)
    session.flush()
    return token, row


def valid_token(session: Session, token: str) -> ApiToken | None:
    """The token's row if it is known, not expired (real time) and not revoked, and its user active."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.expires_at <= now_wall() or not row.user.active \
            or row.credential_version != row.user.credential_version:
        return None
    return row


def revoke(user: User) -> None:
    """Every token and session of the user issued before now stops working."""
    user.credential_version = (user.credential_version or 1) + 1


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def set_stand_in(session: Session, actor_name: str, actor_role: str, username: str, to: str | None,
                 first: date | None, last: date | None) -> User:
    """代理: `to` works what would come to `username` from `first` to `last` (the user or an admin sets
    it; `to` None clears it). The stand-in must be an active colleague of the same role and department."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("no user {username}", {"username": username})
    if actor_name != username and actor_role != "admin":
        raise Forbidden("a user sets their own stand-in (or an admin does)")
    if to is None:
        user.stand_in = user.stand_in_from = user.stand_in_until = None
        return user
    other = colleague(session, to, user.role, user.department)
    if other is None or other.username == username:
        raise InvalidInput("to: '{to}' is not an active {role} of the same department", {"to": to, "role": user.role},
                           fields={"to": "not a colleague"})
    if first is None or last is None or last < first:
        raise InvalidInput("from, until: the first and last day away, until not before from",
                           fields={"until": "invalid"})
    user.stand_in, user.stand_in_from, user.stand_in_until = other.username, first, last
    return user


def colleague(session: Session, name: Any, role: str, department: str | None) -> User | None:
    """The active user `name` of this role (and department, when one is given), or None."""
    if not isinstance(name, str):
        return None
    found = session.scalar(select(User).where(User.username == name))
    if found is None or not found.active or found.role != role or \
            (department is not None and not found.works_in(department)):
        return None
    return found


def assignee_for(session: Session, username: str | None, on: date) -> tuple[str | None, str | None]:
    """Who gets an item meant for `username` on day `on`: the user, or their stand-in while they are away
    (with the note "代 X 办理")."""
    if not username:
        return None, None
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and user.stand_in and user.stand_in_from and user.stand_in_until \
            and user.stand_in_from <= on <= user.stand_in_until:
        return user.stand_in, f"代 {username} 办理"
    return username, None
