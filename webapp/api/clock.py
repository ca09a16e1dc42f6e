from flask_smorest import Blueprint

from timers.clock import clock, now
from webapp.api.schemas import ClockSetIn, ClockStateOut
from webapp.auth import current_actor, database, login_required
from workflows.administration.clock_store import set_clock
from workflows.errors import Forbidden

PREFIX = "/clock"
blp = Blueprint("clock", __name__, description="The deployment's clock (settable only in manual mode)")


@blp.route("")
@blp.response(200, ClockStateOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def show():
    return {"now": now(), "manual": clock.manual}


@blp.route("", methods=["PUT"])
@blp.arguments(ClockSetIn)
@blp.response(200, ClockStateOut)
@blp.doc(security=[{"bearer": []}])
@login_required
def put(body):
    """Set the clock for every process of the deployment (ONEWINDOW_CLOCK=manual only; admins)."""
    if current_actor().role != "admin":
        raise Forbidden("only an admin sets the clock")
    at = database().transaction(lambda s: set_clock(s, body["now"], body["frozen"]))
    return {"now": at, "manual": True}
