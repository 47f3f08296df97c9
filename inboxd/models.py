"""models.py: the SQLModel tables. Data only: no I/O, nothing from the pipeline.

Timestamps are aware UTC datetimes (`utcnow()`); SQLModel stores them as UTC.
Schema changes go through an alembic migration in inboxd/migrations/versions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Computed, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

STATUSES = ("new", "open", "pending", "on-hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
# Ticket numbers are 32-bit on every database (PostgreSQL's integer): a larger number
# names no ticket, and must never reach the database as one.
MAX_TICKET_ID = 2**31 - 1
MAX_ROW_ID = MAX_TICKET_ID
URGENCY_SQL = (
    "CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1"
    " WHEN 'low' THEN 0 ELSE -1 END"
)  # the same holds for every other table's id


def utcnow() -> datetime:
    """Now, in UTC (how every timestamp is stored)."""
    return datetime.now(UTC)


class Agent(SQLModel, table=True):
    """Someone who answers tickets; identified by their own mail address."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    name: str = Field(default="", max_length=200)
    role: str = Field(default="agent", max_length=16)
    team: str | None = Field(default=None, max_length=100)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    api_token_hash: str | None = Field(default=None, max_length=64, index=True)
    receipts: bool = False
    # Which new-ticket and reply notifications reach this agent (SPEC §10.9):
    # all | team | assigned | none.
    notify: str = Field(default="all", max_length=16)
    # The language of the mail inboxd sends this agent ("" = English, SPEC §10.8).
    language: str = Field(default="", max_length=16)
    signature: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


_LIVE = sql_text("merged_into IS NULL")


