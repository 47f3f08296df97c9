"""loop holds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

The loop breaker's holds (issue 19), and indexes on ticket.created_at and
outbound.created_at: the breaker counts a domain's new tickets of the last minutes on
every new ticket, and the notification cap an agent's notifications of the last minute.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("loop_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loop_hold_address"), ["address"], unique=False)
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("outbound", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbound_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_created_at"))
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_created_at"))
    with op.batch_alter_table("loop_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loop_hold_address"))
    op.drop_table("loop_hold")
