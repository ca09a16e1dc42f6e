from flask_smorest import Blueprint

from workflows import extensions

from ..auth import current_actor, database, login_required
from .schemas import DecisionIn, ExtensionIn, ExtensionOut

PREFIX = ""
blp = Blueprint("extensions", __name__, description="延期: extending a case's time limit (行政许可法 art. 42)")


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
