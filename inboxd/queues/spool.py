"""spool.py: received mail waits here, durably, until the pipeline has processed it.

`accept()` is what the SMTP edge calls before answering 250 and the IMAP poller before
flagging a message: one committed transaction (synchronous=FULL on SQLite) holding the
raw bytes and a pending row. The worker then `claim()`s rows and runs the pipeline,
which marks the row done in the pipeline's own transaction, so each message is
processed exactly once even across crashes.

Several daemons may share one PostgreSQL database. There a claim is an advisory lock
held by the worker's own connection (queues/claims.py), so it ends the moment a killed
daemon's connection does, and the pipeline's transaction locks its rows again
(`lock_pending`) and skips any that another daemon finished meanwhile. On SQLite (one
daemon per file) a claim is a lease in the row, forgotten at start-up (`release_claims`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, col, func, or_, select

from inboxd.db import session_scope
from inboxd.errors import DatabaseUnavailable
from inboxd.models import Inbound, utcnow
from inboxd.queues.claims import ClaimLocks, is_postgres
from inboxd.tickets import store
from inboxd.write_lock import WriteLock

LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Arrival:
    """One received message on its way into the spool, with its envelope."""

    raw: bytes
    source: str
    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()


def accept(
    engine: Engine,
    raw: bytes,
    *,
    source: str,
    mail_from: str = "",
    rcpt_to: Sequence[str] = (),
    write_lock: AbstractContextManager[Any] | None = None,
) -> int:
    """Store a received message durably; return its spool id. Raises DatabaseUnavailable."""
    arrival = Arrival(raw, source=source, mail_from=mail_from, rcpt_to=tuple(rcpt_to))
    return accept_many(engine, [arrival], write_lock)[0]


def accept_many(
    engine: Engine,
    arrivals: Sequence[Arrival],
    write_lock: AbstractContextManager[Any] | None = None,
) -> list[int]:
    """Store several received messages in one durable commit; return their spool ids, in
    order. All or none: when the commit fails, none of them may be answered 250.
    Raises DatabaseUnavailable."""
    try:
        with write_lock or contextlib.nullcontext(), session_scope(engine) as session:
            return store_arrivals(session, arrivals)
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"cannot store the message: {exc}") from None


def accept_now(
    engine: Engine, arrivals: Sequence[Arrival], write_lock: WriteLock
) -> list[int] | None:
    """accept_many, unless that would wait for SQLite's writer: None when this process's
    lock or the database's is taken. For the SMTP event loop, with an engine whose busy
    timeout is a millisecond (daemon/group_commit.py says why)."""
    if not write_lock.try_first():
        return None
    try:
        with session_scope(engine) as session:
            return store_arrivals(session, arrivals)
    except OperationalError as exc:
        # The primary code: an extended one (SQLITE_BUSY_SNAPSHOT, ...) is busy as well.
        code = getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return None
        raise DatabaseUnavailable(f"cannot store the message: {exc}") from None
    finally:
        write_lock.__exit__()


def store_arrivals(session: Session, arrivals: Sequence[Arrival]) -> list[int]:
    """The raw bytes and a pending row for each arrival, in the session's transaction."""
    connection = session.connection()
    now = utcnow()
    return [
        int(
            connection.execute(
                _INSERT_PENDING,
                {
                    "raw_sha256": store.store_raw(session, arrival.raw),
                    "source": arrival.source,
                    "mail_from": arrival.mail_from,
                    "rcpt_to": list(arrival.rcpt_to),
                    "received_at": now,
                    "state": "pending",
                    "attempts": 0,
                },
            ).scalar_one()
        )
        for arrival in arrivals
    ]


# A spool row, inserted without the ORM: the SMTP edge's commit thread holds the GIL
# against the event loop, and the unit of work cost more of it than the insert itself.
_INSERT_PENDING = insert(Inbound.__table__).returning(Inbound.__table__.c.id)  # type: ignore[attr-defined]


def claim(
    engine: Engine,
    limit: int = 20,
    write_lock: AbstractContextManager[Any] | None = None,
    locks: ClaimLocks | None = None,
) -> list[Inbound]:
    """Take up to `limit` pending messages, oldest first, for this process. With `locks`
    (PostgreSQL), claimed by advisory lock; release them with `locks.unlock_all()` once
    the pipeline's transaction has committed or rolled back."""
    if locks is not None and is_postgres(engine):
        return _claim_locked(engine, limit, locks)
    now = utcnow()
    with write_lock or contextlib.nullcontext(), session_scope(engine) as session:
        query = (
            select(Inbound)
            .where(Inbound.state == "pending")
            .where(or_(col(Inbound.claimed_until).is_(None), col(Inbound.claimed_until) < now))
            .order_by(col(Inbound.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(session.exec(query))
        for row in rows:
            row.claimed_until = now + LEASE
            row.attempts += 1
            session.add(row)
        return rows


# Candidates read per claim: enough to find `limit` free rows past those other daemons
# are working on (each holds at most one batch).
_LOOK_AHEAD = 8


def _claim_locked(engine: Engine, limit: int, locks: ClaimLocks) -> list[Inbound]:
    try:
        with session_scope(engine) as session:
            query = (
                select(Inbound.id)
                .where(Inbound.state == "pending")
                .order_by(col(Inbound.id))
                .limit(limit * _LOOK_AHEAD)
            )
            candidates = [int(i) for i in session.exec(query) if i is not None]
        got: list[int] = []
        for spool_id in candidates:
            if len(got) >= limit:
                break
            if locks.try_lock(spool_id):
                got.append(spool_id)
        if not got:
            return []
        # Read after locking: a row another daemon finished (and unlocked) between the
        # two reads is done by now, and is not ours.
        with session_scope(engine) as session:
            rows = list(
                session.exec(
                    select(Inbound)
                    .where(col(Inbound.id).in_(got), Inbound.state == "pending")
                    .order_by(col(Inbound.id))
                )
            )
    except (OperationalError, PoolTimeout) as exc:
        locks.unlock_all()
        raise DatabaseUnavailable(f"cannot read the spool: {exc}") from None
    mine = {row.id for row in rows}
    locks.unlock_all([i for i in got if i not in mine])
    return rows


def lock_pending(session: Session, spool_ids: Sequence[int]) -> set[int]:
    """Of these spool rows, the ones still pending, locked for this transaction (FOR
    UPDATE: a second transaction on one of them waits, then sees it done). The
    pipeline calls it first, so a message is stored once even if two daemons had it."""
    if not spool_ids:
        return set()
    query = (
        select(Inbound.id)
        .where(col(Inbound.id).in_(list(spool_ids)), Inbound.state == "pending")
        .with_for_update()
    )
    return {int(i) for i in session.exec(query) if i is not None}


def release_claims(engine: Engine) -> None:
    """Forget every lease: for a single daemon on SQLite, at start-up, after a crash."""
    with session_scope(engine) as session:
        session.execute(
            update(Inbound).where(col(Inbound.state) == "pending").values(claimed_until=None)
        )


def mark_done(session: Session, spool_id: int, result: str, ticket_id: int | None) -> None:
    """Record the pipeline's result on the spool row (inside the pipeline's transaction)."""
    row = session.get(Inbound, spool_id)
    if row is None:
        return
    row.state = "done"
    row.result = result
    row.ticket_id = ticket_id
    row.processed_at = utcnow()
    row.claimed_until = None
    session.add(row)


def pending_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        query = select(func.count()).select_from(Inbound).where(Inbound.state == "pending")
        return int(session.exec(query).one())
