"""actions.py: every change to a ticket's state, each logged as an event.

Commands (from email, CLI, web and rules) and the pipeline change tickets only through
these functions, so every change is recorded the same way, with its actor and, for a
command block, the block id that `#undo` reverts. They take the caller's session and
never commit; they return whether anything changed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from inboxd.models import Agent, Message, Participant, ThreadKey, Ticket, TicketTag, utcnow
from inboxd.tickets.store import record_event


def _log(
    session: Session,
    ticket: Ticket,
    actor: str,
    kind: str,
    old: str | None,
    new: str | None,
    block: str | None,
) -> None:
    record_event(session, ticket, actor, kind, old, new, block=block)


def _set_field(
    session: Session,
    ticket: Ticket,
    field: str,
    value: str | None,
    actor: str,
    block: str | None,
) -> bool:
    """Change one plain text field of a ticket (its event type is the field's name)."""
    old = getattr(ticket, field)
    if old == value:
        return False
    _log(session, ticket, actor, field, old, value, block)
    setattr(ticket, field, value)
    _touch(session, ticket)
    return True


def set_status(
    session: Session, ticket: Ticket, status: str, actor: str, block: str | None = None
) -> bool:
    if not _set_field(session, ticket, "status", status, actor, block):
        return False
    if status == "solved":
        ticket.solved_at = utcnow()
    if status != "pending":
        ticket.due_at = None
    return True


def set_priority(
    session: Session, ticket: Ticket, priority: str, actor: str, block: str | None = None
) -> bool:
    return _set_field(session, ticket, "priority", priority, actor, block)


def set_subject(
    session: Session, ticket: Ticket, subject: str, actor: str, block: str | None = None
) -> bool:
    return _set_field(session, ticket, "subject", subject, actor, block)


def set_team(
    session: Session, ticket: Ticket, team: str | None, actor: str, block: str | None = None
) -> bool:
    return _set_field(session, ticket, "team", team, actor, block)


def set_assignee(
    session: Session, ticket: Ticket, agent: Agent | None, actor: str, block: str | None = None
) -> bool:
    new_id = agent.id if agent is not None else None
    if ticket.assignee_id == new_id:
        return False
    old = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    old_email = old.email if old else None
    _log(session, ticket, actor, "assignee", old_email, agent.email if agent else None, block)
    ticket.assignee_id = new_id
    if ticket.status == "new" and agent is not None:
        # Someone owns it now: it is no longer waiting to be looked at.
        set_status(session, ticket, "open", actor, block)
    _touch(session, ticket)
    return True


def set_due(
    session: Session, ticket: Ticket, due: datetime | None, actor: str, block: str | None = None
) -> bool:
    if ticket.due_at == due:
        return False
    old = ticket.due_at.isoformat() if ticket.due_at else None
    _log(session, ticket, actor, "due", old, due.isoformat() if due else None, block)
    ticket.due_at = due
    _touch(session, ticket)
    return True


def tags_of(session: Session, ticket_id: int) -> set[str]:
    return set(session.exec(select(TicketTag.tag).where(TicketTag.ticket_id == ticket_id)))


def add_tag(
    session: Session, ticket: Ticket, tag: str, actor: str, block: str | None = None
) -> bool:
    assert ticket.id is not None
    if tag in tags_of(session, ticket.id):
        return False
    session.execute(insert(TicketTag), [{"ticket_id": ticket.id, "tag": tag}])
    _log(session, ticket, actor, "tag_added", None, tag, block)
    _touch(session, ticket)
    return True


def remove_tag(
    session: Session, ticket: Ticket, tag: str, actor: str, block: str | None = None
) -> bool:
    assert ticket.id is not None
    if tag not in tags_of(session, ticket.id):
        return False
    session.execute(
        delete(TicketTag).where(col(TicketTag.ticket_id) == ticket.id, col(TicketTag.tag) == tag)
    )
    _log(session, ticket, actor, "tag_removed", tag, None, block)
    _touch(session, ticket)
    return True


def add_cc(
    session: Session, ticket: Ticket, email: str, actor: str, block: str | None = None
) -> bool:
    assert ticket.id is not None
    if session.get(Participant, (ticket.id, email)) is not None:
        return False
    session.execute(
        insert(Participant),
        [{"ticket_id": ticket.id, "email": email, "role": "cc", "added_at": utcnow()}],
    )
    _log(session, ticket, actor, "cc_added", None, email, block)
    _touch(session, ticket)
    return True


def remove_cc(
    session: Session, ticket: Ticket, email: str, actor: str, block: str | None = None
) -> bool:
    assert ticket.id is not None
    row = session.get(Participant, (ticket.id, email))
    if row is None or row.role != "cc":
        return False
    session.delete(row)
    _log(session, ticket, actor, "cc_removed", email, None, block)
    _touch(session, ticket)
    return True


def merge_tickets(
    session: Session, source: Ticket, target: Ticket, actor: str, block: str | None = None
) -> bool:
    """Move everything of `source` onto `target`; `source` stays as a pointer to it.

    Messages, thread keys and participants move, so every later message (and every
    reader) finds one conversation on one ticket; tags are joined.
    """
    assert source.id is not None and target.id is not None and source.id != target.id
    for message in session.exec(select(Message).where(Message.ticket_id == source.id)):
        message.ticket_id = target.id
        session.add(message)
    target_keys = {
        k.msgid for k in session.exec(select(ThreadKey).where(ThreadKey.ticket_id == target.id))
    }
    for key in session.exec(select(ThreadKey).where(ThreadKey.ticket_id == source.id)):
        if key.msgid in target_keys:
            session.delete(key)
        else:
            key.ticket_id = target.id
            session.add(key)
    for person in session.exec(select(Participant).where(Participant.ticket_id == source.id)):
        if session.get(Participant, (target.id, person.email)) is None:
            role = "cc" if person.role == "requester" else person.role
            session.add(Participant(ticket_id=target.id, email=person.email, role=role))
        session.delete(person)
    for tag in session.exec(select(TicketTag).where(TicketTag.ticket_id == source.id)):
        if session.get(TicketTag, (target.id, tag.tag)) is None:
            session.add(TicketTag(ticket_id=target.id, tag=tag.tag))
        session.delete(tag)
    record_event(session, source, actor, "merged", None, str(target.id), block=block)
    record_event(session, target, actor, "merged_from", None, str(source.id), block=block)
    source.merged_into = target.id
    source.status = "closed"
    target.updated_at = utcnow()
    session.add(source)
    session.add(target)
    return True


_SPAM_SENDERS = "inboxd.spam_senders"


def spam_senders(session: Session) -> dict[str, int]:
    """Requesters of tickets marked #spam (-> one such ticket), read once per session."""
    cached: dict[str, int] | None = session.info.get(_SPAM_SENDERS)
    if cached is None:
        rows = session.exec(select(Ticket.requester, Ticket.id).where(Ticket.spam)).all()
        cached = {requester: ticket_id for requester, ticket_id in rows if ticket_id}
        session.info[_SPAM_SENDERS] = cached
    return cached


def mark_spam(session: Session, ticket: Ticket, actor: str, block: str | None = None) -> None:
    """#spam: close the ticket; its requester's later mail goes to quarantine."""
    assert ticket.id is not None
    ticket.spam = True
    spam_senders(session)[ticket.requester] = ticket.id
    set_status(session, ticket, "closed", actor, block)
    _touch(session, ticket)


def _touch(session: Session, ticket: Ticket) -> None:
    ticket.updated_at = utcnow()
    session.add(ticket)
