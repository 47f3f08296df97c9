"""web sign-in and search indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Adds the magic-link and session tables of the web view, and what keeps its ticket list
fast at 100k tickets (bench/web_list.py):

- Search without changing what matches (a substring, any language, case-insensitive):
  trigram FTS5 tables for messages and tickets on SQLite, kept up to date by triggers,
  and pg_trgm GIN indexes on PostgreSQL, which ILIKE uses. Where pg_trgm cannot be
  created (no permission), search still works, by scanning.
- Partial indexes over the tickets the list shows (not merged away), in the orders it
  shows them (priority through `urgency`, a number the database computes from it), and
  an index from a tag to its tickets.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("inboxd.migrations")

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE message_fts USING fts5("
    "subject, from_email, text, content='message', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, subject, from_email, text) "
    "VALUES (new.id, new.subject, new.from_email, new.text); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, subject, from_email, text) "
    "VALUES ('delete', old.id, old.subject, old.from_email, old.text); END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF subject, from_email, text ON message "
    "BEGIN INSERT INTO message_fts(message_fts, rowid, subject, from_email, text) "
    "VALUES ('delete', old.id, old.subject, old.from_email, old.text); "
    "INSERT INTO message_fts(rowid, subject, from_email, text) "
    "VALUES (new.id, new.subject, new.from_email, new.text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
    "CREATE VIRTUAL TABLE ticket_fts USING fts5("
    "subject, requester, content='ticket', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER ticket_fts_insert AFTER INSERT ON ticket BEGIN "
    "INSERT INTO ticket_fts(rowid, subject, requester) "
    "VALUES (new.id, new.subject, new.requester); END",
    "CREATE TRIGGER ticket_fts_delete AFTER DELETE ON ticket BEGIN "
    "INSERT INTO ticket_fts(ticket_fts, rowid, subject, requester) "
    "VALUES ('delete', old.id, old.subject, old.requester); END",
    "CREATE TRIGGER ticket_fts_update AFTER UPDATE OF subject, requester ON ticket "
    "BEGIN INSERT INTO ticket_fts(ticket_fts, rowid, subject, requester) "
    "VALUES ('delete', old.id, old.subject, old.requester); "
    "INSERT INTO ticket_fts(rowid, subject, requester) "
    "VALUES (new.id, new.subject, new.requester); END",
    "INSERT INTO ticket_fts(ticket_fts) VALUES ('rebuild')",
]
_SQLITE_TRIGGERS = [
    f"{table}_fts_{when}"
    for table in ("message", "ticket")
    for when in ("insert", "delete", "update")
]
_PG_TRGM_COLUMNS = [
    ("message", "text"),
    ("message", "subject"),
    ("message", "from_email"),
    ("ticket", "subject"),
    ("ticket", "requester"),
]
# name, columns: partial indexes over the tickets the list shows (merged_into IS NULL).
_LIVE_INDEXES = [
    ("ix_ticket_live_updated", ["updated_at"]),
    ("ix_ticket_live_status", ["status", "updated_at"]),
    ("ix_ticket_live_assignee", ["assignee_id", "updated_at"]),
    ("ix_ticket_live_urgency", ["urgency", "updated_at"]),
]
# As models.URGENCY_SQL (a migration keeps its own copy: models may change later).
_URGENCY_SQL = (
    "CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1"
    " WHEN 'low' THEN 0 ELSE -1 END"
)
_LIVE = sa.text("merged_into IS NULL")


def upgrade() -> None:
    op.create_table(
        "web_login",
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("nonce_hash"),
    )
    op.create_index(op.f("ix_web_login_agent_id"), "web_login", ["agent_id"], unique=False)
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(op.f("ix_web_session_agent_id"), "web_session", ["agent_id"], unique=False)
    op.create_index(op.f("ix_web_session_expires_at"), "web_session", ["expires_at"], unique=False)
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "urgency", sa.Integer(), sa.Computed(_URGENCY_SQL, persisted=True), nullable=True
            )
        )
    for name, columns in _LIVE_INDEXES:
        op.create_index(
            name, "ticket", columns, sqlite_where=_LIVE, postgresql_where=_LIVE, unique=False
        )
    op.create_index("ix_ticket_tag_tag", "ticket_tag", ["tag", "ticket_id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        _postgres_trigram_indexes(bind)


def _postgres_trigram_indexes(bind: sa.engine.Connection) -> None:
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("pg_trgm is not available (%s); search will scan message text", exc.orig)
        return
    savepoint.commit()
    # The extension may live in another schema than ours (it is once per database).
    schema = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_trgm'"
    ).scalar_one()
    for table, column in _PG_TRGM_COLUMNS:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_{table}_{column}_trgm "
            f'ON {table} USING gin ("{column}" "{schema}".gin_trgm_ops)'
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS message_fts")
        op.execute("DROP TABLE IF EXISTS ticket_fts")
    elif bind.dialect.name == "postgresql":
        for table, column in _PG_TRGM_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    op.drop_index("ix_ticket_tag_tag", table_name="ticket_tag")
    for name, _ in _LIVE_INDEXES:
        op.drop_index(name, table_name="ticket")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("urgency")
    op.drop_index(op.f("ix_web_session_expires_at"), table_name="web_session")
    op.drop_index(op.f("ix_web_session_agent_id"), table_name="web_session")
    op.drop_table("web_session")
    op.drop_index(op.f("ix_web_login_agent_id"), table_name="web_login")
    op.drop_table("web_login")
