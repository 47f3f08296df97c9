"""new_ticket.py: a ticket an agent opens on a customer's behalf — a phone call, a chat, a
visit (SPEC §10.7). One function for `inboxd ticket new`, the web's "New ticket" form and
`POST /api/v1/tickets`.

The customer is the requester (their profile is made or found); the agent is only the
`submitter`, never a participant, so every reply goes to the customer (Zammad sent
replies on caller tickets to the agent who logged them, for years). The call's text is
kept as the agent's message (a public one, or a note), never as the customer's: their
first reply time starts with their own first message (workflow/sla.py, reports.py).
With `notify`, the customer gets ONE mail, "we have logged your call", carrying the
ticket's reply token and Message-ID, so their answer threads onto the ticket; without it
they get nothing. The other agents hear of the new ticket as of any other.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from inboxd.agents import directory, notify
from inboxd.customers import profiles
from inboxd.db import session_scope
from inboxd.errors import InboxdError, InvalidValue
from inboxd.models import Agent, Customer, Message, Ticket, utcnow
from inboxd.queues.outbox import compose, mailbox, queue_mail
from inboxd.render import localized
from inboxd.runtime import Runtime
from inboxd.tickets import queries, store
from inboxd.tickets.channels import CHANNELS
from inboxd.tickets.links import status_url
from inboxd.tickets.tokens import is_ours, make_token, token_address

# SPEC §4 names phone, email, web, chat, other; the issue adds walk-in (a visit).
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class NewTicket:
    """What an agent typed about a customer's request."""

    requester: str
    subject: str
    text: str = ""  # the request as the agent took it down; public (the status page)
    note: str = ""  # or an internal note only
    name: str = ""  # the customer's name, if their profile has none yet
    channel: str = "phone"
    notify: bool = False


def checked(request: NewTicket) -> NewTicket:
    """The request with its values checked (InvalidValue names the field) and cleaned."""
    requester = request.requester.strip().strip("<>").lower()
    if not _ADDRESS.match(requester) or not requester.isprintable():
        raise InvalidValue("requester", f"expected the customer's email address, not {requester!r}")
    channel = request.channel.strip().lower()
    if channel not in CHANNELS:
        raise InvalidValue("channel", f"expected one of {', '.join(CHANNELS)}, not {channel!r}")
    subject = " ".join(request.subject.replace("\x00", "").split())[:500]
    if not subject:
        raise InvalidValue("subject", "expected a subject (what the customer asked about)")
    text, note = (t.replace("\x00", "").strip() for t in (request.text, request.note))
    if text and note:
        raise InvalidValue("text", "give the request as text or as a note, not both")
    name = " ".join(request.name.replace("\x00", "").split())[:200]
    return NewTicket(requester, subject, text, note, name, channel, request.notify)


def open_for_customer(
    rt: Runtime, request: NewTicket, agent_email: str, source: str
) -> dict[str, Any]:
    """Open the ticket as `agent_email`; answer with its `show` object (and `notified`:
    the Message-ID of the mail to the customer, or None)."""
    request = checked(request)
    with rt.write_lock, session_scope(rt.engine) as session:
        agent = directory.get_agent(session, agent_email)
        if not agent.active:
            raise InboxdError(f"{agent.email} is not an active agent")
        if is_ours(request.requester, rt.config.support_addresses):
            raise InvalidValue("requester", f"{request.requester} is inboxd's own address")
        if session.exec(select(Agent).where(Agent.email == request.requester)).first():
            raise InvalidValue(
                "requester", f"{request.requester} is an agent: give the customer's address"
            )
        customer = profiles.ensure_customer(
            session,
            request.requester,
            actor=agent.email,
            organizations=rt.config.organizations,
        )
        if request.name and not customer.name:
            profiles.update(session, customer, "name", request.name, agent.email)
        ticket = store.open_ticket(
            session,
            request.subject,
            request.requester,
            channel=request.channel,
            submitter=agent.email,
        )
        message = _record_call(session, ticket, agent, request, source)
        sent = (
            _logged_call_mail(session, rt, ticket, customer, agent, message)
            if request.notify
            else None
        )
        recipients = notify.recipients(session, rt, ticket, "new", exclude=agent.email)
        notify.notify_agents(
            session,
            rt,
            ticket,
            message,
            "notify:new",
            recipients,
            f"{agent.name or agent.email} logged a {request.channel} ticket for"
            f" {customer.name or request.requester}.",
        )
        ticket_id = ticket.id
    assert ticket_id is not None
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)
    data["notified"] = sent
    return data


def _record_call(
    session: Session, ticket: Ticket, agent: Agent, request: NewTicket, source: str
) -> Message | None:
    """The agent's account of the call: a public message of theirs, or a note."""
    text = request.note or request.text
    if not text:
        return None
    assert ticket.id is not None
    note = bool(request.note)
    digest = hashlib.sha256(f"{source}:{agent.email}:{utcnow().isoformat()}:{text}".encode())
    message = Message(
        ticket_id=ticket.id,
        direction="in" if note else "out",
        kind="note" if note else "reply",
        threaded_by=source,
        fingerprint=digest.hexdigest(),
        source=f"{source}:{request.channel}",
        from_email=agent.email,
        from_name=agent.name,
        subject=ticket.subject,
        body=text,
        text=text,
        # Written down by the agent, not mailed by them: no reply was sent (`notified` is
        # the logged-call mail's id, if any).
        flags={"logged": request.channel},
    )
    session.add(message)
    session.flush()
    store.record_event(
        session,
        ticket,
        agent.email,
        "note" if note else "logged_text",
        None,
        source,
        message=message,
    )
    return message


def _logged_call_mail(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    customer: Customer,
    agent: Agent,
    message: Message | None,
) -> str | None:
    """Queue the one "we have logged your call" mail; its Message-ID (None: not sent,
    e.g. the address is suppressed after bounces)."""
    assert ticket.id is not None
    cfg = rt.config.inboxd
    link = status_url(cfg.web_base_url, rt.secret_key, ticket.id)
    mail = localized(
        "email/logged_call.txt.j2",
        customer.language,
        {
            "ticket": ticket,
            "customer": customer,
            "agent": agent,
            "status_url": link,
            "text": message.text if message is not None and message.kind == "reply" else "",
            "support_name": cfg.support_name,
        },
        cfg.templates_dir,
    )
    headers = [
        ("From", mailbox(cfg.support_name, cfg.support_address)),
        ("To", mailbox(customer.name, ticket.requester)),
        ("Subject", f"{cfg.subject_tag.replace('{id}', str(ticket.id))} {ticket.subject}"),
    ]
    if cfg.plus_addressing:
        token = make_token(rt.secret_key, ticket.id)
        headers.append(
            ("Reply-To", mailbox(cfg.support_name, token_address(cfg.support_address, token)))
        )
    # RFC 3834: an automatic mail; its Message-ID is remembered as the ticket's own (queue_mail),
    # so a reply that keeps In-Reply-To threads even where plus addressing is off.
    headers.append(("Auto-Submitted", "auto-generated"))
    return queue_mail(
        session,
        compose(headers, mail.text, cfg=rt.config, lang=mail.language),
        mail_from=cfg.support_address,
        rcpt_to=[ticket.requester],
        ticket_id=ticket.id,
        purpose="logged_call",
        about_message_pk=message.id if message is not None else None,
        capped=False,
    )
