"""profiles.py: find, create and change customer profiles (SPEC §10.7).

Every requester and CC resolves to one profile; a profile merged into another answers
for the one it was merged into, so callers never see an absorbed profile. A merge only
points the absorbed profile at the other one (its addresses stay its own), so `unmerge`
undoes it exactly by clearing the pointer and putting back the fields the merge filled
in — addresses added to the merged profile afterwards stay where they were added.
Every change is a CustomerEvent (who, when, from, to). Database only; no mail, no clock
beyond the timestamps of the rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from inboxd import languages
from inboxd.config import OrganizationEntry
from inboxd.customers.organizations import fingerprint, organization_of
from inboxd.errors import InboxdError, InvalidValue, NotFound
from inboxd.languages import normalized_tag
from inboxd.models import (
    ClockState,
    Customer,
    CustomerAddress,
    CustomerEvent,
    CustomerMerge,
    utcnow,
)

_FINGERPRINT_KEY = "organizations"

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# What a merge may fill in on the surviving profile when it has none of its own.
_ADOPTED = ("name", "language", "notes", "organization")
EDITABLE = ("name", "organization", "language", "notes")
_NOTES_MAX = 20_000


def _normal(email: str) -> str:
    # No stored text holds a NUL, and PostgreSQL refuses one in a query.
    return email.replace("\x00", "").strip().strip("<>").lower()


def record(
    session: Session,
    customer: Customer,
    actor: str,
    type_: str,
    old: str | None = None,
    new: str | None = None,
) -> None:
    """Append one line to the profile's history."""
    assert customer.id is not None
    session.add(
        CustomerEvent(
            customer_id=customer.id,
            actor=actor or "system",
            type=type_,
            from_value=old,
            to_value=new,
        )
    )


def live(session: Session, customer: Customer | None) -> Customer | None:
    """The profile a (possibly absorbed) profile answers as: follow merges to the end."""
    seen: set[int] = set()
    while customer is not None and customer.merged_into is not None:
        if customer.id in seen:  # a cycle would be a bug; never loop on it
            break
        seen.add(customer.id or 0)
        customer = session.get(Customer, customer.merged_into)
    return customer


def owner_of(session: Session, email: str) -> Customer | None:
    """The profile that holds `email` itself (absorbed or not)."""
    row = session.get(CustomerAddress, _normal(email))
    return session.get(Customer, row.customer_id) if row is not None else None


def language_of(session: Session, email: str) -> str | None:
    """The language of the customer behind `email` (SPEC §10.8), None if not known."""
    customer = customer_for(session, email)
    return customer.language if customer is not None else None


def customer_for(session: Session, email: str) -> Customer | None:
    """The live profile that holds `email`, or None if nobody has written from it."""
    return live(session, owner_of(session, email))


@dataclass(frozen=True)
class Sighting:
    """An address seen on mail, the name given with it, whether that name is the person's
    own (their From: line), who to record as the actor of what it changes, and what they
    wrote themselves (a customer's own message: their language is read from it)."""

    email: str
    name: str = ""
    own: bool = False
    actor: str = ""
    said: str = ""


def ensure_customer(
    session: Session,
    email: str,
    name: str = "",
    *,
    own: bool = False,
    actor: str = "",
    organizations: Sequence[OrganizationEntry] = (),
) -> Customer:
    """The profile for `email`, created (with `name`) on first sight (see ensure_customers)."""
    sighting = Sighting(email, name, own, actor)
    return ensure_customers(session, [sighting], organizations)[_normal(email)]


