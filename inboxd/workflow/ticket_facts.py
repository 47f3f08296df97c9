"""ticket_facts.py: what workflow reads of one ticket now — the facts its conditions see,
and where its SLA targets stand. Reads the database; writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, func, select

from inboxd.customers.context import organizations_for
from inboxd.models import Agent, Event, Message, Ticket, TicketTag
from inboxd.runtime import Runtime
from inboxd.workflow.conditions import Facts
from inboxd.workflow.sla import Policy, TargetState, service_levels, targets
from inboxd.workflow.timelines import Timeline, read_timelines


def facts_for(session: Session, ticket: Ticket, now: datetime) -> Facts:
    """What a policy's (or a rule's) conditions see of a ticket now."""
    return facts_for_many(session, [ticket], now)[ticket.id or 0]


def facts_for_many(session: Session, tickets: list[Ticket], now: datetime) -> dict[int, Facts]:
    """facts_for of many tickets in six queries, not six per ticket (the clock's batches)."""
    ids = [t.id for t in tickets if t.id is not None]
    agent_ids = {t.assignee_id for t in tickets if t.assignee_id}
    emails = dict(
        session.exec(select(Agent.id, Agent.email).where(col(Agent.id).in_(agent_ids))).all()
    )
    first_ids = (
        select(func.min(Message.id))
        .where(col(Message.ticket_id).in_(ids))
        .group_by(col(Message.ticket_id))
    )
    sources = dict(
        session.exec(
            select(Message.ticket_id, Message.source).where(col(Message.id).in_(first_ids))
        ).all()
    )
    last_public = dict(
        session.exec(
            select(Message.ticket_id, func.max(Message.received_at))
            .where(col(Message.ticket_id).in_(ids), col(Message.kind).in_(("customer", "reply")))
            .group_by(col(Message.ticket_id))
        ).all()
    )
    ratings: dict[int, str] = {}
    for ticket_id, rating in session.exec(
        select(Event.ticket_id, Event.to_value)
        .where(col(Event.ticket_id).in_(ids), Event.type == "csat")
        .order_by(col(Event.id))
    ):
        ratings[ticket_id] = rating or ""  # the latest rating wins
    # The requester's customer profile says which organisation it is (SPEC §10.7).
    organizations = organizations_for(session, [t.requester for t in tickets])
    tags: dict[int, list[str]] = {}
    for ticket_id, tag in session.exec(
        select(TicketTag.ticket_id, TicketTag.tag).where(col(TicketTag.ticket_id).in_(ids))
    ):
        tags.setdefault(ticket_id, []).append(tag)
    out: dict[int, Facts] = {}
    for t in tickets:
        assert t.id is not None
        public = last_public.get(t.id)
        out[t.id] = Facts(
            values={
                "status": t.status,
                "priority": t.priority,
                "assignee": emails.get(t.assignee_id, "none") if t.assignee_id else "none",
                "team": t.team or "",
                "requester": t.requester,
                "requester_domain": t.requester.rpartition("@")[2],
                "channel": (
                    t.channel
                    if t.channel != "email"
                    else (sources.get(t.id) or "").partition(":")[0]
                ),
                "organization": organizations.get(t.requester) or "",
                "subject": t.subject,
                "csat": ratings.get(t.id, ""),
            },
            lists={"tag": tuple(sorted(tags.get(t.id, ())))},
            created_at=_aware(t.created_at),
            last_public_at=_aware(public) if public else None,
            now=now,
        )
    return out


def evaluate(
    session: Session, rt: Runtime, ticket: Ticket, now: datetime, *, explain: bool = False
) -> tuple[Policy | None, list[TargetState]]:
    """The policy that applies to the ticket now and where each of its targets stands."""
    assert ticket.id is not None
    return evaluate_many(session, rt, [ticket], now, explain=explain)[ticket.id]


def evaluate_many(
    session: Session, rt: Runtime, tickets: list[Ticket], now: datetime, *, explain: bool = False
) -> dict[int, tuple[Policy | None, list[TargetState]]]:
    """evaluate() for a batch: one pass over their events, facts in a few queries."""
    levels = service_levels(rt.config)
    facts = facts_for_many(session, tickets, now)
    chosen = {t.id: levels.choose(facts[t.id]) for t in tickets if t.id is not None}
    wanted = [i for i, p in chosen.items() if p is not None and i is not None]
    timelines = {t.ticket_id: t for t in read_timelines(session, now, wanted)} if wanted else {}
    out: dict[int, tuple[Policy | None, list[TargetState]]] = {}
    for ticket_id, policy in chosen.items():
        assert ticket_id is not None
        if policy is None:
            out[ticket_id] = (None, [])
            continue
        timeline = timelines.get(ticket_id, Timeline(ticket_id))
        out[ticket_id] = (policy, targets(policy, timeline, now, explain=explain))
    return out


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored timestamp is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
