"""A ticket's history as people read it (issue 16.4): in `inboxd show` and on the web.

The raw event log misled: a relayed agent reply read `message: — → held`, due dates came
out as raw ISO instants, `#undo`'s changes looked like ordinary ones (and its receipt
read backwards). The JSON of `show --json` keeps the raw events; these tests are about
the lines.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from mailbuilder import mail
from typer.testing import CliRunner

from cli.main import app as cli_app
from inboxd import pipeline
from inboxd.agents import operations
from inboxd.agents.directory import get_agent
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Event
from inboxd.runtime import Runtime
from inboxd.tickets import history
from inboxd.tickets.history import HistoryLine
from inboxd.web import signin
from inboxd.web.app import create_app

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 12, 3, 7, 12, 58, 551039)  # naive UTC, as the database gives it back


def event(type_: str, old: str | None = None, new: str | None = None, **kw: object) -> Event:
    return Event(ticket_id=1, at=AT, actor="alice@example.com", type=type_,
                 from_value=old, to_value=new, **kw)  # fmt: skip


def texts(lines: list[HistoryLine]) -> list[tuple[str, str]]:
    return [(line.kind, line.text) for line in lines]


def test_a_relayed_agent_reply_reads_as_a_reply_not_as_held_mail() -> None:
    events = [
        event("created", None, "new"),
        event("message", None, "customer", message_pk=1),
        event("message", None, "held", message_pk=2),  # as stored, before its commands ran
        event("reply", None, "email", message_pk=2),
    ]
    lines = history.lines(events, {1: "customer", 2: "reply"}, SHANGHAI)
    assert texts(lines) == [
        ("created", "ticket opened"),
        ("message", "mail from the customer"),
        ("reply", "public reply sent (by email)"),
    ]


def test_mail_that_stayed_held_says_so() -> None:
    lines = history.lines([event("message", None, "held", message_pk=2)], {2: "held"}, UTC)
    assert texts(lines) == [("message", "agent mail held")]


def test_times_are_to_the_minute_in_the_readers_zone_and_due_dates_too() -> None:
    due = event("due", None, "2026-12-06T07:12:58.551039+00:00")
    (line,) = history.lines([due], {}, SHANGHAI)
    assert line.when == "2026-12-03 15:12 CST"
    assert line.text == "— → 2026-12-06 15:12 CST"
    assert line.at.tzinfo is not None  # for <time datetime>, in UTC


def test_the_changes_of_an_undo_read_as_undone_from_the_current_value_back() -> None:
    events = [
        event("status", "new", "pending", block="b1"),
        event("status", "pending", "new", block="b2"),
        event("undo", None, "b1", block="b2"),
    ]
    assert texts(history.lines(events, {}, UTC)) == [
        ("status", "new → pending"),
        ("status", "undone: pending → new"),
    ]


def test_show_and_the_web_tell_the_whole_story_of_a_ticket(rt: Runtime) -> None:
    """Web, API and CLI replies and notes are in the history with their source; an undo's
    receipt reads from the value now back to the old one."""
    result = pipeline.ingest(rt, mail(subject="Where is my parcel"), "test")
    ticket = result.ticket
    assert ticket is not None
    alice = "alice@example.com"
    operations.run_commands(rt, ticket, "#status pending\n#due 2026-12-06", alice, "web")
    undone = operations.run_commands(rt, ticket, "#undo", alice, "web").result.changes
    assert "undone status: pending -> new" in undone
    operations.post_reply(rt, ticket, alice, "It ships today.", note=False, source="web")
    operations.post_reply(rt, ticket, alice, "Called the carrier.", note=True, source="api")
    with session_scope(rt.engine) as session:
        lines = history.history(session, ticket, UTC)
    said = texts(lines)
    assert ("status", "undone: pending → new") in said
    assert ("reply", "public reply sent (by web)") in said
    assert ("note", "internal note added (by api)") in said
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", line.when) for line in lines)
    assert not any("+00:00" in text or "held" in text for _, text in said)

    config = _write_config(rt)
    shown = CliRunner(env={"TZ": "Asia/Shanghai", "INBOXD_CONFIG": ""}).invoke(
        cli_app, ["show", str(ticket), "--config", str(config)]
    )
    assert shown.exit_code == 0, shown.output
    story = shown.stdout.split("history:")[1]
    assert "undone: pending → new" in story and "public reply sent (by web)" in story
    assert re.search(r"\d\d:\d\d CST alice@example.com due — → 2026-12-06 \d\d:\d\d CST", story)

    web = TestClient(create_app(rt, Metrics()), base_url="http://127.0.0.1:8025")
    with session_scope(rt.engine) as session:
        link = signin.issue_link(session, rt, get_agent(session, "bob@example.com"))
    path = link.removeprefix("http://127.0.0.1:8025")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get(path).text)
    assert csrf
    web.post(path, data={"csrf": csrf.group(1)}, follow_redirects=False)
    page = web.get(f"/tickets/{ticket}").text
    assert "undone: pending → new" in page and "internal note added (by api)" in page
    listed = page.split("<h2>History</h2>")[1].split("</ol>")[0]
    shown_times = re.findall(r"<time [^>]*>([^<]*)</time>", listed)
    assert shown_times and all(re.fullmatch(r"[\d-]{10} \d\d:\d\d UTC", t) for t in shown_times)


def _write_config(rt: Runtime) -> Path:
    """A config file for the CLI beside the runtime's data, on its database."""
    toml = rt.config.base_dir / "inboxd.toml"
    toml.write_text(
        '[inboxd]\nsupport_address = "support@example.com"\n'
        f'database_url = "{rt.config.database_url}"\n'
        '[[agents]]\nemail = "alice@example.com"\nrole = "admin"\n',
        encoding="utf-8",
    )
    return toml
