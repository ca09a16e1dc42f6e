"""process_versions.assignments: who works each task, resolved once at deploy (a lane, a department property,
a modeler's candidate group or assignee through the alias table, or the default department the admin named),
so that later changes to the aliases never move a deployed version's work

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_versions") as batch:
        batch.add_column(sa.Column("assignments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("process_versions") as batch:
        batch.drop_column("assignments")
