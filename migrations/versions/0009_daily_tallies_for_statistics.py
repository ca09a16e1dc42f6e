"""daily tallies for the statistics

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("process_key", sa.String(length=100), nullable=True),
        sa.Column("matter_code", sa.String(length=40), nullable=True),
        sa.Column("department", sa.String(length=40), nullable=True),
        sa.Column("scope", sa.String(length=10), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=True),
        sa.Column("budget", sa.String(length=40), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("n_used", sa.Integer(), nullable=False),
        sa.Column("used_sum", sa.BigInteger(), nullable=False),
        sa.Column("hist", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_tallies")),
    )
    op.create_index("ix_daily_tallies_day", "daily_tallies", ["day"])
    op.create_table(
        "tallied_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_tallied_days")),
    )


def downgrade() -> None:
    op.drop_table("tallied_days")
    op.drop_index("ix_daily_tallies_day", table_name="daily_tallies")
    op.drop_table("daily_tallies")
