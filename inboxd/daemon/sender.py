"""sender.py: the daemon's half of the outbox. Claim due rows, send them, record the outcome.

The daemon drives `deliver_due()`; each row is claimed just before it is sent, so several
daemons never send one mail twice. On PostgreSQL the claim is an advisory lock held by
the sender's own connection for the send (queues/claims.py): a killed sender's claim
ends with its connection, at once. The row's `claimed_until` marks that a send began;
a row marked but not locked was being sent when its sender died, and is sent once more
with the same Message-ID. On SQLite (one daemon per file) the claim is that mark, a
lease, made claimable again at start-up (`release_claims`). In "file" mode a mail is
written to data_dir/outbox instead. Only this module and `checks` talk to the relay.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, func, or_, select

from inboxd.config import Config, secret
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import MAX_ROW_ID, Outbound, utcnow
from inboxd.queues.claims import ClaimLocks, is_postgres
from inboxd.queues.outbox import SendOutcome, record_outcome

log = logging.getLogger(__name__)

# A claimed row is the claimer's for this long: longer than one send can take (its
# socket timeouts), so a live sender never loses a row it is sending. Only the one row a
# crashed sender was sending waits for it (on SQLite not even that: release_claims).
LEASE = timedelta(minutes=5)
EXPIRED = datetime(2000, 1, 1, tzinfo=UTC)
INTERRUPTED = "interrupted: its sender stopped during the send; sent again (once)"
INTERRUPTED_TWICE = "interrupted twice while being sent; not sent again (it may have arrived)"


def open_relay(cfg: Config, timeout: float) -> smtplib.SMTP:
    """A connection to [outbound]'s relay: EHLO, STARTTLS or SSL, login as configured."""
    out = cfg.outbound
    client: smtplib.SMTP
    if out.ssl:
        context = ssl.create_default_context()
        client = smtplib.SMTP_SSL(out.host, out.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(out.host, out.port, timeout=timeout)
    try:
        code, banner = client.ehlo()
        if code >= 400:
            raise smtplib.SMTPResponseException(code, banner)
        if out.starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if out.username:
            client.login(out.username, secret(cfg, out, "password"))
    except BaseException:
        client.close()
        raise
    return client


def send_one(cfg: Config, row: Outbound) -> SendOutcome:
    """Hand one mail to the relay (or the outbox folder); classify what went wrong."""
    if cfg.outbound.mode == "file":
        _write_outbox_file(cfg.data_dir / "outbox", row)
        return SendOutcome(ok=True)
    try:
        with open_relay(cfg, timeout=30) as client:
            options = (
                [] if all(a.isascii() for a in [row.mail_from, *row.rcpt_to]) else ["SMTPUTF8"]
            )
            refused = client.sendmail(row.mail_from, row.rcpt_to, row.raw, mail_options=options)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items()
        )
        return SendOutcome(ok=False, permanent=all(c >= 500 for c in codes), error=detail)
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return SendOutcome(
            ok=False, permanent=exc.smtp_code >= 500, error=f"{exc.smtp_code} {text}"
        )
    except (OSError, smtplib.SMTPException) as exc:
        return SendOutcome(ok=False, error=f"{type(exc).__name__}: {exc}")
    if refused:
        detail = "; ".join(
            f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in refused.items()
        )
        log.warning("outbound %s: some recipients refused: %s", row.id, detail)
    return SendOutcome(ok=True, error="")


def _write_outbox_file(directory: Path, row: Outbound) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(row.raw)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / f"{row.id:08d}.eml")