def ensure_customers(
    session: Session,
    sightings: Sequence[Sighting],
    organizations: Sequence[OrganizationEntry] = (),
) -> dict[str, Customer]:
    """Each sighting's live profile by normalised address, created on first sight.

    `own` says the name is the person's own, which keeps it current; another's (a Cc:
    line) only fills a missing name; a name an agent set is never overwritten. A profile
    without a language takes the one `said` is written in, when that can be told (SPEC
    §10.8: from their first message; a "Thanks!" tells nothing, and the next mail may).
    A message's people cost one query for those known and one flush for those new (not
    two of each per person: this is every message's path). New profiles have their ids;
    their addresses and events go with the session's next flush (any query's autoflush)."""
    wanted: dict[str, Sighting] = {}
    for sighting in sightings:  # the first mention of an address wins
        address = _normal(sighting.email)
        if address:
            wanted.setdefault(address, sighting)
    owners = _owners(session, list(wanted))
    found: dict[str, Customer] = {}
    new: list[tuple[str, Sighting, Customer]] = []
    for address, sighting in wanted.items():
        name = _clean_name(sighting.name, address)
        customer = live(session, owners.get(address))
        if customer is None:
            customer = Customer(name=name, name_source="mail" if name else "")
            session.add(customer)
            new.append((address, sighting, customer))
        elif (
            name
            and customer.name_source != "agent"
            and name != customer.name
            and (sighting.own or not customer.name)
        ):
            _set(session, customer, "name", name, sighting.actor or address)
            customer.name_source = "mail"
        found[address] = customer
    if new:
        session.flush()
        for address, sighting, customer in new:
            assert customer.id is not None
            session.add(CustomerAddress(email=address, customer_id=customer.id, position=0))
            record(session, customer, sighting.actor or address, "created", None, address)
            if organizations:
                refresh_organization(session, customer, organizations, [address])
    for address, sighting in wanted.items():
        if sighting.said:
            _adopt_language(session, found[address], sighting.said, sighting.actor or address)
    return found


def _adopt_language(session: Session, customer: Customer, said: str, actor: str) -> None:
    if customer.language is not None or customer.language_source == "agent":
        return
    language = languages.detect(said)
    if language is not None:
        _set(session, customer, "language", language, actor)
        customer.language_source = "detected"


def _owners(session: Session, addresses: list[str]) -> dict[str, Customer]:
    """The profile holding each of `addresses` itself (absorbed or not), in one query."""
    if not addresses:
        return {}
    rows = session.exec(_OWNERS, params={"addresses": addresses})
    return {email: customer for email, customer in rows}


# Built once: composing the expression costs more than running it on every message.
_OWNERS = (
    select(CustomerAddress.email, Customer)
    .join(Customer, col(Customer.id) == col(CustomerAddress.customer_id))
    .where(col(CustomerAddress.email).in_(bindparam("addresses", expanding=True)))
)


def _clean_name(name: str, address: str) -> str:
    """A display name worth keeping: not the address again, not quoted, one line."""
    name = " ".join(name.replace("\x00", "").split()).strip("'\" ")
    if not name or name.lower() == address or _ADDRESS.match(name):
        return ""
    return name[:200]


def _set(session: Session, customer: Customer, field: str, value: str | None, actor: str) -> None:
    old = getattr(customer, field)
    setattr(customer, field, value)
    customer.updated_at = utcnow()
    session.add(customer)
    record(session, customer, actor, field, old, value)


def find(session: Session, ref: str) -> Customer:
    """The live profile an agent names: an address, or a customer id (`42`, `#42`)."""
    ref = ref.strip()
    if ref.lstrip("#").isdigit():
        number = int(ref.lstrip("#"))
        found = session.get(Customer, number) if 0 < number < 2**31 else None
        customer = live(session, found)
    else:
        customer = customer_for(session, ref)
    if customer is None:
        raise NotFound(f"no customer {ref!r} (an address they wrote from, or a customer id)")
    return customer


def tree_ids(session: Session, customer: Customer) -> list[int]:
    """The profile's id and those of every profile merged into it, directly or not."""
    assert customer.id is not None
    ids, frontier = [customer.id], [customer.id]
    while frontier:
        children = list(
            session.exec(select(Customer.id).where(col(Customer.merged_into).in_(frontier)))
        )
        frontier = [c for c in children if c is not None and c not in ids]
        ids += frontier
    return ids


def addresses_of(session: Session, customer: Customer) -> list[str]:
    """Every address of a live profile: its own first (primary first), then those of the
    profiles merged into it."""
    ids = tree_ids(session, customer)
    rows = session.exec(select(CustomerAddress).where(col(CustomerAddress.customer_id).in_(ids)))
    order = {cid: i for i, cid in enumerate(ids)}
    return [
        r.email for r in sorted(rows, key=lambda r: (order[r.customer_id], r.position, r.added_at))
    ]


def refresh_organization(
    session: Session,
    customer: Customer,
    organizations: Sequence[OrganizationEntry],
    addresses: list[str] | None = None,
) -> None:
    """The organisation its addresses' domains say, unless an agent set one."""
    if customer.organization_source == "agent":
        return
    emails = addresses if addresses is not None else addresses_of(session, customer)
    wanted = organization_of(organizations, emails)
    if wanted != customer.organization:
        _set(session, customer, "organization", wanted, "config")
        customer.organization_source = "domain" if wanted else ""


