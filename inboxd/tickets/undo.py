"""undo.py: `#undo`, which reverts an agent's previous command block on a ticket.

Only plain field changes are reversible, and only while nobody else has changed the
ticket since: merges, splits and moves carry messages that others may have answered.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from inboxd.models import (
    Agent,
    Event,
    Ticket,
)
from inboxd.tickets import actions
from inboxd.tickets.blocks import Actor, CommandError
from inboxd.tickets.store import record_event

# Event type -> how to put the old value back. Merges, splits and moves are not undone
# by #undo: they move messages that others may have answered since.
_REVERSIBLE = {
    "status",
    "priority",
    "assignee",
    "subject",
    "team",
    "due",
    "tag_added",
    "tag_removed",
    "cc_added",
    "cc_removed",
    "sla_requested",  # nothing to put back
    "undo",  # the marker below: undoing an #undo puts back what it reverted
}


def undo_last_block(
    session: Session, ticket: Ticket, actor: Actor, current_block: str
) -> list[str]:
    """Revert the actor's previous block on this ticket, if nothing changed since."""
    assert ticket.id is not None
    events = list(
        session.exec(
            select(Event).where(Event.ticket_id == ticket.id).order_by(col(Event.id).desc())
        )
    )
    last = next(
        (e for e in events if e.block and e.block != current_block and e.actor == actor.email), None
    )
    if last is None:
        raise CommandError("there is no earlier command block of yours on this ticket")
    newer = [e for e in events if e.id is not None and last.id is not None and e.id > last.id]
    if any(e.block != last.block and e.type != "message" for e in newer):
        raise CommandError("the ticket changed since your last block; undo it by hand")
    mine = [e for e in events if e.block == last.block]
    if any(e.type not in _REVERSIBLE for e in mine):
        raise CommandError("your last block merged, split, moved or marked spam; undo by hand")
    done: list[str] = []
    who, block_id = actor.email, current_block
    for event in mine:  # newest first
        old, new = event.from_value, event.to_value
        if event.type == "status" and old:
            actions.set_status(session, ticket, old, who, block_id)
        elif event.type == "priority" and old:
            actions.set_priority(session, ticket, old, who, block_id)
        elif event.type == "assignee":
            agent = session.exec(select(Agent).where(Agent.email == old)).first() if old else None
            actions.set_assignee(session, ticket, agent, who, block_id)
        elif event.type == "subject" and old is not None:
            actions.set_subject(session, ticket, old, who, block_id)
        elif event.type == "team":
            actions.set_team(session, ticket, old, who, block_id)
        elif event.type == "due":
            actions.set_due(
                session, ticket, datetime.fromisoformat(old) if old else None, who, block_id
            )
        elif event.type == "tag_added" and new:
            actions.remove_tag(session, ticket, new, who, block_id)
        elif event.type == "tag_removed" and old:
            actions.add_tag(session, ticket, old, who, block_id)
        elif event.type == "cc_added" and new:
            actions.remove_cc(session, ticket, new, who, block_id)
        elif event.type == "cc_removed" and old:
            actions.add_cc(session, ticket, old, who, block_id)
        if event.type != "undo":
            # What the undo does now: from the block's new value back to its old one.
            done.append(f"undone {event.type}: {new or '-'} -> {old or '-'}")
    # The history reads this block's changes as "undone: …" (tickets/history.py).
    record_event(session, ticket, who, "undo", None, last.block, block=block_id)
    return done
