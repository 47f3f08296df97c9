"""The SLA clock in a running daemon, on the real clock (SPEC §10.2).

Targets are short, and a ticket's creation is moved back in the database so its warning
or breach falls due a moment later: the daemon, its clock, SMTP in and out are all real.
Each firing must reach people exactly once, across restarts and with two daemons.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import database_url, listening, running_daemon, wait_until  # noqa: F401
from mailbuilder import mail, new_msgid
from relay import Captured, CaptureRelay
from replyclients import gmail_reply
from sqlmodel import func, select

from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.models import ClockState, Event, Message, Outbound, SlaFiring, Ticket
from inboxd.queues import spool
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import queries

ALICE, BOB = "alice@example.com", "bob@example.com"
POLICY = {
    "inboxd": {"clock_seconds": 0.2},
    # Five tickets' notifications in a few seconds would pass the per-agent cap and send
    # the breaches as one digest; these tests count the breach mails themselves.
    "loops": {"max_notifications_per_agent_per_minute": 100},
    "sla": [{"name": "fast", "first_reply": "60m", "warn_before": "30m"}],
}


def send(daemon: Any, raw: bytes, rcpt: list[str]) -> None:
    host, port = daemon.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail("carol@example.org", rcpt, raw)


def new_ticket(rt: Runtime, daemon: Any, n: int = 0) -> int:
    """A new ticket from Carol, or from a customer of its own for n > 0 (the loop breaker
    holds one address that opens ticket after ticket with the same text)."""
    msgid = new_msgid()
    sender = "Carol Customer <carol@example.org>" if n == 0 else f"Customer {n} <c{n}@example.org>"
    raw = mail(sender=sender, subject=f"Order {1042 + n} not delivered", message_id=msgid)
    send(daemon, raw, ["support@example.com"])

    def ticket_id() -> int | None:
        with session_scope(rt.engine) as session:
            row = session.exec(select(Message.ticket_id).where(Message.message_id == msgid)).first()
            return row

    return wait_until(ticket_id, what="the ticket to be created")


def age(rt: Runtime, ticket_id: int, minutes: float) -> None:
    """Move the ticket's creation `minutes` further into the past, then touch it (an event)
    so the clock looks at it again, as it would after any change."""
    settle(rt)
    back = timedelta(minutes=minutes)
    with rt.write_lock, session_scope(rt.engine) as session:
        for event in session.exec(select(Event).where(Event.ticket_id == ticket_id)):
            event.at -= back
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.created_at -= back
    operations.run_commands(rt, ticket_id, f"#tag aged-{int(minutes)}", ALICE, "cli")


def settle(rt: Runtime) -> None:
    """Wait until the daemon has sent what it queued. Its sender writes without the
    in-process lock, and SQLite refuses (does not wait for) a deferred transaction that
    read before another writer committed."""

    def idle() -> bool:
        with session_scope(rt.engine) as session:
            queued = select(func.count()).select_from(Outbound).where(Outbound.status == "queued")
            return not session.exec(queued).one() and not spool.pending_count(rt.engine)

    wait_until(idle, 30, what="the daemon to send what it queued")


def sla_mails(relay: CaptureRelay, word: str) -> list[Captured]:
    return [c for c in relay.captured() if f"SLA {word}" in c.data.decode("utf-8", "replace")]


def firings(rt: Runtime, kind: str) -> int:
    with session_scope(rt.engine) as session:
        return session.exec(
            select(func.count()).select_from(SlaFiring).where(SlaFiring.kind == kind)
        ).one()


def caught_up(rt: Runtime) -> bool:
    """The clock has looked at every event there is."""
    with session_scope(rt.engine) as session:
        last = session.exec(select(func.max(Event.id))).one() or 0
        seen = session.get(ClockState, "clock.last_event_id")
        return seen is not None and int(seen.value) >= last


@pytest.fixture
def relay() -> Iterator[CaptureRelay]:
    with CaptureRelay() as r:
        yield r


def test_a_warning_and_a_breach_are_mailed_once_each_across_a_restart(
    tmp_path: Path,
    relay: CaptureRelay,
    database_url: str,  # noqa: F811
) -> None:
    with listening(tmp_path, relay, database_url, **POLICY) as (rt, daemon):
        ticket_id = new_ticket(rt, daemon)
        age(rt, ticket_id, 31)  # past the warning (30 m before the 60 m target)
        wait_until(lambda: sla_mails(relay, "warning"), what="the SLA warning mail")
        warning = sla_mails(relay, "warning")
        assert [c.rcpt_tos for c in warning] == [(ALICE,)]  # nobody assigned: the admins
        text = warning[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "first reply on ticket" in text
        # Every ticket mail's header carries the next deadline.
        assert re.search(r"SLA: first reply due \w{3} [\d-]+ [\d:]+ UTC, in 2\d m", text)
    # A restart: the new daemon must not warn again.
    rt = open_runtime(rt.config)
    with running_daemon(rt):
        wait_until(lambda: caught_up(rt), what="the new daemon's first tick")
        age(rt, ticket_id, 30)  # now past the target itself
        wait_until(lambda: sla_mails(relay, "breached"), what="the SLA breach mail")
    rt = open_runtime(rt.config)
    with running_daemon(rt):
        operations.run_commands(rt, ticket_id, "#tag once-more", ALICE, "cli")
        wait_until(lambda: caught_up(rt), what="the clock to see the last change")
    assert len(sla_mails(relay, "warning")) == 1
    assert len(sla_mails(relay, "breached")) == 1
    assert (firings(rt, "warning"), firings(rt, "breach")) == (1, 1)
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)
    assert "sla-breached" in data["tags"]
    breaches = [e for e in data["events"] if e["type"] == "sla_breach"]
    assert [(e["actor"], e["to"]) for e in breaches] == [("sla", "first_reply")]


@pytest.mark.postgres
def test_two_daemons_on_one_postgresql_fire_a_breach_once(
    tmp_path: Path, relay: CaptureRelay, pg_url: str
) -> None:
    (tmp_path / "a").mkdir()
    with (
        listening(tmp_path / "a", relay, pg_url, **POLICY) as (rt, first),
        running_daemon(open_runtime(rt.config)),
    ):
        ids = [new_ticket(rt, first, n) for n in range(5)]
        for ticket_id in ids:
            age(rt, ticket_id, 61)
        wait_until(lambda: len(sla_mails(relay, "breached")) >= 5, what="five breach mails")
        # Both clocks keep ticking a while; nothing more may come.
        operations.run_commands(rt, ids[0], "#tag again", ALICE, "cli")
        wait_until(lambda: caught_up(rt), what="the clocks to see the last change")
    assert len(sla_mails(relay, "breached")) == 5
    assert len(sla_mails(relay, "warning")) == 0  # past the target too: no late warning


def test_a_reply_to_the_warning_with_assign_stays_internal(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    with listening(tmp_path, relay, **POLICY) as (rt, daemon):
        ticket_id = new_ticket(rt, daemon)
        age(rt, ticket_id, 31)
        warning = wait_until(lambda: sla_mails(relay, "warning"), what="the SLA warning")[0]
        before = len([c for c in relay.captured() if "carol@example.org" in c.rcpt_tos])
        reply = gmail_reply(
            warning.data, "#assign bob\n\nBob, can you take this one today?\n\nAlice\n"
        )
        token = str(warning.message["Reply-To"].addresses[0].addr_spec)
        host, port = daemon.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail(ALICE, [token], reply)

        def assigned() -> dict[str, Any] | None:
            with session_scope(rt.engine) as session:
                data = queries.ticket_json(
                    session, queries.get_ticket(session, ticket_id), full=True
                )
            return data if data["assignee"] == BOB else None

        data = wait_until(assigned, what="the ticket to be assigned to Bob")
        notes = [m for m in data["messages"] if m["from"] == ALICE]
        assert [m["kind"] for m in notes] == ["note"]
        assert "can you take this one" in notes[0]["text"]
        after = len([c for c in relay.captured() if "carol@example.org" in c.rcpt_tos])
        assert after == before, "a reply to an SLA warning reached the customer"


def test_hash_sla_by_mail_answers_with_the_explanation(tmp_path: Path, relay: CaptureRelay) -> None:
    with listening(tmp_path, relay, **POLICY) as (rt, daemon):
        ticket_id = new_ticket(rt, daemon)
        settle(rt)
        operations.run_commands(rt, ticket_id, "#sla", BOB, "cli")

        def explanation() -> list[Captured]:
            return [c for c in relay.to(BOB) if "SLA policy fast (24x7, UTC)" in c.data.decode()]

        (mail_,) = wait_until(explanation, what="the #sla explanation mail")
        text = mail_.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "- first reply (1 h, started" in text and "active, due" in text
