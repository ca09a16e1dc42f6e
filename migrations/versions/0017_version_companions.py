"""process_versions.companions: the other files a version was deployed with (BPMN files of the processes its
call activities call, DMN files of its decisions), kept with it so the version reads the same forever

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_versions") as batch:
        batch.add_column(sa.Column("companions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("process_versions") as batch:
        batch.drop_column("companions")