def sync_organizations(session: Session, organizations: Sequence[OrganizationEntry]) -> int:
    """After `[[organizations]]` changed (its fingerprint differs from the last run's),
    recompute every live profile's organisation that no agent set; how many changed.
    Costs one pass over the profiles once per change of the list, none otherwise."""
    wanted = fingerprint(organizations)
    state = session.get(ClockState, _FINGERPRINT_KEY)
    if (state.value if state is not None else fingerprint(())) == wanted:
        return 0  # unchanged (no list, and none before, writes nothing: dry runs stay dry)
    changed = 0
    query = select(Customer).where(
        col(Customer.merged_into).is_(None), Customer.organization_source != "agent"
    )
    for customer in session.exec(query).all():
        before = customer.organization
        refresh_organization(session, customer, organizations)
        changed += customer.organization != before
    session.merge(ClockState(key=_FINGERPRINT_KEY, value=wanted))
    return changed


def update(session: Session, customer: Customer, field: str, value: str, actor: str) -> bool:
    """An agent sets name, organization, language or notes ("" clears it, and lets mail
    or [[organizations]] fill it again); False if nothing changed."""
    if field not in EDITABLE:
        raise InvalidValue(field, f"expected one of {', '.join(EDITABLE)}")
    value = value.replace("\x00", "").strip()
    if field == "notes":
        value = value[:_NOTES_MAX]
    elif field == "language":
        value = normalized_tag(value)
    else:
        value = " ".join(value.split())[:200]
    new: str | None = value
    if field in ("organization", "language") and not value:
        new = None
    if getattr(customer, field) == new and (field != "name" or customer.name_source == "agent"):
        return False
    _set(session, customer, field, new, actor)
    source = "agent" if value else ""
    if field == "name":
        customer.name_source = source
    elif field == "organization":
        customer.organization_source = source
    elif field == "language":
        customer.language_source = source
    return True


def add_address(
    session: Session,
    customer: Customer,
    email: str,
    actor: str,
    organizations: Sequence[OrganizationEntry] | None = None,
) -> None:
    """Give a profile one more address; one that is another's is refused (merge them)."""
    address = _normal(email)
    if not _ADDRESS.match(address) or not email.isprintable():
        raise InvalidValue("address", f"not an email address: {email!r}")
    holder = customer_for(session, address)
    if holder is not None:
        if holder.id == customer.id:
            raise InboxdError(f"{address} is already an address of customer {customer.id}")
        raise InboxdError(
            f"{address} belongs to customer {holder.id}; merge the two instead"
            f" (inboxd customers merge {customer.id} {holder.id})"
        )
    assert customer.id is not None
    position = len(
        list(
            session.exec(select(CustomerAddress).where(CustomerAddress.customer_id == customer.id))
        )
    )
    session.add(CustomerAddress(email=address, customer_id=customer.id, position=position))
    record(session, customer, actor, "address_added", None, address)
    session.flush()
    if organizations is not None:
        refresh_organization(session, customer, organizations)


# -- merge and unmerge -------------------------------------------------------------------


def merge(
    session: Session,
    into: Customer,
    other: Customer,
    actor: str,
    organizations: Sequence[OrganizationEntry] | None = None,
) -> CustomerMerge:
    """Merge `other` into `into`: one customer with both their tickets. What `into` lacks
    (name, language, notes, organisation) it takes from `other`; with `organizations`
    its organisation is then worked out again from all the addresses."""
    into, other = live(session, into) or into, live(session, other) or other
    if into.id == other.id:
        raise InboxdError(f"those are one customer already (customer {into.id})")
    assert into.id is not None and other.id is not None
    moved = addresses_of(session, other)
    adopted: dict[str, list[str | None]] = {}
    for field in _ADOPTED:
        theirs, mine = getattr(other, field), getattr(into, field)
        if theirs and not mine:
            adopted[field] = [mine, theirs]
    sources = {f: getattr(into, f"{f}_source") for f in ("name", "language", "organization")}
    row = CustomerMerge(
        into_id=into.id,
        from_id=other.id,
        moved={"addresses": moved, "adopted": adopted, "sources": sources},
        actor=actor,
    )
    session.add(row)
    for field, (_old, new) in adopted.items():
        _set(session, into, field, new, actor)
        if field != "notes":
            setattr(into, f"{field}_source", getattr(other, f"{field}_source") or "mail")
    other.merged_into = into.id
    other.updated_at = utcnow()
    session.add(other)
    record(session, into, actor, "merged", None, f"customer {other.id}: {', '.join(moved)}")
    record(session, other, actor, "merged_into", None, str(into.id))
    session.flush()
    if organizations is not None:
        refresh_organization(session, into, organizations)
    return row


