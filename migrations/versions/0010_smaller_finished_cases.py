"""smaller finished cases: indexes that only running cases need leave finished ones out

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OPEN_ITEM = sa.text("state IN ('open', 'claimed')")


def upgrade() -> None:
    # a finished case has no timer and no 容缺 deadline: only cases that have one are indexed
    for column in ("next_timer_at", "supplement_due_at"):
        op.drop_index(f"ix_cases_{column}", table_name="cases")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"ix_cases_{column}", "cases", [column], postgresql_where=where, sqlite_where=where)
    # one open work item per workflow task: the guard matters while the task waits, not after
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.drop_constraint("uq_work_items_task_id", type_="unique")
    op.create_index("uq_work_items_open_task", "work_items", ["task_id"], unique=True,
                    postgresql_where=OPEN_ITEM, sqlite_where=OPEN_ITEM)


def downgrade() -> None:
    op.drop_index("uq_work_items_open_task", table_name="work_items")
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.create_unique_constraint("uq_work_items_task_id", ["task_id"])
    for column in ("next_timer_at", "supplement_due_at"):
        op.drop_index(f"ix_cases_{column}", table_name="cases")
        op.create_index(f"ix_cases_{column}", "cases", [column])
