from flask_smorest import Blueprint

from webapp.api.schemas import CaseCreate, CaseDetail, EndIn, MessageIn, NoteIn, NoteOut, PauseIn, PauseOut, WaitingOut
from webapp.auth import current_actor, database, login_required
from workflows.casework import cases, copies, messages, visibility, window

PREFIX = "/cases"
blp = Blueprint("cases", __name__, description="Cases (办件)")


def _detail(session, case) -> dict:
    view = cases.case_view(session, case)
    fields = ("case_no", "status", "outcome", "process_key", "process_version", "matter_code",
              "data", "budget", "created_at", "updated_at", "completed_at", "created_by", "next_timer_at")
    # the query code lets its holder act as the applicant: the window hands it over, nobody else sees it
    code = case.query_code if visibility.sees_query_code(current_actor()) else None
    return {**{name: getattr(case, name) for name in fields}, "query_code": code,
            "applicant": cases.applicant_of(case), "notes": visibility.notes(session, case.id),
            "opinions": copies.opinions_of_case(session, case.id), **view}


@blp.route("", methods=["POST"])
@blp.arguments(CaseCreate)
@blp.response(201, CaseDetail)
@blp.doc(security=[{"bearer": []}])
@login_required
def start(body):
    """Start a case of a deployed process (收件): issues the case number and the applicant's query code."""
    actor = current_actor()
    return cases.open_case(database(), body["process"], body["applicant"], body.get("data"), actor,
                           matter_code=body.get("matter"), then=_detail)


@blp.route("/<case_no>")
@blp.response(200, CaseDetail)
@blp.doc(security=[{"bearer": []}])
@login_required
def get(case_no: str):
    """A case: status, applicant, data, open work items, done steps and the full history."""
    with database().read() as session:
        return _detail(session, visibility.case_for(session, case_no, current_actor()))


@blp.route("/<case_no>/pause", methods=["POST"])
@blp.arguments(PauseIn)
@blp.response(201, PauseOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def pause(body, case_no: str):
    """挂起: 补正 (supplement: waiting for the applicant) or 特别程序 (special); every clock of the case stops."""
    actor = current_actor()
    return database().transaction(lambda s: cases.pause(s, case_no, body["kind"], body["reason"], actor))


@blp.route("/<case_no>/resume", methods=["POST"])
@blp.response(200, PauseOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def resume(case_no: str):
    """End the pause; every clock's due time moves out by the working time the pause consumed."""
    actor = current_actor()
    return database().transaction(lambda s: cases.resume(s, case_no, actor))


@blp.route("/<case_no>/terminate", methods=["POST"])
@blp.arguments(EndIn)
@blp.response(200, CaseDetail)
@blp.doc(security=[{"bearer": []}])
@login_required
def terminate(body, case_no: str):
    """终止 (supervisors, admins): the case ends as terminated; every open item is cancelled and every clock
    stopped, each recorded."""
    actor = current_actor()

    def work(session):
        return _detail(session, window.end_case(session, case_no, body["reason"], actor, "terminated"))
    return database().transaction(work)


@blp.route("/<case_no>/messages")
@blp.response(200, WaitingOut(many=True))
@blp.doc(security=[{"bearer": []}])
@login_required
def waiting(case_no: str):
    """What the case waits for from outside: the messages and signals its diagram waits for now."""
    with database().read() as session:
        return messages.waiting_for(session, visibility.case_for(session, case_no, current_actor()))


@blp.route("/<case_no>/messages", methods=["POST"])
@blp.arguments(MessageIn)
@blp.response(200, CaseDetail)
@blp.doc(security=[{"bearer": []}])
@login_required
def deliver(body, case_no: str):
    """Hand the case a message or a signal it waits for (supervisors, admins, and systems signed in as them);
    the message's data join the case data, and the case goes on."""
    actor = current_actor()
    with database().read() as session:
        visibility.case_for(session, case_no, actor)
    messages.deliver(database(), case_no, body["kind"], body["name"], body["data"], actor)
    with database().read() as session:
        return _detail(session, visibility.case_for(session, case_no, actor))


@blp.route("/<case_no>/withdraw", methods=["POST"])
@blp.arguments(EndIn)
@blp.response(200, CaseDetail)
@blp.doc(security=[{"bearer": []}])
@login_required
def withdraw(body, case_no: str):
    """撤回申请 taken at the window: the applicant withdraws the application; the case ends as withdrawn."""
    actor = current_actor()

    def work(session):
        return _detail(session, window.end_case(session, case_no, body["reason"], actor, "withdrawn"))
    return database().transaction(work)


@blp.route("/<case_no>/notes", methods=["POST"])
@blp.arguments(NoteIn)
@blp.response(201, NoteOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def add_note(body, case_no: str):
    """A line in the case's internal thread (staff who see the case; never shown to the applicant)."""
    actor = current_actor()
    return database().transaction(lambda s: visibility.add_note(s, case_no, actor, body["text"]))
