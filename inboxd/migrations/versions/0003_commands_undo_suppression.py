"""commands undo suppression

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppression",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("receipts", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            batch_op.f("ix_agent_api_token_hash"), ["api_token_hash"], unique=False
        )

    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("block", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_event_block"), ["block"], unique=False)

    with op.batch_alter_table("outbound", schema=None) as batch_op:
        batch_op.add_column(sa.Column("about_message_pk", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_outbound_about_message", "message", ["about_message_pk"], ["id"]
        )

    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_due_at"), ["due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_due_at"))
        batch_op.drop_column("due_at")

    with op.batch_alter_table("outbound", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbound_about_message", type_="foreignkey")
        batch_op.drop_column("about_message_pk")

    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_block"))
        batch_op.drop_column("block")

    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_api_token_hash"))
        batch_op.drop_column("receipts")
        batch_op.drop_column("api_token_hash")

    op.drop_table("suppression")
