from flask_smorest import Blueprint
from sqlalchemy import select

from timers.calendar import CalendarMissing
from timers.durations import parse_duration
from webapp.api.schemas import (
    CalendarChangeOut,
    CalendarDayIn,
    CalendarDays,
    CalendarLoadIn,
    CalendarYears,
    DueArgs,
    DueOut,
    ElapsedArgs,
    ElapsedOut,
    OfficeHoursIn,
)
from webapp.auth import current_actor, database, login_required
from workflows.administration import calendar_store
from workflows.errors import Conflict, Forbidden, InvalidInput
from workflows.models import CalendarYear
from workflows.oversight import sla

PREFIX = "/calendar"
blp = Blueprint("calendar", __name__, description="The working calendar: holidays, 调休 make-up days, office hours")


def _admin():
    if current_actor().role != "admin":
        raise Forbidden("only an admin changes the calendar")
    return current_actor()


def _moved(session) -> list[dict]:
    return [{"clock": c.id, "case_no": c.case_no, "name": c.name,
             "due_at": c.due_at.isoformat() if c.due_at else None, "calendar_missing": c.calendar_missing}
            for c in sla.recompute(session)]


@blp.route("/years")
@blp.response(200, CalendarYears)
@blp.doc(security=[{"bearer": []}])
@login_required
def years():
    with database().read() as session:
        return {"years": session.scalars(select(CalendarYear).order_by(CalendarYear.year)).all()}


@blp.route("/years/<int:year>")
@blp.response(200, CalendarDays)
@blp.doc(security=[{"bearer": []}])
@login_required
def year_days(year: int):
    with database().read() as session:
        return {"year": year, "days": calendar_store.year_days(session, year)}


@blp.route("/years/<int:year>", methods=["POST"])
@blp.arguments(CalendarLoadIn)
@blp.response(200, CalendarChangeOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def load_year(body, year: int):
    """Load a year: the given holidays and make-up days, or with an empty body the official schedule."""
    actor = _admin()
    if not 2000 <= year <= 2100:
        raise InvalidInput("year: 2000-2100")

    def work(session):
        if "holidays" in body or "workdays" in body:
            n = calendar_store.load_year(session, year, body.get("holidays", {}), body.get("workdays", {}),
                                         actor.username)
        else:
            try:
                n = calendar_store.load_official_year(session, year, actor.username)
            except CalendarMissing:
                raise Conflict("chinese-calendar does not know {year} yet; send its holidays and workdays",
                               {"year": year}) \
                    from None
        return {"changed": n, "moved_clocks": _moved(session)}
    return database().transaction(work)


@blp.route("/days/<day>", methods=["PUT"])
@blp.arguments(CalendarDayIn)
@blp.response(200, CalendarChangeOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def set_day(body, day: str):
    actor = _admin()
    from datetime import date

    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput("'{day}' is not a date YYYY-MM-DD", {"day": day}) from None

    def work(session):
        calendar_store.set_day(session, when, body["kind"], body["name"], actor.username)
        return {"changed": 1, "moved_clocks": _moved(session)}
    return database().transaction(work)


@blp.route("/office-hours/<name>", methods=["PUT"])
@blp.arguments(OfficeHoursIn)
@blp.response(200, CalendarChangeOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def office_hours(body, name: str):
    _admin()

    def work(session):
        calendar_store.set_office_hours(session, name, [tuple(p) for p in body["periods"]], body["valid_from"],
                                        body["valid_to"])
        return {"changed": 1, "moved_clocks": _moved(session)}
    return database().transaction(work)


def _calendar():
    with database().read() as session:
        return calendar_store.working_calendar(session)


@blp.route("/due")
@blp.arguments(DueArgs, location="query")
@blp.response(200, DueOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def due(args):
    """The due instant of a working-time duration from a start instant."""
    try:
        budget = parse_duration(args["duration"])
    except ValueError as exc:
        raise InvalidInput("duration: {exc}", {"exc": exc}) from None
    try:
        at = _calendar().due(args["start"], budget)
    except CalendarMissing as exc:
        raise Conflict("calendar missing: {exc}", {"exc": exc}) from None
    return {"start": args["start"], "duration": budget.iso(), "due": at}


@blp.route("/elapsed")
@blp.arguments(ElapsedArgs, location="query")
@blp.response(200, ElapsedOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def elapsed(args):
    try:
        minutes = _calendar().elapsed_minutes(args["start"], args["end"])
    except CalendarMissing as exc:
        raise Conflict("calendar missing: {exc}", {"exc": exc}) from None
    h, m = divmod(abs(minutes), 60)
    return {"minutes": minutes, "duration": ("-" if minutes < 0 else "") + f"PT{h}H{m}M"}
