"""queries.py: read tickets for the CLI, the web view and the API, as SPEC §4's JSON.

Read-only. One place builds the ticket object, so `inboxd show --json`, the web page
and `GET /api/v1/tickets/{id}` can never disagree about its shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from inboxd.customers.context import context_for, organizations_for
from inboxd.errors import InvalidValue, NotFound
from inboxd.models import (
    MAX_TICKET_ID,
    PRIORITIES,
    STATUSES,
    Agent,
    Attachment,
    Event,
    Message,
    Outbound,
    Participant,
    Quarantine,
    SlaDue,
    Ticket,
    TicketTag,
    utcnow,
)
from inboxd.tickets import text_search

SORTS = ("updated", "created", "priority", "id", "due")


@dataclass(frozen=True)
class TicketFilter:
    """The filters of `inboxd tickets`, the API's list and the web view's list."""

    status: str | None = None
    assignee: str | None = None  # an agent's email or name, or "none"
    priority: str | None = None
    tag: str | None = None
    requester: str | None = None
    limit: int = 50
    team: str | None = None
    q: str | None = None  # full text: subject, sender or any message's text
    sort: str = "updated"  # one of SORTS, always newest (or most urgent) first; due: soonest
    offset: int = 0
    due: str | None = None  # "any": has an SLA deadline; "overdue": past it (DUE_FILTERS)
    now: datetime | None = None  # for "overdue"; the caller's clock


def match_agent(agents: Sequence[Agent], who: str) -> Agent | None:
    """The agent `who` names, as `#assign WHO` reads it: an email, else a name or the part
    before the @ that only one of them has. None when nobody (or more than one) matches."""
    who = who.strip().lower()
    for agent in agents:
        if agent.email == who:
            return agent
    by_name = [a for a in agents if a.name.lower() == who]
    if len(by_name) == 1:
        return by_name[0]
    by_local = [a for a in agents if a.email.split("@")[0] == who]
    return by_local[0] if len(by_local) == 1 else None


def checked_filter(
    session: Session, flt: TicketFilter, me: str | None = None, teams: tuple[str, ...] = ()
) -> TicketFilter:
    """The filter as typed by a person, checked (checked_values) and with `assignee` read
    as `#assign` reads it (an email, a name, `me`, or none) and turned into an email. `me`
    is the acting agent's email; `teams` the configured ones a `team` must name (SPEC
    §10.9; none configured: any). Raises InvalidValue naming the field."""
    flt = checked_values(flt)
    if teams and flt.team and flt.team not in teams:
        raise InvalidValue("team", f"expected one of {', '.join(teams)}, not {flt.team!r}")
    if flt.assignee:
        flt = replace(flt, assignee=_assignee_email(session, flt.assignee, me))
    return flt


def checked_values(flt: TicketFilter) -> TicketFilter:
    """The filter's values checked without a database (SPEC §4: an unknown value is
    refused with the allowed ones, never answered with an empty list), lowercased."""
    text: dict[str, Any] = {
        k: v.replace("\x00", "").strip() for k, v in vars(flt).items() if isinstance(v, str)
    }
    flt = replace(flt, **text)
    changes: dict[str, Any] = {}
    for field, allowed in (
        ("status", STATUSES),
        ("priority", PRIORITIES),
        ("sort", SORTS),
        ("due", DUE_FILTERS),
    ):
        value = getattr(flt, field)
        if value is None or value == "":
            changes[field] = None if field != "sort" else "updated"
            continue
        if value.lower() not in allowed:
            raise InvalidValue(field, f"expected one of {', '.join(allowed)}, not {value!r}")
        changes[field] = value.lower()
    if flt.limit < 1:
        raise InvalidValue("limit", f"expected a number of tickets from 1 up, not {flt.limit}")
    if flt.team is not None:
        changes["team"] = flt.team.lower() or None
    return replace(flt, **changes)


def _assignee_email(session: Session, who: str, me: str | None) -> str:
    if who.lower() == "none":
        return "none"
    if who.lower() == "me":
        if me is None:
            raise InvalidValue("assignee", "'me' needs an acting agent")
        return me
    agents = list(session.exec(select(Agent).order_by(col(Agent.id))))
    # Active agents first; a removed agent's tickets can still be listed by their address.
    agent = match_agent([a for a in agents if a.active], who) or match_agent(agents, who)
    if agent is None:
        raise InvalidValue(
            "assignee", f"no agent {who!r}: expected an agent's email or name, me, or none"
        )
    return agent.email


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, as every timestamp in the JSON."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _filtered(query: Any, flt: TicketFilter, dialect: str) -> Any:
    # No stored text holds a NUL (parse.py drops them), and PostgreSQL refuses one.
    text: dict[str, Any] = {
        k: v.replace("\x00", "") for k, v in vars(flt).items() if isinstance(v, str)
    }
    flt = replace(flt, **text)
    query = query.where(col(Ticket.merged_into).is_(None))
    if flt.status:
        query = query.where(Ticket.status == flt.status)
    if flt.priority:
        query = query.where(Ticket.priority == flt.priority)
    if flt.team:
        query = query.where(Ticket.team == flt.team)
    if flt.requester:
        query = query.where(Ticket.requester == flt.requester.lower())
    if flt.assignee:
        if flt.assignee.lower() == "none":
            query = query.where(col(Ticket.assignee_id).is_(None))
        else:
            agent_ids = select(Agent.id).where(
                or_(col(Agent.email) == flt.assignee.lower(), col(Agent.name) == flt.assignee)
            )
            query = query.where(col(Ticket.assignee_id).in_(agent_ids))
    if flt.tag:
        tagged = select(TicketTag.ticket_id).where(TicketTag.tag == flt.tag.lower())
        query = query.where(col(Ticket.id).in_(tagged))
    if searched := _search_text(flt):
        query = query.where(text_search.matches(searched, dialect))
    if flt.due in DUE_FILTERS:
        deadlines = select(SlaDue.ticket_id).where(col(SlaDue.due_at).is_not(None))
        if flt.due == "overdue":
            deadlines = deadlines.where(col(SlaDue.due_at) <= (flt.now or utcnow()))
        query = query.where(col(Ticket.id).in_(deadlines))
    return query


DUE_FILTERS = ("any", "overdue")


def _order(query: Any, sort: str, ticket: Any = Ticket) -> Any:
    """`query` in `sort`'s order; `ticket` is the Ticket entity or an alias of it."""
    if sort == "due":
        # The SLA clock's nearest deadline per ticket (workflow/sla_clock.py keeps it).
        return query.outerjoin(SlaDue, col(SlaDue.ticket_id) == col(Ticket.id)).order_by(
            col(SlaDue.due_at).asc().nulls_last(), col(Ticket.id).desc()
        )
    if sort == "created":
        return query.order_by(ticket.created_at.desc(), ticket.id.desc())
    if sort == "id":
        return query.order_by(ticket.id.desc())
    if sort == "priority":
        return query.order_by(ticket.urgency.desc(), ticket.updated_at.desc(), ticket.id.desc())
    return query.order_by(ticket.updated_at.desc(), ticket.id.desc())


