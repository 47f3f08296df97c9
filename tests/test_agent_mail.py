"""Agents work from their mail client (issue 4, SPEC §5-§7), end to end over real sockets.

A customer's mail goes in by SMTP to a daemon running in a thread; the agent's
notification arrives at a capture relay; the test answers it the way a real mail client
does (tests/replyclients.py: Gmail, Outlook, Apple Mail, a real mutt) and sends that by
SMTP to the notification's Reply-To; then it reads what the customer received at the relay
and what the ticket shows. `inboxd run` is driven through CliRunner.

Every test is one sentence of the issue or the SPEC; its name says which.
"""

from __future__ import annotations

import json
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from daemon_harness import listening, wait_until, write_toml
from mailbuilder import mail, new_msgid, with_transport_headers
from relay import Captured, CaptureRelay
from replyclients import (
    Notification,
    apple_mail_reply,
    gmail_reply,
    mutt_binary,
    mutt_reply,
    outlook_reply,
    replied_headers,
)
from sqlmodel import col, func, select
from typer.testing import CliRunner

from cli.main import app
from inboxd.db import session_scope
from inboxd.models import Message, Outbound
from inboxd.queues import spool
from inboxd.runtime import Runtime
from inboxd.tickets import queries

SUPPORT = "support@example.com"
ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.org"
CAROL_FROM = f"Carol Customer <{CAROL}>"
MX = "mx.example.com"

# What the agent types above the quoted notification in the main scenario.
COMMANDS = "#status pending\n#assign bob\n#priority high\n#tag shipping\n"
REPLY = (
    "Hi Carol,\n\n"
    "your parcel left our warehouse this morning; the tracking number follows.\n\n"
    "Best regards,\n"
    "Alice\n"
    f"Example Support · {ALICE} · +1 555 0100\n"
)
REPLY_SENTENCE = "your parcel left our warehouse this morning"


# --- the desk: a daemon, its relay, and the people around it ------------------------------


def body_text(msg: EmailMessage) -> str:
    """Every plain-text part of a mail, decoded, joined (the HTML alternative is the same
    text laid out: tests/test_html_part.py)."""
    parts = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            parts.append(str(part.get_content()))
    return "\n".join(parts)


def whole(cap: Captured) -> str:
    """A captured mail as one string: raw headers, decoded headers, decoded text parts."""
    msg = cap.message
    decoded = "\n".join(f"{k}: {v}" for k, v in msg.items())
    return "\n".join([cap.data.decode("utf-8", "replace"), decoded, body_text(msg), *cap.rcpt_tos])


@dataclass
class Desk:
    """One inboxd daemon with a capture relay behind it."""

    rt: Runtime
    daemon: Any
    relay: CaptureRelay
    workdir: Path
    sent_replies: list[bytes] = field(default_factory=list)

    # -- sending ------------------------------------------------------------------------

    def send(self, raw: bytes, rcpt: list[str] | None = None, mail_from: str | None = None) -> None:
        """Hand `raw` to the daemon's SMTP listener (recipients from To/Cc by default)."""
        msg = replied_headers(raw)
        if rcpt is None:
            fields = [*msg.get_all("To", []), *msg.get_all("Cc", [])]
            rcpt = [addr for _name, addr in getaddresses([str(f) for f in fields]) if addr]
        if mail_from is None:
            mail_from = getaddresses([str(msg.get("From", ""))])[0][1]
        host, port = self.daemon.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail(mail_from, rcpt, raw)
        self.settle()

    def settle(self) -> None:
        """Wait until everything received is ingested and everything queued is sent."""

        def idle() -> bool:
            if spool.pending_count(self.rt.engine):
                return False
            with session_scope(self.rt.engine) as session:
                queued = session.exec(
                    select(func.count()).select_from(Outbound).where(Outbound.status == "queued")
                ).one()
            if queued:
                self.daemon.wake_outbound()
            return not queued

        wait_until(idle, 30, what="the daemon to ingest and send everything")

    def customer_writes(
        self, *, subject: str = "Order 1042 not delivered", body: str | None = None, **kw: Any
    ) -> tuple[int, str]:
        """A new ticket from Carol; returns (ticket id, her Message-ID)."""
        msgid = kw.pop("message_id", None) or new_msgid()
        text = body or "Hello,\n\nmy order 1042 has not arrived yet.\n\nCarol\n"
        self.send(mail(sender=CAROL_FROM, subject=subject, body=text, message_id=msgid, **kw))
        ticket_id = self.ticket_of(msgid)
        return ticket_id, msgid

    # -- reading ------------------------------------------------------------------------

    def ticket_of(self, message_id: str) -> int:
        with session_scope(self.rt.engine) as session:
            row = session.exec(
                select(Message).where(Message.message_id == message_id).order_by(col(Message.id))
            ).first()
            assert row is not None, f"{message_id} is on no ticket"
            return row.ticket_id

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with session_scope(self.rt.engine) as session:
            return queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)

    def mails_to(self, address: str) -> list[Captured]:
        return self.relay.to(address)

    def replies_to_customer(self, address: str = CAROL) -> list[Captured]:
        """Agents' replies relayed to a customer (not the acknowledgement)."""
        return [m for m in self.mails_to(address) if " via " in str(m.message["From"])]

    def notification(self, ticket_id: int, agent: str = ALICE, containing: str = "") -> bytes:
        """The latest notification about the ticket that reached `agent` (with a token)."""
        found = [
            m
            for m in self.mails_to(agent)
            if f"[#{ticket_id}]" in str(m.message["Subject"])
            and "+" in str(m.message.get("Reply-To", ""))
            and containing in body_text(m.message)
        ]
        assert found, f"no notification of #{ticket_id} to {agent} containing {containing!r}"
        return found[-1].data

    def customer_token_address(self, customer: str = CAROL) -> str:
        """The Reply-To of the acknowledgement the customer got."""
        acks = [m for m in self.mails_to(customer) if m.message.get("Reply-To")]
        assert acks, f"{customer} got no mail with a Reply-To"
        return getaddresses([str(acks[0].message["Reply-To"])])[0][1]

    def reply(self, builder: Callable[..., bytes], notification: bytes, text: str) -> bytes:
        """Build the agent's reply with a client and send it to the notification's Reply-To."""
        if builder is mutt_reply:
            raw = mutt_reply(notification, text, self.workdir / "mutt")
        else:
            raw = builder(notification, text)
        self.sent_replies.append(raw)
        self.send(raw)
        return raw


