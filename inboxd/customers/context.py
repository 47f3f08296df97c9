"""context.py: what an agent sees of a customer beside one of their tickets (SPEC §10.7):
who they are, their other open tickets, their organisation's, and the last few solved.

One function builds it for every agent notification, the ticket page and `show --json`,
so they never disagree. Bounded: at most LIMIT tickets per list (one more is read, to say
that there are more), a handful of indexed queries whatever the history. Read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from inboxd.customers.profiles import addresses_of, customer_for, live
from inboxd.models import Customer, CustomerAddress, CustomerEvent, CustomerMerge, Ticket

OPEN = ("new", "open", "pending", "on-hold")
SOLVED = ("solved", "closed")
LIMIT = 5
SOLVED_LIMIT = 3


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z (as queries.iso, which this room may not import)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


@dataclass(frozen=True)
class TicketLine:
    id: int
    subject: str
    status: str
    requester: str
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject": self.subject,
            "status": self.status,
            "requester": self.requester,
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class CustomerContext:
    """A customer as agents see them next to a ticket; `more_*` says a list was cut."""

    customer: Customer
    addresses: list[str]
    open_tickets: list[TicketLine]
    organization_open_tickets: list[TicketLine]
    recent_solved: list[TicketLine]
    more_open: bool = False
    more_organization_open: bool = False

    def to_json(self) -> dict[str, Any]:
        c = self.customer
        return {
            "id": c.id,
            "name": c.name,
            "addresses": self.addresses,
            "organization": c.organization,
            "language": c.language,
            "open_tickets": [t.to_json() for t in self.open_tickets],
            "organization_open_tickets": [t.to_json() for t in self.organization_open_tickets],
            "recent_solved": [t.to_json() for t in self.recent_solved],
            "more_open_tickets": self.more_open,
            "more_organization_open_tickets": self.more_organization_open,
        }


def _lines(session: Session, query: Any, limit: int) -> tuple[list[TicketLine], bool]:
    rows = session.exec(query.limit(limit + 1)).all()
    lines = [
        TicketLine(t.id or 0, t.subject, t.status, t.requester, t.updated_at) for t in rows[:limit]
    ]
    return lines, len(rows) > limit


def _live_tickets() -> Any:
    return select(Ticket).where(col(Ticket.merged_into).is_(None), Ticket.spam == False)  # noqa: E712


def context_for(
    session: Session, requester: str, ticket_id: int | None = None
) -> CustomerContext | None:
    """The requester's profile and tickets other than `ticket_id`; None without one."""
    customer = customer_for(session, requester) if requester else None
    if customer is None:
        return None
    addresses = addresses_of(session, customer)
    mine = _live_tickets().where(col(Ticket.requester).in_(addresses))
    if ticket_id is not None:
        mine = mine.where(Ticket.id != ticket_id)
    newest = (col(Ticket.updated_at).desc(), col(Ticket.id).desc())
    open_lines, more_open = _lines(
        session, mine.where(col(Ticket.status).in_(OPEN)).order_by(*newest), LIMIT
    )
    solved, _ = _lines(
        session, mine.where(col(Ticket.status).in_(SOLVED)).order_by(*newest), SOLVED_LIMIT
    )
    org_lines: list[TicketLine] = []
    more_org = False
    if customer.organization:
        colleagues = _organization_tickets(customer.organization).where(
            col(Ticket.requester).not_in(addresses), col(Ticket.status).in_(OPEN)
        )
        if ticket_id is not None:
            colleagues = colleagues.where(Ticket.id != ticket_id)
        org_lines, more_org = _lines(session, colleagues.order_by(*newest), LIMIT)
    return CustomerContext(customer, addresses, open_lines, org_lines, solved, more_open, more_org)


