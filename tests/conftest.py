"""Shared fixtures. Real parts where they can run; a clear skip where they cannot.

With INBOXD_REQUIRE_ALL=1 (set by .ci/run) a missing part fails the test instead of
skipping it, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inboxd.config import Config, from_dict
from inboxd.runtime import Runtime, open_runtime

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
MAIL = Path(__file__).resolve().parent / "data" / "mail"


def require(condition: bool, reason: str) -> None:
    """Skip (or fail under INBOXD_REQUIRE_ALL=1) when a real part is missing."""
    if condition:
        return
    if os.environ.get("INBOXD_REQUIRE_ALL") == "1":
        pytest.fail(f"required for CI but missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The shared corpora of real mail (../shared/corpora beside the checkout)."""
    require(CORPORA.is_dir(), f"corpora not found at {CORPORA}")
    return CORPORA


# --- databases ------------------------------------------------------------------------

PG_URL = os.environ.get("INBOXD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_reachable()


def share_trigram_extension(admin: Any) -> None:
    """pg_trgm in `public`, where no test drops it. (The migration creates it where the
    search_path points when it is missing: in one test's schema, whose `drop schema
    cascade` then took the extension, and every other schema's trigram indexes, with it,
    and failed the migration of a test starting at that moment.)"""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with admin.begin() as conn:
            conn.execute(text("create extension if not exists pg_trgm schema public"))
    except DBAPIError:
        pass  # created by another test at this moment, or not installed (the migration says)


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require(pg_available, f"PostgreSQL not reachable at {PG_URL}")
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    share_trigram_extension(admin)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'drop schema "{schema}" cascade'))
    admin.dispose()


def make_config(tmp_path: Path, database_url: str = "", **sections: dict[str, object]) -> Config:
    """A Config rooted in tmp_path, with one admin and one agent, and overrides per section."""
    data: dict[str, object] = {
        "inboxd": {"support_address": "support@example.com", "database_url": database_url},
        "agents": [
            {"email": "alice@example.com", "name": "Alice", "role": "admin"},
            {"email": "bob@example.com", "name": "Bob", "role": "agent"},
        ],
    }
    for name, values in sections.items():
        if isinstance(values, list):  # an array of tables ([[sla]], [[calendars]]) replaces
            data[name] = values
            continue
        base = data.get(name, {})
        assert isinstance(base, dict)
        data[name] = {**base, **values}
    return from_dict(data, base_dir=tmp_path, source="test")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A fresh runtime (database, secret, data dir) on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""
    runtime = open_runtime(make_config(tmp_path, url))
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def sqlite_rt(tmp_path: Path) -> Iterator[Runtime]:
    """A fresh runtime on SQLite only (for tests that do not depend on the database)."""
    runtime = open_runtime(make_config(tmp_path))
    yield runtime
    runtime.engine.dispose()


# --- a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, never a download) through Playwright, for the session.

    Defined here, once: a session fixture imported into two test modules would be two
    fixtures, and Playwright's sync API cannot start a second one inside the first."""
    from browser import chromium_path

    path = chromium_path()
    require(path is not None, "Chromium not found (Debian package chromium, /usr/bin/chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -e '.[test]')")
        raise
    with sync_playwright() as driver:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox cannot start.
        instance = driver.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox"]
        )
        yield instance
        instance.close()
