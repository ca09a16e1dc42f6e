"""Rows: process versions, cases, work items, the audit trail, users and API tokens.

A case keeps its serialized workflow; what lists and sweeps read (work items, audit) are rows of
their own with indexes, so a worklist never deserializes a workflow.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    or_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import text

from timers.clock import as_utc, now

from .db import Base


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC instants on both databases (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class ProcessVersion(Base):
    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("process_key", "version", name="uq_process_versions_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    # Deferred: a case needs its version's hash to find the cached spec, not the whole document.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    filename: Mapped[str] = mapped_column(String(255))
    deployed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    deployed_by: Mapped[str] = mapped_column(String(100), default="system")
    # task id → {"department": code, "assignee": username|None}, resolved at deploy (processes.parse_definition)
    assignments: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # file name → text of the files deployed with this one (called processes, DMN decisions)
    companions: Mapped[dict | None] = mapped_column(JSON, nullable=True, deferred=True)


class CaseSequence(Base):
    """The last case number issued per year and matter."""

    __tablename__ = "case_sequences"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    matter_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_created", "status", "created_at"),
        Index("ix_cases_created", "created_at"),
        Index("ix_cases_completed", "completed_at"),
        # only cases waiting on a timer or a 容缺 deadline are in these: a finished case costs nothing here
        Index("ix_cases_next_timer_at", "next_timer_at", postgresql_where=text("next_timer_at IS NOT NULL"),
              sqlite_where=text("next_timer_at IS NOT NULL")),
        Index("ix_cases_supplement_due_at", "supplement_due_at",
              postgresql_where=text("supplement_due_at IS NOT NULL"),
              sqlite_where=text("supplement_due_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(String(40), unique=True)
    query_code: Mapped[str] = mapped_column(String(16))
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100))
    matter_code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20))
    applicant_type: Mapped[str] = mapped_column(String(20))
    applicant_name: Mapped[str] = mapped_column(String(200), index=True)
    applicant_id_no: Mapped[str] = mapped_column(String(40), index=True)
    applicant_contact: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    budget: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=1)
    next_timer_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # the material checklist at intake: {"received": [...], "missing": [...], "notice": "..."}
    materials: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 容缺受理: the day by which the missing minor materials must arrive, or the case ends
    supplement_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    process_version: Mapped[ProcessVersion] = relationship()

    __mapper_args__ = {"version_id_col": revision}


class WorkItem(Base):
    __tablename__ = "work_items"
    __table_args__ = (
        Index("ix_work_items_state_department", "state", "department", "created_at"),
        Index("ix_work_items_state_role", "state", "role", "created_at"),
        Index("ix_work_items_assignee_state", "assignee", "state"),
        Index("ix_work_items_case_state", "case_id", "state"),
        # one open item per workflow task (the case lock already ensures it; this is the guard)
        Index("uq_work_items_open_task", "task_id", unique=True, postgresql_where=text("state IN ('open', 'claimed')"),
              sqlite_where=text("state IN ('open', 'claimed')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    case_no: Mapped[str] = mapped_column(String(40))
    task_id: Mapped[str] = mapped_column(String(36))
    step: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    department: Mapped[str] = mapped_column(String(40))
    lane: Mapped[str | None] = mapped_column(String(100))
    budget: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(100))
    # the step's own submission: parallel steps keep their fields apart (case.data holds the latest values)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # why the item is here or how it ended when that is not plain work: "退回：…" on a returned-to step
    note: Mapped[str | None] = mapped_column(String(1000))
    urged: Mapped[int] = mapped_column(Integer, default=0)  # 催办 received
    delegated_by: Mapped[str | None] = mapped_column(String(100))  # 委派: the holder who asked, to confirm
    position: Mapped[str | None] = mapped_column(String(40))  # the position in the department it needs

    case: Mapped[Case] = relationship()


class AuditEvent(Base):
    """Append-only: the migrations add triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    step: Mapped[str | None] = mapped_column(String(100))
    work_item_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    department: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    # bumped by a password reset, logout, disable or role change: every older token and session stops
    credential_version: Mapped[int] = mapped_column(Integer, default=1)
    # 代理: while away (from … until, days in the hall's time zone) items meant for this user go to the stand-in
    stand_in: Mapped[str | None] = mapped_column(String(100))
    # the home department (above) and any other department or position held (承办人, 科长, …)
    memberships: Mapped[list[Membership]] = relationship(lazy="selectin", cascade="all, delete-orphan",
                                                         order_by="Membership.id")
    stand_in_from: Mapped[date | None] = mapped_column(Date)
    stand_in_until: Mapped[date | None] = mapped_column(Date)

    def works_in(self, department: str | None) -> bool:
        return department is not None and (department == self.department or
                                           any(m.department == department for m in self.memberships))

    @classmethod
    def member_of(cls, department: str):
        """SQL: the users who work in `department` (home or membership)."""
        return or_(cls.department == department, cls.memberships.any(Membership.department == department))


