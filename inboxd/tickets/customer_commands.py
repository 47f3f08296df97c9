"""customer_commands.py: `#customer-merge`, `#customer-unmerge` (SPEC §10.7) and
`#language` (§10.8), the command registry's way to change the profile behind a ticket's
requester.

Registered in commands.py like every other command, so mail, `inboxd run`, the web, the
API and rules all reach them. The profiles themselves change in customers/profiles.py;
the ticket records what happened (event `customer_merged` / `customer_unmerged`).
"""

from __future__ import annotations

from sqlmodel import Session

from inboxd import languages
from inboxd.customers import profiles
from inboxd.errors import InboxdError
from inboxd.models import Customer, CustomerMerge
from inboxd.tickets.blocks import Block, CommandError
from inboxd.tickets.store import record_event


def requester_profile(session: Session, requester: str) -> Customer:
    """The ticket requester's profile (made now if the ticket predates profiles)."""
    return profiles.ensure_customer(session, requester)


def merge_parse(block: Block, args: tuple[str, ...]) -> tuple[Customer, Customer]:
    if len(args) != 1:
        raise CommandError("expects the other customer's address or customer id")
    if not block.ticket.requester:
        raise CommandError("this ticket has no requester")
    try:
        other = profiles.find(block.session, args[0])
    except InboxdError as exc:
        raise CommandError(str(exc)) from None
    mine = requester_profile(block.session, block.ticket.requester)
    if mine.id == other.id:
        raise CommandError(f"{args[0]} is this requester's profile already")
    return mine, other


def merge_apply(block: Block, value: tuple[Customer, Customer]) -> None:
    mine, other = value
    row = profiles.merge(block.session, mine, other, block.actor.email)
    moved = ", ".join(row.moved.get("addresses", []))
    record_event(
        block.session,
        block.ticket,
        block.actor.email,
        "customer_merged",
        f"customer {other.id}",
        f"customer {mine.id} (+ {moved})",
        block=block.id,
    )
    block.changes.append(f"customer {other.id} ({moved}) merged into customer {mine.id}")


def unmerge_parse(block: Block, args: tuple[str, ...]) -> CustomerMerge:
    if len(args) > 1:
        raise CommandError("expects nothing, or the address to split off")
    requester = block.ticket.requester
    if not requester:
        raise CommandError("this ticket has no requester")
    try:
        if args:
            return profiles.merge_between(block.session, requester, args[0])
        return profiles.last_merge(block.session, requester)
    except InboxdError as exc:
        raise CommandError(str(exc)) from None


def unmerge_apply(block: Block, row: CustomerMerge) -> None:
    try:
        done = profiles.unmerge(block.session, row, block.actor.email)
    except InboxdError as exc:
        raise CommandError(str(exc)) from None
    record_event(
        block.session,
        block.ticket,
        block.actor.email,
        "customer_unmerged",
        f"customer {done.kept.id}",
        f"customer {done.split.id} ({', '.join(done.addresses)})",
        block=block.id,
    )
    block.changes.append(
        f"customer {done.split.id} ({', '.join(done.addresses)}) split off customer {done.kept.id}"
    )


def language_parse(block: Block, args: tuple[str, ...]) -> str:
    if len(args) != 1:
        raise CommandError("expects one language tag, such as de, fr, zh-Hans or zh-Hant")
    if not block.ticket.requester:
        raise CommandError("this ticket has no requester")
    try:
        return languages.normalized_tag(args[0])
    except InboxdError as exc:
        raise CommandError(str(exc)) from None


def language_apply(block: Block, language: str) -> None:
    customer = requester_profile(block.session, block.ticket.requester)
    before = customer.language
    if not profiles.update(block.session, customer, "language", language, block.actor.email):
        return
    record_event(
        block.session,
        block.ticket,
        block.actor.email,
        "customer_language",
        before,
        language,
        block=block.id,
    )
    mailed = languages.bundled(language)  # zh-TW -> zh-Hant, pt -> en
    shown = language if mailed == language else f"{language} (mail in {mailed})"
    block.changes.append(f"customer {customer.id}'s language set to {shown}")
