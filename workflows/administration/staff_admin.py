"""Admin work on staff accounts: list, create, disable or enable, reset a password, change role and
department. Every change is an audit event (who, what, before → after)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from timers.clock import now

from ..casework.cases import Actor
from ..definitions.catalogue import ROLES, catalogue
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..models import AuditEvent, User
from . import users


def record(session: Session, actor: Actor, action: str, before: dict | None, after: dict | None) -> None:
    """An admin action in the audit log (no case)."""
    session.add(AuditEvent(case_id=None, at=now(), actor=actor.username, action=action, before=before, after=after))


def _admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise Forbidden("only an admin manages users")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("no user {username}", {"username": username})
    return user


def create(session: Session, actor: Actor, username: str, role: str, password: str, department: str | None,
           display_name: str) -> User:
    _admin(actor)
    user = users.add_user(session, username, role, password, department or None, display_name)
    record(session, actor, "user.created", None, {"user": username, "role": role, "department": user.department})
    return user


def set_active(session: Session, actor: Actor, username: str, active: bool) -> User:
    _admin(actor)
    user = _user(session, username)
    if user.username == actor.username and not active:
        raise InvalidInput("you cannot disable your own account")
    before = user.active
    user.active = active
    # disabled: its tokens and sessions stop at once; enabled again: the old ones stay dead
    users.revoke(user)
    record(session, actor, "user.enabled" if active else "user.disabled", {"user": username, "active": before},
           {"user": username, "active": active})
    return user


def reset_password(session: Session, actor: Actor, username: str, password: str) -> User:
    _admin(actor)
    user = _user(session, username)
    users.check_password_policy(username, password)
    user.password_hash = generate_password_hash(password, method=users.PASSWORD_METHOD)
    users.revoke(user)  # every older token and session of the user stops
    record(session, actor, "user.password_reset", None, {"user": username})
    return user


def assign(session: Session, actor: Actor, username: str, role: str, department: str | None,
           memberships: str | None = None) -> User:
    """Role, home department and — when given, as the admin page writes them — the other departments and
    positions held ("科长, 市场监管局/承办人")."""
    _admin(actor)
    if role not in ROLES:
        raise InvalidInput("role: one of {roles}", {"roles": ', '.join(ROLES)})
    if department and department not in catalogue().departments:
        raise InvalidInput("department: one of {departments}", {"departments": ', '.join(catalogue().departments)})
    if role in ("clerk", "reviewer") and not department:
        raise InvalidInput("department: a {role} needs one", {"role": role})
    user = _user(session, username)
    before = {"user": username, "role": user.role, "department": user.department,
              "memberships": users.describe_memberships(user)}
    if memberships is not None:
        users.set_memberships(user, users.parse_memberships(memberships, department or None))
    user.role, user.department = role, department or None
    users.revoke(user)  # what the old sessions may do has changed: they sign in again
    record(session, actor, "user.assigned", before, {"user": username, "role": role, "department": user.department,
                                                      "memberships": users.describe_memberships(user)})
    return user


def unlock(session: Session, actor: Actor, username: str) -> User:
    """Lift the lockout of a username after too many failed sign-ins."""
    _admin(actor)
    user = _user(session, username)
    if not users.unlock(session, username):
        raise Conflict("{username} is not locked", {"username": username})
    record(session, actor, "user.unlocked", {"user": username, "locked": True}, {"user": username, "locked": False})
    return user


def locked_usernames(session: Session) -> set[str]:
    from ..models import LoginThrottle

    return {key[len("user:"):] for key in session.scalars(select(LoginThrottle.key).where(
        LoginThrottle.key.like("user:%"), LoginThrottle.locked.is_(True)))}


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def admin_history(session: Session, limit: int = 100) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.case_id.is_(None))
                                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))


def hand_over(session: Session, actor: Actor, username: str, to: str) -> int:
    """离职转办: every open item a leaving user holds goes to a colleague of the same role and department,
    in one action; each item's history says so. Returns how many moved."""
    from ..casework.cases import OPEN_STATES, _audit
    from ..models import Case, WorkItem

    _admin(actor)
    leaving, taking = _user(session, username), _user(session, to)
    if leaving.username == taking.username:
        raise InvalidInput("to: another user")
    if not taking.active or taking.role != leaving.role:
        raise InvalidInput("to: {to} is not an active {role}",
                           {"to": to, "role": leaving.role}, fields={"to": "not a colleague"})
    items = list(session.scalars(select(WorkItem).where(WorkItem.assignee == leaving.username,
                                                        WorkItem.state.in_(OPEN_STATES)).with_for_update()))
    # the taker must work in every department the leaving user holds items of (and hold the positions)
    for item in items:
        if not taking.works_in(item.department) or (item.position and (item.department, item.position) not in
                                                    {(m.department, m.position) for m in taking.memberships}):
            raise InvalidInput("to: {to} does not work as {position} in the {department} department, "
                               "where {username} holds item {id}",
                               {"to": to, "position": item.position or leaving.role, "department": item.department,
                                "username": username, "id": item.id},
                               fields={"to": "not a colleague"})
    at = now()
    for item in items:
        item.assignee, item.claimed_at, item.state = taking.username, at, "claimed"
        item.note = f"离职转办：由 {leaving.username} 转 {taking.username}"
        _audit(session, session.get(Case, item.case_id), actor, "work_item.handed_over", step=item.step, item=item,
               before={"assignee": leaving.username}, after={"assignee": taking.username})
    record(session, actor, "user.handed_over", {"user": username, "open_items": len(items)},
           {"to": to, "items": [i.id for i in items]})
    return len(items)