class Membership(Base):
    """A department a user works in, and the position held there (None: a member without one). A step
    that names a position is worked by those holding it in the step's department."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "department", "position", name="uq_memberships_user_post"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    department: Mapped[str] = mapped_column(String(40))
    position: Mapped[str | None] = mapped_column(String(40))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    credential_version: Mapped[int] = mapped_column(Integer, default=1)

    user: Mapped[User] = relationship(lazy="joined")


class Setting(Base):
    """Small shared settings: the manual clock, the calendar version, scheduler heartbeats."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


class CalendarYear(Base):
    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    loaded_by: Mapped[str] = mapped_column(String(100))


class CalendarDay(Base):
    """A holiday on a weekday or weekend, or a weekend day that is worked (调休)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # holiday | workday
    name: Mapped[str] = mapped_column(String(100), default="")


class OfficeHoursRule(Base):
    __tablename__ = "office_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    periods: Mapped[list[list[str]]] = mapped_column(JSON)


ACTIVE_CLOCK = text("state IN ('running', 'warned', 'breached', 'paused')")
PENDING_WARNING = text("warned_at IS NULL AND state IN ('running', 'warned', 'breached')")
PENDING_BREACH = text("breached_at IS NULL AND state IN ('running', 'warned', 'breached')")


class SlaClock(Base):
    """One time limit: the whole case, a stage or a step. A row, so "what is due" is an index scan."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        Index("ix_sla_clocks_case", "case_id", "scope"),
        Index("ix_sla_clocks_scope_stopped", "scope", "stopped_at"),
        Index("ix_sla_clocks_scope_started", "scope", "started_at"),
        # the board reads only running clocks: partial indexes keep its first page an index scan
        Index("ix_sla_clocks_active_due", "due_at", "id", postgresql_where=ACTIVE_CLOCK,
              sqlite_where=ACTIVE_CLOCK),
        Index("ix_sla_clocks_active_state", "state", "due_at", postgresql_where=ACTIVE_CLOCK,
              sqlite_where=ACTIVE_CLOCK),
        Index("ix_sla_clocks_active_department", "department", "due_at", postgresql_where=ACTIVE_CLOCK,
              sqlite_where=ACTIVE_CLOCK),
        Index("ix_sla_clocks_active_process", "process_key", "due_at", postgresql_where=ACTIVE_CLOCK,
              sqlite_where=ACTIVE_CLOCK),
        # the sweep looks for warnings and breaches not yet recorded: tiny partial indexes, so a sweep
        # with nothing due costs well under a millisecond however many clocks run
        Index("ix_sla_clocks_pending_warn", "warn_at", postgresql_where=PENDING_WARNING,
              sqlite_where=PENDING_WARNING),
        Index("ix_sla_clocks_pending_due", "due_at", postgresql_where=PENDING_BREACH, sqlite_where=PENDING_BREACH),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    case_no: Mapped[str] = mapped_column(String(40))
    # copied from the case so the board filters without a join
    process_key: Mapped[str | None] = mapped_column(String(100))
    matter_code: Mapped[str | None] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(10))  # case | stage | step
    step: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(36))
    work_item_id: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(40))
    budget: Mapped[str] = mapped_column(String(40))
    budget_minutes: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    calendar_missing: Mapped[int | None] = mapped_column(Integer)  # the year with no schedule
    state: Mapped[str] = mapped_column(String(12))  # running | warned | breached | paused | met | met_late
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paused_minutes: Mapped[int] = mapped_column(Integer, default=0)
    extended_days: Mapped[int] = mapped_column(Integer, default=0)  # approved 延期, in working days
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # working minutes used, fixed when the clock stops (the statistics read it, not the calendar)
    used_minutes: Mapped[int | None] = mapped_column(Integer)


class Pause(Base):
    """挂起: the case waits on the applicant (补正) or a special procedure (特别程序)."""

    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # supplement | special
    reason: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_by: Mapped[str] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_by: Mapped[str | None] = mapped_column(String(100))
    working_minutes: Mapped[int | None] = mapped_column(Integer)


class Alert(Base):
    """A warning, a breach or an admin notice. `dedupe_key` is unique: no alert is produced twice."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_ack_at", "acknowledged_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    level: Mapped[str] = mapped_column(String(20))  # warning | breach | calendar_missing | escalation
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    case_no: Mapped[str | None] = mapped_column(String(40))
    clock_id: Mapped[int | None] = mapped_column(ForeignKey("sla_clocks.id"))
    step: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(40))
    assignee: Mapped[str | None] = mapped_column(String(100))
    concerned: Mapped[list[str]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcDateTime())  # the true instant it happened
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(String(1000))


class AlertDelivery(Base):
    """One alert to one channel target; retried until sent, never lost."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel", "target", name="uq_alert_deliveries_target"),
        Index("ix_alert_deliveries_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(10))  # email | webhook
    target: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(10))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class FormSubmission(Base):
    """A form's one-time token: a double-submitted form finds its token used and does not act twice."""

    __tablename__ = "form_submissions"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)


