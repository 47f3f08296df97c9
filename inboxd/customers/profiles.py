"""profiles.py: find and create customer profiles by address.

Every requester and CC resolves to one profile; a profile merged into another answers
for the one it was merged into, so callers never see an absorbed profile.
"""

from __future__ import annotations

from sqlmodel import Session

from inboxd.models import Customer, CustomerAddress, utcnow


def _normal(email: str) -> str:
    return email.strip().lower()


def customer_for(session: Session, email: str) -> Customer | None:
    """The live profile that holds `email`, or None if nobody has written from it."""
    row = session.get(CustomerAddress, _normal(email))
    if row is None:
        return None
    customer = session.get(Customer, row.customer_id)
    seen: set[int] = set()
    while customer is not None and customer.merged_into is not None:
        if customer.id in seen:  # a cycle would be a bug; never loop on it
            break
        seen.add(customer.id or 0)
        customer = session.get(Customer, customer.merged_into)
    return customer


def ensure_customer(session: Session, email: str, name: str = "") -> Customer:
    """The profile for `email`, created (with `name`) on first sight; a known profile
    without a name learns it. Flushes, so the profile has its id."""
    address = _normal(email)
    customer = customer_for(session, address)
    if customer is None:
        customer = Customer(name=name.strip())
        session.add(customer)
        session.flush()
        assert customer.id is not None
        session.add(CustomerAddress(email=address, customer_id=customer.id, position=0))
        session.flush()
    elif name.strip() and not customer.name:
        customer.name = name.strip()
        customer.updated_at = utcnow()
        session.add(customer)
    return customer
