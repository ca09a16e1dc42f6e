"""memberships: a user may work in several departments and hold positions in each (承办人, 科长); the
positions held in the home department move from users.positions into rows of their own

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    memberships = op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(40), nullable=False),
        sa.Column("position", sa.String(40), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_memberships_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_memberships"),
        sa.UniqueConstraint("user_id", "department", "position", name="uq_memberships_user_post"),
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"])
    users = sa.table("users", sa.column("id", sa.Integer()), sa.column("department", sa.String()),
                     sa.column("positions", sa.JSON()))
    rows = []
    for user_id, department, positions in op.get_bind().execute(
            sa.select(users.c.id, users.c.department, users.c.positions)):
        for position in dict.fromkeys(positions or []):
            if department and position:
                rows.append({"user_id": user_id, "department": department, "position": position})
    if rows:
        op.bulk_insert(memberships, rows)
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("positions")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("positions", sa.JSON(), nullable=True))
    op.drop_index("ix_memberships_user_id", table_name="memberships")
    op.drop_table("memberships")
