"""partial indexes for the SLA sweep

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

WARN = sa.text("warned_at IS NULL AND state IN ('running', 'warned', 'breached')")
DUE = sa.text("breached_at IS NULL AND state IN ('running', 'warned', 'breached')")


def upgrade() -> None:
    op.create_index("ix_sla_clocks_pending_warn", "sla_clocks", ["warn_at"], postgresql_where=WARN, sqlite_where=WARN)
    op.create_index("ix_sla_clocks_pending_due", "sla_clocks", ["due_at"], postgresql_where=DUE, sqlite_where=DUE)


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_pending_due", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_pending_warn", table_name="sla_clocks")
