"""credentials: a per-user credential version (revocation) and login throttles

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("credential_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("credential_version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttles"),
    )


def downgrade() -> None:
    op.drop_table("login_throttles")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("credential_version")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("credential_version")
