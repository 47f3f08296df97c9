"""store.py: write tickets, messages, participants, attachments and events.

Every function takes the caller's session and never commits: the pipeline commits once,
so a message and all its consequences are saved together or not at all. Attachment
files are content-addressed under data_dir/attachments and named by their SHA-256,
never by the sender's filename; they can always be rebuilt from the raw message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import ORMExecuteState, make_transient_to_detached
from sqlmodel import Session, select

from inboxd.mail.parse import ParsedAttachment
from inboxd.mail.peek import peek
from inboxd.models import (
    Attachment,
    Event,
    Message,
    Participant,
    Quarantine,
    RawMessage,
    ThreadKey,
    Ticket,
    utcnow,
)

log = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_raw(session: Session, raw: bytes) -> str:
    """Keep the original bytes (write-once, keyed by SHA-256); return the key."""
    digest = sha256_hex(raw)
    values = {"sha256": digest, "size": len(raw), "data": raw, "stored_at": utcnow()}
    # INSERT .. ON CONFLICT DO NOTHING: two workers storing the same bytes both succeed.
    session.connection().execute(_insert_ignore(session, RawMessage), values)
    return digest


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _core(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Plain Core executemany on the session's connection and transaction: for rows that
    are never read back as objects (events, keys, participants), skipping the ORM's bulk
    machinery halves the cost of each insert."""
    session.connection().execute(statement, rows)


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# Statements of the ingest path, built once: building a statement (and its cache key)
# anew for every execution cost more than running it on SQLite.
_INSERT_IGNORE: dict[tuple[str, Any], Any] = {}
_INSERT: dict[Any, Any] = {}


def _insert_ignore(session: Session, model: Any) -> Any:
    """INSERT .. ON CONFLICT DO NOTHING into `model`'s table, for the session's dialect."""
    key = (session.get_bind().dialect.name, model)
    statement = _INSERT_IGNORE.get(key)
    if statement is None:
        statement = _insert(session)(_table(model)).on_conflict_do_nothing()
        _INSERT_IGNORE[key] = statement
    return statement


def insert_once(session: Session, model: Any, row: dict[str, Any]) -> bool:
    """Insert `row` unless its key exists; True if this call inserted it. Two daemons
    racing on one PostgreSQL: the loser's insert waits for the winner and does nothing."""
    # RETURNING says whether a row went in on both databases (psycopg reports a rowcount
    # of -1 here).
    table = _table(model)
    statement = _insert_ignore(session, model).returning(*table.primary_key.columns)
    return session.connection().execute(statement, row).first() is not None


def _new_id(result: Any) -> int:
    """The primary key a single-row INSERT generated."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def plain_insert(model: Any) -> Any:
    """A plain Core INSERT into `model`'s table (built once per table)."""
    statement = _INSERT.get(model)
    if statement is None:
        statement = _INSERT[model] = insert(_table(model))
    return statement


def load_raw(session: Session, digest: str) -> bytes | None:
    """The original bytes of a stored message."""
    row = session.get(RawMessage, digest)
    return bytes(row.data) if row is not None else None


def record_event(
    session: Session,
    ticket: Ticket,
    actor: str,
    type_: str,
    from_value: str | None = None,
    to_value: str | None = None,
    message: Message | None = None,
    block: str | None = None,
    *,
    message_pk: int | None = None,
    at: datetime | None = None,
) -> None:
    """Append one line to a ticket's audit log (`block`: the command block that did it).
    The message it is about is `message`, or its primary key `message_pk`; `at` is now
    unless the event records a moment already past (an SLA target that fell due)."""
    assert ticket.id is not None
    # A plain INSERT: events are written often and never read back in the same
    # transaction, so building ORM objects for them would only cost time.
    row = {
        "ticket_id": ticket.id,
        "at": at or utcnow(),
        "actor": actor[:320],
        "type": type_,
        "from_value": from_value,
        "to_value": to_value,
        "message_pk": message.id if message is not None else message_pk,
        "block": block,
    }
    # Written in one statement with the other events of the transaction (flush_events).
    session.info.setdefault(_PENDING_EVENTS, []).append(row)


_PENDING_EVENTS = "inboxd.pending_events"


@sa_event.listens_for(Session, "before_commit")
def flush_events(session: Session) -> None:
    """Write the events recorded in this transaction (before commit, or before reading)."""
    rows = session.info.pop(_PENDING_EVENTS, None)
    if rows:
        _core(session, plain_insert(Event), rows)


