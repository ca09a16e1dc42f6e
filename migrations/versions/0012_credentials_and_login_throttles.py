"""credentials: a per-user credential version (revocation) and throttles (sign-in and tracking
attempts counted per key; the per-address track_attempts log is gone)

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
    op.drop_index("ix_track_attempts_ip_at", table_name="track_attempts")
    op.drop_table("track_attempts")


def downgrade() -> None:
    op.create_table(
        "track_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_track_attempts"),
    )
    op.create_index("ix_track_attempts_ip_at", "track_attempts", ["ip", "at"])
    op.drop_table("login_throttles")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("credential_version")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("credential_version")