@pytest.fixture
def desks(tmp_path: Path) -> Iterator[Callable[..., Desk]]:
    """Open a desk with config overrides per section: desks(trust={...})."""
    with ExitStack() as stack:
        count = iter(range(100))

        def open_desk(**sections: dict[str, Any]) -> Desk:
            base = tmp_path / f"desk{next(count)}"
            base.mkdir()
            relay = stack.enter_context(CaptureRelay())
            rt, daemon = stack.enter_context(listening(base, relay, **sections))
            return Desk(rt, daemon, relay, base)

        yield open_desk


@pytest.fixture
def desk(desks: Callable[..., Desk]) -> Desk:
    return desks()


CLIENTS = [
    pytest.param(gmail_reply, id="gmail"),
    pytest.param(outlook_reply, id="outlook"),
    pytest.param(apple_mail_reply, id="apple-mail"),
    pytest.param(mutt_reply, id="mutt"),
]


def needs_client(builder: Callable[..., bytes]) -> None:
    if builder is mutt_reply:
        require(mutt_binary() is not None, "mutt not installed (apt-get install mutt)")


def events(ticket: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in ticket["events"] if e["type"] == kind]


def assert_clean_relay(
    desk: Desk, cap: Captured, *, ticket_id: int, customer_msgid: str, agent: str, agent_name: str
) -> None:
    """What SPEC §7 promises about an agent's reply as the customer receives it."""
    msg = cap.message
    everything = whole(cap).lower()
    assert agent not in everything, f"the agent's address {agent} reached the customer"
    agent_token = Notification(desk.notification(ticket_id, agent)).reply_to_addr
    assert agent_token.partition("+")[2].partition("@")[0] not in everything
    sender = msg["From"].addresses
    assert len(sender) == 1
    assert sender[0].display_name == f"{agent_name} via Example Support"
    assert sender[0].addr_spec == SUPPORT
    assert cap.mail_from == SUPPORT
    assert f"[#{ticket_id}]" in str(msg["Subject"])
    assert str(msg["In-Reply-To"]).strip() == customer_msgid
    assert customer_msgid in str(msg["References"]).split()
    reply_to = msg["Reply-To"].addresses[0].addr_spec
    assert reply_to == desk.customer_token_address()
    # Below the agent's words inboxd quotes the customer's last message (issue 16.3):
    # that quote is inboxd's own, and only the customer's text may be in it.
    body = body_text(msg).replace("\r\n", "\n")
    text, attribution, rest = re.split(r"^(On .*, Carol Customer wrote:)$", body, flags=re.M)
    quote, _, footer = rest.partition("\n-- \n")
    assert attribution and "my order 1042 has not arrived" in quote
    assert all(line.startswith(">") for line in quote.strip().splitlines()), quote
    assert "Where your request stands" in footer
    for leaked in ("Reply to this mail", "Commands go at the top", "#status", agent):
        assert leaked not in quote, f"the quote holds more than the customer's text: {leaked!r}"
    assert REPLY_SENTENCE in text
    assert SUPPORT in text, "the agent's address in the signature became the support address"
    for line in text.splitlines():
        assert not line.lstrip().startswith(("#", "＃", ">")), f"leaked line {line!r}"
    for leaked in (
        "wrote:",
        "________________________________",
        "Reply to this mail",
        "Commands go at the top",
        "Sent:",
        "my order 1042 has not arrived",  # the customer's own text, quoted in the notification
    ):
        assert leaked not in text, f"the quoted notification leaked: {leaked!r}"


# --- the main scenario: four clients -----------------------------------------------------


@pytest.mark.parametrize("builder", CLIENTS)
def test_agent_reply_with_commands_changes_ticket_and_customer_gets_clean_relay(
    desk: Desk, builder: Callable[..., bytes]
) -> None:
    needs_client(builder)
    ticket_id, carol_msgid = desk.customer_writes()
    notification = desk.notification(ticket_id, ALICE, "New ticket from")
    desk.reply(builder, notification, COMMANDS + "\n" + REPLY)

    relayed = desk.replies_to_customer()
    assert len(relayed) == 1, [m.message["Subject"] for m in desk.mails_to(CAROL)]
    assert relayed[0].rcpt_tos == (CAROL,)
    assert_clean_relay(
        desk,
        relayed[0],
        ticket_id=ticket_id,
        customer_msgid=carol_msgid,
        agent=ALICE,
        agent_name="Alice",
    )
    ticket = desk.ticket(ticket_id)
    assert ticket["status"] == "pending"
    assert ticket["assignee"] == BOB
    assert ticket["priority"] == "high"
    assert ticket["tags"] == ["shipping"]
    assert ticket["first_response_at"] is not None
    for kind, new in [
        ("status", "pending"),
        ("assignee", BOB),
        ("priority", "high"),
        ("tag_added", "shipping"),
    ]:
        found = events(ticket, kind)
        assert [e["to"] for e in found] == [new], (kind, ticket["events"])
        assert found[0]["actor"] == ALICE
    reply = [m for m in ticket["messages"] if m["kind"] == "reply"]
    assert len(reply) == 1 and reply[0]["direction"] == "out"
    assert REPLY_SENTENCE in reply[0]["text"]
    assert "#status" not in reply[0]["text"] and "wrote:" not in reply[0]["text"]
    # Bob, newly assigned, is told; the relayed text reaches no agent address but his.
    assert any("assigned" in body_text(m.message) for m in desk.mails_to(BOB))


def test_mutt_bottom_posted_reply_runs_commands_below_the_quote(desk: Desk) -> None:
    """SPEC §6: the block is at the top of the agent's *own* text; mutt users bottom-post."""
    require(mutt_binary() is not None, "mutt not installed (apt-get install mutt)")
    ticket_id, carol_msgid = desk.customer_writes()
    notification = desk.notification(ticket_id)
    raw = mutt_reply(notification, COMMANDS + "\n" + REPLY, desk.workdir / "mutt", bottom_post=True)
    desk.send(raw)
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1
    assert_clean_relay(
        desk,
        relayed[0],
        ticket_id=ticket_id,
        customer_msgid=carol_msgid,
        agent=ALICE,
        agent_name="Alice",
    )
    assert desk.ticket(ticket_id)["status"] == "pending"


# --- notes, command-only mail, defaults, redelivery --------------------------------------


