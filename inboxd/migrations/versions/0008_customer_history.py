"""customer history: who set a profile's name and organisation, and every change to it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

A name or organisation an agent set is never overwritten by what mail says
(`name_source`, `organization_source`: "agent", or how it was learnt), and every change
to a profile is recorded with who made it and when (SPEC §10.7).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_source", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "organization_source", sa.String(length=16), nullable=False, server_default=""
            )
        )
    op.create_table(
        "customer_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_event_customer_id"), ["customer_id"])


def downgrade() -> None:
    with op.batch_alter_table("customer_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_event_customer_id"))
    op.drop_table("customer_event")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("organization_source")
        batch_op.drop_column("name_source")
