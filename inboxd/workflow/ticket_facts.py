"""ticket_facts.py: what workflow reads of one ticket now — the facts its conditions see,
and where its SLA targets stand. Reads the database; writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, func, select

from inboxd.models import Agent, Message, Ticket
from inboxd.runtime import Runtime
from inboxd.tickets import actions
from inboxd.workflow.conditions import Facts
from inboxd.workflow.sla import Policy, TargetState, service_levels, targets
from inboxd.workflow.timelines import Timeline, read_timelines


def facts_for(session: Session, ticket: Ticket, now: datetime) -> Facts:
    """What a policy's (or a rule's) conditions see of a ticket now."""
    assert ticket.id is not None
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    first = session.exec(
        select(Message.source).where(Message.ticket_id == ticket.id).order_by(col(Message.id))
    ).first()
    last_public = session.exec(
        select(func.max(Message.received_at)).where(
            Message.ticket_id == ticket.id, col(Message.kind).in_(("customer", "reply"))
        )
    ).one()
    return Facts(
        values={
            "status": ticket.status,
            "priority": ticket.priority,
            "assignee": assignee.email if assignee else "none",
            "team": ticket.team or "",
            "requester": ticket.requester,
            "requester_domain": ticket.requester.rpartition("@")[2],
            "channel": (first or "").partition(":")[0],
            "subject": ticket.subject,
        },
        lists={"tag": tuple(sorted(actions.tags_of(session, ticket.id)))},
        created_at=_aware(ticket.created_at),
        last_public_at=_aware(last_public) if last_public else None,
        now=now,
    )


def evaluate(
    session: Session, rt: Runtime, ticket: Ticket, now: datetime, *, explain: bool = False
) -> tuple[Policy | None, list[TargetState]]:
    """The policy that applies to the ticket now and where each of its targets stands."""
    assert ticket.id is not None
    policy = service_levels(rt.config).choose(facts_for(session, ticket, now))
    if policy is None:
        return None, []
    timeline = next(iter(read_timelines(session, now, [ticket.id])), Timeline(ticket.id))
    return policy, targets(policy, timeline, now, explain=explain)


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored timestamp is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
