"""pipeline.py: one raw message in, one ticket decision stored. The one ingest path.

SMTP, IMAP and `inboxd ingest` all call `ingest()`. The stages, in order:

    store raw -> exact duplicate? -> parse (strips X-Inboxd-*) -> own mail? ->
    duplicate? -> classify -> thread -> strip quotes -> store message -> events

Everything for one message happens in one transaction. A message the parser rejects,
or that hits a bug, is quarantined with its raw bytes in a transaction of its own, so
nothing accepted is ever lost and `inboxd quarantine retry` can re-run it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, col, select

from inboxd import store
from inboxd.classify import Classification, classify
from inboxd.db import session_scope
from inboxd.dedupe import find_duplicate, fingerprint
from inboxd.errors import DatabaseUnavailable, NotFound, ParseRejected
from inboxd.models import Agent, Message, Quarantine, ThreadKey, Ticket, utcnow
from inboxd.parse import ParsedMessage, parse_message
from inboxd.quotes import strip_quoted, strip_quoted_html
from inboxd.runtime import Runtime
from inboxd.subjects import clean_subject, subject_tag_pattern
from inboxd.threader import ThreadDecision, find_ticket, tickets_waiting_for

log = logging.getLogger(__name__)

# A customer writing again moves a ticket that waits on them, or was solved, back to open.
_REOPEN_ON_CUSTOMER_REPLY = {"pending", "solved", "on-hold"}


@dataclass(frozen=True)
class IngestResult:
    """What happened to one message; `to_json()` is SPEC §4's `ingest --json` line."""

    source: str
    result: str  # created | appended | duplicate | quarantined
    ticket: int | None
    message_id: str | None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ingest(
    rt: Runtime, raw: bytes, source: str = "", envelope_to: tuple[str, ...] = ()
) -> IngestResult:
    """Process one raw RFC 5322 message; never raises for bad mail."""
    try:
        with session_scope(rt.engine) as session:
            return _ingest(session, rt, raw, source, envelope_to)
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from None
    except Exception as exc:
        # A bug, not bad mail. The traceback goes to the log; the message to quarantine.
        log.exception("ingest of %s failed", source or "message")
        reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
        return _quarantine(rt, raw, source, reason)


def _quarantine(rt: Runtime, raw: bytes, source: str, reason: str) -> IngestResult:
    try:
        with session_scope(rt.engine) as session:
            digest = store.store_raw(session, raw)
            store.quarantine(session, digest, source, reason)
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from None
    return IngestResult(source, "quarantined", None, None, reason)


def _ingest(
    session: Session, rt: Runtime, raw: bytes, source: str, envelope_to: tuple[str, ...]
) -> IngestResult:
    digest = store.store_raw(session, raw)
    if (same := find_duplicate(session, digest, None, None)) is not None:
        return IngestResult(source, "duplicate", same.ticket_id, same.message_id, "same bytes")
    try:
        msg = parse_message(raw)
    except ParseRejected as exc:
        store.quarantine(session, digest, source, exc.reason)
        return IngestResult(source, "quarantined", None, None, exc.reason)
    if msg.message_id and _is_own(session, msg.message_id):
        return IngestResult(source, "duplicate", None, msg.message_id, "inboxd's own mail")
    fp = fingerprint(msg)
    if (dup := find_duplicate(session, digest, msg, fp)) is not None:
        return IngestResult(source, "duplicate", dup.ticket_id, dup.message_id, "same message")

    agents = {a.email: a for a in session.exec(select(Agent).where(Agent.active))}
    kind = classify(msg, frozenset(agents))
    tag = subject_tag_pattern(rt.config.inboxd.subject_tag)
    decision = find_ticket(
        session,
        msg,
        secret=rt.secret_key,
        support_addresses=rt.config.support_addresses,
        tag=tag,
        envelope_to=envelope_to,
        sender_is_agent=kind.kind == "agent",
    )
    sender = msg.sender.email if msg.sender else ""
    created = decision.ticket_id is None
    if created:
        ticket = store.open_ticket(
            session, clean_subject(msg.subject, tag) or "(no subject)", sender, decision.followup_of
        )
    else:
        found = session.get(Ticket, decision.ticket_id)
        assert found is not None
        ticket = found
    _save(session, rt, ticket, msg, digest, fp, source, kind, decision, agents)
    _after_message(session, rt, ticket, msg, kind, decision, created, agents)
    assert ticket.id is not None
    for waiting in tickets_waiting_for(session, msg, ticket.id):
        store.merge_tickets(session, waiting, ticket, "system")
    result = "created" if created else "appended"
    return IngestResult(source, result, ticket.id, msg.message_id, decision.reason)


