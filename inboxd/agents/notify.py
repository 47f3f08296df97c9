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

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from inboxd.agents import audience, digest, notify_files, teams
from inboxd.agents.notices import Notice, action_notices, cautious, drop_queued
from inboxd.agents.trust import autoreply_recipient
from inboxd.customers import profiles
from inboxd.customers.context import context_for
from inboxd.mail.classify import Classification
from inboxd.mail.parse import Address, ParsedMessage
from inboxd.models import (
    Agent,
    Event,
    Message,
    Outbound,
    Participant,
    SlaDue,
    Ticket,
    utcnow,
)
from inboxd.queues.outbox import FilePart, compose, mailbox, queue_mail
from inboxd.render import localized, render, span_text, variant_for, when_text
from inboxd.runtime import Runtime
from inboxd.tickets import actions
from inboxd.tickets.links import status_url
from inboxd.tickets.tokens import is_ours, make_token, token_address


def acknowledge(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    kind: Classification,
    extra: Callable[[Session, Ticket, ParsedMessage, str], str] | None = None,
    envelope_from: str | None = None,
) -> str | None:
    """Queue the acknowledgement of a new ticket, unless one must not be sent; return its
    Message-ID. It goes to `autoreply_recipient()`: never to a null envelope sender, and
    to the envelope sender when `From:` may be forged, in that customer's language (SPEC
    §10.8). `extra` gives more text for it in the same language (the knowledge base's
    suggestions, from the room above); it is called only for an
    acknowledgement that will be sent."""
    cfg = rt.config.inboxd
    sender = msg.sender
    if not cfg.acknowledge or kind.kind != "customer" or sender is None or msg.sender_ambiguous:
        return None
    to = autoreply_recipient(
        sender.email, envelope_from, msg.headers, rt.config.trust.trusted_authserv_ids
    )
    if to is None or is_ours(to, rt.config.support_addresses):
        return None
    if to == sender.email:
        recent = _recent_acks(session, to)
    else:
        recent = _recent_acks_to(session, to)
        sender = Address(to)
    if recent >= cfg.max_acks_per_sender_per_hour:
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
    name = "email/acknowledgement.txt.j2"
    language = variant_for(name, profiles.language_of(session, sender.email), cfg.templates_dir)
    mail = localized(
        name,
        language,
        {
            "name": sender.name,
            "ticket_id": ticket.id,
            "subject": ticket.subject,
            "status_url": status_url(cfg.web_base_url, rt.secret_key, ticket.id),
            "support_name": cfg.support_name,
            "extra": extra(session, ticket, msg, language) if extra is not None else "",
        },
        cfg.templates_dir,
    )
    out = compose(headers, mail.text, cfg=rt.config, lang=mail.language)
    return queue_mail(
        session,
        out,
        mail_from=cfg.support_address,
        rcpt_to=[sender.email],
        ticket_id=ticket.id,
        purpose="ack",
        # A ticket opened in this transaction has sent nothing yet: no cap to check.
        capped=False,
    )


def _recent_acks(session: Session, email: str) -> int:
    """Acknowledgements this address may have had in the last hour, counted (generously)
    as the other tickets it opened: a ticket gets one at most, and the ticket table's
    requester index answers this without touching the outbox."""
    since = utcnow() - timedelta(hours=1)
    session.flush()  # as the ORM's autoflush did
    count = session.connection().execute(_RECENT_ACKS, {"email": email, "since": since})
    return max(0, int(count.scalar_one()) - 1)  # minus the ticket just opened


def _recent_acks_to(session: Session, email: str) -> int:
    """Acknowledgements queued to this address in the last hour, read from the outbox:
    the address is an envelope sender, which no ticket records as its requester."""
    since = utcnow() - timedelta(hours=1)
    query = select(Outbound.rcpt_to).where(
        Outbound.purpose == "ack", col(Outbound.created_at) >= since
    )
    return sum(1 for rcpt in session.exec(query) if email in rcpt)


_TICKET = Ticket.__table__  # type: ignore[attr-defined]
# Built once: building the statement anew cost more than running it.
_RECENT_ACKS = (
    sa_select(func.count())
    .select_from(_TICKET)
    .where(_TICKET.c.requester == bindparam("email"), _TICKET.c.created_at >= bindparam("since"))
)


