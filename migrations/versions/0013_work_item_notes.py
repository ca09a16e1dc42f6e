"""work item notes (why an item is here: a step returned to it; how it ended) and 催办 counts

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(1000), nullable=True))
        batch_op.add_column(sa.Column("urged", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.drop_column("urged")
        batch_op.drop_column("note")
