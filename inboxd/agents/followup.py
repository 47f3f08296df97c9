"""followup.py: what a stored inbound message sets off. Called by the pipeline only.

Agent mail runs its commands and is relayed (agentmail); a customer's new ticket is
acknowledged; the agents hear about it. Automatic mail, and mail the loop breaker holds,
sets off nothing. Runs inside the pipeline's transaction, so the mail it queues is
committed with the message or not at all.
"""

from __future__ import annotations

from sqlmodel import Session

from inboxd.agents import agentmail, notify
from inboxd.mail.classify import Classification
from inboxd.mail.parse import ParsedMessage
from inboxd.models import Agent, Message, Ticket
from inboxd.queues.outbox import FilePart
from inboxd.runtime import Runtime
from inboxd.tickets import commands
from inboxd.tickets.threader import ThreadDecision


def follow_up(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    message_pk: int,
    message_kind: str,
    kind: Classification,
    decision: ThreadDecision,
    created: bool,
    agents: dict[str, Agent],
    envelope_from: str | None = None,
) -> None:
    """Agent commands and relay, acknowledgement, notifications, in that order."""
    if kind.automatic:
        return
    sender = msg.sender.email if msg.sender else ""
    if message_kind == "held":
        files = [
            FilePart(a.filename, a.content_type, a.data) for a in msg.attachments if not a.inline
        ]
        agentmail.handle(
            session,
            rt,
            ticket,
            agents[sender],
            msg,
            message_of(session, message_pk),
            decision.token_agent_id,
            files,
        )
        return
    if created:
        notify.acknowledge(session, rt, ticket, msg, kind, envelope_from)
    elif decision.threaded_by == "token" and sender == ticket.requester:
        # Only a reply to inboxd's own mail (its token) from the requester: `#uncc ADDR`.
        commands.run_requester_block(session, ticket, sender, message_of(session, message_pk).text)
    # Without active agents there is nobody to notify (agents_for would find none).
    if not agents:
        return
    # The sender never hears of their own mail: an agent who opened a ticket knows, and
    # an agent's broken out-of-office answering its own notification was the loop of
    # issue 19 (417 tickets in two minutes).
    recipients = notify.agents_for(session, ticket, exclude=sender)
    if not recipients:
        return  # notify_agents would queue nothing
    message = message_of(session, message_pk)
    who = message.from_name or message.from_email or "someone"
    if created:
        purpose, headline = "notify:new", f"New ticket from {who}."
    else:
        purpose, headline = "notify:customer", f"{who} wrote on the ticket."
    notify.notify_agents(session, rt, ticket, message, purpose, recipients, headline)


def message_of(session: Session, message_pk: int) -> Message:
    """The stored message as an object, for the code that needs one (read on demand)."""
    found = session.get(Message, message_pk)
    assert found is not None
    return found