# --- agent notifications ----------------------------------------------------------------

# Notification purposes, and whether a reply to one is public by default (SPEC §6
# "Defaults"): about a customer's message, yes; about a note or an assignment, no.
PUBLIC_BY_DEFAULT = {
    "notify:new": True,
    "notify:customer": True,
    "notify:reply": True,
    "notify:note": False,
    "notify:assign": False,
    "notify:team": False,
    "notify:held": False,
    "notify:sla-warning": False,
    "notify:sla-breach": False,
    "notify:csat-bad": False,
}


def thread_root(rt: Runtime, ticket_id: int) -> str:
    """A stable, unguessable Message-ID every notification of a ticket refers to, so the
    ticket is one thread in an agent's mail client."""
    tag = hmac.new(rt.secret_key, f"thread:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:12]
    domain = rt.config.inboxd.support_address.rpartition("@")[2]
    return f"<ticket-{ticket_id}.{tag}.inboxd@{domain}>"


def notify_agents(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    message: Message | None,
    purpose: str,
    recipients: list[Agent],
    headline: str,
) -> int:
    """Queue one notification per agent, each with that agent's own reply token.

    One mail per action, never two (SPEC §10.9): an agent already notified of this ticket
    in this action (a reply that also assigned them) gets that mail replaced by one that
    says both. Its purpose is the cautious one: a reply to it is an internal note unless
    both parts were about a customer's message."""
    assert ticket.id is not None
    recipients = [a for a in recipients if a.id is not None and a.active]
    if not recipients:
        return 0
    notices = action_notices(session)
    cap = rt.config.loops.max_notifications_per_agent_per_minute
    counts = digest.recent_counts(session) if cap else None
    texts: dict[tuple[int | None, str, str], str] = {}
    # The customer's files are read once per action, however many agents hear of it.
    files: dict[int | None, tuple[list[FilePart], list[str]]] = {}
    sent = 0
    for agent in recipients:
        mail_purpose, headlines, about = purpose, [headline], message
        earlier = notices.get((ticket.id, agent.email))
        if earlier is not None and (
            earlier.message is None or message is None or earlier.message.id == message.id
        ):
            drop_queued(session, earlier.message_id)
            mail_purpose = cautious(earlier.purpose, purpose, PUBLIC_BY_DEFAULT)
            headlines = [*earlier.headlines, *(h for h in [headline] if h not in earlier.headlines)]
            about = earlier.message or message
        about_id = about.id if about else None
        if about_id not in files:
            files[about_id] = notify_files.message_files(session, rt, about)
        key = (about_id, mail_purpose, "\n".join(headlines))
        if key not in texts:
            texts[key] = _notification_text(
                session, rt, ticket, about, mail_purpose, headlines, files[about_id]
            )
        # Past the cap, the notification waits for the agent's digest (digest.py).
        status = "queued"
        if counts is not None:
            status = digest.HELD if counts[agent.email] >= cap else "queued"
            counts[agent.email] += 1
        message_id = _queue_notification(
            session, rt, ticket, agent, about, mail_purpose, texts[key], status, files[about_id][0]
        )
        if message_id is not None:
            notices[(ticket.id, agent.email)] = Notice(message_id, mail_purpose, headlines, about)
            sent += 1
    return sent


def _notification_text(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    message: Message | None,
    purpose: str,
    headlines: list[str],
    files: tuple[list[FilePart], list[str]],
) -> str:
    cfg = rt.config.inboxd
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    # Who the customer is, their other open tickets and their organisation's (SPEC §10.7).
    customer = context_for(session, ticket.requester, ticket.id)
    cc = session.exec(
        select(Participant.email).where(
            Participant.ticket_id == ticket.id, Participant.role == "cc"
        )
    ).all()
    attached, left_out = files
    author = message.from_name or message.from_email if message else ""
    return render(
        "email/notification.txt.j2",
        {
            "headline": "\n".join(headlines),
            "ticket": ticket,
            "assignee": assignee.email if assignee else None,
            "customer": customer,
            "cc": cc,
            "author_line": f"{message.kind} from {author}" if message else "ticket",
            "text": message.text if message else "",
            "attachments": [f.filename for f in attached],
            "left_out": left_out,
            "public_default": PUBLIC_BY_DEFAULT.get(purpose, False),
            "sla_line": _sla_line(session, ticket.id),
            "web_url": f"{cfg.web_base_url.rstrip('/')}/tickets/{ticket.id}",
        },
        cfg.templates_dir,
    )


def _queue_notification(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    agent: Agent,
    message: Message | None,
    purpose: str,
    text: str,
    status: str,
    files: list[FilePart],
) -> str | None:
    assert ticket.id is not None and agent.id is not None
    cfg = rt.config.inboxd
    root = thread_root(rt, ticket.id)
    tag = cfg.subject_tag.replace("{id}", str(ticket.id))
    token = make_token(rt.secret_key, ticket.id, agent.id)
    headers = [
        ("From", mailbox(cfg.support_name, cfg.support_address)),
        ("To", mailbox(agent.name, agent.email)),
        ("Reply-To", mailbox(cfg.support_name, token_address(cfg.support_address, token))),
        ("Subject", f"{tag} {ticket.subject}"),
        ("In-Reply-To", root),
        ("References", root),
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
    ]
    return queue_mail(
        session,
        compose(headers, text, files, cfg=rt.config),
        mail_from=cfg.support_address,
        rcpt_to=[agent.email],
        ticket_id=ticket.id,
        purpose=purpose,
        about_message_pk=message.id if message else None,
        status=status,
    )


def _sla_line(session: Session, ticket_id: int) -> str:
    """The next service-level deadline as the clock last computed it: "first reply due
    Mon 2026-11-30 11:30 CST, in 1 h 10 m" ("" when no policy applies)."""
    due = session.get(SlaDue, ticket_id)
    if due is None or due.due_at is None or due.due_target is None:
        return ""
    at = due.due_at if due.due_at.tzinfo else due.due_at.replace(tzinfo=UTC)
    left = at - utcnow()
    when = "overdue by " + span_text(-left) if left.total_seconds() < 0 else "in " + span_text(left)
    return f"{due.due_target.replace('_', ' ')} due {when_text(at, due.zone)}, {when}"


def recipients(
    session: Session, rt: Runtime, ticket: Ticket, event: str, *, exclude: str = ""
) -> list[Agent]:
    """The active agents who hear of `event` on `ticket` (audience.py decides; SPEC
    §10.9), never `exclude` (the agent or customer who caused it)."""
    agents = list(session.exec(select(Agent).where(Agent.active).order_by(col(Agent.id))))
    assignee = next((a.email for a in agents if a.id == ticket.assignee_id), None)
    facts = audience.TicketFacts(
        assignee=assignee,
        team=ticket.team,
        followers=_writers(session, ticket),
        lead=teams.lead_of(rt.config, ticket.team),
    )
    readers = [
        audience.Reader(a.email, a.notify, a.role, teams.teams_of(rt.config, a)) for a in agents
    ]
    chosen = set(audience.audience(event, facts, readers, actor=exclude))
    return [a for a in agents if a.email in chosen]


def _writers(session: Session, ticket: Ticket) -> frozenset[str]:
    """The addresses that wrote agent replies or notes on the ticket."""
    assert ticket.id is not None
    rows = session.exec(
        select(Message.from_email).where(
            Message.ticket_id == ticket.id, col(Message.kind).in_(("reply", "note"))
        )
    ).all()
    return frozenset(rows)


def mail_agent(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    agent_email: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    purpose: str,
    about_message_pk: int | None = None,
) -> None:
    """A short mail to one agent about a ticket (errors, receipts, help, warnings).

    Each of these invites a reply (fix the line, #undo, the next command), so it carries
    the agent's own reply token, as a notification does (SPEC §10.9): without it a
    corrected reply would reach support@ bare and be held as unverified. `about_message_pk`
    is the message the agent was answering, so a reply to this mail acts on it as a
    reply to that notification would (`#split`, `#move`, public by default or not)."""
    assert ticket.id is not None
    cfg = rt.config.inboxd
    text = render(template, context, cfg.templates_dir)
    root = thread_root(rt, ticket.id)
    agent = session.exec(select(Agent).where(Agent.email == agent_email)).first()
    headers = [
        ("From", mailbox(cfg.support_name, cfg.support_address)),
        ("To", mailbox(agent.name, agent_email) if agent else agent_email),
    ]
    if agent is not None and agent.id is not None:
        token = make_token(rt.secret_key, ticket.id, agent.id)
        headers.append(
            ("Reply-To", mailbox(cfg.support_name, token_address(cfg.support_address, token)))
        )
    headers += [
        ("Subject", f"{cfg.subject_tag.replace('{id}', str(ticket.id))} {subject}"),
        ("In-Reply-To", root),
        ("References", root),
        ("Auto-Submitted", "auto-replied"),
        ("X-Auto-Response-Suppress", "All"),
    ]
    queue_mail(
        session,
        compose(headers, text, cfg=rt.config),
        mail_from=cfg.support_address,
        rcpt_to=[agent_email],
        ticket_id=ticket.id,
        purpose=purpose,
        about_message_pk=about_message_pk,
    )


def recently_mailed(
    session: Session,
    ticket_id: int,
    email: str,
    purpose: str,
    within: timedelta = timedelta(hours=1),
) -> bool:
    """Has this address had mail of this purpose about this ticket lately?"""
    query = select(Outbound.rcpt_to).where(
        Outbound.ticket_id == ticket_id,
        Outbound.purpose == purpose,
        col(Outbound.created_at) >= utcnow() - within,
    )
    return any(email in rcpt for rcpt in session.exec(query))


def replies_public(session: Session, mail: Outbound) -> bool:
    """Whether an agent's reply to this mail of ours goes to the customer by default (SPEC
    §6 "Defaults"). A notification says so by its purpose; a receipt or an error mail
    answers as the notification did, so only one about a customer's message is public."""
    if mail.purpose in PUBLIC_BY_DEFAULT:
        return PUBLIC_BY_DEFAULT[mail.purpose]
    about = session.get(Message, mail.about_message_pk) if mail.about_message_pk else None
    return about is not None and about.direction == "in" and about.kind == "customer"


def after_assignment(session: Session, rt: Runtime, ticket: Ticket, actor_email: str) -> None:
    """Tell a newly assigned agent (unless they assigned themselves, or want no mail)."""
    assert ticket.id is not None
    if ticket.assignee_id is None:
        return
    agent = session.get(Agent, ticket.assignee_id)
    if agent is None or agent.email == actor_email:
        return
    already = session.exec(
        select(Outbound)
        .where(
            Outbound.ticket_id == ticket.id,
            Outbound.purpose == "notify:assign",
            col(Outbound.rcpt_to).is_not(None),
        )
        .order_by(col(Outbound.id).desc())
    ).first()
    if (
        already is not None
        and agent.email in already.rcpt_to
        and already.created_at >= ticket.updated_at
    ):
        return
    notify_agents(
        session,
        rt,
        ticket,
        None,
        "notify:assign",
        recipients(session, rt, ticket, "assign", exclude=actor_email),
        f"{actor_email} assigned ticket #{ticket.id} to you.",
    )


def after_commands(
    session: Session, rt: Runtime, ticket: Ticket, actor_email: str, block_id: str
) -> None:
    """What a command block's changes tell others: an assignment (after_assignment), a
    move to a team's queue (its agents, unless the ticket has an owner)."""
    moved = session.exec(select(Event).where(Event.block == block_id, Event.type == "team")).first()
    if moved is not None and moved.to_value and ticket.team == moved.to_value:
        notify_agents(
            session,
            rt,
            ticket,
            None,
            "notify:team",
            recipients(session, rt, ticket, "team", exclude=actor_email),
            f"{actor_email} moved ticket #{ticket.id} to the {ticket.team} queue.",
        )
    after_assignment(session, rt, ticket, actor_email)


def reopen_due(session: Session, rt: Runtime) -> int:
    """Tickets whose #due time has come: back to open, and the assignee (or all) told."""
    due = session.exec(
        select(Ticket).where(
            Ticket.status == "pending",
            col(Ticket.due_at).is_not(None),
            col(Ticket.due_at) <= utcnow(),
        )
    ).all()
    for ticket in due:
        actions.set_status(session, ticket, "open", "system")
        notify_agents(
            session,
            rt,
            ticket,
            None,
            "notify:due",
            recipients(session, rt, ticket, "due"),
            f"Ticket #{ticket.id} is due again.",
        )
    return len(due)