@sa_event.listens_for(Session, "do_orm_execute")
def _events_before_reading_them(state: ORMExecuteState) -> None:
    """A query of the event table sees the events recorded earlier in its transaction
    (the clock reads what the rules it ran just recorded)."""
    if not (state.is_select and state.session.info.get(_PENDING_EVENTS)):
        return
    if any(m.class_ is Event for m in state.all_mappers):
        flush_events(state.session)


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A SAVEPOINT for the block: an exception rolls back what it did, and only that.
    Events recorded before it are written first, since any rollback (a savepoint's too)
    forgets the events still pending."""
    flush_events(session)
    with session.begin_nested():
        yield


@sa_event.listens_for(Session, "after_rollback")
def _forget_events(session: Session) -> None:
    session.info.pop(_PENDING_EVENTS, None)


def open_ticket(
    session: Session,
    subject: str,
    requester: str,
    followup_of: int | None = None,
    *,
    channel: str = "email",
    submitter: str = "",
) -> Ticket:
    """Create a new ticket with its requester as the first participant. An agent who
    opens one on a customer's behalf is its `submitter`, never a participant: replies go
    to the requester (Zammad sent them to the agent who logged the call)."""
    # A Core INSERT, then the ORM object made persistent without a flush: the unit of
    # work's INSERT was the most expensive statement of ingesting a new ticket. Pending
    # ORM changes are flushed first, so statements still run in the order they were made.
    session.flush()
    now = utcnow()
    values: dict[str, Any] = {
        "subject": subject,
        "status": "new",
        "priority": "normal",
        "assignee_id": None,
        "team": None,
        "requester": requester,
        "created_at": now,
        "updated_at": now,
        "first_response_at": None,
        "solved_at": None,
        "merged_into": None,
        "followup_of": followup_of,
        "spam": False,
        "due_at": None,
        "channel": channel,
        "submitter": submitter,
    }
    result = session.connection().execute(plain_insert(Ticket), values)
    ticket = Ticket(id=_new_id(result), **values)
    make_transient_to_detached(ticket)
    session.add(ticket)
    assert ticket.id is not None
    if requester:
        row = {
            "ticket_id": ticket.id,
            "email": requester,
            "role": "requester",
            "added_at": utcnow(),
        }
        _core(session, plain_insert(Participant), [row])
    record_event(session, ticket, submitter or requester or "system", "created", None, "new")
    if submitter:
        # What reports and SLA clocks read to count a logged call's first reply from the
        # customer's first message (SPEC §10.7): they read events, never the ticket row.
        record_event(session, ticket, submitter, "logged", None, channel)
    if followup_of is not None:
        record_event(session, ticket, "system", "followup", str(followup_of), str(ticket.id))
    return ticket


def add_participant(
    session: Session,
    ticket: Ticket,
    email: str,
    role: str,
    actor: str,
    known: set[str] | None = None,
) -> bool:
    """Add an address to a ticket unless it is there already; say whether it was new.

    `known`, when given, is the ticket's complete set of participants so far (a ticket
    opened in this transaction); it saves a look-up and is updated.
    """
    assert ticket.id is not None
    if not email:
        return False
    if known is not None:
        if email in known:
            return False
        known.add(email)
    elif session.get(Participant, (ticket.id, email)) is not None:
        return False
    row = {"ticket_id": ticket.id, "email": email, "role": role, "added_at": utcnow()}
    _core(session, plain_insert(Participant), [row])
    record_event(session, ticket, actor, "participant", None, email)
    return True


def remember_msgids(session: Session, ticket_id: int, msgids: dict[str, str]) -> None:
    """Record Message-IDs (msgid -> source) as belonging to a ticket, once each."""
    if not msgids:
        return
    rows = [{"msgid": m, "ticket_id": ticket_id, "source": s} for m, s in msgids.items()]
    # A key the ticket has already stays as it is (unique msgid+ticket). executemany
    # with one cached statement, whatever the number of keys.
    _core(session, _insert_ignore(session, ThreadKey), rows)


def insert_message(session: Session, values: dict[str, Any]) -> int:
    """INSERT one message row (`values`: every column but the id); return its id.

    A Core INSERT rather than an ORM object and a flush, which cost more than the
    statement itself; callers that need the object load it by its id. Pending ORM
    changes are flushed first, so statements run in the order they were made."""
    session.flush()
    return _new_id(session.connection().execute(plain_insert(Message), values))


def save_attachments(
    session: Session, message_pk: int, parts: list[ParsedAttachment], directory: Path
) -> None:
    """Store attachment files under generated names and add their rows."""
    rows = []
    for part in parts:
        digest = sha256_hex(part.data)
        _write_once(directory / digest[:2] / digest, part.data)
        rows.append(
            {
                "message_pk": message_pk,
                "filename": part.filename,
                "content_type": part.content_type[:255],
                "size": len(part.data),
                "sha256": digest,
                "inline": part.inline,
                "content_id": part.content_id,
            }
        )
    if rows:
        _core(session, plain_insert(Attachment), rows)


def attachment_path(directory: Path, digest: str) -> Path:
    """Where the file of an attachment with this SHA-256 lives."""
    return directory / digest[:2] / digest


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def quarantine(session: Session, digest: str, source: str, reason: str) -> Quarantine:
    """Record that a stored raw message could not be processed, and why; one log line
    says so, with the sender and subject the admin will see in `inboxd quarantine`."""
    seen = peek(load_raw(session, digest) or b"")
    log.warning(
        "quarantined %s from %s, subject %r: %s",
        source or digest[:12],
        seen.sender or "(no sender)",
        seen.subject,
        reason,
    )
    existing = session.exec(
        select(Quarantine).where(Quarantine.raw_sha256 == digest, Quarantine.released_at == None)  # noqa: E711
    ).first()
    if existing is not None:
        existing.attempts += 1
        existing.reason = reason
        session.add(existing)
        return existing
    row = Quarantine(raw_sha256=digest, source=source, reason=reason)
    session.add(row)
    return row
