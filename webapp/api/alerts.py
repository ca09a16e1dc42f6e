from flask_smorest import Blueprint

from webapp.api.schemas import AcknowledgedOut, AcknowledgeIn, AcknowledgeManyIn, AlertList, AlertOut, AlertQueryArgs
from webapp.auth import current_actor, database, login_required
from workflows.oversight import alerts

PREFIX = "/alerts"
blp = Blueprint("alerts", __name__, description="Warnings (预警) and breaches (超期) of time limits")


@blp.route("")
@blp.arguments(AlertQueryArgs, location="query")
@blp.response(200, AlertList)
@blp.doc(security=[{"bearer": []}])
@login_required
def list_alerts(args):
    """Newest first. Supervisors and admins see all; staff see their department's and their own."""
    with database().read() as session:
        rows, total = alerts.list_alerts(session, alerts.AlertQuery(**args), current_actor())
        return {"alerts": rows, "total": total}


@blp.route("/<int:alert_id>/acknowledge", methods=["POST"])
@blp.arguments(AcknowledgeIn)
@blp.response(200, AlertOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def acknowledge(body, alert_id: int):
    actor = current_actor()
    return database().transaction(lambda s: alerts.acknowledge(s, alert_id, actor, body.get("comment")))


@blp.route("/acknowledge", methods=["POST"])
@blp.arguments(AcknowledgeManyIn)
@blp.response(200, AcknowledgedOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def acknowledge_many(body):
    """Several at once (the reminder panel's 知道了): open ones are acknowledged, ones acknowledged meanwhile
    are passed over; one of another department refuses the lot."""
    actor = current_actor()
    done = database().transaction(lambda s: alerts.acknowledge_many(s, body["ids"], actor, body.get("comment")))
    return {"acknowledged": done}
