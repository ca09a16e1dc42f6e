"""Request and response shapes. Times leave as ISO-8601 in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import RAISE, Schema, fields, validate

from timers.clock import SHANGHAI, to_local
from workflows.casework.cases import ITEM_STATES


class Strict(Schema):
    class Meta:
        unknown = RAISE


class LocalTime(fields.DateTime):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else to_local(value).isoformat()


class TokenRequest(Strict):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UserOut(Schema):
    username = fields.String()
    role = fields.String()
    department = fields.String(allow_none=True)


class TokenOut(Schema):
    token = fields.String()
    expires_at = LocalTime()
    user = fields.Nested(UserOut)


class FieldOut(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    options = fields.List(fields.String())


class StepOut(Schema):
    id = fields.String(attribute="bpmn_id")
    name = fields.String()
    kind = fields.String()
    lane = fields.String(allow_none=True)
    department = fields.String()
    role = fields.String()
    budget = fields.String(allow_none=True)
    budget_expr = fields.String(allow_none=True)
    fields = fields.Method("_fields")

    def _fields(self, step):
        return [f.describe() for f in step.fields]


class ProcessOut(Schema):
    key = fields.String()
    name = fields.String()
    version = fields.Integer()
    versions = fields.Integer()
    deployed_at = LocalTime()
    matter = fields.String(allow_none=True)
    case_budget = fields.String(allow_none=True)
    case_budget_expr = fields.String(allow_none=True)
    start_fields = fields.List(fields.Dict())
    steps = fields.List(fields.Nested(StepOut))


class ProcessList(Schema):
    processes = fields.List(fields.Nested(ProcessOut))


class ApplicantIn(Strict):
    type = fields.String(required=True, validate=validate.OneOf(["company", "person"]))
    name = fields.String(required=True)
    id_no = fields.String(required=True)
    contact = fields.String(allow_none=True)


class CaseCreate(Strict):
    process = fields.String(required=True, validate=validate.Length(min=1, max=100))
    matter = fields.String(validate=validate.Length(min=1, max=40))
    applicant = fields.Nested(ApplicantIn, required=True)
    data = fields.Dict(keys=fields.String(), load_default=dict)


class WorkItemOut(Schema):
    id = fields.Integer()
    case_no = fields.String()
    step = fields.String()
    name = fields.String()
    role = fields.String()
    department = fields.String()
    lane = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    state = fields.String()
    budget = fields.String(allow_none=True)
    created_at = LocalTime()
    claimed_at = LocalTime(allow_none=True)
    completed_at = LocalTime(allow_none=True)
    completed_by = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True, metadata={"description": "what the step submitted (completed items)"})
    note = fields.String(allow_none=True, metadata={"description": "why it is here (退回), or how it ended"})
    urged = fields.Integer(metadata={"description": "催办 received"})
    position = fields.String(allow_none=True, metadata={"description": "the position in the department it needs"})


class WorkItemList(Schema):
    items = fields.List(fields.Nested(WorkItemOut))
    total = fields.Integer(metadata={"description": "matching items, counted up to 10,000 (10001 means more)"})
    limit = fields.Integer()
    offset = fields.Integer()


class WorkItemQueryArgs(Strict):
    role = fields.String(validate=validate.OneOf(["clerk", "reviewer", "supervisor", "admin"]))
    department = fields.String(validate=validate.Length(min=1, max=40))
    assignee = fields.String(validate=validate.Length(min=1, max=100))
    state = fields.String(validate=validate.OneOf([*ITEM_STATES, "active"]))
    case_no = fields.String(validate=validate.Length(min=1, max=40))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class CompleteIn(Strict):
    data = fields.Dict(keys=fields.String(), load_default=dict)


class ReturnIn(Strict):
    to = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100),
                       metadata={"description": "an earlier step's id, or \"window\" (default: the step before)"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class TransferIn(Strict):
    to = fields.String(required=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class UrgeIn(Strict):
    message = fields.String(load_default="", validate=validate.Length(max=500))


class ReturnTargetOut(Schema):
    step = fields.String()
    name = fields.String()
    completed_by = fields.String(allow_none=True)


class ReturnTargetList(Schema):
    targets = fields.List(fields.Nested(ReturnTargetOut))


class EventOut(Schema):
    at = LocalTime()
    actor = fields.String()
    action = fields.String()
    step = fields.String(allow_none=True)
    work_item_id = fields.Integer(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


class CaseOut(Schema):
    case_no = fields.String()
    query_code = fields.String(allow_none=True, metadata={"description": "the window and admins only"})
    status = fields.String()
    outcome = fields.String(allow_none=True)
    process = fields.String(attribute="process_key")
    process_version = fields.Integer(attribute="process_version.version")
    matter = fields.String(attribute="matter_code")
    applicant = fields.Dict()
    data = fields.Dict()
    budget = fields.String(allow_none=True)
    created_at = LocalTime()
    updated_at = LocalTime()
    completed_at = LocalTime(allow_none=True)
    created_by = fields.String()
    next_timer_at = LocalTime(allow_none=True, metadata={"description": "when the process's next timer fires "
                                                                       "(a notice period ends, a wait is over)"})


class CaseDetail(CaseOut):
    notes = fields.List(fields.Nested("NoteOut"), metadata={"description": "the internal thread (staff only)"})
    opinions = fields.List(fields.Nested("ConsultationOut"), metadata={"description": "加签: opinions asked"})
    clocks = fields.List(fields.Nested("ClockOut"))
    pauses = fields.List(fields.Nested("PauseOut"))
    open_items = fields.List(fields.Nested(WorkItemOut))
    done_items = fields.List(fields.Nested(WorkItemOut))
    history = fields.List(fields.Nested(EventOut))


class ClockOut(Schema):
    id = fields.Integer(attribute="clock.id")
    scope = fields.String(attribute="clock.scope")
    step = fields.String(attribute="clock.step", allow_none=True)
    name = fields.String(attribute="clock.name")
    department = fields.String(attribute="clock.department", allow_none=True)
    budget = fields.String(attribute="clock.budget")
    state = fields.String(attribute="clock.state")
    started_at = LocalTime(attribute="clock.started_at")
    due_at = LocalTime(attribute="clock.due_at", allow_none=True)
    warn_at = LocalTime(attribute="clock.warn_at", allow_none=True)
    warned_at = LocalTime(attribute="clock.warned_at", allow_none=True)
    breached_at = LocalTime(attribute="clock.breached_at", allow_none=True)
    stopped_at = LocalTime(attribute="clock.stopped_at", allow_none=True)
    paused_minutes = fields.Integer(attribute="clock.paused_minutes")
    extended_days = fields.Integer(attribute="clock.extended_days")
    calendar_missing = fields.Integer(attribute="clock.calendar_missing", allow_none=True)
    used_minutes = fields.Integer(allow_none=True)
    left_minutes = fields.Integer(allow_none=True)
    colour = fields.String()


class PauseOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    reason = fields.String()
    started_at = LocalTime()
    started_by = fields.String()
    ended_at = LocalTime(allow_none=True)
    ended_by = fields.String(allow_none=True)
    working_minutes = fields.Integer(allow_none=True)


class ExtensionIn(Strict):
    working_days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=365))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    move_steps = fields.Boolean(load_default=False)


class DecisionIn(Strict):
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ExtensionOut(Schema):
    id = fields.Integer()
    case_no = fields.String()
    working_days = fields.Integer()
    reason = fields.String()
    move_steps = fields.Boolean()
    state = fields.String()
    requested_by = fields.String()
    requested_at = LocalTime()
    decided_by = fields.String(allow_none=True)
    decided_at = LocalTime(allow_none=True)
    decision_note = fields.String(allow_none=True)
    old_due_at = LocalTime(allow_none=True)
    new_due_at = LocalTime(allow_none=True)


class NoteIn(Strict):
    text = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class NoteOut(Schema):
    id = fields.Integer()
    author = fields.String()
    at = LocalTime()
    text = fields.String()


class StandInIn(Strict):
    to = fields.String(required=True, allow_none=True, validate=validate.Length(min=1, max=100))
    from_ = fields.Date(data_key="from", load_default=None, allow_none=True)
    until = fields.Date(load_default=None, allow_none=True)


class StandInOut(Schema):
    username = fields.String()
    stand_in = fields.String(allow_none=True)
    stand_in_from = fields.Date(data_key="from", allow_none=True)
    stand_in_until = fields.Date(data_key="until", allow_none=True)


class CcIn(Strict):
    to = fields.List(fields.String(validate=validate.Length(min=1, max=100)), required=True,
                     validate=validate.Length(min=1, max=20))


class CopyOut(Schema):
    id = fields.Integer()
    case_no = fields.String()
    to_user = fields.String(allow_none=True)
    to_department = fields.String(allow_none=True)
    step = fields.String(allow_none=True)
    by = fields.String()
    at = LocalTime()
    read_at = LocalTime(allow_none=True)


class CopyList(Schema):
    copies = fields.List(fields.Nested(CopyOut))


class CopyQueryArgs(Strict):
    unread = fields.Boolean(load_default=False)


class SupervisionIn(Strict):
    item_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                             validate=validate.Range(min=1, max=2**31 - 1))
    department = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40))
    reply_within = fields.String(required=True, validate=validate.Length(min=3, max=40))
    message = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ReplyIn(Strict):
    reply = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class SupervisionOut(Schema):
    id = fields.Integer()
    case_no = fields.String()
    work_item_id = fields.Integer(allow_none=True)
    department = fields.String()
    message = fields.String()
    reply_within = fields.String()
    state = fields.String()
    opened_by = fields.String()
    opened_at = LocalTime()
    reply = fields.String(allow_none=True)
    replied_by = fields.String(allow_none=True)
    replied_at = LocalTime(allow_none=True)


class ConsultIn(Strict):
    to = fields.List(fields.String(validate=validate.Length(min=1, max=100)), required=True,
                     validate=validate.Length(min=1, max=20))
    question = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class AnswerIn(Strict):
    answer = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ConsultationOut(Schema):
    id = fields.Integer()
    work_item_id = fields.Integer()
    to_user = fields.String(allow_none=True)
    to_department = fields.String(allow_none=True)
    question = fields.String()
    state = fields.String()
    asked_by = fields.String()
    asked_at = LocalTime()
    answer = fields.String(allow_none=True)
    answered_by = fields.String(allow_none=True)
    answered_at = LocalTime(allow_none=True)


class ConsultationList(Schema):
    consultations = fields.List(fields.Nested(ConsultationOut))


class DelegateIn(Strict):
    to = fields.String(required=True, validate=validate.Length(min=1, max=100))


class EndIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class MessageIn(Strict):
    kind = fields.String(load_default="message", validate=validate.OneOf(["message", "signal"]))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200),
                         metadata={"description": "the message's or signal's name, or the id of the waiting event"})
    data = fields.Dict(keys=fields.String(), load_default=dict,
                       metadata={"description": "values the message carries; they join the case data"})


class WaitingOut(Schema):
    kind = fields.String(metadata={"description": "message or signal"})
    name = fields.String(allow_none=True)
    element = fields.String()
    element_name = fields.String(allow_none=True)
    carries = fields.List(fields.String(), metadata={"description": "values the data must hold: what the process "
                                                                      "matches the message by"})


class PauseIn(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["supplement", "special"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AlertOut(Schema):
    id = fields.Integer()
    level = fields.String()
    case_no = fields.String(allow_none=True)
    step = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    concerned = fields.List(fields.String())
    message = fields.String()
    at = LocalTime()
    created_at = LocalTime()
    acknowledged_at = LocalTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)


class AlertList(Schema):
    alerts = fields.List(fields.Nested(AlertOut))
    total = fields.Integer()


class AlertQueryArgs(Strict):
    level = fields.String(validate=validate.OneOf(["warning", "breach", "calendar_missing", "escalation", "incident",
                                                  "supplied", "terminated", "notice", "urge"]))
    acknowledged = fields.Boolean()
    case_no = fields.String(validate=validate.Length(min=1, max=40))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class IncidentOut(Schema):
    id = fields.Integer()
    job = fields.String()
    case_no = fields.String(allow_none=True)
    element = fields.String(allow_none=True)
    error = fields.String()
    state = fields.String()
    attempts = fields.Integer()
    first_at = LocalTime()
    last_at = LocalTime()
    next_attempt_at = LocalTime(allow_none=True)
    resolved_at = LocalTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)


class IncidentList(Schema):
    incidents = fields.List(fields.Nested(IncidentOut))


class IncidentQueryArgs(Strict):
    state = fields.String(load_default="open", validate=validate.OneOf(["open", "resolved", "all"]))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class AcknowledgeManyIn(Strict):
    ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=2**31 - 1)), required=True,
                      validate=validate.Length(min=1, max=100))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class AcknowledgedOut(Schema):
    acknowledged = fields.Integer()


class AcknowledgeIn(Strict):
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class ClockSetIn(Strict):
    now = fields.AwareDateTime(required=True, default_timezone=SHANGHAI)
    frozen = fields.Boolean(load_default=False)


class ClockStateOut(Schema):
    now = LocalTime()
    manual = fields.Boolean()


class CalendarYearOut(Schema):
    year = fields.Integer()
    source = fields.String()
    loaded_at = LocalTime()
    loaded_by = fields.String()


class CalendarDayOut(Schema):
    day = fields.Date()
    kind = fields.String()
    name = fields.String()


class CalendarYears(Schema):
    years = fields.List(fields.Nested(CalendarYearOut))


class CalendarDays(Schema):
    year = fields.Integer()
    days = fields.List(fields.Nested(CalendarDayOut))


class CalendarLoadIn(Strict):
    holidays = fields.Dict(keys=fields.Date(), values=fields.String())
    workdays = fields.Dict(keys=fields.Date(), values=fields.String())


class CalendarDayIn(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["holiday", "workday", "normal"]))
    name = fields.String(load_default="", validate=validate.Length(max=100))


class OfficeHoursIn(Strict):
    periods = fields.List(fields.List(fields.String(), validate=validate.Length(equal=2)), required=True,
                          validate=validate.Length(min=1, max=6))
    valid_from = fields.Date(load_default=None, allow_none=True)
    valid_to = fields.Date(load_default=None, allow_none=True)


class CalendarChangeOut(Schema):
    changed = fields.Integer()
    moved_clocks = fields.List(fields.Dict())


# working-time maths spans the calendar's years, not the whole datetime range
_CALENDAR_SPAN = validate.Range(min=datetime(2000, 1, 1, tzinfo=UTC), max=datetime(2100, 12, 31, tzinfo=UTC),
                                error="between 2000 and 2100")


class DueArgs(Strict):
    start = fields.AwareDateTime(required=True, default_timezone=SHANGHAI, validate=_CALENDAR_SPAN)
    duration = fields.String(required=True, validate=validate.Length(min=3, max=40))


class DueOut(Schema):
    start = LocalTime()
    duration = fields.String()
    due = LocalTime()


class ElapsedArgs(Strict):
    start = fields.AwareDateTime(required=True, default_timezone=SHANGHAI, validate=_CALENDAR_SPAN)
    end = fields.AwareDateTime(required=True, default_timezone=SHANGHAI, validate=_CALENDAR_SPAN)


class ElapsedOut(Schema):
    minutes = fields.Integer()
    duration = fields.String()
