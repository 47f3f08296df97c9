"""web sign-in and search indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Adds the magic-link and session tables of the web view, and makes searching message
text fast at 100k tickets without changing what matches (a substring, any language,
case-insensitive): a trigram FTS5 index on SQLite, kept up to date by triggers, and
pg_trgm GIN indexes on PostgreSQL, which ILIKE uses. Where pg_trgm cannot be created
(no permission), search still works, by scanning.
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
]
_PG_TRGM_COLUMNS = [("message", "text"), ("message", "subject"), ("ticket", "subject")]


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
        for name in ("message_fts_insert", "message_fts_delete", "message_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS message_fts")
    elif bind.dialect.name == "postgresql":
        for table, column in _PG_TRGM_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    op.drop_index(op.f("ix_web_session_expires_at"), table_name="web_session")
    op.drop_index(op.f("ix_web_session_agent_id"), table_name="web_session")
    op.drop_table("web_session")
    op.drop_index(op.f("ix_web_login_agent_id"), table_name="web_login")
    op.drop_table("web_login")