def _is_own(session: Session, msgid: str) -> bool:
    query = select(ThreadKey).where(ThreadKey.msgid == msgid, ThreadKey.source == "own")
    return session.exec(query).first() is not None


def _message_kind(
    kind: Classification, decision: ThreadDecision, msg: ParsedMessage, agents: dict[str, Agent]
) -> str:
    if kind.automatic:
        return "auto"
    if kind.kind != "agent":
        return "customer"
    agent = agents[msg.sender.email] if msg.sender else None
    # Agent mail counts only when it came to that agent's own reply token (SPEC §6 (a)).
    # Anything else claiming an agent's From: is held; running commands and relaying
    # replies from verified agent mail is the command-tags stage (not built yet).
    if agent is not None and decision.token_agent_id == agent.id:
        return "note"
    return "held"


def _save(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    digest: str,
    fp: str,
    source: str,
    kind: Classification,
    decision: ThreadDecision,
    agents: dict[str, Agent],
) -> Message:
    assert ticket.id is not None
    new_text = strip_quoted(msg.text) if msg.text or not msg.html else strip_quoted_html(msg.html)
    message = Message(
        ticket_id=ticket.id,
        direction="in",
        kind=_message_kind(kind, decision, msg, agents),
        threaded_by=decision.threaded_by,
        message_id=msg.message_id,
        fingerprint=fp,
        raw_sha256=digest,
        source=source,
        from_email=msg.sender.email if msg.sender else "",
        from_name=msg.sender.name if msg.sender else "",
        sender_ambiguous=msg.sender_ambiguous,
        to=[str(a) for a in msg.to],
        cc=[str(a) for a in msg.cc],
        reply_to=[str(a) for a in msg.reply_to],
        subject=msg.subject,
        date=msg.date,
        body=msg.text,
        text=new_text,
        html=msg.html,
        flags=_flags(msg, kind),
    )
    session.add(message)
    session.flush()
    store.save_attachments(session, message, msg.attachments, rt.attachments_dir)
    keys = {ref: "referenced" for ref in [*msg.references, *msg.in_reply_to]}
    if msg.message_id:
        keys[msg.message_id] = "stored"
    store.remember_msgids(session, ticket.id, keys)
    store.record_event(
        session, ticket, message.from_email or "unknown", "message", None, message.kind, message
    )
    return message


def _flags(msg: ParsedMessage, kind: Classification) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if kind.signals:
        flags["automatic"] = list(kind.signals)
    if msg.sender_problem:
        flags["sender_problem"] = msg.sender_problem
    if msg.stripped_internal_headers:
        flags["stripped_internal_headers"] = msg.stripped_internal_headers
    if msg.defects:
        flags["defects"] = sorted(set(msg.defects))
    return flags


def _after_message(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    kind: Classification,
    decision: ThreadDecision,
    created: bool,
    agents: dict[str, Agent],
) -> None:
    sender = msg.sender.email if msg.sender and not msg.sender_ambiguous else ""
    actor = sender or "unknown"
    if decision.may_add_participants:
        # Only mail that proves it received ours (token, our own Message-ID) or opens the
        # ticket may subscribe people; see SPEC §5 and the 2024 Zendesk CC takeover.
        ours = set(rt.config.support_addresses)
        wanted = [] if created else ([sender] if sender and kind.kind == "customer" else [])
        wanted += [a.email for a in (*msg.to, *msg.cc)]
        for email in wanted:
            local_base = email.split("+", 1)[0] + "@" + email.rpartition("@")[2]
            if email in ours or local_base in ours or email in agents:
                continue
            store.add_participant(session, ticket, email, "cc", actor)
    if kind.kind == "customer" and not created and ticket.status in _REOPEN_ON_CUSTOMER_REPLY:
        store.set_status(session, ticket, "open", actor)
    ticket.updated_at = utcnow()
    session.add(ticket)


def retry_quarantined(rt: Runtime, quarantine_id: int) -> IngestResult:
    """Re-run a quarantined message through the pipeline (after a fix or a config change)."""
    with session_scope(rt.engine) as session:
        row = session.get(Quarantine, quarantine_id)
        if row is None or row.released_at is not None:
            raise NotFound(f"no quarantined message {quarantine_id}")
        raw = store.load_raw(session, row.raw_sha256)
        source = row.source
    assert raw is not None
    result = ingest(rt, raw, source)
    if result.result != "quarantined":
        with session_scope(rt.engine) as session:
            row = session.get(Quarantine, quarantine_id)
            assert row is not None
            row.released_at = utcnow()
            if result.message_id:
                found = session.exec(
                    select(Message)
                    .where(Message.message_id == result.message_id)
                    .order_by(col(Message.id).desc())
                ).first()
                row.released_to = found.id if found else None
            session.add(row)
    return result
