"""Tokens that leak (issue 19, findings 7 and 6), kept fixed where our MX authenticates.

A customer's token address in a forwarded acknowledgement plus a forged `From:` of that
customer added an attacker as CC; a forwarded agent notification plus a forged `From:` of
that agent ran commands. With `[trust] trusted_authserv_ids` set, the token alone no
longer does either: the topmost Authentication-Results must vouch for the `From:`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_config
from mailbuilder import mail
from sqlmodel import select

from inboxd import pipeline
from inboxd.daemon.checks import agent_trust
from inboxd.db import session_scope
from inboxd.models import Agent, Event, Participant, Ticket
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets.tokens import make_token, token_address

SUPPORT = "support@example.com"
MX = "mx.example.com"
PASS = f"Authentication-Results: {MX}; dmarc=pass header.from={{domain}}\r\n"


@pytest.fixture
def trusting(tmp_path: Path) -> Iterator[Runtime]:
    rt = open_runtime(make_config(tmp_path, trust={"trusted_authserv_ids": [MX]}))
    yield rt
    rt.engine.dispose()


def authenticated(raw: bytes, domain: str) -> bytes:
    return PASS.format(domain=domain).encode() + raw


def customer_token(rt: Runtime, ticket: int) -> str:
    return token_address(SUPPORT, make_token(rt.secret_key, ticket))


def agent_token(rt: Runtime, ticket: int, email: str = "alice@example.com") -> str:
    with session_scope(rt.engine) as session:
        agent = session.exec(select(Agent).where(Agent.email == email)).one()
    return token_address(SUPPORT, make_token(rt.secret_key, ticket, agent.id))


def ccs(rt: Runtime, ticket: int) -> set[str]:
    with session_scope(rt.engine) as session:
        query = select(Participant.email).where(
            Participant.ticket_id == ticket, Participant.role == "cc"
        )
        return set(session.exec(query))


def status(rt: Runtime, ticket: int) -> str:
    with session_scope(rt.engine) as session:
        found = session.get(Ticket, ticket)
        assert found is not None
        return found.status


def new_ticket(rt: Runtime) -> int:
    ticket = pipeline.ingest(rt, mail(sender="carol@example.org"), "test").ticket
    assert ticket is not None
    return ticket


def test_a_leaked_customer_token_with_a_forged_from_adds_no_cc(trusting: Runtime) -> None:
    rt = trusting
    ticket = new_ticket(rt)
    forged = mail(
        sender="carol@example.org", to=customer_token(rt, ticket), cc="mallory@evil.example"
    )
    pipeline.ingest(rt, forged, "test")
    assert ccs(rt, ticket) == set()
    with session_scope(rt.engine) as session:
        event = session.exec(select(Event).where(Event.type == "cc_not_added")).one()
    assert event.to_value is not None and "no Authentication-Results" in event.to_value
    # Carol's real reply, which our MX saw pass DMARC, does add her colleague.
    real = mail(sender="carol@example.org", to=customer_token(rt, ticket), cc="dan@example.org")
    pipeline.ingest(rt, authenticated(real, "example.org"), "test")
    assert ccs(rt, ticket) == {"dan@example.org"}


def test_a_forwarded_notification_with_a_forged_agent_from_runs_nothing(trusting: Runtime) -> None:
    rt = trusting
    ticket = new_ticket(rt)
    token = agent_token(rt, ticket)
    forged = mail(sender="Alice <alice@example.com>", to=token, body="#status closed\n")
    pipeline.ingest(rt, forged, "test")
    assert status(rt, ticket) != "closed"
    real = mail(sender="Alice <alice@example.com>", to=token, body="#status pending\n")
    pipeline.ingest(rt, authenticated(real, "example.com"), "test")
    assert status(rt, ticket) == "pending"


def test_without_a_trusted_mx_the_token_alone_still_runs_commands(rt: Runtime) -> None:
    """The trade-off for sites without an authenticating MX (and what `check` warns of)."""
    ticket = new_ticket(rt)
    pipeline.ingest(
        rt, mail(sender="alice@example.com", to=agent_token(rt, ticket), body="#pending\n"), "test"
    )
    assert status(rt, ticket) == "pending"
    line = agent_trust(rt.config)
    assert line.warn and "reply token and the From: line alone" in line.detail


def test_with_a_trusted_mx_check_says_what_commands_need(trusting: Runtime) -> None:
    line = agent_trust(trusting.config)
    assert line.ok and not line.warn and MX in line.detail
