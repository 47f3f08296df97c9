"""outbox.py: the transactional outbox. Queue in the caller's transaction; send later.

`queue_mail()` adds a row in the same transaction as the change that caused the mail,
so a rolled-back change sends nothing and a committed one is never forgotten. The
sender (`sender.deliver_due()`, driven by the daemon) sends due rows through the relay, or
writes them to data_dir/outbox in "file" mode; `record_outcome()` here books the result.
4xx replies and connection errors are retried with exponential backoff and jitter up to
`max_attempts`; a 5xx fails the row for good, records it on the ticket and tells the
assignee (or the admins). Each row's Message-ID is fixed when it is queued, so a retry
after an unclear failure sends the very same mail, never a different one.
"""

from __future__ import annotations

import base64
import logging
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email.charset import BASE64, QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.policy import SMTPUTF8, Compat32
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr
from io import BytesIO
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from inboxd.config import Config
from inboxd.db import session_scope
from inboxd.errors import InboxdError, NotFound
from inboxd.models import Agent, Outbound, Ticket, utcnow
from inboxd.queues import html_part, loops
from inboxd.render import render
from inboxd.tickets import store

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)


# A header value the Header folding algorithm gives back unchanged when it fits on one
# line: printable ASCII, not starting or ending with white space.
_VERBATIM = re.compile(r"[!-~](?:[ -~]*[!-~])?")


