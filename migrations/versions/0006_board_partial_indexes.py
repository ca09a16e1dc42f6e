"""indexes for the SLA board and the statistics

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ACTIVE = sa.text("state IN ('running', 'warned', 'breached', 'paused')")


def upgrade() -> None:
    op.create_index("ix_sla_clocks_active_due", "sla_clocks", ["due_at", "id"], postgresql_where=ACTIVE,
                    sqlite_where=ACTIVE)
    op.create_index("ix_sla_clocks_active_state", "sla_clocks", ["state", "due_at"], postgresql_where=ACTIVE,
                    sqlite_where=ACTIVE)
    op.create_index("ix_sla_clocks_scope_started", "sla_clocks", ["scope", "started_at"])
    op.create_index("ix_cases_created", "cases", ["created_at"])
    op.create_index("ix_cases_completed", "cases", ["completed_at"])
    op.create_index("ix_ratings_at", "ratings", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ratings_at", table_name="ratings")
    op.drop_index("ix_cases_completed", table_name="cases")
    op.drop_index("ix_cases_created", table_name="cases")
    op.drop_index("ix_sla_clocks_scope_started", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_active_state", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_active_due", table_name="sla_clocks")