def list_tickets(session: Session, flt: TicketFilter) -> list[Ticket]:
    """Tickets matching the filter, in its sort order (newest activity first by default)."""
    dialect = _dialect(session)
    if dialect == "postgresql" and _search_text(flt) and flt.sort != "due":
        page = _page_among_newest(session, flt)
        if page is not None:
            return page
    query = _order(_filtered(select(Ticket), flt, dialect), flt.sort)
    return list(session.exec(query.offset(max(0, flt.offset)).limit(max(1, flt.limit))))


# PostgreSQL answers ILIKE from trigram indexes, but for a word in many mails it fetched
# and rechecked every hit before sorting them: 1.25 s for a word in a fifth of 200,000
# mails (bench/growth.py). So a search first tests the filter's NEWEST first tickets one
# by one (a ticket's messages through their ticket_id index). When enough of them match,
# they are exactly the page, since every ticket further down the order comes after them;
# a rarer word finds too few there and goes to the indexes, which are fast for few hits.
NEWEST = 500


def _page_among_newest(session: Session, flt: TicketFilter) -> list[Ticket] | None:
    """The page, if it lies among the first NEWEST tickets of the order; else None."""
    wanted = max(0, flt.offset) + max(1, flt.limit)
    if wanted > NEWEST:
        return None
    rest = replace(flt, q=None)
    newest = _order(_filtered(select(Ticket), rest, "postgresql"), flt.sort).limit(NEWEST)
    ticket = aliased(Ticket, newest.subquery())
    query = select(ticket).where(text_search.each_matches(ticket, _search_text(flt)))
    rows = list(session.exec(_order(query, flt.sort, ticket).limit(wanted)))
    return rows[max(0, flt.offset) :] if len(rows) == wanted else None


def _search_text(flt: TicketFilter) -> str:
    return (flt.q or "").replace("\x00", "").strip()


# Where a list's count stops: "1,000+ tickets" says what a reader needs, and counting every
# ticket a common word matches cost as much as listing them (bench/growth.py).
COUNT_CAP = 1000


