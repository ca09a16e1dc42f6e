"""leaner clock indexes: the board's filters index running clocks only; the full state indexes go

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ACTIVE = sa.text("state IN ('running', 'warned', 'breached', 'paused')")


def upgrade() -> None:
    # the sweep and the board read partial indexes now; these were written on every clock change
    op.drop_index("ix_sla_clocks_state_warn", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_state_due", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_department_state_due", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_process_state_due", table_name="sla_clocks")
    op.create_index("ix_sla_clocks_active_department", "sla_clocks", ["department", "due_at"],
                    postgresql_where=ACTIVE, sqlite_where=ACTIVE)
    op.create_index("ix_sla_clocks_active_process", "sla_clocks", ["process_key", "due_at"],
                    postgresql_where=ACTIVE, sqlite_where=ACTIVE)


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_active_process", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_active_department", table_name="sla_clocks")
    op.create_index("ix_sla_clocks_process_state_due", "sla_clocks", ["process_key", "state", "due_at"])
    op.create_index("ix_sla_clocks_department_state_due", "sla_clocks", ["department", "state", "due_at"])
    op.create_index("ix_sla_clocks_state_due", "sla_clocks", ["state", "due_at"])
    op.create_index("ix_sla_clocks_state_warn", "sla_clocks", ["state", "warn_at"])