class _Compat32Fast(Compat32):
    """compat32, except that a header line that needs neither folding nor encoding is
    written as it is, which is what the Header algorithm makes of it anyway (checked by
    tests/test_ingest_equivalence.py); running that algorithm for every header was most
    of the time spent flattening an acknowledgement."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        limit = self.max_line_length
        if (
            isinstance(value, str)
            and limit
            and len(name) + 2 + len(value) <= limit
            and _VERBATIM.fullmatch(value)
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        folded: bytes = super().fold_binary(name, value)
        return folded


_SMTP_32 = _Compat32Fast(linesep="\r\n")
# Internationalised addresses (RFC 6531/6532) need the UTF-8 generator.
_SMTPUTF8_32 = SMTPUTF8
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
# The HTML part in base64: its long styled lines made quoted-printable the costliest step
# of composing a mail (3x base64's time), and no one reads an HTML part's source.
_UTF8_B64 = Charset("utf-8")
_UTF8_B64.body_encoding = BASE64


def new_message_id(domain: str) -> str:
    """An unguessable Message-ID in our domain; threader trusts it as proof of receipt."""
    return f"<{uuid.uuid4().hex}.inboxd@{domain}>"


@dataclass(frozen=True)
class FilePart:
    """An attachment to send: bytes, a display filename and a content type."""

    filename: str
    content_type: str
    data: bytes


def compose(
    headers: list[tuple[str, str]],
    text: str,
    attachments: Sequence[FilePart] = (),
    *,
    cfg: Config | None,
    lang: str = "",
) -> Message:
    """A mail of `text` (UTF-8, quoted-printable), with its HTML alternative when
    `[outbound] html` is on, multipart/mixed when there are files. `cfg` None: the plain
    text alone (a message inboxd writes down as the customer's, never sent).
    Header values must be ready to use: addresses through `mailbox()`; other non-ASCII
    values become RFC 2047 words here.

    The compat32 Message is used on purpose: EmailMessage re-parses every header through
    the header registry, which made composing the slowest step of ingesting a message.
    """
    msg = Message()
    for name, value in headers:
        # compat32 takes a Header object for a value that needs RFC 2047 words.
        msg[name] = value if value.isascii() else Header(value, "utf-8", header_name=name)  # type: ignore[assignment]
    msg["MIME-Version"] = "1.0"
    page = ""
    if cfg is not None and cfg.outbound.html:
        subject = next((v for n, v in headers if n.lower() == "subject"), "")
        page = html_part.html_text(
            text, title=subject, lang=lang, override_dir=cfg.inboxd.templates_dir
        )
    if not attachments and not page:
        msg.set_payload(text, _UTF8_QP)
        return msg
    if not attachments:
        return _both(msg, text, page)
    msg["Content-Type"] = _multipart("mixed")
    msg.attach(_both(Message(), text, page) if page else _text_part(text, "plain"))
    for part in attachments:
        maintype, _, subtype = part.content_type.partition("/")
        file = Message()
        file["Content-Type"] = f"{maintype or 'application'}/{subtype or 'octet-stream'}"
        file.add_header("Content-Disposition", "attachment", filename=("utf-8", "", part.filename))
        file["Content-Transfer-Encoding"] = "base64"
        file.set_payload(base64.encodebytes(part.data).decode("ascii"))
        msg.attach(file)
    return msg


def _multipart(subtype: str) -> str:
    """A multipart Content-Type with its boundary chosen here: "=_" never occurs in
    quoted-printable or base64, the only encodings inboxd writes, so the generator need
    not search the parts for a collision (a regex compiled per mail, half its cost)."""
    return f'multipart/{subtype}; boundary="=_{uuid.uuid4().hex}"'


def _text_part(text: str, subtype: str) -> Message:
    part = Message()
    part.set_payload(text, _UTF8_QP if subtype == "plain" else _UTF8_B64)
    del part["MIME-Version"]  # set_payload adds it; it belongs to the top only
    if subtype != "plain":
        part.set_type(f"text/{subtype}")
    return part


def _both(msg: Message, text: str, page: str) -> Message:
    """`msg` as multipart/alternative: the plain text first, so a client shows the HTML,
    the last part it understands, and one that reads no HTML the very same text."""
    msg["Content-Type"] = _multipart("alternative")
    msg.attach(_text_part(text, "plain"))
    msg.attach(_text_part(page, "html"))
    return msg


def mailbox(name: str, address: str) -> str:
    """A From/To value: the name encoded when needed; an RFC 6532 address left bare."""
    if not address.isascii():
        return address
    return formataddr((name, address), charset="utf-8")


def queue_mail(
    session: Session,
    msg: Message,
    *,
    mail_from: str,
    rcpt_to: list[str],
    ticket_id: int | None,
    purpose: str,
    about_message_pk: int | None = None,
    capped: bool = True,
    status: str = "queued",
) -> str | None:
    """Add a mail to the outbox inside the caller's transaction (`status` "digest": held
    for the agent's digest, never sent by itself).

    Returns the mail's Message-ID; None, and nothing queued, when the loop breaker says
    no: the ticket is over its cap of mail for the last minutes, or every recipient is
    suppressed.
    """
    if capped and loops.over_cap(session, ticket_id, purpose):
        log.warning("ticket %s: %s not sent, over the loop cap", ticket_id, purpose)
        return None
    live = [r for r in rcpt_to if not loops.suppressed(session, r)]
    if not live:
        log.warning("ticket %s: %s not sent, %s suppressed", ticket_id, purpose, rcpt_to)
        return None
    rcpt_to = live
    domain = mail_from.rpartition("@")[2] or "localhost"
    if "Message-ID" not in msg:
        msg["Message-ID"] = new_message_id(domain)
    if "Date" not in msg:
        msg["Date"] = format_datetime(utcnow())
    if purpose != "reply" and "X-Loop" not in msg:
        # Everything inboxd writes by itself says so, for the next system to see.
        msg["X-Loop"] = mail_from
    message_id = str(msg["Message-ID"]).strip()
    buffer = BytesIO()
    utf8 = not all(a.isascii() for a in [mail_from, *rcpt_to])
    if utf8:
        # The UTF-8 generator writes Unicode headers itself and cannot take Header objects.
        for name, value in list(msg.items()):
            if isinstance(value, Header):
                msg.replace_header(name, str(value))
    BytesGenerator(buffer, policy=_SMTPUTF8_32 if utf8 else _SMTP_32).flatten(msg)
    now = utcnow()
    # A plain INSERT: the row is never read back in this transaction, and building an
    # ORM object for every queued mail was a visible share of ingest time.
    row = {
        "ticket_id": ticket_id,
        "message_id": message_id,
        "purpose": purpose,
        "about_message_pk": about_message_pk,
        "mail_from": mail_from,
        "rcpt_to": rcpt_to,
        "raw": buffer.getvalue(),
        "status": status,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    session.connection().execute(store.plain_insert(Outbound), [row])
    if ticket_id is not None:
        # Replies to this mail prove they received it (SPEC §5 rule 2, source "own").
        store.remember_msgids(session, ticket_id, {message_id: "own"})
    return message_id


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    permanent: bool = False
    error: str = ""


def record_outcome(session: Session, cfg: Config, row_id: int, outcome: SendOutcome) -> None:
    """Mark a row sent, schedule its retry, or fail it for good and tell someone."""
    row = session.get(Outbound, row_id)
    if row is None:
        return
    row.attempts += 1
    row.claimed_until = None
    fields = _log_fields(row, outcome.error)
    if outcome.ok:
        row.status = "sent"
        row.sent_at = utcnow()
        row.last_error = outcome.error or None
        session.add(row)
        log.info("outbound %(id)s to %(to)s: sent (attempt %(attempt)s, ticket %(ticket)s)", fields)
        return
    row.last_error = outcome.error[:2000]
    if outcome.permanent or row.attempts >= cfg.outbound.max_attempts:
        row.status = "failed"
        session.add(row)
        _report_failure(session, cfg, row)
        return
    delay = backoff(cfg.outbound.retry_seconds, row.attempts)
    row.next_attempt_at = utcnow() + delay
    session.add(row)
    fields["retry_seconds"] = round(delay.total_seconds())
    log.warning(
        "outbound %(id)s to %(to)s: attempt %(attempt)s failed: %(error)s; "
        "retrying in %(retry_seconds)s s",
        fields,
    )


def _log_fields(row: Outbound, error: str) -> dict[str, object]:
    """What a send's log line says (and a JSON log line carries as keys)."""
    to = ", ".join(row.rcpt_to)
    return {
        "id": row.id,
        "to": to,
        "ticket": row.ticket_id,
        "attempt": row.attempts,
        "error": error,
    }


def record_bounce(
    session: Session, cfg: Config, outbound_id: int, permanent: bool, detail: str
) -> None:
    """A DSN came back for a mail we sent: fail it for good (or note a delay)."""
    row = session.get(Outbound, outbound_id)
    if row is None:
        return
    row.last_error = detail
    if " 5.1.1 " in f" {detail} ":
        # No such user: stop mailing the address for a while (loops.SUPPRESS_FOR).
        for address in row.rcpt_to:
            loops.suppress(session, address, detail)
    if not permanent or row.status == "failed":
        session.add(row)
        return
    row.status = "failed"
    session.add(row)
    _report_failure(session, cfg, row)


def backoff(base_seconds: float, attempts: int) -> timedelta:
    """Exponential backoff with full jitter in its upper half, capped at an hour."""
    delay = min(base_seconds * (2 ** max(attempts - 1, 0)), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))


