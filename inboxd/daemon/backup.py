"""backup.py: `inboxd backup DIR` and `inboxd restore DIR`, safe while the daemon runs.

The SQLite database (which holds the raw mail store, `raw_message`) is copied with
SQLite's online backup API in one read transaction: a consistent snapshot, while the
daemon, in WAL mode, goes on writing. Attachment files are written before the
transaction that records them commits and are never changed, so copying the ones the
snapshot names, after the snapshot, finds every one. The secret key (which signs reply
tokens and status links) and the knowledge base's articles come along. PostgreSQL is
the admin's server: `pg_dump` backs it up (the error says how).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from inboxd import __version__, db
from inboxd.config import Config
from inboxd.errors import ConfigError, InboxdError
from inboxd.tickets.store import attachment_path

DATABASE = "inboxd.db"
ATTACHMENTS = "attachments"
SECRET = "secret.key"
KB = "kb"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, written last: a folder without it is not a finished backup."""

    inboxd_version: str
    created_at: str
    tickets: int
    messages: int
    raw_messages: int
    attachments: int
    missing_attachments: int
    secret_key: bool
    kb_articles: int


def backup(cfg: Config, target: Path, now: datetime) -> Manifest:
    """Copy database, attachments, key and articles into `target` (new or empty)."""
    source = _sqlite_file(cfg, "back up")
    if not source.exists():
        raise ConfigError(f"no database at {source}: nothing to back up")
    if target.exists() and any(target.iterdir()):
        raise InboxdError(f"{target} is not empty: back up into a new folder")
    target.mkdir(parents=True, exist_ok=True)
    snapshot = target / DATABASE
    _copy_database(source, snapshot)
    digests = _attachment_digests(snapshot)
    missing = 0
    for digest in digests:
        src = attachment_path(cfg.data_dir / ATTACHMENTS, digest)
        if not src.exists():
            missing += 1
            continue
        dst = attachment_path(target / ATTACHMENTS, digest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    key = cfg.path(cfg.inboxd.secret_key_file)
    has_key = not (cfg.inboxd.secret_key or cfg.inboxd.secret_key_env) and key.is_file()
    if has_key:
        shutil.copy2(key, target / SECRET)
        os.chmod(target / SECRET, 0o600)
    articles = 0
    if cfg.kb_dir.is_dir():
        shutil.copytree(cfg.kb_dir, target / KB)
        articles = sum(1 for _ in (target / KB).rglob("*.md"))
    counts = _counts(snapshot)
    manifest = Manifest(
        inboxd_version=__version__,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        tickets=counts["ticket"],
        messages=counts["message"],
        raw_messages=counts["raw_message"],
        attachments=len(digests) - missing,
        missing_attachments=missing,
        secret_key=has_key,
        kb_articles=articles,
    )
    (target / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n", "utf-8")
    return manifest


def restore(cfg: Config, source: Path) -> Manifest:
    """Put a backup into this config's (fresh) data_dir; refuses to overwrite anything."""
    manifest = read_manifest(source)
    database = _sqlite_file(cfg, "restore")
    if database.exists():
        raise InboxdError(
            f"{database} exists: restore into a fresh data_dir (move the old one away first,"
            " with the daemon stopped)"
        )
    key = cfg.path(cfg.inboxd.secret_key_file)
    if manifest.secret_key and key.exists():
        raise InboxdError(f"{key} exists: it would not sign the restored tickets' links")
    database.parent.mkdir(parents=True, exist_ok=True)
    _copy_database(source / DATABASE, database)
    if (source / ATTACHMENTS).is_dir():
        shutil.copytree(source / ATTACHMENTS, cfg.data_dir / ATTACHMENTS, dirs_exist_ok=True)
    if manifest.secret_key:
        key.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / SECRET, key)
        os.chmod(key, 0o600)
    if (source / KB).is_dir():
        shutil.copytree(source / KB, cfg.kb_dir, dirs_exist_ok=True)
    return manifest


def read_manifest(folder: Path) -> Manifest:
    try:
        data = json.loads((folder / MANIFEST).read_text("utf-8"))
        return Manifest(**data)
    except FileNotFoundError:
        raise InboxdError(f"{folder}: no {MANIFEST}, so not a finished inboxd backup") from None
    except (OSError, ValueError, TypeError) as exc:
        raise InboxdError(f"{folder / MANIFEST}: cannot read it: {exc}") from None


def _sqlite_file(cfg: Config, verb: str) -> Path:
    path = db.sqlite_path(cfg.database_url)
    if path is None:
        raise ConfigError(
            f"the database is PostgreSQL: {verb} it with pg_dump/pg_restore (e.g. "
            "`pg_dump --format=custom --file=inboxd.dump DBNAME`), and data_dir/attachments "
            "and the secret key with it"
        )
    return path


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: one consistent snapshot, writers carry on (WAL)."""
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
                ok = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise InboxdError(f"cannot copy {source}: {exc}") from None
    if ok != "ok":
        raise InboxdError(f"the copy of {source} is damaged: {ok}")


def _attachment_digests(database: Path) -> list[str]:
    with closing(sqlite3.connect(database)) as conn:
        return [row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM attachment")]


def _counts(database: Path) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as conn:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("ticket", "message", "raw_message")
        }
