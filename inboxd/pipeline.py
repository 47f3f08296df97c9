"""pipeline.py: one raw message in, one ticket decision stored. The one ingest path.

SMTP, IMAP and `inboxd ingest` all call `ingest()`. The stages, in order:

    store raw -> exact duplicate? -> parse (strips X-Inboxd-*) -> own mail? ->
    duplicate? -> classify -> thread -> strip quotes -> store message -> events ->
    customer profiles -> follow-up (agent commands, acknowledgement, notifications)

Everything for one message happens in one transaction. A message the parser rejects,
or that hits a bug, is quarantined with its raw bytes in a transaction of its own, so
nothing accepted is ever lost and `inboxd quarantine retry` can re-run it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, col, select

from inboxd.agents import followup, loop_guard, notices, teams
from inboxd.customers.intake import resolve_people
from inboxd.db import keep_loaded, session_scope
from inboxd.errors import DatabaseUnavailable, NotFound, ParseRejected
from inboxd.mail.classify import Classification, classify
from inboxd.mail.parse import ParsedMessage, parse_message
from inboxd.mail.quotes import reply_text
from inboxd.mail.subjects import clean_subject, subject_tag_pattern
from inboxd.models import Agent, Message, Quarantine, Ticket, utcnow
from inboxd.queues import claims, outbox, spool
from inboxd.queues.bounces import match_bounce
from inboxd.runtime import Runtime
from inboxd.tickets import actions, store
from inboxd.tickets.dedupe import find_copy, fingerprint
from inboxd.tickets.threader import (
    ThreadDecision,
    find_ticket,
    known_keys,
    tickets_waiting_for,
    wanted_msgids,
)
from inboxd.workflow import csat, kb_suggest

log = logging.getLogger(__name__)
_LINE = "message %(message_id)s from %(source)s: %(result)s, ticket %(ticket)s (%(reason)s)"

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


class _StageFailed(Exception):
    """A pure stage hit a bug; the batch is redone message by message to isolate it."""


@dataclass(frozen=True)
class Incoming:
    """One message to ingest. With `spool_id`, its spool row is marked done in the same
    transaction, so a crash can neither lose the message nor process it twice."""

    raw: bytes
    source: str = ""
    envelope_to: tuple[str, ...] = ()
    spool_id: int | None = None
    # The SMTP envelope sender: "<>" is the null return path, None unknown (files, IMAP).
    envelope_from: str | None = None
    released: bool = False  # an admin released it: its sender's #spam does not hold it


def ingest(
    rt: Runtime,
    raw: bytes,
    source: str = "",
    envelope_to: tuple[str, ...] = (),
    spool_id: int | None = None,
    envelope_from: str | None = None,
) -> IngestResult:
    """Process one raw RFC 5322 message; never raises for bad mail."""
    return ingest_batch(rt, [Incoming(raw, source, envelope_to, spool_id, envelope_from)])[0]


@dataclass(frozen=True)
class Prepared:
    """The pure stages' output for one message: parsed, new text, fingerprint.

    Computed by `prepare()`, which touches no database, so it can run ahead in another
    process while this one writes (`prepare_ahead`). `rejected` is the parser's reason
    to quarantine; `error` a bug's description (with `trace` for the log).
    """

    msg: ParsedMessage | None
    new_text: str = ""
    fp: str = ""
    rejected: str | None = None
    error: str | None = None
    trace: str = ""


def prepare(raw: bytes) -> Prepared:
    """Parse -> strip quotes -> fingerprint. Pure; never raises."""
    try:
        msg = parse_message(raw)
        return Prepared(msg, reply_text(msg.text, msg.html), fingerprint(msg))
    except ParseRejected as exc:
        return Prepared(None, rejected=exc.reason)
    except Exception as exc:
        return Prepared(None, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())


def _prepare_many(raws: list[bytes]) -> list[Prepared]:
    return [prepare(raw) for raw in raws]


def prepare_ahead(
    batches: Iterable[list[Incoming]],
) -> Iterator[tuple[list[Incoming], list[Prepared]]]:
    """Yield each batch with its prepared messages, preparing the next batch meanwhile
    in a second process: parsing is CPU work, writing is mostly waiting on the database,
    and the machines inboxd runs on have more than one core."""
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        return
    second = next(iterator, None)
    if second is None:
        # One batch: not worth a process.
        yield first, _prepare_many([i.raw for i in first])
        return
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pending = pool.submit(_prepare_many, [i.raw for i in second])
        yield first, _prepare_many([i.raw for i in first])
        current = second
        for following in iterator:
            ready = pending.result()
            pending = pool.submit(_prepare_many, [i.raw for i in following])
            yield current, ready
            current = following
        yield current, pending.result()


def ingest_batch(
    rt: Runtime, items: Sequence[Incoming], prepared: Sequence[Prepared] | None = None
) -> list[IngestResult]:
    """Process several messages in one transaction (one commit, one fsync for all).

    Used where the messages are durable already (files given to `inboxd ingest`, rows
    in the spool): a crash loses only uncommitted work that is redone from there. If any
    message hits a bug, the batch is rolled back and redone one message at a time, so
    only that message is quarantined. Each result is logged once it is committed.
    """
    results = _ingest_batch(rt, items, prepared)
    for r in results:
        # A quarantine's WARNING, with sender and subject, is store.quarantine's line.
        log.info(_LINE, r.to_json())
    return results


def _ingest_batch(
    rt: Runtime, items: Sequence[Incoming], prepared: Sequence[Prepared] | None
) -> list[IngestResult]:
    if prepared is None:
        # The pure stages run before the write transaction, so the database's write lock
        # is held only for the writes.
        prepared = [prepare(item.raw) for item in items]
    try:
        with rt.write_lock, session_scope(rt.engine) as session:
            results = []
            # Ingest never changes agents, so one look-up serves the whole batch.
            agents = {a.email: a for a in session.exec(select(Agent).where(Agent.active))}
            keep_loaded(session)
            pending = spool.lock_pending(session, [i.spool_id for i in items if i.spool_id])
            if claims.is_postgres(rt.engine):  # SQLite's one writer serialises it all
                claims.lock_keys(session, "ingest", _decision_keys(rt, prepared))
            for item, ready in zip(items, prepared, strict=True):
                if item.spool_id is not None and item.spool_id not in pending:
                    results.append(_done_elsewhere(item.source))
                    continue
                result = _ingest(session, rt, item, agents, ready)
                if item.spool_id is not None:
                    spool.mark_done(session, item.spool_id, result.result, result.ticket)
                results.append(result)
            return results
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from None
    except Exception as exc:
        if len(items) > 1:
            return [
                result
                for item, ready in zip(items, prepared, strict=True)
                for result in _ingest_batch(rt, [item], [ready])
            ]
        # A bug, not bad mail. The traceback goes to the log; the message to quarantine.
        item = items[0]
        if isinstance(exc, _StageFailed):
            reason = f"internal error: {exc}"[:500]  # logged with its traceback already
        else:
            log.exception("ingest of %s failed", item.source or "message")
            reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
        return [_quarantine(rt, item.raw, item.source, reason, item.spool_id)]


def _done_elsewhere(source: str) -> IngestResult:
    """A spool row another daemon processed while this one had it too (a lost claim)."""
    return IngestResult(source, "duplicate", None, None, "processed by another daemon")


def _decision_keys(rt: Runtime, prepared: Sequence[Prepared]) -> list[str]:
    """What two daemons must not decide at once (SPEC §9): storing one message (its
    fingerprint), threading one conversation (every Message-ID it names, its own
    included, so a reply and its parent arriving together are threaded one after the
    other) and creating one person's customer profile (their address). Locked for the
    whole batch in one sorted statement, so two batches never deadlock."""
    ours = {a.lower() for a in rt.config.support_addresses}
    keys: list[str] = []
    for ready in prepared:
        msg = ready.msg
        if msg is None:
            continue
        keys.append(f"fp:{ready.fp}")
        keys += [f"id:{m}" for m in wanted_msgids(msg)]
        people = [msg.sender] if msg.sender is not None else []
        people += [*msg.to, *msg.cc]
        keys += [f"who:{p.email.lower()}" for p in people if p.email.lower() not in ours]
    return keys


def _quarantine(
    rt: Runtime, raw: bytes, source: str, reason: str, spool_id: int | None
) -> IngestResult:
    try:
        with rt.write_lock, session_scope(rt.engine) as session:
            if spool_id is not None and not spool.lock_pending(session, [spool_id]):
                return _done_elsewhere(source)
            digest = store.store_raw(session, raw)
            store.quarantine(session, digest, source, reason)
            if spool_id is not None:
                spool.mark_done(session, spool_id, "quarantined", None)
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from None
    return IngestResult(source, "quarantined", None, None, reason)


def _ingest(
    session: Session,
    rt: Runtime,
    item: Incoming,
    agents: dict[str, Agent],
    ready: Prepared,
) -> IngestResult:
    raw, source = item.raw, item.source
    notices.begin_action(session)  # a batch shares a session; each message is one action
    digest = store.store_raw(session, raw)
    if ready.error is not None:
        log.error("ingest of %s failed: %s\n%s", source or "message", ready.error, ready.trace)
        raise _StageFailed(ready.error)
    if ready.msg is None:
        reason = ready.rejected or "unparseable"
        store.quarantine(session, digest, source, reason)
        return IngestResult(source, "quarantined", None, None, reason)
    msg, fp = ready.msg, ready.fp
    copy, how = find_copy(session, digest, msg, fp)
    if copy is not None:
        return IngestResult(source, "duplicate", copy.ticket_id, copy.message_id, how)
    keys = known_keys(session, msg)
    if any(k.msgid == msg.message_id and k.source == "own" for k in keys):
        return IngestResult(source, "duplicate", None, msg.message_id, "inboxd's own mail")

    agent_emails = frozenset(agents)
    kind = classify(msg, agent_emails)
    if kind.kind != "agent" and not item.released and (spam := _spam_ticket_of(session, msg)):
        # #spam: "the sender's later mail is quarantined" (SPEC §6), where an admin can
        # still look at it and release it.
        reason = (
            f"sender {msg.sender.email if msg.sender else ''} was marked as spam on ticket {spam}"
        )
        store.quarantine(session, digest, source, reason)
        return IngestResult(source, "quarantined", None, msg.message_id, reason)
    tag = subject_tag_pattern(rt.config.inboxd.subject_tag)
    bounce = match_bounce(session, raw, msg) if kind.kind == "bounce" else None
    if bounce is not None and bounce.ticket_id is not None:
        # A DSN for our own mail: recorded on that mail and its ticket, never a new ticket.
        outbox.record_bounce(
            session, rt.config, bounce.outbound_id, bounce.permanent, bounce.detail
        )
        decision = ThreadDecision(bounce.ticket_id, "references", False, reason=bounce.detail)
    else:
        decision = find_ticket(
            session,
            msg,
            secret=rt.secret_key,
            support_addresses=rt.config.support_addresses,
            tag=tag,
            envelope_to=item.envelope_to,
            sender_is_agent=kind.kind == "agent",
            keys=keys,
            agents=agent_emails,
        )
    # Only mail that arrived live (SMTP, IMAP: through the spool) can be half of a loop.
    live = item.spool_id is not None
    held = loop_guard.check(session, rt, msg, kind, decision, ready.new_text) if live else None
    if held is not None:
        kind, decision = held.kind, held.decision
    sender = msg.sender.email if msg.sender else ""
    created = decision.ticket_id is None
    if created:
        ticket = store.open_ticket(
            session, clean_subject(msg.subject, tag) or "(no subject)", sender, decision.followup_of
        )
        # Mail to a team's own address ([[teams]] email) opens a ticket in its queue.
        teams.route(session, rt.config, ticket, [*item.envelope_to, *(a.email for a in msg.to)])
    else:
        found = session.get(Ticket, decision.ticket_id)
        assert found is not None
        ticket = found
    message_kind = _message_kind(kind, created)
    message_pk = _save(
        session, rt, ticket, msg, ready.new_text, digest, fp, source, kind, decision, message_kind
    )
    if not created and csat.vote_by_reply(session, rt, ticket, msg, decision, message_pk):
        return IngestResult(source, "appended", ticket.id, msg.message_id, "survey answer")
    _after_message(session, rt, ticket, msg, kind, decision, created, agents)
    # Every requester and CC has a customer profile (SPEC §10.7), and a customer's own
    # words give theirs its language (§10.8).
    said = ready.new_text if kind.kind == "customer" else None
    resolve_people(session, rt.config.organizations, ticket.id, msg, said)
    if held is not None:
        loop_guard.after_held(session, rt, held, ticket)
    followup.follow_up(
        session,
        rt,
        ticket,
        msg,
        message_pk,
        message_kind,
        kind,
        decision,
        created,
        agents,
        item.envelope_from,
        acknowledge=kb_suggest.acknowledge,
        self_service=kb_suggest.solved_by_reply,
    )
    assert ticket.id is not None
    for waiting in tickets_waiting_for(session, msg, ticket.id, keys, agent_emails):
        actions.merge_tickets(session, waiting, ticket, "system")
    result = "created" if created else "appended"
    return IngestResult(source, result, ticket.id, msg.message_id, decision.reason)


def _spam_ticket_of(session: Session, msg: ParsedMessage) -> int | None:
    if msg.sender is None or msg.sender_ambiguous:
        return None
    return actions.spam_senders(session).get(msg.sender.email)


def _message_kind(kind: Classification, created: bool) -> str:
    if kind.automatic:
        return "auto"
    if kind.kind == "agent" and not created:
        # Held until agentmail.handle() has verified it and read its commands.
        return "held"
    # An agent who mails support@ afresh (to open a ticket for a caller, say) is the
    # ticket's requester like anyone else; no commands run from such a mail.
    return "customer"


def _save(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    new_text: str,
    digest: str,
    fp: str,
    source: str,
    kind: Classification,
    decision: ThreadDecision,
    message_kind: str,
) -> int:
    """Store the message with its attachments, thread keys and event; return its id."""
    assert ticket.id is not None
    message_pk = store.insert_message(
        session,
        {
            "ticket_id": ticket.id,
            "direction": "in",
            "kind": message_kind,
            "threaded_by": decision.threaded_by,
            "message_id": msg.message_id,
            "fingerprint": fp,
            "raw_sha256": digest,
            "source": source,
            "from_email": msg.sender.email if msg.sender else "",
            "from_name": msg.sender.name if msg.sender else "",
            "sender_ambiguous": msg.sender_ambiguous,
            "to": [str(a) for a in msg.to],
            "cc": [str(a) for a in msg.cc],
            "reply_to": [str(a) for a in msg.reply_to],
            "subject": msg.subject,
            "date": msg.date,
            "received_at": utcnow(),
            "body": msg.text,
            "text": new_text,
            "html": msg.html,
            "flags": _flags(msg, kind),
        },
    )
    store.save_attachments(session, message_pk, msg.attachments, rt.attachments_dir)
    keys = {ref: "referenced" for ref in [*msg.references, *msg.in_reply_to]}
    if msg.message_id:
        keys[msg.message_id] = "stored"
    store.remember_msgids(session, ticket.id, keys)
    from_email = msg.sender.email if msg.sender else ""
    store.record_event(
        session,
        ticket,
        from_email or "unknown",
        "message",
        None,
        message_kind,
        message_pk=message_pk,
    )
    return message_pk


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
    if msg.degraded:
        flags["degraded"] = msg.degraded  # fields read by mail/fallback.py, with why
    if msg.limits:
        flags["limits"] = msg.limits
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
        followup.subscribe(session, rt, ticket, msg, kind, created, agents, actor)
    if created:
        return  # a new ticket's status and updated_at are fresh already
    if kind.kind == "customer" and ticket.status in _REOPEN_ON_CUSTOMER_REPLY:
        actions.set_status(session, ticket, "open", actor)
    ticket.updated_at = utcnow()
    session.add(ticket)


def retry_quarantined(rt: Runtime, quarantine_id: int, release: bool = False) -> IngestResult:
    """Re-run a quarantined message through the pipeline (after a fix or a config change);
    `release` bypasses the one check that holds mail on purpose (a #spam sender's)."""
    with session_scope(rt.engine) as session:
        row = session.get(Quarantine, quarantine_id)
        if row is None or row.released_at is not None:
            raise NotFound(f"no quarantined message {quarantine_id}")
        raw, source = store.load_raw(session, row.raw_sha256), row.source
    assert raw is not None
    result = ingest_batch(rt, [Incoming(raw, source, released=release)])[0]
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
