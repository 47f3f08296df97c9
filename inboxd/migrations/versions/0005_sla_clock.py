"""the clock: SLA due times and firings, rule due times and firings, the clock's state

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

`sla_due` holds, per ticket, the next instant the clock must look at it (an index makes
"what fell due" one range scan); `sla_firing` is keyed by ticket, target, clock start and
kind, so a warning or breach is inserted once whoever tries (SPEC §10.2); `clock_state`
keeps the last event seen and the fingerprint of the policies. `rule_due` and
`rule_firing` do the same for the rules of SPEC §10.3.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_due",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("ticket.id"), primary_key=True),
        sa.Column("policy", sa.String(100), nullable=False, server_default=""),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_target", sa.String(32), nullable=True),
        sa.Column("zone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sla_due_next_at", "sla_due", ["next_at"])
    op.create_index("ix_sla_due_due_at", "sla_due", ["due_at"])
    op.create_table(
        "sla_firing",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("ticket.id"), primary_key=True),
        sa.Column("target", sa.String(32), primary_key=True),
        sa.Column("cycle_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False, server_default=""),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rule_due",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("ticket.id"), primary_key=True),
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("since_event_id", sa.Integer, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rule_due_due_at", "rule_due", ["due_at"])
    op.create_table(
        "rule_firing",
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("ticket.id"), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "clock_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("clock_state")
    op.drop_table("rule_firing")
    op.drop_index("ix_rule_due_due_at", "rule_due")
    op.drop_table("rule_due")
    op.drop_table("sla_firing")
    op.drop_index("ix_sla_due_due_at", "sla_due")
    op.drop_index("ix_sla_due_next_at", "sla_due")
    op.drop_table("sla_due")
