"""customers, organisations, languages, agent preferences

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Customer profiles with several addresses and reversible merges (SPEC §10.7), a ticket's
channel and submitter for tickets opened on a customer's behalf, and each agent's
notification preference, language and signature (SPEC §10.8, §10.9).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("language_source", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["merged_into"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_organization"), ["organization"])
        batch_op.create_index(batch_op.f("ix_customer_merged_into"), ["merged_into"])
    op.create_table(
        "customer_address",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("email"),
    )
    with op.batch_alter_table("customer_address", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_address_customer_id"), ["customer_id"])
    op.create_table(
        "customer_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("from_id", sa.Integer(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["from_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["into_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_merge_from_id"), ["from_id"])
        batch_op.create_index(batch_op.f("ix_customer_merge_into_id"), ["into_id"])
    # Plain ADD COLUMN: a batch (copy-and-rename) on SQLite would try to copy the
    # generated `urgency` column.
    op.add_column(
        "ticket",
        sa.Column("channel", sa.String(length=16), nullable=False, server_default="email"),
    )
    op.add_column(
        "ticket",
        sa.Column("submitter", sa.String(length=320), nullable=False, server_default=""),
    )
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notify", sa.String(length=16), nullable=False, server_default="all")
        )
        batch_op.add_column(
            sa.Column("language", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("signature", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("language")
        batch_op.drop_column("notify")
    op.drop_column("ticket", "submitter")
    op.drop_column("ticket", "channel")
    with op.batch_alter_table("customer_merge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_merge_into_id"))
        batch_op.drop_index(batch_op.f("ix_customer_merge_from_id"))
    op.drop_table("customer_merge")
    with op.batch_alter_table("customer_address", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_address_customer_id"))
    op.drop_table("customer_address")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_merged_into"))
        batch_op.drop_index(batch_op.f("ix_customer_organization"))
    op.drop_table("customer")
