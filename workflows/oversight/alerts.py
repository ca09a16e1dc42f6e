"""The alerts inbox: who sees which alert, and acknowledging one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from timers.clock import now

from ..casework.cases import Actor
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..models import Alert, AuditEvent


@dataclass(frozen=True)
class AlertQuery:
    level: str | None = None
    acknowledged: bool | None = None
    case_no: str | None = None
    limit: int = 50
    offset: int = 0


def _visible(stmt, actor: Actor):
    if actor.sees_everything:
        return stmt
    return stmt.where(or_(Alert.department.in_(actor.departments), Alert.assignee == actor.username))


def list_alerts(session: Session, query: AlertQuery, actor: Actor) -> tuple[list[Alert], int]:
    stmt = _visible(select(Alert), actor)
    if query.level:
        stmt = stmt.where(Alert.level == query.level)
    if query.acknowledged is not None:
        stmt = stmt.where(Alert.acknowledged_at.is_not(None) if query.acknowledged
                          else Alert.acknowledged_at.is_(None))
    if query.case_no:
        stmt = stmt.where(Alert.case_no == query.case_no)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Alert.at.desc(), Alert.id.desc()).limit(query.limit)
                           .offset(query.offset)).all()
    return list(rows), total


MAX_AT_ONCE = 100


def acknowledge_many(session: Session, alert_ids: list[int], actor: Actor, comment: str | None = None) -> int:
    """知道了 for several reminders at once (the panel's one button): those still open are acknowledged, those
    someone acknowledged meanwhile are passed over; another department's refuses the lot (nothing written)."""
    if len(alert_ids) > MAX_AT_ONCE:
        raise InvalidInput("ids: at most {max} at once", {"max": MAX_AT_ONCE}, fields={"ids": "too many"})
    done = 0
    for alert_id in dict.fromkeys(alert_ids):
        found = session.get(Alert, alert_id)
        if found is not None and found.acknowledged_at is None:
            acknowledge(session, alert_id, actor, comment)
            done += 1
    return done


def acknowledge(session: Session, alert_id: int, actor: Actor, comment: str | None) -> Alert:
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound("no alert {alert_id}", {"alert_id": alert_id})
    if not actor.sees_everything and alert.department not in actor.departments and alert.assignee != actor.username:
        raise Forbidden("alert {alert_id} concerns another department", {"alert_id": alert_id})
    if alert.acknowledged_at is not None:
        raise Conflict("alert {alert_id} was acknowledged by {acknowledged_by}",
                       {"alert_id": alert_id, "acknowledged_by": alert.acknowledged_by})
    alert.acknowledged_at, alert.acknowledged_by, alert.comment = now(), actor.username, comment
    session.add(AuditEvent(case_id=alert.case_id, at=alert.acknowledged_at, actor=actor.username,
                           action="alert.acknowledged", before={"alert": alert.id, "acknowledged": False},
                           after={"alert": alert.id, "acknowledged": True, "comment": comment}))
    return alert