@pytest.mark.parametrize("tag", ["#note", "#internal"])
def test_note_never_reaches_the_customer(desk: Desk, tag: str) -> None:
    ticket_id, _ = desk.customer_writes()
    before = len(desk.mails_to(CAROL))
    desk.reply(
        gmail_reply,
        desk.notification(ticket_id),
        f"{tag}\n#priority urgent\n\nVIP customer: refund without asking for the receipt.\n",
    )
    assert len(desk.mails_to(CAROL)) == before
    assert not any("VIP customer" in whole(m) for m in desk.mails_to(CAROL))
    ticket = desk.ticket(ticket_id)
    notes = [m for m in ticket["messages"] if m["kind"] == "note"]
    assert len(notes) == 1 and "VIP customer" in notes[0]["text"]
    assert "#" not in notes[0]["text"]
    assert ticket["priority"] == "urgent"


def test_command_only_mail_sends_nothing_to_the_customer(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    before = len(desk.mails_to(CAROL))
    desk.reply(outlook_reply, desk.notification(ticket_id), "#status pending\n#priority high\n")
    assert len(desk.mails_to(CAROL)) == before
    ticket = desk.ticket(ticket_id)
    assert (ticket["status"], ticket["priority"]) == ("pending", "high")
    assert ticket["first_response_at"] is None
    kept = ticket["messages"][-1]
    assert (kept["kind"], kept["text"]) == ("note", "#status pending\n#priority high")


def test_a_help_only_mail_is_kept_as_a_short_note_not_the_quoted_notification(
    desk: Desk,
) -> None:
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "#help\n")
    kept = desk.ticket(ticket_id)["messages"][-1]
    assert (kept["kind"], kept["text"]) == ("note", "#help")


def test_a_reply_of_nothing_but_the_quoted_notification_sends_nothing(desk: Desk) -> None:
    # Customer mail that is nothing but a quote keeps it (issue #10); an agent's adds
    # nothing to relay, so the customer never gets their own message back.
    ticket_id, _ = desk.customer_writes()
    before = len(desk.mails_to(CAROL))
    desk.reply(gmail_reply, desk.notification(ticket_id), "")
    assert len(desk.mails_to(CAROL)) == before
    assert [m["kind"] for m in desk.ticket(ticket_id)["messages"]][-1] == "note"


def test_reply_to_assignment_notification_is_a_note_unless_public(desk: Desk) -> None:
    """SPEC §6 Defaults: a quick "ok, on it" to an assignment never reaches the customer."""
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "#assign bob\n")
    assignment = desk.notification(ticket_id, BOB, "assigned")
    before = len(desk.mails_to(CAROL))
    desk.reply(apple_mail_reply, assignment, "ok, on it\n\nBob\n")
    assert len(desk.mails_to(CAROL)) == before
    kinds = [m["kind"] for m in desk.ticket(ticket_id)["messages"] if m["from"] == BOB]
    assert kinds == ["note"]
    desk.reply(
        apple_mail_reply, assignment, "#public\n\nHi Carol, I am looking into it today.\n\nBob\n"
    )
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1
    assert relayed[0].message["From"].addresses[0].display_name == "Bob via Example Support"
    assert "looking into it today" in body_text(relayed[0].message)
    assert BOB not in whole(relayed[0]).lower()


def test_redelivered_agent_mail_applies_nothing_twice(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    raw = gmail_reply(desk.notification(ticket_id), "#tag shipping\n#priority high\n\n" + REPLY)
    desk.send(raw)
    first = desk.ticket(ticket_id)
    desk.send(raw)  # the very same bytes again (a client retrying, a second MX)
    second = desk.ticket(ticket_id)
    assert len(desk.replies_to_customer()) == 1
    assert second["events"] == first["events"]
    assert len(second["messages"]) == len(first["messages"])


# --- errors: nothing applied, held, the agent told which line and why ----------------------

ERRORS = [
    pytest.param(["#stauts pending"], "unknown command", id="unknown-command"),
    pytest.param(["#priority extreme"], "priority must be", id="bad-value"),
    pytest.param(["#assign zed"], "no active agent", id="unknown-agent"),
    pytest.param(["#stauts solved", "#priority extreme", "#assign zed"], "", id="all-three"),
]


@pytest.mark.parametrize(("bad", "why"), ERRORS)
def test_invalid_block_changes_nothing_holds_mail_and_names_each_bad_line(
    desk: Desk, bad: list[str], why: str
) -> None:
    ticket_id, _ = desk.customer_writes()
    before = desk.ticket(ticket_id)
    to_carol = len(desk.mails_to(CAROL))
    to_alice = len(desk.mails_to(ALICE))
    block = "#status pending\n#tag shipping\n" + "\n".join(bad) + "\n"
    desk.reply(gmail_reply, desk.notification(ticket_id), block + "\n" + REPLY)

    after = desk.ticket(ticket_id)
    for key in ("status", "priority", "assignee", "tags", "first_response_at"):
        assert after[key] == before[key], key
    assert [e for e in after["events"] if e["type"] != "message"] == [
        e for e in before["events"] if e["type"] != "message"
    ]
    assert len(desk.mails_to(CAROL)) == to_carol
    held = [m for m in after["messages"] if m["from"] == ALICE]
    assert [m["kind"] for m in held] == ["held"]
    errors = desk.mails_to(ALICE)[to_alice:]
    assert len(errors) == 1, [m.message["Subject"] for m in errors]
    text = body_text(errors[0].message)
    for line in bad:
        assert line in text, f"the error mail does not name {line!r}"
    assert why in text
    assert "#status pending" not in text.split("not valid")[-1].split("Your mail")[0]


def mail_from_inboxd(desk: Desk, agent: str, subject_has: str) -> Captured:
    """The latest mail inboxd sent `agent` whose subject contains `subject_has`."""
    found = [m for m in desk.mails_to(agent) if subject_has in str(m.message["Subject"])]
    assert found, f"no mail to {agent} about {subject_has!r}"
    return found[-1]


@pytest.mark.parametrize("builder", [CLIENTS[0], CLIENTS[3]])
def test_a_typo_fixed_by_replying_to_the_error_mail_is_the_agents_own_reply(
    desk: Desk, builder: Callable[..., bytes]
) -> None:
    """Issue 16.1: the error mail carries the agent's token, so the corrected reply is
    verified, runs, and reaches the customer as a reply to the notification would."""
    needs_client(builder)
    ticket_id, _ = desk.customer_writes()
    notification = desk.notification(ticket_id, ALICE, "New ticket from")
    desk.reply(builder, notification, "#stauts pending\n\n" + REPLY)
    error = mail_from_inboxd(desk, ALICE, "Commands not applied")
    token = Notification(notification).reply_to_addr
    assert Notification(error.data).reply_to_addr == token
    assert error.message["To"].addresses[0].display_name == "Alice"

    desk.reply(builder, error.data, "#status pending\n\n" + REPLY)
    ticket = desk.ticket(ticket_id)
    assert ticket["status"] == "pending"
    kinds = [m["kind"] for m in ticket["messages"] if m["from"] == ALICE]
    assert kinds == ["held", "reply"]
    assert not [m for m in desk.mails_to(ALICE) if "held" in str(m.message["Subject"])]
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1 and REPLY_SENTENCE in body_text(relayed[0].message)


def test_a_relayed_reply_names_the_customer_and_links_their_status_page(desk: Desk) -> None:
    """SPEC §7 (issue 16.3): the status link on every customer-facing mail; a name in To."""
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), REPLY)
    (relayed,) = desk.replies_to_customer()
    assert relayed.message["To"].addresses[0].display_name == "Carol Customer"
    links = re.findall(r"http://\S+/status/\S+", body_text(relayed.message))
    assert len(links) == 1 and "Where your request stands" in body_text(relayed.message)
    assert links[0] in body_text(desk.mails_to(CAROL)[0].message)  # the acknowledgement's