def _organization_tickets(organization: str) -> Any:
    """Tickets whose requester's profile is in the organisation: the address's own
    profile, or the live one it was merged into (one level; deeper chains are rare)."""
    members = select(Customer.id).where(
        Customer.organization == organization, col(Customer.merged_into).is_(None)
    )
    owners = (
        select(CustomerAddress.email)
        .join(Customer, col(Customer.id) == col(CustomerAddress.customer_id))
        .where(
            or_(
                col(Customer.id).in_(members),
                col(Customer.merged_into).in_(members),
            )
        )
    )
    return _live_tickets().where(col(Ticket.requester).in_(owners))


def organizations_for(session: Session, emails: Sequence[str]) -> dict[str, str | None]:
    """The organisation of each requester address, for a page of tickets (two queries
    and one per merged profile met)."""
    wanted = sorted({e for e in emails if e})
    if not wanted:
        return {}
    rows = session.exec(
        select(CustomerAddress.email, Customer)
        .join(Customer, col(Customer.id) == col(CustomerAddress.customer_id))
        .where(col(CustomerAddress.email).in_(wanted))
    ).all()
    out: dict[str, str | None] = {}
    for email, customer in rows:
        root = live(session, customer) if customer.merged_into is not None else customer
        out[email] = root.organization if root is not None else None
    return out


def customer_json(session: Session, customer: Customer) -> dict[str, Any]:
    """A profile as `inboxd customers --json` and the API show it."""
    return {
        "id": customer.id,
        "name": customer.name,
        "addresses": addresses_of(session, customer),
        "organization": customer.organization,
        "language": customer.language,
        "notes": customer.notes,
        "created_at": iso(customer.created_at),
        "updated_at": iso(customer.updated_at),
    }


def profile_json(session: Session, customer: Customer) -> dict[str, Any]:
    """`inboxd customers show`: the profile, its tickets, its merges and its history."""
    data = customer_json(session, customer)
    addresses = data["addresses"]
    tickets = session.exec(
        _live_tickets()
        .where(col(Ticket.requester).in_(addresses))
        .order_by(col(Ticket.updated_at).desc(), col(Ticket.id).desc())
        .limit(200)
    ).all()
    data["tickets"] = [
        TicketLine(t.id or 0, t.subject, t.status, t.requester, t.updated_at).to_json()
        for t in tickets
    ]
    ids = [customer.id]
    merges = session.exec(
        select(CustomerMerge)
        .where(or_(col(CustomerMerge.into_id).in_(ids), col(CustomerMerge.from_id).in_(ids)))
        .order_by(col(CustomerMerge.id))
    ).all()
    data["merges"] = [
        {
            "id": m.id,
            "from": m.from_id,
            "into": m.into_id,
            "addresses": m.moved.get("addresses", []),
            "at": iso(m.at),
            "actor": m.actor,
            "undone_at": iso(m.undone_at),
            "undone_by": m.undone_by or None,
        }
        for m in merges
    ]
    events = session.exec(
        select(CustomerEvent)
        .where(CustomerEvent.customer_id == customer.id)
        .order_by(col(CustomerEvent.id))
    ).all()
    data["history"] = [
        {"at": iso(e.at), "actor": e.actor, "type": e.type, "from": e.from_value, "to": e.to_value}
        for e in events
    ]
    return data


def list_customers(session: Session, query: str = "", limit: int = 50) -> list[Customer]:
    """Live profiles, newest change first; `query` matches a name, address or organisation."""
    stmt = select(Customer).where(col(Customer.merged_into).is_(None))
    if query.strip():
        needle = "%" + query.strip().lower().replace("\\", "\\\\").replace("%", "\\%") + "%"
        by_address = select(CustomerAddress.customer_id).where(
            col(CustomerAddress.email).like(needle, escape="\\")
        )
        stmt = stmt.where(
            or_(
                col(Customer.name).ilike(needle, escape="\\"),
                col(Customer.organization).ilike(needle, escape="\\"),
                col(Customer.id).in_(by_address),
                col(Customer.id).in_(
                    select(Customer.merged_into).where(col(Customer.id).in_(by_address))
                ),
            )
        )
    stmt = stmt.order_by(col(Customer.updated_at).desc(), col(Customer.id).desc())
    return list(session.exec(stmt.limit(max(1, limit))))
