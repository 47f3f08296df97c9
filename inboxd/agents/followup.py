"""followup.py: what a stored inbound message sets off. Called by the pipeline only.

Agent mail runs its commands and is relayed (agentmail); a customer's new ticket is
acknowledged; the agents hear about it. Automatic mail, and mail the loop breaker holds,
sets off nothing. Runs inside the pipeline's transaction, so the mail it queues is
committed with the message or not at all.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from inboxd.agents import agentmail, notify
from inboxd.agents.trust import authentication_verdict
from inboxd.mail.classify import Classification
from inboxd.mail.parse import ParsedMessage
from inboxd.models import Agent, Message, Ticket
from inboxd.queues.outbox import FilePart
from inboxd.runtime import Runtime
from inboxd.tickets import commands, store
from inboxd.tickets.threader import ThreadDecision
from inboxd.tickets.tokens import is_ours

# The acknowledgement (notify.acknowledge's signature) and the self-service check.
Acknowledge = Callable[..., object]
SelfService = Callable[[Session, Ticket, ParsedMessage, ThreadDecision, int], bool]


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
    *,
    acknowledge: Acknowledge | None = None,
    self_service: SelfService | None = None,
) -> None:
    """Agent commands and relay, acknowledgement, notifications, in that order.

    The room above may lend two steps (the pipeline passes the knowledge base's):
    `acknowledge` in place of notify.acknowledge, and `self_service`, which answers True
    when the requester's reply solved the ticket itself (then no agent is told)."""
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
        (acknowledge or notify.acknowledge)(
            session, rt, ticket, msg, kind, envelope_from=envelope_from
        )
    elif self_service is not None and self_service(session, ticket, msg, decision, message_pk):
        return  # the requester's own `#solved` (SPEC §10.6): no agent is told
    elif decision.threaded_by == "token" and sender == ticket.requester:
        # Only a reply to inboxd's own mail (its token) from the requester: `#uncc ADDR`.
        commands.run_requester_block(session, ticket, sender, message_of(session, message_pk).text)
    # Without active agents there is nobody to notify (recipients would find none).
    if not agents:
        return
    # The sender never hears of their own mail: an agent who opened a ticket knows, and
    # an agent's broken out-of-office answering its own notification was the loop of
    # issue 19 (417 tickets in two minutes).
    event = "new" if created else "customer"
    recipients = notify.recipients(session, rt, ticket, event, exclude=sender)
    if not recipients:
        return  # notify_agents would queue nothing
    message = message_of(session, message_pk)
    who = message.from_name or message.from_email or "someone"
    if created:
        purpose, headline = "notify:new", f"New ticket from {who}."
    else:
        purpose, headline = "notify:customer", f"{who} wrote on the ticket."
    notify.notify_agents(session, rt, ticket, message, purpose, recipients, headline)


def subscribe(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    kind: Classification,
    created: bool,
    agents: dict[str, Agent],
    actor: str,
) -> None:
    """Add the people a message addresses as the ticket's CCs (the caller has checked
    that it may: SPEC §5, the 2024 Zendesk CC takeover), at most max_ccs_per_message."""
    sender = msg.sender.email if msg.sender and not msg.sender_ambiguous else ""
    wanted = [] if created else ([sender] if sender and kind.kind == "customer" else [])
    wanted += [a.email for a in (*msg.to, *msg.cc)]
    ours = rt.config.support_addresses
    wanted = [e for e in dict.fromkeys(wanted) if not is_ours(e, ours) and e not in agents]
    known = {ticket.requester} if created else None
    if not created and wanted and rt.config.trust.trusted_authserv_ids:
        # Issue 19: a customer's token from a forwarded acknowledgement plus a forged
        # From: of that customer added the forger as CC. Where our MX authenticates mail,
        # a reply adds CCs only when it vouches for the From: (DMARC, aligned DKIM).
        verdict = authentication_verdict(
            msg.headers, rt.config.trust.trusted_authserv_ids, sender.rpartition("@")[2]
        )
        if not verdict.passed:
            store.record_event(
                session,
                ticket,
                actor,
                "cc_not_added",
                None,
                f"{len(wanted)} not added: {verdict.reason}"[:2000],
            )
            return
    # Issue 19: one stranger's mail with 2,000 addresses in Cc: made the next agent
    # reply go to 1,990 people. The rest are recorded, not added.
    cap = rt.config.inboxd.max_ccs_per_message
    for email in wanted[:cap]:
        store.add_participant(session, ticket, email, "cc", actor, known)
    if len(wanted) > cap:
        rest = wanted[cap:]
        shown = ", ".join(rest[:50]) + (", ..." if len(rest) > 50 else "")
        store.record_event(
            session, ticket, actor, "cc_not_added", None, f"{len(rest)} over the cap: {shown}"
        )


def message_of(session: Session, message_pk: int) -> Message:
    """The stored message as an object, for the code that needs one (read on demand)."""
    found = session.get(Message, message_pk)
    assert found is not None
    return found
