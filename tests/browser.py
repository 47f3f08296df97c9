"""Real browsers and a real web server for the web view's tests.

    with web_server(rt) as base:                 # create_app(rt) under uvicorn, 127.0.0.1
        page = browser.new_page(base_url=base)
        sign_in(page, rt, base, "bob@example.com")   # through a magic link, like an agent

The `browser` fixture (conftest.py, so that every module shares the one instance) is a
session-wide headless Chromium: Debian's /usr/bin/chromium (or INBOXD_CHROMIUM), driven
by Playwright; it is never downloaded. Where it is missing the tests skip, and fail
under INBOXD_REQUIRE_ALL=1.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from daemon_harness import free_port, wait_until

from inboxd.agents.directory import get_agent
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.runtime import Runtime
from inboxd.web import signin
from inboxd.web.app import create_app
from inboxd.web.views import Wakeups


def chromium_path() -> str | None:
    return os.environ.get("INBOXD_CHROMIUM") or shutil.which("chromium") or None


@contextmanager
def web_server(rt: Runtime, wake: Wakeups | None = None) -> Iterator[str]:
    """The daemon's web app on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(rt, Metrics(), wake),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, name="test-web", daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the web server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def login_url(rt: Runtime, email: str) -> str:
    """A fresh magic link for the agent (what `inboxd agents login-link` prints)."""
    with session_scope(rt.engine) as session:
        return signin.issue_link(session, rt, get_agent(session, email))


def sign_in(page: Any, rt: Runtime, base: str, email: str) -> None:
    """Open a magic link in the page and press its Sign in button, as an agent would."""
    url = login_url(rt, email)
    page.goto(base + url[url.index("/login/") :])
    page.click("#confirm")
    page.wait_for_url(base + "/")
