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
from inboxd.errors import InboxdError, NotFound
from inboxd.mail.command_tags import CommandCall, extract_tags, parse_commands
from inboxd.mail.parse import ParsedAttachment
from inboxd.models import Agent, Message, Ticket, utcnow
from inboxd.queues.outbox import FilePart
from inboxd.runtime import Runtime
from inboxd.tickets import queries, store
from inboxd.tickets.blocks import DeskOptions
from inboxd.tickets.commands import Actor, BlockResult, run_block
from inboxd.tickets.macros import support_of


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


def desk_options(rt: Runtime) -> DeskOptions:
    """What every command block of this desk runs with (tickets.blocks.DeskOptions)."""
    return DeskOptions(
        macros_dir=macros_dir(rt),
        kb=rt.kb_article_text,
        teams=rt.config.team_names,
        support=support_of(rt),
    )


def acting_agent(session: Session, email: str | None) -> str:
    """The agent a CLI command acts as: the one named, else the first admin."""
    agent = directory.get_agent(session, email) if email else directory.first_admin(session)
    return agent.email


def _active_agent(session: Session, email: str | None) -> Agent:
    agent = directory.get_agent(session, email) if email else directory.first_admin(session)
    if not agent.active:
        raise InboxdError(f"{agent.email} is not an active agent")
    return agent


def run_commands(
    rt: Runtime,
    ticket_id: int,
    text: str,
    actor_email: str | None,
    source: str,
    *,
    about_message_pk: int | None = None,
) -> CommandOutcome:
    """Run command text (SPEC §6) on a ticket as an agent (default: the first admin).
    `about_message_pk` is the message `#split`/`#move` act on (the web names it)."""
    calls = parse_commands(text.replace("\x00", ""))
    if not calls:
        raise InboxdError("no commands given (e.g. '#status pending')")
    with rt.write_lock, session_scope(rt.engine) as session:
        ticket = queries.get_ticket(session, ticket_id)
        agent = _active_agent(session, actor_email)
        actor = Actor(agent.email, agent.id, agent.role)
        result = run_block(
            session,
            ticket,
            actor,
            calls,
            source=source,
            about_message_pk=about_message_pk,
            **desk_options(rt),
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


@dataclass(frozen=True)
class BulkOutcome:
    """What one ticket of a bulk action became: its changes, or why nothing changed."""

    ticket_id: int
    changes: list[str]
    errors: list[tuple[str, str]]


def run_bulk(
    rt: Runtime, ticket_ids: list[int], text: str, actor_email: str, source: str
) -> list[BulkOutcome]:
    """Run one command text on several tickets, each in its own transaction (SPEC §6 is
    atomic per block, so per ticket): a ticket that refuses keeps its state, and the
    others go ahead. Never raises for one ticket's refusal; each outcome says it."""
    outcomes = []
    for ticket_id in dict.fromkeys(ticket_ids):  # each once, in the order given
        try:
            done = run_commands(rt, ticket_id, text, actor_email, source)
        except InvalidCommands as exc:
            outcomes.append(BulkOutcome(ticket_id, [], exc.errors))
        except InboxdError as exc:  # NotFound, an inactive agent, no commands
            outcomes.append(BulkOutcome(ticket_id, [], [("", str(exc))]))
        else:
            changes = done.result.changes or ["nothing to change"]
            outcomes.append(BulkOutcome(ticket_id, changes, []))
    return outcomes


def post_reply(
    rt: Runtime,
    ticket_id: int,
    actor_email: str,
    text: str,
    *,
    note: bool,
    source: str,
    read_commands: bool = False,
    cc: list[str] | None = None,
    files: list[FilePart] | None = None,
) -> dict[str, Any]:
    """Add an agent's reply (sent to the customer) or internal note to a ticket.

    With `read_commands` (the web's reply box) the text's top block of command lines runs
    first, as in a reply by mail (SPEC §6), and `cc` adds the ticket's CCs as `#cc` would:
    the block, the reply and its files are one transaction, so a refused line sends
    nothing. `data["changes"]` lists what the block changed."""
    text = text.replace("\x00", "")  # never meant, and PostgreSQL text cannot hold it
    calls: list[CommandCall] = []
    if read_commands:
        calls, text = extract_tags(text)
    if cc:
        calls.append(CommandCall("cc", tuple(cc), "#cc " + " ".join(cc), 0))
    if not text.strip() and not calls:
        raise InboxdError("the reply is empty")
    with rt.write_lock, session_scope(rt.engine) as session:
        ticket = queries.get_ticket(session, ticket_id)
        agent = _active_agent(session, actor_email)
        result = None
        if calls:
            result = run_block(
                session,
                ticket,
                Actor(agent.email, agent.id, agent.role),
                calls,
                source=source,
                **desk_options(rt),
            )
            if not result.ok:
                raise InvalidCommands(result.errors)
            text = (text.rstrip() + "\n\n" + result.inserted_text).strip()
            note = (note or result.note) and not result.public
            # #merge moved this ticket's conversation: the reply goes where it went.
            if ticket.merged_into:
                ticket = session.get(Ticket, ticket.merged_into) or ticket
        message_id = None
        if text.strip():
            message_id = add_reply(
                session, rt, ticket, agent, text, note=note, source=source, files=files or []
            )
        elif files:
            raise InboxdError("attachments need a reply text to go with them")
        if result is not None:
            notify.after_assignment(session, rt, ticket, agent.email)
        final_id = ticket.id
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, final_id), full=True)
    data["posted"] = message_id
    data["changes"] = result.changes if result is not None else []
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
    files: list[FilePart] | None = None,
) -> int | None:
    """Store an agent's reply or note, with its files, and send it on (relay to the
    customer with the files attached, or tell the followers)."""
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
    assert message.id is not None
    files = files or []
    if files:
        parts = [ParsedAttachment(f.filename, f.content_type, f.data) for f in files]
        store.save_attachments(session, message.id, parts, rt.attachments_dir)
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
        replies.relay_reply(session, rt, ticket, agent, message, files)
    ticket.updated_at = utcnow()
    session.add(ticket)
    return message.id


def release_held(rt: Runtime, message_pk: int, actor_email: str) -> int:
    """Release a mail held as unverified (agentmail.release_held); returns its ticket."""
    from inboxd.agents import agentmail  # agentmail imports this module's macros_dir

    with rt.write_lock, session_scope(rt.engine) as session:
        message = session.get(Message, message_pk)
        if message is None:
            raise NotFound(f"no message {message_pk}")
        agentmail.release_held(session, rt, message, _active_agent(session, actor_email))
        return session.get(Message, message_pk).ticket_id  # type: ignore[union-attr]