class Ticket(SQLModel, table=True):
    """One customer request and everything said about it."""

    # The web list reads the tickets not merged away, newest activity first (0004).
    __table_args__ = (
        Index("ix_ticket_live_updated", "updated_at", sqlite_where=_LIVE, postgresql_where=_LIVE),
        Index(
            "ix_ticket_live_status",
            "status",
            "updated_at",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index(
            "ix_ticket_live_urgency",
            "urgency",
            "updated_at",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index(
            "ix_ticket_live_assignee",
            "assignee_id",
            "updated_at",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="new", index=True, max_length=16)
    priority: str = Field(default="normal", max_length=16)
    # Priority as a number to sort by, kept by the database itself (0004).
    urgency: int | None = Field(
        default=None,
        sa_column=Column(Integer, Computed(URGENCY_SQL, persisted=True), nullable=True),
    )
    assignee_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    team: str | None = Field(default=None, max_length=100)
    requester: str = Field(index=True, max_length=320)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    first_response_at: datetime | None = None
    solved_at: datetime | None = None
    merged_into: int | None = Field(default=None, foreign_key="ticket.id")
    followup_of: int | None = Field(default=None, foreign_key="ticket.id")
    spam: bool = False
    due_at: datetime | None = Field(default=None, index=True)
    # How the request reached support (email, phone, web, api, …) and, for a ticket an
    # agent opened on a customer's behalf, that agent's address (SPEC §10.7).
    channel: str = Field(default="email", max_length=16)
    submitter: str = Field(default="", max_length=320)


class TicketTag(SQLModel, table=True):
    __tablename__ = "ticket_tag"
    __table_args__ = (Index("ix_ticket_tag_tag", "tag", "ticket_id"),)

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    tag: str = Field(primary_key=True, max_length=100)


class Participant(SQLModel, table=True):
    """An address that may read and write on a ticket: requester, CC or agent."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    email: str = Field(primary_key=True, max_length=320, index=True)
    role: str = Field(default="cc", max_length=16)
    added_at: datetime = Field(default_factory=utcnow)


class RawMessage(SQLModel, table=True):
    """The original bytes of every message ever received: write-once, keyed by SHA-256."""

    __tablename__ = "raw_message"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    stored_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """A message on a ticket. `body` is the whole text; `text` the new part of it."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str = Field(default="in", max_length=8)
    kind: str = Field(default="customer", max_length=16)
    threaded_by: str = Field(default="new", max_length=16)
    message_id: str | None = Field(default=None, max_length=998, index=True)
    fingerprint: str = Field(max_length=64, index=True)
    raw_sha256: str | None = Field(default=None, foreign_key="raw_message.sha256", index=True)
    source: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    from_email: str = Field(default="", max_length=320, index=True)
    from_name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sender_ambiguous: bool = False
    to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cc: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reply_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    date: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    flags: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ThreadKey(SQLModel, table=True):
    """A Message-ID known to belong to a ticket, and how it became known.

    source: "own" (inboxd generated it: unguessable), "stored" (a message on the ticket
    has it), "referenced" (a message on the ticket names it in In-Reply-To/References,
    so its parent, arriving late, still finds the ticket).
    """

    __tablename__ = "thread_key"
    __table_args__ = (UniqueConstraint("msgid", "ticket_id"),)

    id: int | None = Field(default=None, primary_key=True)
    msgid: str = Field(max_length=998, index=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    source: str = Field(max_length=16)


class Attachment(SQLModel, table=True):
    """A file that came with a message; stored under its SHA-256, never its own name."""

    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = 0
    sha256: str = Field(max_length=64)
    inline: bool = False
    content_id: str | None = Field(default=None, max_length=998)


class Event(SQLModel, table=True):
    """The audit log: who changed what on which ticket, from what to what, and when."""

    __table_args__ = (Index("ix_event_ticket_at", "ticket_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=320)
    type: str = Field(max_length=32)
    from_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    to_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_pk: int | None = Field(default=None, foreign_key="message.id")
    # The command block that caused the change (for #undo); None for other changes.
    block: str | None = Field(default=None, max_length=40, index=True)


class Quarantine(SQLModel, table=True):
    """A message that could not be processed, with why; `inboxd quarantine retry` re-runs it."""

    id: int | None = Field(default=None, primary_key=True)
    raw_sha256: str = Field(foreign_key="raw_message.sha256", index=True)
    source: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 1
    released_at: datetime | None = None
    released_to: int | None = Field(default=None, foreign_key="message.id")


class Inbound(SQLModel, table=True):
    """The spool: a received message waiting to go through the pipeline.

    A row and its raw bytes are committed before SMTP answers 250 (or before IMAP flags
    the message); the worker processes it afterwards, so a crash in between only delays
    it. `state` is pending, done or failed.
    """

    id: int | None = Field(default=None, primary_key=True)
    raw_sha256: str = Field(foreign_key="raw_message.sha256", index=True)
    source: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    mail_from: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    rcpt_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    state: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    claimed_until: datetime | None = None
    result: str | None = Field(default=None, max_length=16)
    ticket_id: int | None = None
    processed_at: datetime | None = None


class Outbound(SQLModel, table=True):
    """A mail inboxd sends, queued in the same transaction as the change that caused it.

    The Message-ID is fixed when the row is made, so a retry after an unclear failure
    sends the very same mail. `status` is queued, sent or failed; or digest (a notification
    held for the agent's digest) and digested.
    """

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    message_id: str = Field(max_length=998, unique=True)
    purpose: str = Field(default="", max_length=32)
    # The ticket message this mail is about (a notification's subject, a relayed reply).
    about_message_pk: int | None = Field(default=None, foreign_key="message.id")
    mail_from: str = Field(max_length=320)
    rcpt_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="queued", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    sent_at: datetime | None = None


class ImapState(SQLModel, table=True):
    """Where the IMAP poller is in each folder: the UIDVALIDITY seen and the last UID done."""

    __tablename__ = "imap_state"

    account: str = Field(primary_key=True, max_length=400)
    folder: str = Field(primary_key=True, max_length=400)
    uidvalidity: int = 0
    last_uid: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class Suppression(SQLModel, table=True):
    """An address inboxd must not mail until `until`: it bounced with 5.1.1, or it is a
    loop (too much automatic mail)."""

    email: str = Field(primary_key=True, max_length=320)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    until: datetime
    created_at: datetime = Field(default_factory=utcnow)


class LoopHold(SQLModel, table=True):
    """A sender (`a@b`) or a whole domain (`@b`) whose mail the loop breaker holds: stored
    as automatic on their newest ticket, nothing sent, until an admin lifts it."""

    __tablename__ = "loop_hold"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320, index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    started_at: datetime = Field(default_factory=utcnow)
    held: int = 0  # messages held since it started
    lifted_at: datetime | None = None
    lifted_by: str = Field(default="", max_length=320)


class WebLogin(SQLModel, table=True):
    """A magic sign-in link mailed to an agent: signed, expiring, usable once.

    Only the SHA-256 of the link's random part is stored, so a copy of the database
    cannot sign anybody in.
    """

    __tablename__ = "web_login"

    nonce_hash: str = Field(primary_key=True, max_length=64)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256."""

    __tablename__ = "web_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class SlaDue(SQLModel, table=True):
    """When the SLA clock must next look at a ticket, and its nearest deadline.

    Written whenever the ticket's targets are computed, so the clock reads only the rows
    that fell due, never every ticket every minute (SPEC §10.2). `due_at` feeds the
    ticket list's "due soonest" and the header of every ticket mail.
    """

    __tablename__ = "sla_due"

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    policy: str = Field(default="", max_length=100)
    next_at: datetime | None = Field(default=None, index=True)
    due_at: datetime | None = Field(default=None, index=True)
    due_target: str | None = Field(default=None, max_length=32)
    zone: str = Field(default="UTC", max_length=64)
    computed_at: datetime = Field(default_factory=utcnow)


class SlaFiring(SQLModel, table=True):
    """The ledger of warnings, breaches and achievements: one row per target clock and
    kind, so a retry, a restart or a second daemon can never fire one twice."""

    __tablename__ = "sla_firing"

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    target: str = Field(primary_key=True, max_length=32)
    cycle_at: datetime = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    due_at: datetime
    policy: str = Field(default="", max_length=100)
    fired_at: datetime = Field(default_factory=utcnow)


class ClockState(SQLModel, table=True):
    """Small facts the clock keeps between runs: the last event it has seen, and a
    fingerprint of the calendars and policies its due times were computed with."""

    __tablename__ = "clock_state"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RuleDue(SQLModel, table=True):
    """When a time rule falls due on a ticket, and the event that armed it (SPEC §10.3)."""

    __tablename__ = "rule_due"

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    rule: str = Field(primary_key=True, max_length=100)
    since_event_id: int
    due_at: datetime = Field(index=True)


class RuleFiring(SQLModel, table=True):
    """The ledger of rule outcomes: one row per rule, ticket and trigger ("event:ID" for
    an event rule, "time:ID" for the arming of a time rule), so nothing runs twice."""

    __tablename__ = "rule_firing"

    rule: str = Field(primary_key=True, max_length=100)
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=64)
    outcome: str = Field(max_length=16)  # fired | refused | skipped
    at: datetime = Field(default_factory=utcnow)


class Customer(SQLModel, table=True):
    """A person who writes to support, whichever of their addresses they write from
    (SPEC §10.7). A profile merged into another keeps its row (`merged_into`), so an
    unmerge can restore it exactly."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # "agent" (an agent set it: mail never overwrites it), "mail" (a From: or Cc: line), "".
    name_source: str = Field(default="", max_length=16)
    organization: str | None = Field(default=None, max_length=200, index=True)
    # "agent" (set by hand: [[organizations]] never overrides it), "domain" or "".
    organization_source: str = Field(default="", max_length=16)
    # A language tag such as en, zh-Hans, zh-Hant, ja, de (SPEC §10.8); None = unknown.
    language: str | None = Field(default=None, max_length=16)
    language_source: str = Field(default="", max_length=16)  # detected | agent | ""
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    merged_into: int | None = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CustomerAddress(SQLModel, table=True):
    """One address of a customer; position 0 is the primary one."""

    __tablename__ = "customer_address"

    email: str = Field(primary_key=True, max_length=320)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    position: int = 0
    added_at: datetime = Field(default_factory=utcnow)


class CustomerMerge(SQLModel, table=True):
    """A merge of one profile into another, with what it moved, so `unmerge` is exact."""

    __tablename__ = "customer_merge"

    id: int | None = Field(default=None, primary_key=True)
    into_id: int = Field(foreign_key="customer.id", index=True)
    from_id: int = Field(foreign_key="customer.id", index=True)
    # What moved and what the absorbed profile held, to put back on unmerge.
    moved: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor: str = Field(default="", max_length=320)
    at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None
    undone_by: str = Field(default="", max_length=320)


class CustomerEvent(SQLModel, table=True):
    """The history of a profile: who changed what, from what to what, and when."""

    __tablename__ = "customer_event"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=320)
    type: str = Field(max_length=32)  # created, name, organization, address, merged, ...
    from_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    to_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
