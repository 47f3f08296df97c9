"""timelines.py: each ticket's history as of an instant, read from the event log alone.

Reports (SPEC §10.5) must give the same numbers for a period tomorrow as today, so they
never read a ticket's current row (its status, team and tags change) or its messages
(`#move` and `#merge` carry messages to other tickets): only events, which are appended
and never changed, and only those at or before the instant the report is about. One
streaming pass over the events, ordered by ticket, builds every timeline.

Reads the database; writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import Session, col

from inboxd.models import Event
from inboxd.tickets.store import flush_events

OPEN_STATUSES = frozenset({"new", "open", "pending", "on-hold"})
RESOLVED = frozenset({"solved", "closed"})
# The event types a report reads; the others (subject, due, participants...) say nothing
# about service.
_TYPES = (
    "created",
    "status",
    "reply",
    "message",
    "merged",
    "assignee",
    "team",
    "tag_added",
    "tag_removed",
    "csat",
    "csat_sent",
    "csat_suspect",
    "kb_suggested",
    "self_service",
    "sla_breach",
    "sla_achieved",
    "logged",
)


@dataclass
class Timeline:
    """What happened to one ticket, in order, up to the report's end."""

    ticket_id: int
    created_at: datetime | None = None
    # (at, from, to, actor) for every status change.
    statuses: list[tuple[datetime, str, str, str]] = field(default_factory=list)
    # (at, agent) for every public agent reply (relayed mail, web, API, CLI).
    replies: list[tuple[datetime, str]] = field(default_factory=list)
    customer_messages: list[datetime] = field(default_factory=list)
    merged_at: datetime | None = None
    assignee: str | None = None
    team: str | None = None
    tags: set[str] = field(default_factory=set)
    # (at, rating, previous rating) for each vote; surveys sent; votes set aside.
    ratings: list[tuple[datetime, str, str | None]] = field(default_factory=list)
    surveys: list[datetime] = field(default_factory=list)
    suspect: list[datetime] = field(default_factory=list)
    suggested_at: datetime | None = None
    self_solved: list[datetime] = field(default_factory=list)
    # (at, target) for SLA outcomes recorded by the SLA clock.
    sla_breaches: list[tuple[datetime, str]] = field(default_factory=list)
    sla_achieved: list[tuple[datetime, str]] = field(default_factory=list)
    # A ticket an agent opened on a customer's behalf (a logged call): who, and how the
    # customer reached them (SPEC §10.7). Email tickets: None and "email".
    logged_by: str | None = None
    channel: str = "email"

    def first_reply_start(self) -> datetime | None:
        """When the first-reply clock starts: at opening; for a logged call, at the
        customer's first message after it (None: they never wrote, so it is not counted)."""
        if self.logged_by is None:
            return self.created_at
        return self.customer_messages[0] if self.customer_messages else None

    def counted_replies(self, replies: list[datetime]) -> list[datetime]:
        """The public replies reply clocks count: for a logged call, only those after the
        customer's first message (what the agent sent before answers nobody's wait)."""
        start = self.first_reply_start()
        if self.logged_by is None or start is None:
            return replies if self.logged_by is None else []
        return [r for r in replies if r >= start]

    def status_at(self, when: datetime) -> str | None:
        """The status at `when` (None before the ticket existed)."""
        if self.created_at is None or self.created_at > when:
            return None
        status = "new"
        for at, _old, new, _actor in self.statuses:
            if at > when:
                break
            status = new
        return status

    def solves(self) -> list[tuple[datetime, str]]:
        """(at, actor) of each change from an unresolved status to solved or closed."""
        return [(at, actor) for at, old, new, actor in self.statuses if _is_solve(old, new)]

    def reopens(self) -> list[datetime]:
        return [at for at, old, new, _ in self.statuses if old in RESOLVED and new in OPEN_STATUSES]


def _is_solve(old: str, new: str) -> bool:
    return new in RESOLVED and old not in RESOLVED


def read_timelines(
    session: Session, end: datetime, ticket_ids: list[int] | None = None
) -> Iterator[Timeline]:
    """Every ticket's timeline (or those of `ticket_ids`) from the events before `end`,
    one ticket at a time."""
    query = (
        select(
            col(Event.ticket_id),
            col(Event.at),
            col(Event.type),
            col(Event.actor),
            col(Event.from_value),
            col(Event.to_value),
        )
        .where(col(Event.at) < end, col(Event.type).in_(_TYPES))
        .order_by(col(Event.ticket_id), col(Event.at), col(Event.id))
        .execution_options(yield_per=5000)
    )
    if ticket_ids is not None:
        query = query.where(col(Event.ticket_id).in_(ticket_ids))
    flush_events(session)  # a Core query: the events this transaction recorded first
    current: Timeline | None = None
    for ticket_id, at, type_, actor, old, new in session.connection().execute(query):
        if current is None or current.ticket_id != ticket_id:
            if current is not None:
                yield current
            current = Timeline(ticket_id)
        _apply(current, _aware(at), type_, actor, old, new)
    if current is not None:
        yield current


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored timestamp is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _apply(
    t: Timeline, at: datetime, type_: str, actor: str, old: str | None, new: str | None
) -> None:
    if type_ == "created":
        t.created_at = at
    elif type_ == "status":
        t.statuses.append((at, old or "new", new or "", actor))
    elif type_ == "reply":
        t.replies.append((at, actor))
    elif type_ == "message" and new == "customer":
        t.customer_messages.append(at)
    elif type_ == "merged":
        t.merged_at = at
    elif type_ == "assignee":
        t.assignee = new
    elif type_ == "team":
        t.team = new
    elif type_ == "tag_added" and new:
        t.tags.add(new)
    elif type_ == "tag_removed" and old:
        t.tags.discard(old)
    elif type_ == "csat" and new:
        t.ratings.append((at, new, old))
    elif type_ == "csat_sent":
        t.surveys.append(at)
    elif type_ == "csat_suspect":
        t.suspect.append(at)
    elif type_ == "kb_suggested":
        t.suggested_at = t.suggested_at or at
    elif type_ == "self_service":
        t.self_solved.append(at)
    elif type_ == "sla_breach" and new:
        t.sla_breaches.append((at, new))
    elif type_ == "sla_achieved" and new:
        t.sla_achieved.append((at, new))
    elif type_ == "logged":
        t.logged_by, t.channel = actor, new or "other"
