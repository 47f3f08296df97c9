"""replies.py: an agent's answer going out to the customer, from the support address.

The same function serves a reply by email, from the web and from the API. The customer
gets `From: "Agent via Support" <support@>`, the ticket tag, the conversation's
threading headers, their own reply token as Reply-To, the ticket's CCs, and the agent's
text with the agent's own address replaced by the support address: an agent's personal
address is never shown to a customer. Other agents following the ticket get a copy.
"""

from __future__ import annotations

import hashlib
import re

from sqlmodel import Session, col, func, select

from inboxd.agents import notify, reply_context
from inboxd.customers import profiles
from inboxd.models import Agent, Event, Message, Outbound, Participant, Ticket, utcnow
from inboxd.queues.outbox import FilePart, compose, mailbox, queue_mail
from inboxd.render import localized
from inboxd.runtime import Runtime
from inboxd.tickets import store
from inboxd.tickets.links import status_url
from inboxd.tickets.tokens import make_token, token_address


def scrub_agent_address(text: str, agent: Agent, support_address: str) -> str:
    """The agent's address (any case, with or without mailto:) becomes the support one."""
    return re.sub(re.escape(agent.email), support_address, text, flags=re.IGNORECASE)


def relay_reply(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    agent: Agent,
    message: Message,
    files: list[FilePart],
) -> None:
    """Queue the agent's reply (already stored as `message`) to the customer and CCs."""
    assert ticket.id is not None and message.id is not None
    cfg = rt.config.inboxd
    text = scrub_agent_address(message.text, agent, cfg.support_address).rstrip("\n")
    name = f"{agent.name or agent.email.split('@')[0]} via {cfg.support_name}"
    text += reply_context.signature_part(agent)
    text += _new_cc_notice(session, ticket).rstrip("\n")
    text += reply_context.quote_part(session, rt, ticket, message) + "\n"
    if not _queue_for_customers(session, rt, ticket, name, text, files, message.id, "reply"):
        return
    # The event the reports and SLA clocks count as "a public agent reply" (SPEC §10.2):
    # whatever wrote it (mail, web, API, CLI), it is recorded here, where it is sent.
    store.record_event(
        session, ticket, agent.email, "reply", None, message.source or "email", message=message
    )
    if ticket.first_response_at is None:
        ticket.first_response_at = utcnow()
        session.add(ticket)
    copies = notify.recipients(session, rt, ticket, "reply", exclude=agent.email)
    notify.notify_agents(
        session,
        rt,
        ticket,
        message,
        "notify:reply",
        copies,
        f"{agent.name or agent.email} replied to the customer.",
    )


def _queue_for_customers(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    from_name: str,
    text: str,
    files: list[FilePart],
    about_message_pk: int | None,
    purpose: str,
) -> bool:
    """Queue `text` to the requester and CCs in the conversation's thread; False if the
    ticket has nobody on the customer side."""
    assert ticket.id is not None
    cfg = rt.config.inboxd
    customers = _customer_side(session, ticket)
    if not customers:
        return False
    chain = _customer_msgids(session, ticket.id)
    to = mailbox(_name_of(session, ticket.id, customers[0]), customers[0])
    headers = [("From", mailbox(from_name, cfg.support_address)), ("To", to)]
    if customers[1:]:
        headers.append(("Cc", ", ".join(customers[1:])))
    headers.append(
        ("Subject", f"{cfg.subject_tag.replace('{id}', str(ticket.id))} {ticket.subject}")
    )
    if chain:
        headers += [("In-Reply-To", chain[-1]), ("References", " ".join(chain[-10:]))]
    if cfg.plus_addressing:
        token = make_token(rt.secret_key, ticket.id)
        headers.append(
            ("Reply-To", mailbox(cfg.support_name, token_address(cfg.support_address, token)))
        )
    if purpose != "reply":
        headers.append(("Auto-Submitted", "auto-generated"))
    footer = status_footer(rt, ticket.id, profiles.language_of(session, customers[0]))
    queue_mail(
        session,
        compose(headers, text.rstrip("\n") + "\n" + footer, files, cfg=rt.config),
        mail_from=cfg.support_address,
        rcpt_to=customers,
        ticket_id=ticket.id,
        purpose=purpose,
        about_message_pk=about_message_pk,
    )
    return True