class Rating(Base):
    """好差评: one rating per case, 1 (非常不满意) to 5 (非常满意)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now, index=True)
    followup_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class Attachment(Base):
    """An uploaded file, stored outside the web root under a generated name."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    work_item_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # supplement | step
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now)


class DailyTally(Base):
    """One closed day's totals for the statistics, by kind and key; a month's report reads about
    thirty days of these instead of a month of cases and clocks. `hist` counts clocks by working
    minutes used, so the 90th percentile is exact."""

    __tablename__ = "daily_tallies"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    # received | tolerated | finished | accepted | clock | paused | supplement | rating
    kind: Mapped[str] = mapped_column(String(12))
    process_key: Mapped[str | None] = mapped_column(String(100))
    matter_code: Mapped[str | None] = mapped_column(String(40))
    department: Mapped[str | None] = mapped_column(String(40))
    scope: Mapped[str | None] = mapped_column(String(10))
    state: Mapped[str | None] = mapped_column(String(20))  # clock state, case status, pause kind, score
    budget: Mapped[str | None] = mapped_column(String(40))
    n: Mapped[int] = mapped_column(Integer)
    n_used: Mapped[int] = mapped_column(Integer, default=0)
    used_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    hist: Mapped[dict[str, int] | None] = mapped_column(JSON)


class TalliedDay(Base):
    """A day whose tallies are built; removed again if a late write lands in it."""

    __tablename__ = "tallied_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    built_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Incident(Base):
    """A periodic job failed on one case: rolled back for that case only, retried with back-off,
    listed for the admins until it succeeds (or an admin retries it after fixing the cause)."""

    __tablename__ = "incidents"
    __table_args__ = (
        # one open incident per job and case; the jobs skip a case while its retry is not due
        Index("uq_incidents_open", "job", "case_id", unique=True, postgresql_where=text("state = 'open'"),
              sqlite_where=text("state = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    case_no: Mapped[str | None] = mapped_column(String(40))
    element: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="open")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class LoginThrottle(Base):
    """Failed sign-ins per username and per client address: back-off, then a lockout an admin lifts."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "user:NAME" or "addr:ADDRESS"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    locked: Mapped[bool] = mapped_column(default=False)  # until an admin lifts it


class Extension(Base):
    """A 延期 (行政许可法 art. 42): requested by the department working the case, decided by a supervisor."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_no: Mapped[str] = mapped_column(String(40))
    working_days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    move_steps: Mapped[bool] = mapped_column(default=False)  # the open steps' clocks move too
    state: Mapped[str] = mapped_column(String(20), default="requested")  # requested | approved | refused
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(String(500))
    old_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    new_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class CaseNote(Base):
    """The case's internal comment thread (staff only, never shown to the applicant)."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    text: Mapped[str] = mapped_column(String(2000))


class CaseCopy(Base):
    """抄送: a case copied to a user or a department, read-only; read when that user opens it."""

    __tablename__ = "case_copies"
    __table_args__ = (Index("ix_case_copies_user", "to_user", "read_at"),
                      Index("ix_case_copies_department", "to_department", "read_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_no: Mapped[str] = mapped_column(String(40))
    to_user: Mapped[str | None] = mapped_column(String(100))
    to_department: Mapped[str | None] = mapped_column(String(40))
    step: Mapped[str | None] = mapped_column(String(100))
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    read_by: Mapped[str | None] = mapped_column(String(100))


class Supervision(Base):
    """A formal 督办: a supervisor asks a department for a reply within a working-time limit (its own clock)."""

    __tablename__ = "supervisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_no: Mapped[str] = mapped_column(String(40))
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"))
    department: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(1000))
    reply_within: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | replied
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reply: Mapped[str | None] = mapped_column(String(2000))
    replied_by: Mapped[str | None] = mapped_column(String(100))
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Consultation(Base):
    """加签 (征求意见): the holder of a step asks a person or a department for an opinion before deciding."""

    __tablename__ = "consultations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id"), index=True)
    to_user: Mapped[str | None] = mapped_column(String(100))
    to_department: Mapped[str | None] = mapped_column(String(40))
    question: Mapped[str] = mapped_column(String(1000))
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | answered | withdrawn
    asked_by: Mapped[str] = mapped_column(String(100))
    asked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answer: Mapped[str | None] = mapped_column(String(2000))
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
