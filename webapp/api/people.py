from flask_smorest import Blueprint

from webapp.api.schemas import CopyList, CopyQueryArgs, StandInIn, StandInOut
from webapp.auth import current_actor, database, login_required
from workflows.administration import users
from workflows.casework import copies

PREFIX = "/users"
blp = Blueprint("people", __name__, description="Staff: stand-ins while away (代理)")


@blp.route("/<name>/stand-in", methods=["PUT"])
@blp.arguments(StandInIn)
@blp.response(200, StandInOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def stand_in(body, name: str):
    """代理: from `from` to `until` (days), items that would come to NAME go to `to` ("代 NAME 办理");
    `to: null` clears it. The user sets their own, or an admin does."""
    actor = current_actor()
    return database().transaction(lambda s: users.set_stand_in(
        s, actor.username, actor.role, name, body["to"], body.get("from_"), body.get("until")))



copies_blp = Blueprint("copies", __name__, description="抄送我的: cases copied to me or my department")


@copies_blp.route("")
@copies_blp.arguments(CopyQueryArgs, location="query")
@copies_blp.response(200, CopyList)
@copies_blp.doc(security=[{"bearer": []}])
@login_required
def list_copies(args):
    """Newest first; `unread=true` for those not opened yet."""
    with database().read() as session:
        return {"copies": copies.for_actor(session, current_actor(), unread_only=args["unread"])}
