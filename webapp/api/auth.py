from flask_smorest import Blueprint

from workflows.users import issue_token

from ..auth import database
from .schemas import TokenOut, TokenRequest

PREFIX = "/auth"
blp = Blueprint("auth", __name__, description="Bearer tokens for staff")


@blp.route("/token", methods=["POST"])
@blp.arguments(TokenRequest)
@blp.response(201, TokenOut)
def token(body):
    """Exchange a username and password for a bearer token (valid 12 hours)."""
    def work(session):
        raw, row = issue_token(session, body["username"], body["password"])
        return {"token": raw, "expires_at": row.expires_at, "user": row.user}
    return database().transaction(work)
