"""Alembic environment: runs on the connection that inboxd.db.migrate() hands in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import inboxd.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from inboxd.db import include_object

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through inboxd.db.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
