from flask_smorest import Blueprint

from webapp.api.schemas import DecisionIn, ExtensionIn, ExtensionOut, ReplyIn, SupervisionIn, SupervisionOut
from webapp.auth import current_actor, database, login_required
from workflows.casework import extensions
from workflows.oversight import supervision

PREFIX = ""
blp = Blueprint("extensions", __name__,
                description="延期 (extending a case's limit, 行政许可法 art. 42) and formal 督办 with a reply limit")


@blp.route("/cases/<case_no>/extensions", methods=["POST"])
@blp.arguments(ExtensionIn)
@blp.response(201, ExtensionOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def request_extension(body, case_no: str):
    """Ask for N more working days (the department working the case, or the window), with a reason."""
    actor = current_actor()
    return database().transaction(lambda s: extensions.request(
        s, case_no, actor, body["working_days"], body["reason"], body.get("move_steps", False)))


@blp.route("/extensions/<int:extension_id>/approve", methods=["POST"])
@blp.arguments(DecisionIn)
@blp.response(200, ExtensionOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def approve(body, extension_id: int):
    """Approve (supervisors, admins): the case clock (and, if asked, the open steps' clocks) move out."""
    actor = current_actor()
    return database().transaction(lambda s: extensions.decide(s, extension_id, actor, True, body.get("note")))


@blp.route("/extensions/<int:extension_id>/refuse", methods=["POST"])
@blp.arguments(DecisionIn)
@blp.response(200, ExtensionOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def refuse(body, extension_id: int):
    actor = current_actor()
    return database().transaction(lambda s: extensions.decide(s, extension_id, actor, False, body.get("note")))


@blp.route("/cases/<case_no>/supervisions", methods=["POST"])
@blp.arguments(SupervisionIn)
@blp.response(201, SupervisionOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def open_supervision(body, case_no: str):
    """督办 (supervisors): ask the department of a step (`item_id`) or a `department` for a reply within a
    working-time limit (`reply_within`, e.g. PT4H); it has its own clock and alerts."""
    actor = current_actor()
    return database().transaction(lambda s: supervision.open_supervision(
        s, case_no, actor, body.get("item_id"), body["reply_within"], body["message"], body.get("department")))


@blp.route("/supervisions/<int:supervision_id>/reply", methods=["POST"])
@blp.arguments(ReplyIn)
@blp.response(200, SupervisionOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def reply_supervision(body, supervision_id: int):
    """The department asked answers; the 督办's clock stops and its supervisor is told."""
    actor = current_actor()
    return database().transaction(lambda s: supervision.reply(s, supervision_id, actor, body["reply"]))
