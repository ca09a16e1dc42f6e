from flask_smorest import Blueprint

from webapp.api.schemas import IncidentList, IncidentOut, IncidentQueryArgs
from webapp.auth import current_actor, database, login_required
from workflows.errors import Forbidden
from workflows.oversight import incidents

PREFIX = "/incidents"
blp = Blueprint("incidents", __name__, description="Incidents: a periodic job failed on one case (admins)")


def _admin_only() -> None:
    if current_actor().role != "admin":
        raise Forbidden("incidents are for admins")


@blp.route("")
@blp.arguments(IncidentQueryArgs, location="query")
@blp.response(200, IncidentList)
@blp.doc(security=[{"bearer": []}])
@login_required
def list_incidents(args):
    """Newest first; open ones by default (`state=resolved` or `state=all` for the others)."""
    _admin_only()
    state = None if args["state"] == "all" else args["state"]
    with database().read() as session:
        return {"incidents": incidents.list_incidents(session, state, args["limit"], args["offset"])}


@blp.route("/<int:incident_id>/retry", methods=["POST"])
@blp.response(200, IncidentOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def retry(incident_id: int):
    """After the cause is fixed: the job tries the case again on its next run."""
    _admin_only()
    actor = current_actor()
    return database().transaction(lambda s: incidents.retry(s, incident_id, actor.username))
