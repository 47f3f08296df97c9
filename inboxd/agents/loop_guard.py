"""loop_guard.py: the loop breaker that needs no headers.

Issue 19: an agent's out-of-office answering every notification to support@ with no
`Auto-Submitted`, a new Message-ID and no threading headers opened 417 tickets and sent
825 mails in two minutes; every header check passed it as a person writing. So this
counts instead, over `[loops] window_minutes`: new tickets and messages per sender, new
tickets per sender domain, and the same message (subject and new text, normalised) from
one sender. Past a
threshold the sender (or domain) is *held*: its later mail is stored as automatic on
its newest ticket and sets off nothing, the agents get one "possible mail loop" notice,
and it stays so until an admin lifts it (`inboxd loops lift ADDR`).

Only the pipeline calls `check()` and `after_held()`, for mail that arrived live; a
file given to `inboxd ingest` cannot be half of a loop. Time is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from inboxd.agents import notify
from inboxd.config import LoopsSection
from inboxd.errors import NotFound
from inboxd.mail.classify import Classification
from inboxd.mail.parse import ParsedMessage
from inboxd.models import Agent, LoopHold, Message, Ticket, utcnow
from inboxd.runtime import Runtime
from inboxd.tickets.threader import ThreadDecision

# Case, spacing and punctuation are ignored when texts are compared; digits are not: a
# customer reporting orders 1041, 1042 and 1043 in one wording is not a loop (and a
# responder that counts is caught by the new-ticket count instead).
_NOISE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Held:
    """A message the breaker holds: how the pipeline now treats it, and why."""

    hold: LoopHold
    started: bool  # this message started the hold: the agents are told once
    kind: Classification
    decision: ThreadDecision


def normalised(text: str) -> str:
    """The words of a text, lowercase, for "the same text again"."""
    return _NOISE.sub(" ", text.lower()).strip()


def domain_key(email: str) -> str:
    return "@" + email.rpartition("@")[2]


def check(
    session: Session,
    rt: Runtime,
    msg: ParsedMessage,
    kind: Classification,
    decision: ThreadDecision,
    new_text: str,
    now: datetime | None = None,
) -> Held | None:
    """Whether this message is held; None lets it through unchanged.

    Automatic mail sets off nothing anyway, and an agent's mail on an existing ticket is
    an agent at work (the per-ticket caps in queues/loops.py bound it); neither is counted.
    """
    sender = msg.sender.email if msg.sender and not msg.sender_ambiguous else ""
    creating = decision.ticket_id is None
    if not sender or kind.automatic or (kind.kind == "agent" and not creating):
        return None
    now = now or utcnow()
    cfg = rt.config.loops
    hold, started = _active(session, sender), False
    if hold is None:
        reason = _over(session, cfg, sender, f"{msg.subject}\n{new_text}", creating, now)
        if reason is None:
            return None
        address, why = reason
        hold = LoopHold(address=address, reason=why, started_at=now, ticket_id=None)
        started = True
    hold.held += 1
    target = decision.ticket_id or newest_ticket(session, sender)
    signal = f"loop: {hold.address} held ({hold.reason})"
    held_decision = replace(
        decision,
        ticket_id=target,
        threaded_by="loop" if target != decision.ticket_id else decision.threaded_by,
        may_add_participants=False,
        reason=signal,
    )
    return Held(hold, started, Classification("auto", (signal,)), held_decision)


def after_held(session: Session, rt: Runtime, held: Held, ticket: Ticket) -> None:
    """Record the hold on the ticket the message went to; the first time, tell the agents."""
    hold = held.hold
    if hold.ticket_id is None:
        hold.ticket_id = ticket.id
    session.add(hold)
    if not held.started:
        return
    context = {"address": hold.address, "reason": hold.reason, "ticket_id": ticket.id}
    for agent in session.exec(select(Agent).where(Agent.active)):
        # Not to the looping address itself: its responder would answer this too.
        if agent.email == hold.address or domain_key(agent.email) == hold.address:
            continue
        notify.mail_agent(
            session,
            rt,
            ticket,
            agent.email,
            f"Possible mail loop from {hold.address}",
            "email/loop_warning.txt.j2",
            context,
            "warn:loop",
        )


def newest_ticket(session: Session, sender: str) -> int | None:
    query = select(Ticket.id).where(Ticket.requester == sender).order_by(col(Ticket.id).desc())
    return session.exec(query.limit(1)).first()


def _active(session: Session, sender: str) -> LoopHold | None:
    query = select(LoopHold).where(
        col(LoopHold.address).in_([sender, domain_key(sender)]),
        col(LoopHold.lifted_at).is_(None),
    )
    return session.exec(query.order_by(col(LoopHold.id)).limit(1)).first()


def _since(session: Session, address: str, start: datetime) -> datetime:
    """The window's start, or later: what came before an admin lifted a hold is forgiven."""
    lifted = session.exec(
        select(func.max(LoopHold.lifted_at)).where(LoopHold.address == address)
    ).one()
    if lifted is None:
        return start
    if lifted.tzinfo is None:  # SQLite hands back naive UTC
        lifted = lifted.replace(tzinfo=start.tzinfo)
    return max(start, lifted)


