"""sender.py: the daemon's half of the outbox. Claim due rows, send them, record the outcome.

The daemon drives `deliver_due()`; rows are claimed with a lease (SKIP LOCKED on
PostgreSQL) so several daemons never send one mail twice. In "file" mode a mail is
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

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, func, or_, select

from inboxd.config import Config, secret
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import MAX_ROW_ID, Outbound, utcnow
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
    engine: Engine, limit: int = 1, up_to: int | None = None, due_by: datetime | None = None
) -> list[Outbound]:
    """Queued rows whose time has come, locked for this process by a lease.

    The daemon claims one row at a time, just before sending it (issue 19: a sender
    killed while a slow relay took 40 mails held the 20 it had claimed for the whole
    lease). A row whose earlier claim was never settled was being sent when its sender
    died: it may have gone out. It is sent once more, and if that is interrupted too,
    it is failed rather than risk a third copy. `up_to`, `due_by`: no row queued after
    that id, or due after that time (a call sends what was due when it began).
    """
    now = utcnow()
    with session_scope(engine) as session:
        query = (
            select(Outbound)
            .where(Outbound.status == "queued", col(Outbound.next_attempt_at) <= (due_by or now))
            .where(col(Outbound.id) <= (up_to if up_to is not None else MAX_ROW_ID))
            .where(or_(col(Outbound.claimed_until).is_(None), col(Outbound.claimed_until) < now))
            .order_by(col(Outbound.next_attempt_at), col(Outbound.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = []
        for row in session.exec(query):
            if row.claimed_until is not None:
                row.attempts += 1
                if row.last_error == INTERRUPTED:
                    row.status = "failed"
                    row.last_error = INTERRUPTED_TWICE
                    row.claimed_until = None
                    session.add(row)
                    log.warning("outbound %s: %s", row.id, INTERRUPTED_TWICE)
                    continue
                row.last_error = INTERRUPTED
            row.claimed_until = now + LEASE
            session.add(row)
            rows.append(row)
        return rows


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
    cfg: Config, engine: Engine, limit: int = 20, metrics: Metrics | None = None
) -> int:
    """Send what was due when called, up to `limit` mails, claiming each just before it
    is sent; return how many rows were attempted. (Mail queued meanwhile, such as a
    failure notice, waits for the next call.)"""
    start = utcnow()
    with session_scope(engine) as session:
        last = session.exec(select(func.max(Outbound.id))).one()
    attempted = 0
    while last is not None and attempted < limit:
        rows = claim_due(engine, 1, last, start)
        if not rows:
            break
        for row in rows:
            assert row.id is not None
            outcome = send_one(cfg, row)
            if metrics is not None:
                metrics.inc("outbound_sent_total" if outcome.ok else "outbound_failures_total")
            with session_scope(engine) as session:
                record_outcome(session, cfg, row.id, outcome)
            attempted += 1
    return attempted
