"""intake.py: the pipeline's customer step: everyone a message brings onto a ticket as
requester or CC resolves to a profile, and the names they give keep it current.

A sender's own From: name keeps their profile's name current; a Cc: line's name (chosen
by someone else's address book) only fills a missing one; an agent's name is never
overwritten (profiles.ensure_customers). Addresses that only appear on a message without
being the ticket's participants (a Cc: the threading rules did not add, SPEC §5) get no
profile from it. Database only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from inboxd.config import OrganizationEntry
from inboxd.customers.profiles import Sighting, ensure_customers
from inboxd.mail.parse import ParsedMessage
from inboxd.models import Participant


def resolve_people(
    session: Session,
    organizations: Sequence[OrganizationEntry],
    ticket_id: int | None,
    msg: ParsedMessage,
    said: str | None,
) -> None:
    """Make sure each person `msg` brought onto the ticket as requester or CC has a
    profile, the first mention of an address winning (the sender's own name over a Cc:
    line's); `said` is the sender's new text when they wrote as the customer, which gives
    a profile without a language its language."""
    assert ticket_id is not None
    people = []
    if msg.sender is not None:
        # An ambiguous sender's name is nobody's to keep, nor their text.
        own = not msg.sender_ambiguous
        email = msg.sender.email
        text = f"{msg.subject}\n{said}" if own and said is not None else ""
        name = msg.sender.name if own else ""
        people.append(Sighting(email, name, own, actor=email if own else "mail", said=text))
    people += [Sighting(a.email, a.name, actor="mail") for a in (*msg.to, *msg.cc)]
    # Only the ticket's participants: a Cc: the threading rules did not add gets nothing.
    wanted = {p.email.lower() for p in people if p.email}
    if not wanted:
        return
    members = set(session.exec(_MEMBERS, params={"ticket": ticket_id, "emails": list(wanted)}))
    ensure_customers(session, [p for p in people if p.email.lower() in members], organizations)


# Built once: composing the expression costs more than running it on every message.
_MEMBERS = select(Participant.email).where(
    col(Participant.ticket_id) == bindparam("ticket"),
    col(Participant.role).in_(("requester", "cc")),
    col(Participant.email).in_(bindparam("emails", expanding=True)),
)
