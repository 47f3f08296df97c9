"""runtime.py: what every entry point opens once: config, database, secret key, paths.

`open_runtime` creates the data directory, the secret key and the schema on first use,
so `inboxd init` and every other command leave the same state behind (idempotent) —
except that a command that only reads (`create=False`) never creates a database: run
outside the install folder, it would otherwise open a new, empty helpdesk and report
"no open tickets" with a straight face (SPEC §4).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from inboxd import db
from inboxd.config import EMBEDDED, Config, places_looked, secret
from inboxd.errors import ConfigError
from inboxd.models import Agent
from inboxd.write_lock import WriteLock


@dataclass(frozen=True)
class Runtime:
    """The opened configuration: pass it in, never import it as a global."""

    config: Config
    engine: Engine
    secret_key: bytes
    # SQLite has one writer at a time. Within one process, writers queue on this lock
    # instead of polling SQLite's busy handler (which sleeps in steps of up to 100 ms and
    # gave SMTP accepts a 1 s tail behind the ingest worker). PostgreSQL needs none.
    write_lock: AbstractContextManager[Any] = field(default_factory=contextlib.nullcontext)
    # What `#kb SLUG` inserts into a reply: (slug, language or None, the ticket's subject)
    # -> the article's title, summary and link, or None. It comes from the knowledge base
    # (workflow/, above the command registry), so an entry point sets it (cli.common).
    kb_article_text: Callable[[str, str | None, str], str | None] | None = None

    @property
    def attachments_dir(self) -> Path:
        return self.config.data_dir / "attachments"


def open_runtime(config: Config, *, create: bool = True) -> Runtime:
    """Prepare data dir, secret key and schema, and load the config's agents.

    With `create=False` a missing SQLite database is an error (ConfigError, exit 2) that
    names where the configuration was looked for, and nothing is created."""
    if not create:
        require_database(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    key = _secret_key(config)
    engine = db.make_engine(config.database_url, config.inboxd.database_timeout_seconds)
    db.migrate(engine)
    with db.session_scope(engine) as session:
        sync_agents(session, config)
    sqlite = engine.dialect.name == "sqlite"
    lock: AbstractContextManager[Any] = WriteLock() if sqlite else contextlib.nullcontext()
    return Runtime(config=config, engine=engine, secret_key=key, write_lock=lock)


def require_database(config: Config) -> None:
    """Refuse to go on when the SQLite database does not exist yet (PostgreSQL is named
    by an explicit URL, so it is the admin's, and migrations may bring its schema)."""
    path = db.sqlite_path(config.database_url)
    if path is None or path.exists():
        return
    if config.source == EMBEDDED:
        raise ConfigError(
            f"no configuration found and no database at {path}; looked in "
            f"{places_looked()}. Run `inboxd init` here, or pass --config FILE."
        )
    raise ConfigError(
        f"{config.source}: no database at {path} (a command that reads never creates one); "
        f"run `inboxd init --config {config.source}` first"
    )


def _secret_key(config: Config) -> bytes:
    section = config.inboxd
    if section.secret_key or section.secret_key_env:
        return secret(config, section, "secret_key").encode("utf-8")
    path = config.path(section.secret_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once cannot both write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    value = secret(config, section, "secret_key")
    if len(value) < 16:
        raise ConfigError(f"secret_key_file = {str(path)!r}: the key is shorter than 16 characters")
    return value.encode("utf-8")


def sync_agents(session: Session, config: Config) -> None:
    """Add the config's [[agents]] that the database does not know yet."""
    for entry in config.agents:
        agent = session.exec(select(Agent).where(Agent.email == entry.email)).first()
        if agent is None:
            session.add(Agent(email=entry.email, name=entry.name, role=entry.role, team=entry.team))


def reading_zone(rt: Runtime) -> ZoneInfo:
    """The zone the desk reads times in: the team's, as its first business calendar says
    (SPEC §10.1), else UTC; for the web's pages and the dates in mail to customers."""
    calendars = rt.config.calendars
    try:
        return ZoneInfo(calendars[0].timezone) if calendars else ZoneInfo("UTC")
    except (ValueError, ZoneInfoNotFoundError):  # the calendars check it; never a 500 here
        return ZoneInfo("UTC")
