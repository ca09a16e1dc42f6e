"""Incidents: a periodic job that fails on one case records it here and goes on with the others.

The failing case's work is rolled back (its own transaction), the admins are alerted once, and the
job tries the case again with back-off (30 s, 2 min, 10 min, 1 h, then every 6 h). When a later try
succeeds the incident is resolved by itself; an admin who fixed the cause retries it at once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from timers.clock import now

from ..errors import Conflict, NotFound
from ..models import AuditEvent, Incident
from .sla import record_alerts

BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1),
           timedelta(hours=6))


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


def waiting(job: str, case_id_column):
    """A filter for a job's selection: leave out cases whose incident is not due for a retry yet."""
    return ~exists(select(Incident.id).where(and_(
        Incident.job == job, Incident.case_id == case_id_column, Incident.state == "open",
        Incident.next_attempt_at > now())))


def record(session: Session, job: str, case_id: int | None, case_no: str | None, error: str,
           element: str | None = None) -> Incident:
    """Record (or count again) the open incident of this job and case; alert the admins the first time."""
    at = now()
    incident = session.scalar(select(Incident).where(Incident.job == job, Incident.case_id == case_id,
                                                     Incident.state == "open").with_for_update())
    if incident is None:
        incident = Incident(job=job, case_id=case_id, case_no=case_no, element=element, error=error[:4000],
                            state="open", attempts=1, first_at=at, last_at=at, next_attempt_at=at + backoff(1))
        session.add(incident)
        session.flush()
        record_alerts(session, [dict(
            dedupe_key=f"incident:{incident.id}", level="incident", case_id=case_id, case_no=case_no,
            concerned=["role:admin"], at=at, created_at=at,
            message=f"定时任务 {job} 处理办件 {case_no or '-'} 出错，已暂停该件并将重试：{error[:300]}")])
    else:
        incident.attempts += 1
        incident.error, incident.element, incident.last_at = error[:4000], element, at
        incident.next_attempt_at = at + backoff(incident.attempts)
    return incident


def resolve(session: Session, job: str, case_id: int | None, by: str = "system") -> None:
    """A try that went through closes the case's open incident of that job."""
    incident = session.scalar(select(Incident).where(Incident.job == job, Incident.case_id == case_id,
                                                     Incident.state == "open"))
    if incident is not None:
        incident.state, incident.resolved_at, incident.resolved_by = "resolved", now(), by
        incident.next_attempt_at = None


def retry(session: Session, incident_id: int, actor: str) -> Incident:
    """The admin fixed the cause: the job tries the case again on its next run."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise NotFound("no incident {incident_id}", {"incident_id": incident_id})
    if incident.state != "open":
        raise Conflict("incident {incident_id} is {state}", {"incident_id": incident_id, "state": incident.state})
    at = now()
    incident.next_attempt_at = at
    session.add(AuditEvent(case_id=incident.case_id, at=at, actor=actor, action="incident.retry",
                           before={"incident": incident.id, "attempts": incident.attempts},
                           after={"incident": incident.id, "next_attempt_at": at.isoformat()}))
    return incident


def list_incidents(session: Session, state: str | None = "open", limit: int = 100, offset: int = 0
                   ) -> list[Incident]:
    stmt = select(Incident)
    if state:
        stmt = stmt.where(Incident.state == state)
    return list(session.scalars(stmt.order_by(Incident.last_at.desc(), Incident.id.desc())
                                .limit(limit).offset(offset)))


def open_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Incident).where(Incident.state == "open")) or 0
