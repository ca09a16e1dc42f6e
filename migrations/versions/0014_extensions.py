"""extensions (延期): requests and decisions, and the working days a clock was extended by; the case's
internal notes; stand-ins (代理); copies (抄送); formal 督办; consultations (加签); 委派; positions

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.add_column(sa.Column("delegated_by", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("position", sa.String(40), nullable=True))
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("stand_in", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("stand_in_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("stand_in_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("positions", sa.JSON(), nullable=True))
    with op.batch_alter_table("sla_clocks") as batch_op:
        batch_op.add_column(sa.Column("extended_days", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("case_no", sa.String(40), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("move_steps", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(500), nullable=True),
        sa.Column("old_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("new_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_extensions_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_extensions"),
    )
    op.create_index("ix_extensions_case_id", "extensions", ["case_id"])
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_notes_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_case_notes"),
    )
    op.create_index("ix_case_notes_case_id", "case_notes", ["case_id"])
    op.create_table(
        "case_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("case_no", sa.String(40), nullable=False),
        sa.Column("to_user", sa.String(100), nullable=True),
        sa.Column("to_department", sa.String(40), nullable=True),
        sa.Column("step", sa.String(100), nullable=True),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_by", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_copies_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_case_copies"),
    )
    op.create_index("ix_case_copies_case_id", "case_copies", ["case_id"])
    op.create_index("ix_case_copies_user", "case_copies", ["to_user", "read_at"])
    op.create_index("ix_case_copies_department", "case_copies", ["to_department", "read_at"])
    op.create_table(
        "supervisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("case_no", sa.String(40), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(40), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("reply_within", sa.String(40), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply", sa.String(2000), nullable=True),
        sa.Column("replied_by", sa.String(100), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_supervisions_case_id_cases"),
        sa.ForeignKeyConstraint(["work_item_id"], ["work_items.id"], name="fk_supervisions_work_item_id_work_items"),
        sa.PrimaryKeyConstraint("id", name="pk_supervisions"),
    )
    op.create_index("ix_supervisions_case_id", "supervisions", ["case_id"])
    op.create_table(
        "consultations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("to_user", sa.String(100), nullable=True),
        sa.Column("to_department", sa.String(40), nullable=True),
        sa.Column("question", sa.String(1000), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("asked_by", sa.String(100), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.String(2000), nullable=True),
        sa.Column("answered_by", sa.String(100), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_consultations_case_id_cases"),
        sa.ForeignKeyConstraint(["work_item_id"], ["work_items.id"], name="fk_consultations_work_item_id_work_items"),
        sa.PrimaryKeyConstraint("id", name="pk_consultations"),
    )
    op.create_index("ix_consultations_case_id", "consultations", ["case_id"])
    op.create_index("ix_consultations_work_item_id", "consultations", ["work_item_id"])


def downgrade() -> None:
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.drop_column("position")
        batch_op.drop_column("delegated_by")
    op.drop_table("consultations")
    op.drop_table("supervisions")
    op.drop_table("case_copies")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("positions")
        batch_op.drop_column("stand_in_until")
        batch_op.drop_column("stand_in_from")
        batch_op.drop_column("stand_in")
    op.drop_index("ix_case_notes_case_id", table_name="case_notes")
    op.drop_table("case_notes")
    op.drop_index("ix_extensions_case_id", table_name="extensions")
    op.drop_table("extensions")
    with op.batch_alter_table("sla_clocks") as batch_op:
        batch_op.drop_column("extended_days")