def claim_due(
    engine: Engine,
    limit: int = 1,
    up_to: int | None = None,
    due_by: datetime | None = None,
    locks: ClaimLocks | None = None,
) -> list[Outbound]:
    """Queued rows whose time has come, claimed for this process.

    The daemon claims one row at a time, just before sending it (issue 19: a sender
    killed while a slow relay took 40 mails held the 20 it had claimed for the whole
    lease). A row whose earlier claim was never settled was being sent when its sender
    died: it may have gone out. It is sent once more, and if that is interrupted too,
    it is failed rather than risk a third copy. `up_to`, `due_by`: no row queued after
    that id, or due after that time (a call sends what was due when it began). With
    `locks` (PostgreSQL) the claim is an advisory lock, released by `deliver_due` once
    the outcome is recorded; without, a lease.
    """
    now = utcnow()
    query = (
        select(Outbound)
        .where(Outbound.status == "queued", col(Outbound.next_attempt_at) <= (due_by or now))
        .where(col(Outbound.id) <= (up_to if up_to is not None else MAX_ROW_ID))
        .order_by(col(Outbound.next_attempt_at), col(Outbound.id))
    )
    if locks is not None and is_postgres(engine):
        return _claim_locked(engine, locks, query, limit)
    with session_scope(engine) as session:
        leased = query.where(
            or_(col(Outbound.claimed_until).is_(None), col(Outbound.claimed_until) < now)
        )
        rows = list(session.exec(leased.limit(limit).with_for_update(skip_locked=True)))
        return _mark_claimed(session, rows, now)


def _claim_locked(engine: Engine, locks: ClaimLocks, query: Any, limit: int) -> list[Outbound]:
    # Every due row is a candidate: a mark without a live lock is an interrupted send,
    # whatever its lease time says.
    with session_scope(engine) as session:
        ids = query.with_only_columns(col(Outbound.id)).limit(limit * 8)
        candidates = [int(i) for i in session.execute(ids).scalars()]
    got: list[Outbound] = []
    for row_id in candidates:
        if len(got) >= limit:
            break
        if not locks.try_lock(row_id):
            continue  # another live sender is sending it
        # Read again now that it is ours: a sender that just finished it has recorded
        # its outcome before letting go.
        with session_scope(engine) as session:
            row = session.exec(query.where(col(Outbound.id) == row_id)).first()
            claimed = _mark_claimed(session, [row] if row is not None else [], utcnow())
        if claimed:
            got.extend(claimed)
        else:
            locks.unlock(row_id)
    return got


def _mark_claimed(session: Any, rows: list[Outbound], now: datetime) -> list[Outbound]:
    claimed = []
    for row in rows:
        session.add(row)
        if row.claimed_until is not None:
            row.attempts += 1
            if row.last_error == INTERRUPTED:
                row.status = "failed"
                row.last_error = INTERRUPTED_TWICE
                row.claimed_until = None
                log.warning("outbound %s: %s", row.id, INTERRUPTED_TWICE)
                continue
            row.last_error = INTERRUPTED
        row.claimed_until = now + LEASE
        claimed.append(row)
    return claimed


def release_claims(engine: Engine) -> None:
    """Make every claim claimable now, keeping the mark that the send was interrupted:
    for a single daemon on SQLite, at start-up, whose earlier self was killed."""
    with session_scope(engine) as session:
        session.execute(
            update(Outbound)
            .where(col(Outbound.status) == "queued", col(Outbound.claimed_until).is_not(None))
            .values(claimed_until=EXPIRED)
        )


def deliver_due(
    cfg: Config,
    engine: Engine,
    limit: int = 20,
    metrics: Metrics | None = None,
    locks: ClaimLocks | None = None,
) -> int:
    """Send what was due when called, up to `limit` mails, claiming each just before it
    is sent; return how many rows were attempted. (Mail queued meanwhile, such as a
    failure notice, waits for the next call.)"""
    start = utcnow()
    with session_scope(engine) as session:
        last = session.exec(select(func.max(Outbound.id))).one()
    attempted = 0
    while last is not None and attempted < limit:
        rows = claim_due(engine, 1, last, start, locks)
        if not rows:
            break
        for row in rows:
            assert row.id is not None
            try:
                outcome = send_one(cfg, row)
                if metrics is not None:
                    metrics.inc("outbound_sent_total" if outcome.ok else "outbound_failures_total")
                with session_scope(engine) as session:
                    record_outcome(session, cfg, row.id, outcome)
            finally:
                if locks is not None:
                    locks.unlock_all([row.id])
            attempted += 1
    return attempted
