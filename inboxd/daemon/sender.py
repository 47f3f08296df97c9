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
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, or_, select

from inboxd.config import Config, secret
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Outbound, utcnow
from inboxd.queues.outbox import SendOutcome, record_outcome

log = logging.getLogger(__name__)

# A claimed row is the claimer's for this long; a crashed sender's rows wait for it.
LEASE = timedelta(minutes=5)


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


def claim_due(engine: Engine, limit: int = 20) -> list[Outbound]:
    """Queued rows whose time has come, locked for this process by a lease."""
    now = utcnow()
    with session_scope(engine) as session:
        query = (
            select(Outbound)
            .where(Outbound.status == "queued", col(Outbound.next_attempt_at) <= now)
            .where(or_(col(Outbound.claimed_until).is_(None), col(Outbound.claimed_until) < now))
            .order_by(col(Outbound.next_attempt_at), col(Outbound.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(session.exec(query))
        for row in rows:
            row.claimed_until = now + LEASE
            session.add(row)
        return rows


def deliver_due(
    cfg: Config, engine: Engine, limit: int = 20, metrics: Metrics | None = None
) -> int:
    """Send what is due; return how many rows were attempted."""
    rows = claim_due(engine, limit)
    for row in rows:
        assert row.id is not None
        outcome = send_one(cfg, row)
        if metrics is not None:
            metrics.inc("outbound_sent_total" if outcome.ok else "outbound_failures_total")
        with session_scope(engine) as session:
            record_outcome(session, cfg, row.id, outcome)
    return len(rows)