def test_a_notification_lists_the_requesters_other_open_tickets(desk: Desk) -> None:
    """Issue 16.7: a reply on an old ticket called the requester's newer ticket "earlier";
    since #15 the header lists the customer's other open tickets, old or new."""
    first, first_msgid = desk.customer_writes(subject="Invoice address wrong")
    second, _ = desk.customer_writes(subject="Parcel damaged")
    about_second = body_text(mail_from_inboxd(desk, ALICE, f"[#{second}]").message)
    assert f"Their other open tickets: #{first} Invoice address wrong (new)" in about_second
    desk.send(
        mail(
            sender=CAROL_FROM,
            subject=f"Re: [#{first}] Invoice address wrong",
            in_reply_to=first_msgid,
            references=[first_msgid],
            body="The street is Hauptstraße 5.\n",
        )
    )
    notified = body_text(mail_from_inboxd(desk, ALICE, f"[#{first}]").message)
    assert "Hauptstraße 5" in notified and "earlier" not in notified
    assert f"Their other open tickets: #{second} Parcel damaged (new)" in notified


def test_receipts_and_help_carry_the_agents_token_and_answer_like_the_notification(
    desk: Desk,
) -> None:
    """SPEC §10.9: every mail that invites a reply carries that agent's token; a reply to a
    receipt about an assignment stays a note, as a reply to the assignment would."""
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "#assign bob\n")
    assignment = desk.notification(ticket_id, BOB, "assigned")
    desk.reply(gmail_reply, assignment, "#help\n")
    help_mail = mail_from_inboxd(desk, BOB, "Commands")
    assert Notification(help_mail.data).reply_to_addr == Notification(assignment).reply_to_addr
    before = len(desk.mails_to(CAROL))
    desk.reply(gmail_reply, help_mail.data, "#priority high\n\nok, on it\n\nBob\n")
    ticket = desk.ticket(ticket_id)
    assert ticket["priority"] == "high"
    assert [m["kind"] for m in ticket["messages"] if m["from"] == BOB] == ["note", "note"]
    assert len(desk.mails_to(CAROL)) == before


# --- the commands and aliases of SPEC §6 through `inboxd run` ------------------------------


@pytest.fixture
def cli_desk(tmp_path: Path) -> tuple[Path, Callable[..., tuple[int, str, str]]]:
    """A config for the CLI (file-mode outbound) and a runner that returns code/out/err."""
    config = write_toml(
        tmp_path / "inboxd.toml",
        {
            "inboxd": {
                "support_address": SUPPORT,
                "support_name": "Example Support",
                "data_dir": str(tmp_path / "data"),
                "templates_dir": str(tmp_path / "templates"),
            },
            "smtp": {"enabled": False},
            "web": {"enabled": False},
            "agents": [
                {"email": ALICE, "name": "Alice", "role": "admin"},
                {"email": BOB, "name": "Bob", "role": "agent"},
            ],
        },
    )
    (tmp_path / "templates" / "macros").mkdir(parents=True)

    def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, [*args, "--config", str(config)], input=stdin)
        return result.exit_code, result.stdout, result.stderr

    return tmp_path, run


def cli_ticket(
    run: Callable[..., tuple[int, str, str]], subject: str, sender: str = CAROL_FROM
) -> int:
    code, out, err = run("ingest", "--json", "-", stdin=mail(sender=sender, subject=subject))
    assert code == 0, err
    return int(json.loads(out.splitlines()[0])["ticket"])


def cli_show(run: Callable[..., tuple[int, str, str]], ticket_id: int) -> dict[str, Any]:
    code, out, err = run("show", str(ticket_id), "--json")
    assert code == 0, err
    return dict(json.loads(out))


# (setup commands, commands, what the ticket must show afterwards)
CLI_CASES: list[Any] = [
    ("", "#status pending", {"status": "pending"}),
    ("", "#STATUS On-Hold", {"status": "on-hold"}),
    ("", "#open", {"status": "open"}),
    ("", "#pending", {"status": "pending"}),
    ("", "#hold", {"status": "on-hold"}),
    ("", "#solve", {"status": "solved"}),
    ("", "#close", {"status": "closed"}),
    ("#solve", "#reopen", {"status": "open"}),
    ("", "#assign bob", {"assignee": BOB}),
    ("", "#assign Bob", {"assignee": BOB}),
    ("", f"#assign {BOB}", {"assignee": BOB}),
    ("", "#assignee bob", {"assignee": BOB}),
    ("", "#owner bob", {"assignee": BOB}),
    ("", "#take", {"assignee": ALICE}),
    ("", "#assign me", {"assignee": ALICE}),
    ("#assign bob", "#assign none", {"assignee": None}),
    ("", "#priority urgent", {"priority": "urgent"}),
    ("", "#low", {"priority": "low"}),
    ("#high", "#normal", {"priority": "normal"}),
    ("", "#high", {"priority": "high"}),
    ("", "#urgent", {"priority": "urgent"}),
    ("", "#tag shipping Refund", {"tags": ["refund", "shipping"]}),
    ("#tag shipping refund", "#untag refund", {"tags": ["shipping"]}),
    ("", "#cc dave@example.org", {"cc": ["dave@example.org"]}),
    ("#cc dave@example.org", "#uncc dave@example.org", {"cc": []}),
    ("", "#subject “Order 1042 never arrived”", {"subject": "Order 1042 never arrived"}),
    ("", "#team billing", {"team": "billing"}),
    ("", "#due 2099-12-01", {"status": "pending"}),
    ("", "#snooze 3d", {"status": "pending"}),
    ("", "#spam", {"status": "closed"}),
    ("#priority high\n#tag vip", "#undo", {"priority": "normal", "tags": []}),
    ("", "＃status pending", {"status": "pending"}),
    ("", "\u200b#priority\u200b high\ufeff", {"priority": "high"}),
]