def _over(
    session: Session, cfg: LoopsSection, sender: str, text: str, creating: bool, now: datetime
) -> tuple[str, str] | None:
    """(address to hold, why) when a threshold is passed, else None."""
    start = now - timedelta(minutes=cfg.window_minutes)
    window = f"in {cfg.window_minutes} minutes"
    since = _since(session, sender, start)
    if creating and cfg.max_new_tickets_per_sender:
        tickets = _count_tickets(session, since, requester=sender)
        if tickets >= cfg.max_new_tickets_per_sender:
            return sender, f"{tickets + 1} new tickets {window}"
    if cfg.max_messages_per_sender or cfg.max_same_text_per_sender:
        texts = _recent_texts(session, sender, since, cfg.max_messages_per_sender)
        if cfg.max_messages_per_sender and len(texts) >= cfg.max_messages_per_sender:
            return sender, f"{len(texts) + 1} messages {window}"
        words = normalised(text)
        same = sum(1 for t in texts if normalised(t) == words) if words else 0
        if cfg.max_same_text_per_sender and same >= cfg.max_same_text_per_sender:
            return sender, f"the same subject and text {same + 1} times {window}"
    domain = domain_key(sender)
    if creating and cfg.max_new_tickets_per_domain:
        since = _since(session, domain, start)
        tickets = _count_tickets(session, since, domain=domain)
        if tickets >= cfg.max_new_tickets_per_domain:
            return domain, f"{tickets + 1} new tickets from {domain} {window}"
    return None


def _count_tickets(
    session: Session, since: datetime, *, requester: str = "", domain: str = ""
) -> int:
    query = select(func.count()).select_from(Ticket).where(col(Ticket.created_at) >= since)
    if requester:
        query = query.where(Ticket.requester == requester)
    else:
        query = query.where(col(Ticket.requester).endswith(domain))
    return int(session.exec(query).one())


def _recent_texts(session: Session, sender: str, since: datetime, limit: int) -> list[str]:
    """Subject and new text of the sender's latest inbound messages (at least 50)."""
    query = (
        select(Message.subject, Message.text)
        .where(
            Message.from_email == sender,
            Message.direction == "in",
            col(Message.received_at) >= since,
        )
        .order_by(col(Message.id).desc())
        .limit(max(limit, 50))
    )
    return [f"{subject}\n{text}" for subject, text in session.exec(query)]


# --- for `inboxd loops` -------------------------------------------------------------------


def active_holds(session: Session) -> list[LoopHold]:
    query = select(LoopHold).where(col(LoopHold.lifted_at).is_(None))
    return list(session.exec(query.order_by(col(LoopHold.id))))


def lift(session: Session, address: str, actor: str, now: datetime | None = None) -> LoopHold:
    """End the hold on an address (`a@b` or `@b`); its mail flows again from now on."""
    address = address.strip().lower()
    query = select(LoopHold).where(LoopHold.address == address, col(LoopHold.lifted_at).is_(None))
    hold = session.exec(query).first()
    if hold is None:
        raise NotFound(f"no mail from {address} is held (see `inboxd loops`)")
    hold.lifted_at = now or utcnow()
    hold.lifted_by = actor
    session.add(hold)
    return hold
