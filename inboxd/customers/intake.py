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
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from inboxd.config import OrganizationEntry
from inboxd.customers.profiles import Sighting, ensure_customers
from inboxd.models import Participant


@dataclass(frozen=True)
class Person:
    """An address on a message, the name given with it, and whether it is their own."""

    email: str
    name: str = ""
    own: bool = False


def resolve_people(
    session: Session,
    organizations: Sequence[OrganizationEntry],
    ticket_id: int,
    people: Sequence[Person],
) -> None:
    """Make sure each person who is the ticket's requester or a CC has a profile."""
    wanted: dict[str, Person] = {}
    for person in people:  # the first mention wins: the sender's own name over a Cc:'s
        if person.email:
            wanted.setdefault(person.email.lower(), person)
    if not wanted:
        return
    members = set(session.exec(_MEMBERS, params={"ticket": ticket_id, "emails": list(wanted)}))
    ensure_customers(
        session,
        [
            Sighting(email, p.name, own=p.own, actor=email if p.own else "mail")
            for email, p in wanted.items()
            if email in members
        ],
        organizations,
    )


# Built once: composing the expression costs more than running it on every message.
_MEMBERS = select(Participant.email).where(
    col(Participant.ticket_id) == bindparam("ticket"),
    col(Participant.role).in_(("requester", "cc")),
    col(Participant.email).in_(bindparam("emails", expanding=True)),
)