def count_tickets(session: Session, flt: TicketFilter, cap: int | None = None) -> int:
    """How many tickets match the filter (for pagination). With `cap`, counting stops
    past it and says cap + 1 ("more than cap"), so a word in every fifth mail costs what
    a rare one does."""
    dialect = _dialect(session)
    if cap is None:
        query = _filtered(select(func.count(col(Ticket.id))), flt, dialect)
        return int(session.exec(query).one())
    if dialect == "postgresql" and _search_text(flt) and _many_among_newest(session, flt, cap):
        return cap + 1
    seen: set[int] = set()
    for query in _matching_ids(flt, dialect, cap + 1):
        for ticket_id in session.exec(query.execution_options(yield_per=256)):
            seen.add(ticket_id)
            if len(seen) > cap:
                return cap + 1
    return len(seen)


def _many_among_newest(session: Session, flt: TicketFilter, cap: int) -> bool:
    """Whether more than `cap` tickets match, told by testing the newest ones one by one
    (see NEWEST), on PostgreSQL: first NEWEST of them, then, when that many matched
    there as would make cap + 1 likely among COUNT_NEWEST, up to COUNT_NEWEST."""
    rest = replace(flt, q=None)
    text = _search_text(flt)

    def matching(among: int, enough: int) -> int:
        newest = _filtered(select(Ticket), rest, "postgresql").order_by(col(Ticket.id).desc())
        ticket = aliased(Ticket, newest.limit(among).subquery())
        found = select(ticket.id).where(text_search.each_matches(ticket, text)).limit(enough)
        return int(session.exec(select(func.count()).select_from(found.subquery())).one())

    sample = matching(NEWEST, NEWEST)
    if sample * COUNT_NEWEST < 2 * (cap + 1) * NEWEST:
        return False
    return matching(COUNT_NEWEST, cap + 1) > cap


# How far the count's walk goes: a word in one ticket of ten or more reaches the cap here.
COUNT_NEWEST = 10 * (COUNT_CAP + 1)


def _matching_ids(flt: TicketFilter, dialect: str, enough: int) -> list[Any]:
    """Queries whose ids, together, are the matching tickets (repeats allowed), each read
    as a stream that can stop early. On SQLite a search walks the full-text matches and
    joins each to its ticket, instead of building the whole set of hits first."""
    text = _search_text(flt)
    if dialect != "sqlite" or len(text) < 3:
        return [_filtered(select(Ticket.id), flt, dialect).limit(enough)]
    rest = replace(flt, q=None)
    phrase = text_search.phrase(text)
    # The subject/requester hits are few per ticket: their set is cheap to build. Each
    # message hit is joined to its ticket, the full-text table first: the unary + keeps
    # SQLite from reading it the other way round (a MATCH per candidate message, seconds
    # when a filter such as status=open looks selective to the planner and is not).
    by_ticket = select(Ticket.id).where(
        col(Ticket.id).in_(
            select(text_search.TICKET_FTS.c.rowid).where(
                text_search.TICKET_FTS.c.ticket_fts.op("MATCH")(phrase)
            )
        )
    )
    by_message = (
        select(Ticket.id)
        .select_from(text_search.MESSAGE_FTS)
        .join(Message, col(Message.id) == literal_column("+message_fts.rowid"))
        .join(Ticket, col(Ticket.id) == col(Message.ticket_id))
        .where(text_search.MESSAGE_FTS.c.message_fts.op("MATCH")(phrase))
    )
    return [_filtered(by_ticket, rest, dialect), _filtered(by_message, rest, dialect)]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def search(session: Session, text: str, limit: int = 50) -> list[Ticket]:
    """Tickets whose subject, requester or any message text contains `text`."""
    return list_tickets(session, TicketFilter(q=text, limit=limit))


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    """The ticket, or NotFound with a message for the user."""
    ticket = session.get(Ticket, ticket_id) if 0 < ticket_id <= MAX_TICKET_ID else None
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    return ticket


def ticket_json(session: Session, ticket: Ticket, *, full: bool = False) -> dict[str, Any]:
    """SPEC §4's ticket object; with `full`, its messages and events too."""
    assert ticket.id is not None
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    tags = session.exec(
        select(TicketTag.tag).where(TicketTag.ticket_id == ticket.id).order_by(TicketTag.tag)
    ).all()
    cc = session.exec(
        select(Participant.email)
        .where(Participant.ticket_id == ticket.id, Participant.role == "cc")
        .order_by(Participant.email)
    ).all()
    data = _ticket_fields(
        ticket,
        assignee.email if assignee else None,
        list(tags),
        list(cc),
        session.get(SlaDue, ticket.id),
        organizations_for(session, [ticket.requester]).get(ticket.requester),
    )
    if full:
        # The customer as agents see them beside the ticket (SPEC §10.7); bounded.
        customer = context_for(session, ticket.requester, ticket.id)
        data["customer"] = customer.to_json() if customer else None
        data["messages"] = [_message_json(session, m) for m in messages_of(session, ticket.id)]
        data["events"] = [_event_json(e) for e in events_of(session, ticket.id)]
    return data


