"""notify.py: the mail that follows from what just happened to a ticket.

Called by the pipeline inside its transaction, so a notification is queued if and only if
the change that caused it is committed. Today: the customer's acknowledgement of a new
ticket. Never to automatic mail (auto-replies, bounces, lists, bulk: RFC 3834), never to
an ambiguous sender or to inboxd's own addresses, never more than
`max_acks_per_sender_per_hour`, and never quoting the customer's message, so a
verification mail that a third party had sent to support@ is not echoed anywhere (the
"ticket trick").
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, func, select

from inboxd.classify import Classification
from inboxd.links import status_url
from inboxd.models import Outbound, Ticket, utcnow
from inboxd.outbound import compose, mailbox, queue_mail
from inboxd.parse import ParsedMessage
from inboxd.render import render
from inboxd.runtime import Runtime
from inboxd.tokens import is_ours, make_token, token_address


def acknowledge(
    session: Session, rt: Runtime, ticket: Ticket, msg: ParsedMessage, kind: Classification
) -> Outbound | None:
    """Queue the acknowledgement of a new ticket, unless one must not be sent."""
    cfg = rt.config.inboxd
    sender = msg.sender
    if not cfg.acknowledge or kind.kind != "customer" or sender is None or msg.sender_ambiguous:
        return None
    if is_ours(sender.email, rt.config.support_addresses):
        return None
    if _recent_acks(session, sender.email) >= cfg.max_acks_per_sender_per_hour:
        return None
    assert ticket.id is not None
    tag = cfg.subject_tag.replace("{id}", str(ticket.id))
    headers = [
        ("From", mailbox(cfg.support_name, cfg.support_address)),
        ("To", mailbox(sender.name, sender.email)),
        ("Subject", f"{tag} {ticket.subject}"),
    ]
    if msg.message_id:
        headers.append(("In-Reply-To", msg.message_id))
        headers.append(("References", " ".join([*msg.references[-10:], msg.message_id])))
    if cfg.plus_addressing:
        token = make_token(rt.secret_key, ticket.id)
        headers.append(
            ("Reply-To", mailbox(cfg.support_name, token_address(cfg.support_address, token)))
        )
    # RFC 3834: automatic, and please no automatic answer to it.
    headers += [
        ("Auto-Submitted", "auto-replied"),
        ("X-Auto-Response-Suppress", "All"),
        ("Precedence", "auto_reply"),
    ]
    text = render(
        "email/acknowledgement.txt.j2",
        {
            "name": sender.name,
            "ticket_id": ticket.id,
            "subject": ticket.subject,
            "status_url": status_url(cfg.web_base_url, rt.secret_key, ticket.id),
            "support_name": cfg.support_name,
        },
        cfg.templates_dir,
    )
    out = compose(headers, text)
    return queue_mail(
        session,
        out,
        mail_from=cfg.support_address,
        rcpt_to=[sender.email],
        ticket_id=ticket.id,
        purpose="ack",
    )


def _recent_acks(session: Session, email: str) -> int:
    since = utcnow() - timedelta(hours=1)
    # Through the requester's recent tickets (indexed), not a scan of the whole outbox.
    recent = select(Ticket.id).where(Ticket.requester == email, col(Ticket.created_at) >= since)
    query = (
        select(func.count())
        .select_from(Outbound)
        .where(col(Outbound.ticket_id).in_(recent), Outbound.purpose == "ack")
        .where(col(Outbound.created_at) >= since)
    )
    return int(session.exec(query).one())