def _report_failure(session: Session, cfg: Config, row: Outbound) -> None:
    fields = _log_fields(row, row.last_error or "")
    log.error("outbound %(id)s to %(to)s: failed for good: %(error)s", fields)
    if row.ticket_id is None:
        return
    ticket = session.get(Ticket, row.ticket_id)
    if ticket is None:
        return
    store.record_event(
        session,
        ticket,
        "system",
        "delivery_failed",
        ", ".join(row.rcpt_to),
        (row.last_error or "")[:500],
    )
    if row.purpose == "delivery_failed":
        return  # never report the failure of a failure report: that way lies a loop
    people = _assignee_or_admins(session, ticket)
    if not people:
        return
    subject = _subject_of(row.raw)
    support = cfg.inboxd.support_address
    text = render(
        "email/delivery_failed.txt.j2",
        {
            "ticket_id": ticket.id,
            "recipients": ", ".join(row.rcpt_to),
            "subject": subject,
            "error": row.last_error or "",
            "support_name": cfg.inboxd.support_name,
            "ticket_url": f"{cfg.inboxd.web_base_url.rstrip('/')}/tickets/{ticket.id}",
        },
        cfg.inboxd.templates_dir,
    )
    msg = compose(
        [
            ("From", mailbox(f"{cfg.inboxd.support_name} (inboxd)", support)),
            ("To", ", ".join(people)),
            ("Subject", f"Undeliverable: {subject}"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
        ],
        text,
        cfg=cfg,
    )
    queue_mail(
        session,
        msg,
        mail_from=support,
        rcpt_to=people,
        ticket_id=ticket.id,
        purpose="delivery_failed",
    )


def _assignee_or_admins(session: Session, ticket: Ticket) -> list[str]:
    if ticket.assignee_id is not None:
        agent = session.get(Agent, ticket.assignee_id)
        if agent is not None and agent.active:
            return [agent.email]
    admins = session.exec(select(Agent).where(Agent.role == "admin", Agent.active)).all()
    return [a.email for a in admins]


def _subject_of(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=default_policy).get("Subject", ""))


def next_due_at(engine: Engine) -> datetime | None:
    """When the next queued mail is due (None when the queue is empty)."""
    with session_scope(engine) as session:
        query = select(func.min(Outbound.next_attempt_at)).where(Outbound.status == "queued")
        return session.exec(query).one()


def retry(engine: Engine, row_id: int) -> Outbound:
    """Put a failed (or waiting) mail back in the queue, due now, with fresh attempts."""
    with session_scope(engine) as session:
        row = session.get(Outbound, row_id)
        if row is None:
            raise NotFound(f"no outbound mail {row_id}")
        if row.status == "sent":
            raise InboxdError(f"outbound mail {row_id} was already sent at {row.sent_at}")
        row.status = "queued"
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.claimed_until = None
        session.add(row)
        return row


def list_outbox(session: Session, failed_only: bool = False) -> list[Outbound]:
    query = select(Outbound)
    query = (
        query.where(Outbound.status == "failed")
        if failed_only
        else query.where(Outbound.status != "sent")
    )
    return list(session.exec(query.order_by(col(Outbound.id))))
