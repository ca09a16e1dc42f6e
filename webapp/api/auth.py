from flask_smorest import Blueprint

from webapp.api.schemas import TokenOut, TokenRequest
from webapp.auth import client_address, database
from workflows.administration.users import issue_token, sign_in

PREFIX = "/auth"
blp = Blueprint("auth", __name__, description="Bearer tokens for staff")


@blp.route("/token", methods=["POST"])
@blp.arguments(TokenRequest)
@blp.response(201, TokenOut)
def token(body):
    """Exchange a username and password for a bearer token (valid 12 hours)."""
    db = database()
    user = sign_in(db, body["username"], body["password"], client_address())

    def work(session):
        raw, row = issue_token(session, user)
        return {"token": raw, "expires_at": row.expires_at, "user": row.user}
    return db.transaction(work)
