"""The schema comes from alembic migrations, and they match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from inboxd import db
from inboxd.runtime import Runtime


def test_migrations_build_exactly_the_models_schema(rt: Runtime) -> None:
    with rt.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": db.include_object})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations disagree; add a migration: {diff}"


def test_migrate_is_idempotent(rt: Runtime) -> None:
    db.migrate(rt.engine)
    db.migrate(rt.engine)
    tables = set(inspect(rt.engine).get_table_names())
    assert {"ticket", "message", "raw_message", "event", "quarantine", "thread_key"} <= tables


def test_sqlite_is_durable_wal_and_synchronous_full(sqlite_rt: Runtime) -> None:
    with sqlite_rt.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
