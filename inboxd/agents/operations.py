"""operations.py: what a person does to a ticket from the CLI, the web view or the API.

Each function opens its own transaction and goes through the same pieces as the email
path: commands.run_block for command text, replies.relay_reply for a public reply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from inboxd.agents import directory, notify, replies
from inboxd.db import session_scope
from inboxd.errors import InboxdError
from inboxd.mail.command_tags import parse_commands
from inboxd.models import Agent, Message, Ticket, utcnow
from inboxd.runtime import Runtime
from inboxd.tickets import queries, store
from inboxd.tickets.commands import Actor, BlockResult, run_block


class InvalidCommands(InboxdError):
    """A command block had invalid lines; nothing was applied."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{line}: {why}" for line, why in errors))
        self.errors = errors


@dataclass(frozen=True)
class CommandOutcome:
    result: BlockResult
    ticket: dict[str, Any]


def macros_dir(rt: Runtime) -> str:
    """An admin's macros folder ([inboxd] templates_dir/macros), if one is set."""
    folder = rt.config.inboxd.templates_dir
    return str(rt.config.path(folder) / "macros") if folder else ""


def acting_agent(session: Session, email: str | None) -> str:
    """The agent a CLI command acts as: the one named, else the first admin."""
    agent = directory.get_agent(session, email) if email else directory.first_admin(session)
    return agent.email


def run_commands(
    rt: Runtime, ticket_id: int, text: str, actor_email: str | None, source: str
) -> CommandOutcome:
    """Run command text (SPEC §6) on a ticket as an agent (default: the first admin)."""
    calls = parse_commands(text.replace("\x00", ""))
    if not calls:
        raise InboxdError("no commands given (e.g. '#status pending')")
    with rt.write_lock, session_scope(rt.engine) as session:
        ticket = queries.get_ticket(session, ticket_id)
        agent = (
            directory.get_agent(session, actor_email)
            if actor_email
            else directory.first_admin(session)
        )
        if not agent.active:
            raise InboxdError(f"{agent.email} is not an active agent")
        actor = Actor(agent.email, agent.id, agent.role)
        result = run_block(
            session,
            ticket,
            actor,
            calls,
            source=source,
            macros_dir=macros_dir(rt),
            kb=rt.kb_article_text,
            teams=rt.config.team_names,
        )
        if not result.ok:
            raise InvalidCommands(result.errors)
        if result.inserted_text.strip():
            # A #macro's canned text is a reply (a note with #note), as it is by email.
            add_reply(
                session, rt, ticket, agent, result.inserted_text, note=result.note, source=source
            )
        notify.after_commands(session, rt, ticket, agent.email, result.block_id)
        final_id = ticket.merged_into or ticket_id
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, final_id), full=True)
    return CommandOutcome(result, data)


def post_reply(
    rt: Runtime, ticket_id: int, actor_email: str, text: str, *, note: bool, source: str
) -> dict[str, Any]:
    """Add an agent's reply (sent to the customer) or internal note to a ticket."""
    text = text.replace("\x00", "")  # never meant, and PostgreSQL text cannot hold it
    if not text.strip():
        raise InboxdError("the reply is empty")
    with rt.write_lock, session_scope(rt.engine) as session:
        ticket = queries.get_ticket(session, ticket_id)
        agent = directory.get_agent(session, actor_email)
        message_id = add_reply(session, rt, ticket, agent, text, note=note, source=source)
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)
    data["posted"] = message_id
    return data


def add_reply(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    agent: Agent,
    text: str,
    *,
    note: bool,
    source: str,
) -> int | None:
    """Store an agent's reply or note and send it on (relay, or tell the followers)."""
    assert ticket.id is not None
    digest = hashlib.sha256(f"{source}:{agent.email}:{utcnow().isoformat()}:{text}".encode())
    message = Message(
        ticket_id=ticket.id,
        direction="in" if note else "out",
        kind="note" if note else "reply",
        threaded_by=source,
        fingerprint=digest.hexdigest(),
        source=source,
        from_email=agent.email,
        from_name=agent.name,
        subject=ticket.subject,
        body=text,
        text=text,
    )
    session.add(message)
    session.flush()
    if note:
        store.record_event(session, ticket, agent.email, "note", None, source, message=message)
        notify.notify_agents(
            session,
            rt,
            ticket,
            message,
            "notify:note",
            notify.recipients(session, rt, ticket, "note", exclude=agent.email),
            f"{agent.name or agent.email} added an internal note.",
        )
    else:
        replies.relay_reply(session, rt, ticket, agent, message, [])
    ticket.updated_at = utcnow()
    session.add(ticket)
    return message.id
