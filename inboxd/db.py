"""db.py: the engine, sessions and migrations. SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with synchronous=FULL: a committed transaction survives power
loss, which is what lets the SMTP edge answer 250 after a commit. Every schema change is
an alembic migration, applied by `migrate()` at start-up, so an upgrade never needs a
hand-made schema change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, create_engine

from inboxd.errors import DatabaseUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, timeout_seconds: float = 30, *, checkpoints: bool = True) -> Engine:
    """An engine for `url`, with durability and lock-wait settings applied.

    `timeout_seconds` bounds how long a statement waits for a lock (SQLite's busy
    timeout, PostgreSQL's lock_timeout), so a locked database turns into an error the
    SMTP edge can answer with 451 instead of a session that hangs. With
    `checkpoints=False`, SQLite's commits on this engine leave copying the WAL back into
    the database to the other connections (for commits made on the SMTP event loop).
    """
    wait_ms = max(1, int(timeout_seconds * 1000))
    if url.startswith("sqlite"):
        if path := sqlite_path(url):
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": timeout_seconds})

        def sqlite_settings(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
            if not checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        event.listen(engine, "connect", sqlite_settings)
        return engine
    engine = create_engine(url, pool_pre_ping=True)

    def pg_settings(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {wait_ms}")
        dbapi_conn.commit()

    event.listen(engine, "connect", pg_settings)
    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from None


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave to migration 0004 what models cannot express: the search indexes (SQLite's
    FTS5 tables with their shadow tables, PostgreSQL's trigram indexes)."""
    return not (name and (name.startswith(("message_fts", "ticket_fts")) or name.endswith("_trgm")))


def _at_head(engine: Engine) -> bool:
    """Is the database at the newest migration? (Checked without importing alembic, which
    every command would otherwise pay for at start-up.)"""
    newest = max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
    try:
        with engine.connect() as conn:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except (OperationalError, ProgrammingError):
        return False  # no schema yet (or not reachable: migrate() reports that)
    return current == newest


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed at the end of the block, or rolled back."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def keep_loaded(session: Session) -> None:
    """Hold every object loaded in this session until it ends. The identity map keeps only
    weak references, so a ticket read by the threader was gone again when the pipeline
    asked for it, and the next message of the same conversation read it once more."""
    loaded: list[object] = []
    event.listen(session, "loaded_as_persistent", lambda _s, obj: loaded.append(obj))
