"""service.py: what a person does to customer profiles from the CLI, the web or the API.

Each function opens its own transaction, changes profiles through profiles.py (which
records who did what) and answers with the profile as JSON, so every edge prints the
same thing. `actor` is the acting agent's address; the edge has checked it.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from inboxd.customers import context, profiles
from inboxd.db import session_scope
from inboxd.errors import InboxdError, NotFound
from inboxd.models import CustomerAddress
from inboxd.runtime import Runtime


def list_json(rt: Runtime, query: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """Profiles matching `query` (name, address, organisation), newest change first."""
    with session_scope(rt.engine) as session:
        found = context.list_customers(session, query, limit)
        return [context.customer_json(session, c) for c in found]


def show_json(rt: Runtime, ref: str) -> dict[str, Any]:
    """One profile (by address or id) with its tickets, merges and history."""
    with session_scope(rt.engine) as session:
        return context.profile_json(session, profiles.find(session, ref))


def merge(rt: Runtime, ref: str, other: str, actor: str) -> dict[str, Any]:
    """Merge the profile of `other` into the profile of `ref`."""
    with rt.write_lock, session_scope(rt.engine) as session:
        into, absorbed = profiles.find(session, ref), profiles.find(session, other)
        profiles.merge(session, into, absorbed, actor, rt.config.organizations)
        return context.profile_json(session, into)


def unmerge(rt: Runtime, ref: str, other: str | None, actor: str) -> dict[str, Any]:
    """Undo the merge that joined `other` to `ref`'s profile (without `other`: the one
    that brought `ref` in, else the latest into it); answers with the split-off profile."""
    with rt.write_lock, session_scope(rt.engine) as session:
        email = _an_address(session, ref)
        row = (
            profiles.merge_between(session, email, _an_address(session, other))
            if other
            else profiles.last_merge(session, email)
        )
        done = profiles.unmerge(session, row, actor, rt.config.organizations)
        return {
            "kept": context.profile_json(session, done.kept),
            "split": context.profile_json(session, done.split),
        }


def update(rt: Runtime, ref: str, fields: dict[str, str], actor: str) -> dict[str, Any]:
    """Set name, organization, language or notes as an agent ("" clears one)."""
    if not fields:
        raise InboxdError("nothing to set (give --name, --organization, --language or --notes)")
    with rt.write_lock, session_scope(rt.engine) as session:
        customer = profiles.find(session, ref)
        for field, value in fields.items():
            profiles.update(session, customer, field, value, actor)
        if "organization" in fields and not fields["organization"].strip():
            profiles.refresh_organization(session, customer, rt.config.organizations)
        return context.profile_json(session, customer)


def add_note(rt: Runtime, ref: str, text: str, actor: str) -> dict[str, Any]:
    """Append a paragraph to the profile's notes."""
    text = text.replace("\x00", "").strip()
    if not text:
        raise InboxdError("the note is empty")
    with rt.write_lock, session_scope(rt.engine) as session:
        customer = profiles.find(session, ref)
        notes = f"{customer.notes.rstrip()}\n\n{text}" if customer.notes.strip() else text
        profiles.update(session, customer, "notes", notes, actor)
        return context.profile_json(session, customer)


def add_address(rt: Runtime, ref: str, email: str, actor: str) -> dict[str, Any]:
    """Give the profile one more address (one nobody else has)."""
    with rt.write_lock, session_scope(rt.engine) as session:
        customer = profiles.find(session, ref)
        profiles.add_address(session, customer, email, actor, rt.config.organizations)
        return context.profile_json(session, customer)


def _an_address(session: Session, ref: str) -> str:
    """An address for `ref`: itself, or the first address of that very profile (an id
    may name a profile merged into another: that is the one to split off)."""
    if "@" in ref:
        return ref
    number = ref.strip().lstrip("#")
    own = (
        session.exec(
            select(CustomerAddress.email)
            .where(CustomerAddress.customer_id == int(number))
            .order_by(col(CustomerAddress.position))
        ).first()
        if number.isdigit() and int(number) < 2**31
        else None
    )
    if own is None:
        raise NotFound(f"no customer {ref!r} (an address they wrote from, or a customer id)")
    return own