def send_automatic(session: Session, rt: Runtime, ticket: Ticket, text: str, actor: str) -> bool:
    """Mail sent to the customer by a rule (a reminder, a macro's text): stored on the
    ticket as an `auto` message from the support address. It is no agent reply, so it
    never satisfies an SLA reply target (SPEC §10.2); its event is `auto_reply`."""
    assert ticket.id is not None
    digest = hashlib.sha256(f"{actor}:{utcnow().isoformat()}:{text}".encode())
    message = Message(
        ticket_id=ticket.id,
        direction="out",
        kind="auto",
        threaded_by="rule",
        fingerprint=digest.hexdigest(),
        source="rule",
        from_email=rt.config.inboxd.support_address,
        from_name=rt.config.inboxd.support_name,
        subject=ticket.subject,
        body=text,
        text=text,
    )
    session.add(message)
    session.flush()
    sent = _queue_for_customers(
        session, rt, ticket, rt.config.inboxd.support_name, text, [], message.id, "auto"
    )
    store.record_event(session, ticket, actor, "auto_reply", None, "rule", message=message)
    return sent


def _new_cc_notice(session: Session, ticket: Ticket) -> str:
    """A line telling the requester who else now receives this conversation: CCs that
    someone other than the requester added since inboxd last mailed them (issue 19)."""
    last = session.exec(
        select(func.max(Outbound.created_at)).where(
            Outbound.ticket_id == ticket.id, col(Outbound.purpose).in_(("ack", "reply"))
        )
    ).one()
    query = select(Event.to_value).where(
        Event.ticket_id == ticket.id,
        col(Event.type).in_(("participant", "cc_added")),
        Event.actor != ticket.requester,
    )
    if last is not None:
        query = query.where(col(Event.at) > last)
    added = set(session.exec(query))
    current = set(
        session.exec(
            select(Participant.email).where(
                Participant.ticket_id == ticket.id, Participant.role == "cc"
            )
        )
    )
    new = sorted(e for e in added & current if e)
    if not new:
        return ""
    return (
        f"\n\n--\nNow also receiving this conversation: {', '.join(new)}.\n"
        "To remove someone, reply with a line: #uncc ADDRESS\n"
    )


def _name_of(session: Session, ticket_id: int, email: str) -> str:
    """The name the customer gave in their latest mail on the ticket ("" if none)."""
    name = session.exec(
        select(Message.from_name)
        .where(Message.ticket_id == ticket_id, Message.from_email == email)
        .where(Message.direction == "in", Message.from_name != "")
        .order_by(col(Message.id).desc())
    ).first()
    return name or ""


def _customer_side(session: Session, ticket: Ticket) -> list[str]:
    """Requester first, then CCs; never an agent."""
    agents = set(session.exec(select(Agent.email)).all())
    people = session.exec(select(Participant).where(Participant.ticket_id == ticket.id)).all()
    requester = [p.email for p in people if p.role == "requester"]
    ccs = sorted(p.email for p in people if p.role == "cc")
    return [e for e in [*requester, *ccs] if e not in agents]


def _customer_msgids(session: Session, ticket_id: int) -> list[str]:
    rows = session.exec(
        select(Message.message_id)
        .where(Message.ticket_id == ticket_id, Message.kind == "customer")
        .order_by(col(Message.id))
    ).all()
    return [m for m in rows if m]


def status_footer(rt: Runtime, ticket_id: int, language: str | None) -> str:
    """The footer under every mail to a customer, in their language: the signed link to
    their request's status page (SPEC §7), so the page is one click from any mail they keep."""
    cfg = rt.config.inboxd
    return localized(
        "email/customer_footer.txt.j2",
        language,
        {
            "ticket_id": ticket_id,
            "status_url": status_url(cfg.web_base_url, rt.secret_key, ticket_id),
        },
        cfg.templates_dir,
    ).text