@dataclass(frozen=True)
class Unmerged:
    kept: Customer  # the profile the other was merged into
    split: Customer  # the profile that is on its own again
    addresses: list[str]  # the split profile's addresses


def unmerge(
    session: Session,
    row: CustomerMerge,
    actor: str,
    organizations: Sequence[OrganizationEntry] | None = None,
) -> Unmerged:
    """Undo one merge exactly: the absorbed profile stands alone again with the addresses
    it brought, and the fields the merge filled in on the other are put back (unless
    someone changed them since)."""
    into = session.get(Customer, row.into_id)
    other = session.get(Customer, row.from_id)
    assert into is not None and other is not None
    if row.undone_at is not None or other.merged_into != into.id:
        raise InboxdError(f"customer {other.id} is not merged into customer {into.id}")
    other.merged_into = None
    other.updated_at = utcnow()
    session.add(other)
    for field, (old, new) in row.moved.get("adopted", {}).items():
        if getattr(into, field) == new:  # changed since: the later change stands
            _set(session, into, field, old, actor)
            if field != "notes":
                setattr(into, f"{field}_source", row.moved.get("sources", {}).get(field, ""))
    row.undone_at = utcnow()
    row.undone_by = actor
    session.add(row)
    record(session, into, actor, "unmerged", f"customer {other.id}", None)
    record(session, other, actor, "unmerged_from", str(into.id), None)
    session.flush()
    if organizations is not None:
        refresh_organization(session, into, organizations)
        refresh_organization(session, other, organizations)
    return Unmerged(into, other, addresses_of(session, other))


def merge_between(session: Session, first: str, second: str) -> CustomerMerge:
    """For `unmerge EMAIL OTHER`: the merge that brought OTHER's own profile in (so only
    what it brought leaves), or, if EMAIL's profile was merged into OTHER's (so OTHER
    leaving would take EMAIL along), the merge that brought EMAIL's."""
    a, b = owner_of(session, first), owner_of(session, second)
    if a is None or b is None:
        missing = first if a is None else second
        raise NotFound(f"no customer has the address {missing!r}")
    path_a, path_b = _path(session, a), _path(session, b)
    if path_a[-1] != path_b[-1]:
        raise InboxdError(f"{first} and {second} are two customers; there is nothing to unmerge")
    if a.id == b.id:
        raise InboxdError(f"{first} and {second} were one profile before any merge")
    if b.id in path_a:
        return _live_merge(session, path_a[0])
    return _live_merge(session, path_b[0])


def last_merge(session: Session, email: str) -> CustomerMerge:
    """For `#customer-unmerge` without an argument: the merge that brought this address
    into its profile, else the latest merge into the profile that holds it."""
    owner = owner_of(session, email)
    if owner is None:
        raise NotFound(f"no customer has the address {email!r}")
    path = _path(session, owner)
    if len(path) > 1:
        return _live_merge(session, path[-2])
    row = session.exec(
        select(CustomerMerge)
        .where(CustomerMerge.into_id == owner.id, col(CustomerMerge.undone_at).is_(None))
        .order_by(col(CustomerMerge.id).desc())
    ).first()
    if row is None:
        raise InboxdError(f"customer {owner.id} ({email}) has no merge to undo")
    return row


def _path(session: Session, customer: Customer) -> list[int]:
    """The ids from a profile up to the live profile it answers as."""
    assert customer.id is not None
    path = [customer.id]
    current: Customer | None = customer
    while current is not None and current.merged_into is not None:
        if current.merged_into in path:
            break
        path.append(current.merged_into)
        current = session.get(Customer, current.merged_into)
    return path


def _live_merge(session: Session, from_id: int) -> CustomerMerge:
    row = session.exec(
        select(CustomerMerge)
        .where(CustomerMerge.from_id == from_id, col(CustomerMerge.undone_at).is_(None))
        .order_by(col(CustomerMerge.id).desc())
    ).first()
    if row is None:  # a merged profile always has its row; never act on a guess
        raise InboxdError(f"customer {from_id}: no record of its merge")
    return row