@pytest.mark.parametrize(
    ("setup", "commands", "expected"), CLI_CASES, ids=[c[1].strip() for c in CLI_CASES]
)
def test_inboxd_run_applies_every_command_and_alias(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
    setup: str,
    commands: str,
    expected: dict[str, Any],
) -> None:
    _, run = cli_desk
    ticket_id = cli_ticket(run, "Order 1042 not delivered")
    if setup:
        code, _, err = run("run", str(ticket_id), setup, "--as", ALICE)
        assert code == 0, err
    code, out, err = run("run", str(ticket_id), commands, "--as", ALICE)
    assert code == 0, err
    assert "nothing to change" not in out
    ticket = cli_show(run, ticket_id)
    for key, value in expected.items():
        assert ticket[key] == value, (key, ticket[key])
    changed = [e for e in ticket["events"] if e["type"] not in ("message", "created")]
    assert changed and all(e["actor"] == ALICE for e in changed), changed


def test_inboxd_run_due_records_when_and_the_timer_reopens(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    _, run = cli_desk
    ticket_id = cli_ticket(run, "Call me back")
    code, out, err = run("run", str(ticket_id), "#due 2099-12-01\n#assign bob", "--as", ALICE)
    assert code == 0, err
    assert "2099-12-01" in out
    due = events(cli_show(run, ticket_id), "due")
    assert len(due) == 1 and due[0]["to"].startswith("2099-12-01")


def test_inboxd_run_merge_moves_everything_to_the_target(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    _, run = cli_desk
    first = cli_ticket(run, "Order 1042 not delivered")
    second = cli_ticket(run, "Still waiting for order 1042")
    code, _, err = run("run", str(first), f"#tag shipping\n#merge {second}", "--as", BOB)
    assert code == 0, err
    old, target = cli_show(run, first), cli_show(run, second)
    assert old["merged_into"] == second
    assert len(target["messages"]) == 2 and target["tags"] == ["shipping"]
    assert events(target, "merged_from")[0]["actor"] == BOB


def test_inboxd_run_help_prints_the_table(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    _, run = cli_desk
    ticket_id = cli_ticket(run, "Question")
    code, out, err = run("run", str(ticket_id), "#help")
    assert code == 0, err
    for usage in ("#status S", "#assign WHO", "#merge N", "#split", "#move N", "#undo", "#macro"):
        assert usage in out


def test_inboxd_run_macro_sends_the_canned_reply_and_runs_its_commands(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    """SPEC §6: #macro inserts templates/macros/NAME.* and "it may hold commands itself";
    `inboxd run` does "exactly as an agent's email would"."""
    base, run = cli_desk
    (base / "templates" / "macros" / "shipped.txt").write_text(
        "#status pending\n#tag shipping\n\nYour order has shipped today.\n", encoding="utf-8"
    )
    ticket_id = cli_ticket(run, "Where is my order?")
    code, _, err = run("run", str(ticket_id), "#macro shipped", "--as", ALICE)
    assert code == 0, err
    ticket = cli_show(run, ticket_id)
    assert ticket["status"] == "pending" and ticket["tags"] == ["shipping"]
    replies = [m for m in ticket["messages"] if m["kind"] == "reply"]
    assert len(replies) == 1 and "Your order has shipped today." in replies[0]["text"]
    assert "#status" not in replies[0]["text"]
    code, out, _ = run("outbox", "--json")
    assert code == 0 and any(r["to"] == [CAROL] for r in json.loads(out))


def test_inboxd_run_bundled_macro_sends_the_canned_reply(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    _, run = cli_desk
    ticket_id = cli_ticket(run, "Where is my order?")
    code, _, err = run("run", str(ticket_id), "#macro thanks", "--as", ALICE)
    assert code == 0, err
    replies = [m for m in cli_show(run, ticket_id)["messages"] if m["kind"] == "reply"]
    assert len(replies) == 1 and "Thank you for getting in touch" in replies[0]["text"]


def test_inboxd_run_spam_quarantines_the_senders_later_mail(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    _, run = cli_desk
    spammer = "Cheap Pills <pills@spam.example>"
    ticket_id = cli_ticket(run, "Best prices", sender=spammer)
    code, _, err = run("run", str(ticket_id), "#spam", "--as", ALICE)
    assert code == 0, err
    assert cli_show(run, ticket_id)["status"] == "closed"
    code, out, err = run("ingest", "--json", "-", stdin=mail(sender=spammer, subject="Again"))
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["result"] == "quarantined"


def test_inboxd_run_invalid_block_names_each_line_and_changes_nothing(
    cli_desk: tuple[Path, Callable[..., tuple[int, str, str]]],
) -> None:
    _, run = cli_desk
    ticket_id = cli_ticket(run, "Question")
    before = cli_show(run, ticket_id)
    code, _, err = run(
        "run", str(ticket_id), "#status pending\n#stauts solved\n#priority extreme\n#assign zed"
    )
    assert code == 1
    for line in ("#stauts solved", "#priority extreme", "#assign zed"):
        assert line in err
    assert "#status pending:" not in err
    after = cli_show(run, ticket_id)
    assert after["status"] == before["status"] and after["events"] == before["events"]


# --- the commands that need a mail to answer: split, move, merge, help, macro, undo ------


def test_split_moves_the_replied_message_to_a_new_ticket(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    token = desk.customer_token_address()
    desk.send(
        mail(
            sender=CAROL_FROM,
            to=token,
            subject="Re: [#1] Order 1042 not delivered",
            body="Also, unrelated: invoice 77 charges me twice.\n",
        )
    )
    about = desk.notification(ticket_id, ALICE, "invoice 77")
    desk.reply(gmail_reply, about, "#split\n")
    old = desk.ticket(ticket_id)
    assert not any("invoice 77" in m["text"] for m in old["messages"])
    assert [e["type"] for e in old["events"]].count("moved_out") == 1
    new_id = int(events(old, "moved_out")[0]["to"])
    new = desk.ticket(new_id)
    assert new["requester"] == CAROL
    assert any("invoice 77" in m["text"] for m in new["messages"])
    receipts = [m for m in desk.mails_to(ALICE) if f"#{new_id}" in body_text(m.message)]
    assert receipts, "no receipt for the split"


def test_move_puts_the_replied_message_on_another_ticket(desk: Desk) -> None:
    first, _ = desk.customer_writes(subject="Order 1042 not delivered")
    second, _ = desk.customer_writes(subject="Invoice 77 wrong")
    token = desk.customer_token_address()  # the first ticket's
    desk.send(
        mail(
            sender=CAROL_FROM,
            to=token,
            subject="Re: [#1] Order 1042",
            body="About the invoice: it is 77, not 78.\n",
        )
    )
    desk.reply(outlook_reply, desk.notification(first, ALICE, "it is 77"), f"#move {second}\n")
    assert not any("it is 77" in m["text"] for m in desk.ticket(first)["messages"])
    assert any("it is 77" in m["text"] for m in desk.ticket(second)["messages"])


@pytest.mark.parametrize("how", ["reply-to-the-ack", "token-address-only"])
def test_merge_by_mail_and_the_customer_reply_lands_on_the_target(desk: Desk, how: str) -> None:
    """SPEC §5: "A message joins a merged ticket's target", by rule 1 (the token) as well."""
    first, _ = desk.customer_writes(subject="Order 1042 not delivered")
    ack = desk.mails_to(CAROL)[0].message
    token = desk.customer_token_address()
    second, _ = desk.customer_writes(subject="Still waiting for 1042")
    desk.reply(apple_mail_reply, desk.notification(first), f"#merge {second}\n")
    assert desk.ticket(first)["merged_into"] == second
    assert any("merged" in body_text(m.message) for m in desk.mails_to(ALICE)), "no receipt"
    msgid = new_msgid()
    threading: dict[str, Any] = {"subject": "Any news?"}
    if how == "reply-to-the-ack":
        ack_id = str(ack["Message-ID"])
        threading = {
            "subject": f"Re: {ack['Subject']}",
            "in_reply_to": ack_id,
            "references": [ack_id],
        }
    desk.send(mail(sender=CAROL_FROM, to=token, message_id=msgid, body="Any news?\n", **threading))
    assert desk.ticket_of(msgid) == second


def test_help_by_mail_sends_the_table_to_the_agent_only(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    before = len(desk.mails_to(CAROL))
    desk.reply(gmail_reply, desk.notification(ticket_id), "#help\n")
    assert len(desk.mails_to(CAROL)) == before
    assert any("#assign WHO" in body_text(m.message) for m in desk.mails_to(ALICE))


def test_macro_by_mail_sends_canned_text_and_runs_the_macros_commands(
    desks: Callable[..., Desk], tmp_path: Path
) -> None:
    templates = tmp_path / "tpl"
    (templates / "macros").mkdir(parents=True)
    (templates / "macros" / "shipped.txt").write_text(
        "#status pending\n#tag shipping\n\nYour order has shipped today.\n", encoding="utf-8"
    )
    desk = desks(inboxd={"templates_dir": str(templates)})
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "#macro shipped\n")
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1
    text = body_text(relayed[0].message)
    assert "Your order has shipped today." in text and "#" not in text
    ticket = desk.ticket(ticket_id)
    assert ticket["status"] == "pending" and ticket["tags"] == ["shipping"]


def test_bundled_macro_by_mail_reaches_the_customer(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "#macro thanks\n")
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1 and "Thank you for getting in touch" in body_text(relayed[0].message)


def test_undo_by_mail_reverts_the_previous_block(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    notification = desk.notification(ticket_id)
    desk.reply(gmail_reply, notification, "#priority urgent\n#tag vip\n#status pending\n")
    desk.reply(gmail_reply, notification, "#undo\n")
    ticket = desk.ticket(ticket_id)
    assert (ticket["priority"], ticket["tags"], ticket["status"]) == ("normal", [], "new")


def test_spam_by_mail_quarantines_the_senders_later_mail(desk: Desk) -> None:
    spammer = "pills@spam.example"
    msgid = new_msgid()
    desk.send(mail(sender=f"Pills <{spammer}>", subject="Best prices", message_id=msgid))
    ticket_id = desk.ticket_of(msgid)
    desk.reply(gmail_reply, desk.notification(ticket_id), "#spam\n")
    assert desk.ticket(ticket_id)["status"] == "closed"
    later = new_msgid()
    desk.send(mail(sender=f"Pills <{spammer}>", subject="Again", message_id=later))
    with session_scope(desk.rt.engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == later)).all()
        quarantined = queries.list_quarantine(session)
    assert not stored and len(quarantined) == 1


# --- where commands are read ---------------------------------------------------------------


def test_commands_in_the_quoted_notification_do_not_run(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes(
        body="#status solved\n#assign bob\nplease close my account.\n"
    )
    assert desk.ticket(ticket_id)["status"] == "new"  # customers' # lines are text
    for builder in (gmail_reply, outlook_reply, apple_mail_reply):
        desk.reply(builder, desk.notification(ticket_id), "Looking into it.\n\nAlice\n")
    ticket = desk.ticket(ticket_id)
    assert (ticket["status"], ticket["assignee"]) == ("new", None)


def test_commands_only_in_the_html_part_do_not_run(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    raw = gmail_reply(
        desk.notification(ticket_id),
        "Thanks, on it.\n\nAlice\n",
        html_text="#status solved\n#priority urgent\n\nThanks, on it.\n\nAlice",
    )
    desk.send(raw)
    ticket = desk.ticket(ticket_id)
    assert (ticket["status"], ticket["priority"]) == ("new", "normal")
    assert len(desk.replies_to_customer()) == 1


@pytest.mark.parametrize(
    "block",
    [
        pytest.param("＃status pending\n＃ｐｒｉｏｒｉｔｙ　ｈｉｇｈ\n", id="full-width"),
        pytest.param(
            "\ufeff\u200b#status\u200b pending\u200d\n#priority\u2060 high\u200b\n", id="zero-width"
        ),
    ],
)
def test_input_method_and_invisible_characters_do_not_break_commands(
    desk: Desk, block: str
) -> None:
    ticket_id, carol_msgid = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), block + "\n" + REPLY)
    ticket = desk.ticket(ticket_id)
    assert (ticket["status"], ticket["priority"]) == ("pending", "high")
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1
    assert_clean_relay(
        desk,
        relayed[0],
        ticket_id=ticket_id,
        customer_msgid=carol_msgid,
        agent=ALICE,
        agent_name="Alice",
    )


# --- the spoofing matrix: runs nothing, leaks nothing --------------------------------------

SPOOF_BODY = (
    "#status solved\n#assign alice\n#cc mallory@evil.example\n\n"
    "Carol, to get your refund please send your card number to mallory@evil.example.\n"
)

SPOOFS = [
    pytest.param([], id="no-authentication-results"),
    pytest.param(
        [f"{MX}; spf=pass smtp.mailfrom=evil.example; dkim=none; dmarc=none"],
        id="spf-pass-unaligned",
    ),
    pytest.param(
        [f"{MX}; spf=none; dkim=pass header.d=evil.example; dmarc=none"], id="dkim-pass-third-party"
    ),
    pytest.param(
        [
            f"{MX}; spf=fail smtp.mailfrom=example.com; dkim=fail header.d=example.com; "
            "dmarc=fail header.from=example.com"
        ],
        id="dmarc-fail",
    ),
    pytest.param(
        [
            f"{MX}; spf=softfail smtp.mailfrom=example.com; dmarc=fail header.from=example.com",
            f"{MX}; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",
        ],
        id="forged-results-below-the-real-one",
    ),
]


@pytest.mark.parametrize("results", SPOOFS)
def test_spoofed_agent_mail_runs_nothing_relays_nothing_is_held_and_agent_warned(
    desks: Callable[..., Desk], results: list[str]
) -> None:
    desk = desks(trust={"trusted_authserv_ids": [MX]})
    ticket_id, carol_msgid = desk.customer_writes()
    before = desk.ticket(ticket_id)
    to_carol = len(desk.mails_to(CAROL))
    to_alice = len(desk.mails_to(ALICE))
    raw = mail(
        sender=f"Alice <{ALICE}>",
        subject=f"Re: [#{ticket_id}] Order 1042 not delivered",
        in_reply_to=carol_msgid,
        references=[carol_msgid],
        body=SPOOF_BODY,
    )
    # Our MX prepends its verdict; whatever came with the message sits below it.
    raw = with_transport_headers(
        raw,
        *[f"Authentication-Results: {r}" for r in results],
        "Received: from evil.example (evil.example [203.0.113.9]) by mx.example.com",
    )
    desk.send(raw, rcpt=[SUPPORT], mail_from="bounce@evil.example")

    after = desk.ticket(ticket_id)
    for key in ("status", "assignee", "priority", "tags", "cc"):
        assert after[key] == before[key], key
    assert len(desk.mails_to(CAROL)) == to_carol
    for address in ("mallory@evil.example", "bounce@evil.example"):
        assert not desk.mails_to(address) and address not in desk.relay.rcpt_attempts
    held = [m for m in after["messages"] if m["from"] == ALICE]
    assert [m["kind"] for m in held] == ["held"]
    warnings = desk.mails_to(ALICE)[to_alice:]
    assert len(warnings) == 1 and "held" in str(warnings[0].message["Subject"])
    assert "card number" not in whole(warnings[0])


def test_trusted_dmarc_pass_on_top_does_run_commands(desks: Callable[..., Desk]) -> None:
    """The control for the matrix above: (b) alone verifies when our MX says DMARC pass."""
    desk = desks(trust={"trusted_authserv_ids": [MX]})
    ticket_id, carol_msgid = desk.customer_writes()
    raw = with_transport_headers(
        mail(
            sender=f"Alice <{ALICE}>",
            subject=f"Re: [#{ticket_id}] Order",
            in_reply_to=carol_msgid,
            body="#status pending\n",
        ),
        f"Authentication-Results: {MX}; dkim=pass header.d=example.com; "
        "dmarc=pass header.from=example.com",
    )
    desk.send(raw, rcpt=[SUPPORT])
    assert desk.ticket(ticket_id)["status"] == "pending"


def test_forwarded_notification_answered_by_an_outsider_runs_and_leaks_nothing(desk: Desk) -> None:
    eve = "eve@outsider.example"
    ticket_id, _ = desk.customer_writes()
    notification = desk.notification(ticket_id)
    raw = gmail_reply(notification, "#status solved\n#cc eve@outsider.example\n\nClosing this.\n")
    raw = raw.replace(f"From: Alice <{ALICE}>".encode(), f"From: Eve <{eve}>".encode())
    assert f"From: Eve <{eve}>".encode() in raw
    to_carol = len(desk.mails_to(CAROL))
    desk.send(raw)
    assert desk.ticket(ticket_id)["status"] == "new"
    assert len(desk.mails_to(CAROL)) == to_carol
    # Later, Alice really answers; the outsider gets none of it.
    desk.reply(gmail_reply, notification, REPLY)
    assert len(desk.replies_to_customer()) == 1
    leaked = [m.message["Subject"] for m in desk.mails_to(eve)]
    assert not leaked, f"the outsider received {leaked}"
    assert eve not in desk.relay.rcpt_attempts
    assert eve not in desk.ticket(ticket_id)["cc"]


@pytest.mark.parametrize("route", ["subject-tag", "customer-message-id"])
def test_stranger_spoofing_the_requester_with_a_cc_receives_nothing(desk: Desk, route: str) -> None:
    """Zendesk 2024: a forged From: of the requester plus Cc: to oneself."""
    mallory = "mallory@evil.example"
    ticket_id, carol_msgid = desk.customer_writes()
    threading = {"in_reply_to": carol_msgid} if route == "customer-message-id" else {}
    desk.send(
        mail(
            sender=CAROL_FROM,
            cc=[mallory],
            subject=f"Re: [#{ticket_id}] Order 1042",
            body="Please send everything to my colleague too.\n",
            **threading,
        ),
        rcpt=[SUPPORT],
        mail_from=mallory,
    )
    assert mallory not in desk.ticket(ticket_id)["cc"]
    desk.reply(gmail_reply, desk.notification(ticket_id), "Your new password is hunter2.\n")
    assert len(desk.replies_to_customer()) == 1
    assert mallory not in desk.relay.rcpt_attempts
    assert sum(len(m.data) for m in desk.mails_to(mallory)) == 0
    assert not any(mallory in whole(m) and "hunter2" in whole(m) for m in desk.relay.captured())


def test_ticket_trick_verification_mail_stays_off_the_customers_ticket(desk: Desk) -> None:
    ticket_id, _ = desk.customer_writes()
    token = desk.customer_token_address()
    msgid = new_msgid("service.example")
    desk.send(
        mail(
            sender="Chat Service <noreply@service.example>",
            to=token,
            subject="Verify your address",
            message_id=msgid,
            body="Your verification code is 834211.\n",
        ),
        mail_from="bounces@service.example",
    )
    ticket = desk.ticket(ticket_id)
    assert not any("834211" in (m["text"] or "") for m in ticket["messages"])
    assert desk.ticket_of(msgid) != ticket_id
    assert not any(
        "834211" in whole(m)
        for m in desk.relay.captured()
        if CAROL in m.rcpt_tos or "noreply@service.example" in m.rcpt_tos
    )


# --- loops ---------------------------------------------------------------------------------

PER_TICKET_10_MIN = 10
PER_ADDRESS_HOUR = 30


Bot = tuple[Desk, Callable[[str], bool], Callable[[Captured], tuple[bytes, list[str]]], Desk]


def drive(bots: list[Bot], *, limit: int = 120, quiet: float = 1.5) -> int:
    """Let bots answer mail: each (source desk, which recipients it is, how it answers,
    the desk its answer goes to) answers every mail its source desk's relay captured for
    it, until nothing moves for `quiet` seconds or `limit` answers were sent."""
    seen: dict[int, int] = {}
    answered = 0
    last = time.monotonic()
    while answered < limit and time.monotonic() - last < quiet:
        progressed = False
        for index, (source, matches, answer, target) in enumerate(bots):
            captured = source.relay.captured()
            start = seen.get(index, 0)
            seen[index] = len(captured)
            for cap in captured[start:]:
                for rcpt in [r for r in cap.rcpt_tos if matches(r.lower())]:
                    if answered >= limit:
                        break
                    raw, to = answer(cap)
                    host, port = target.daemon.smtp_address
                    with smtplib.SMTP(host, port, timeout=30) as client:
                        client.sendmail(rcpt, to, raw)
                    answered += 1
                    progressed = True
        if progressed:
            last = time.monotonic()
        else:
            for source, *_ in bots:
                source.daemon.wake_outbound()
            time.sleep(0.05)
    return answered


def autoresponder(me: str, *, to_reply_to: bool) -> Callable[[Captured], tuple[bytes, list[str]]]:
    """A broken autoresponder: answers every mail, and marks its answers in no way at all."""

    def answer(cap: Captured) -> tuple[bytes, list[str]]:
        msg = cap.message
        header = msg.get("Reply-To") if to_reply_to and msg.get("Reply-To") else msg["From"]
        target = getaddresses([str(header)])[0][1]
        raw = mail(
            sender=me,
            to=target,
            subject=f"Re: {msg['Subject']}",
            in_reply_to=str(msg["Message-ID"]),
            references=[str(msg["Message-ID"])],
            body="I am out of the office until Monday and will answer your mail then.\n",
        )
        return raw, [target]

    return answer


def assert_within_caps(desk: Desk, answered: int, limit: int = 120) -> None:
    """Issue 4's caps, counted on what really left (the relay's captures): at most 10
    mails to a ticket's customer side per 10 minutes, 30 to any one address. The run
    takes seconds, so it sits inside one window; and the exchange must have died out on
    its own (a loop that is merely slowed would reach the `limit` of answers)."""
    agents = {ALICE, BOB}
    per_address: dict[str, int] = {}
    per_ticket: dict[str, int] = {}
    for cap in desk.relay.captured():
        for rcpt in cap.rcpt_tos:
            per_address[rcpt.lower()] = per_address.get(rcpt.lower(), 0) + 1
        tag = re.search(r"\[#\d+\]", str(cap.message["Subject"]))
        if tag and not set(cap.rcpt_tos) <= agents:
            per_ticket[tag.group()] = per_ticket.get(tag.group(), 0) + 1
    for address, count in per_address.items():
        assert count <= PER_ADDRESS_HOUR, f"{count} mails to {address} (cap {PER_ADDRESS_HOUR})"
    for tag, count in per_ticket.items():
        assert count <= PER_TICKET_10_MIN, (
            f"{count} mails to the customer side of {tag} in minutes (cap {PER_TICKET_10_MIN})"
        )
    assert answered < limit, "the loop was still going when the test stopped it"


def test_autoresponders_without_loop_headers_are_capped(desk: Desk) -> None:
    """Carol's and Alice's autoresponders send no loop headers at all (issue 4: "broken
    autoresponders send no headers"); inboxd's caps end the exchange: 10 automatic mails
    per ticket per 10 minutes, 30 per address."""
    bots: list[Bot] = [
        (desk, CAROL.__eq__, autoresponder(CAROL_FROM, to_reply_to=True), desk),
        # Many vacation responders answer the From:, not the Reply-To: every answer is
        # then "agent mail without a token", held, and the agent warned... by mail.
        (desk, ALICE.__eq__, autoresponder(f"Alice <{ALICE}>", to_reply_to=False), desk),
        (desk, BOB.__eq__, autoresponder(f"Bob <{BOB}>", to_reply_to=True), desk),
    ]
    desk.customer_writes()
    assert_within_caps(desk, drive(bots))


@pytest.mark.parametrize("strip", [False, True], ids=["headers-kept", "headers-stripped"])
def test_two_inboxd_instances_back_to_back_exchange_no_more_than_the_caps(
    desks: Callable[..., Desk], strip: bool
) -> None:
    """Two helpdesks that write to each other: A (support@example.com) and B
    (help@example.net). With `strip`, a hop between them drops every loop header."""
    help_b = "help@example.net"
    a = desks()
    b = desks(inboxd={"support_address": help_b, "support_name": "Net Help"})

    def forward(cap: Captured) -> tuple[bytes, list[str]]:
        raw = cap.data
        if strip:
            raw = re.sub(
                rb"(?im)^(auto-submitted|precedence|x-auto-response-suppress|x-loop|"
                rb"x-autoreply|x-autorespond|list-id|list-unsubscribe):[^\r\n]*\r?\n",
                b"",
                raw,
            )
        return raw, list(cap.rcpt_tos)

    bots: list[Bot] = [
        (a, lambda r: r.endswith("@example.net") and r.startswith("help"), forward, b),
        (b, lambda r: r.endswith("@example.com") and r.startswith("support"), forward, a),
    ]
    # Somebody at B opens a ticket at A from B's shared address (B's own outgoing mail).
    a.send(
        mail(sender=f"Net Help <{help_b}>", subject="Partner question"),
        rcpt=[SUPPORT],
        mail_from=help_b,
    )
    answered = drive(bots)
    assert_within_caps(a, answered)
    assert_within_caps(b, answered)


def test_relayed_reply_keeps_ccs_and_the_signature(desk: Desk) -> None:
    dave = "dave@example.org"
    ticket_id, _ = desk.customer_writes(cc=[dave])
    desk.reply(outlook_reply, desk.notification(ticket_id), REPLY)
    relayed = desk.replies_to_customer()
    assert len(relayed) == 1 and set(relayed[0].rcpt_tos) == {CAROL, dave}
    assert dave in str(relayed[0].message["Cc"])
    text = body_text(relayed[0].message)
    assert "Best regards,\nAlice" in text.replace("\r\n", "\n")
    assert ALICE not in whole(relayed[0]).lower()