def _ticket_fields(
    ticket: Ticket,
    assignee: str | None,
    tags: list[str],
    cc: list[str],
    due: SlaDue | None,
    organization: str | None,
) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": assignee,
        "team": ticket.team,
        "tags": tags,
        "requester": ticket.requester,
        "cc": cc,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "solved_at": iso(ticket.solved_at),
        "merged_into": ticket.merged_into,
        "followup_of": ticket.followup_of,
        # The nearest SLA deadline still running (SPEC §10.2); `inboxd sla N` explains it.
        "sla_due_at": iso(due.due_at) if due else None,
        "sla_due_target": due.due_target if due and due.due_at else None,
        # How it reached support, and who opened it: the requester, or the agent who
        # logged a call (SPEC §4, §10.7); the requester's organisation.
        "channel": ticket.channel,
        "submitter": ticket.submitter or ticket.requester,
        "organization": organization,
    }


def tickets_json(session: Session, tickets: list[Ticket]) -> list[dict[str, Any]]:
    """ticket_json for a page of tickets, in five queries instead of five per ticket."""
    ids = [t.id for t in tickets]
    agent_ids = {t.assignee_id for t in tickets if t.assignee_id}
    emails = dict(
        session.exec(select(Agent.id, Agent.email).where(col(Agent.id).in_(agent_ids))).all()
    )
    tags: dict[int, list[str]] = {}
    for ticket_id, tag in session.exec(
        select(TicketTag.ticket_id, TicketTag.tag)
        .where(col(TicketTag.ticket_id).in_(ids))
        .order_by(TicketTag.tag)
    ):
        tags.setdefault(ticket_id, []).append(tag)
    ccs: dict[int, list[str]] = {}
    for ticket_id, email in session.exec(
        select(Participant.ticket_id, Participant.email)
        .where(col(Participant.ticket_id).in_(ids), Participant.role == "cc")
        .order_by(Participant.email)
    ):
        ccs.setdefault(ticket_id, []).append(email)
    dues = {
        d.ticket_id: d for d in session.exec(select(SlaDue).where(col(SlaDue.ticket_id).in_(ids)))
    }
    organizations = organizations_for(session, [t.requester for t in tickets])
    return [
        _ticket_fields(
            t,
            emails.get(t.assignee_id or 0),
            tags.get(t.id or 0, []),
            ccs.get(t.id or 0, []),
            dues.get(t.id or 0),
            organizations.get(t.requester),
        )
        for t in tickets
    ]


def messages_of(session: Session, ticket_id: int) -> list[Message]:
    query = select(Message).where(Message.ticket_id == ticket_id)
    return list(session.exec(query.order_by(col(Message.received_at), col(Message.id))))


def events_of(session: Session, ticket_id: int) -> list[Event]:
    query = select(Event).where(Event.ticket_id == ticket_id)
    return list(session.exec(query.order_by(col(Event.at), col(Event.id))))


def _message_json(session: Session, message: Message) -> dict[str, Any]:
    attachments = session.exec(
        select(Attachment).where(Attachment.message_pk == message.id).order_by(col(Attachment.id))
    ).all()
    data: dict[str, Any] = {
        "id": message.id,
        "direction": message.direction,
        "kind": message.kind,
        "threaded_by": message.threaded_by,
        "from": message.from_email,
        "from_name": message.from_name,
        "to": message.to,
        "cc": message.cc,
        "subject": message.subject,
        "date": iso(message.date or message.received_at),
        "message_id": message.message_id,
        "text": message.text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in attachments
        ],
    }
    if message.sender_ambiguous:
        data["sender_ambiguous"] = True
    if message.reply_to:
        data["reply_to"] = message.reply_to
    return data


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "actor": event.actor,
        "type": event.type,
        "from": event.from_value,
        "to": event.to_value,
    }


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(Ticket.status, func.count())
        .where(col(Ticket.merged_into).is_(None))
        .group_by(Ticket.status)
    ).all()
    return dict(rows)


def list_quarantine(session: Session, include_released: bool = False) -> list[Quarantine]:
    query = select(Quarantine)
    if not include_released:
        query = query.where(col(Quarantine.released_at).is_(None))
    return list(session.exec(query.order_by(col(Quarantine.id))))


def quarantine_json(row: Quarantine) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "reason": row.reason,
        "sha256": row.raw_sha256,
        "created_at": iso(row.created_at),
        "attempts": row.attempts,
        "released_at": iso(row.released_at),
        "released_to": row.released_to,
    }


def outbound_json(row: Outbound) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket": row.ticket_id,
        "purpose": row.purpose,
        "message_id": row.message_id,
        "to": row.rcpt_to,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "queued" else None,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
    }
