"""bounces.py: match a delivery status notification (RFC 3464) to the mail it is about.

A DSN names the bounced mail only inside its attached headers (text/rfc822-headers or
message/rfc822), so its own In-Reply-To cannot thread it; the Message-IDs inboxd gave
its outbound mail are unguessable, so finding one inside the bounce identifies the mail
safely. The outbound row is marked failed, the ticket gets the event, and the assignee
(or the admins) are told, as for a 5xx at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from inboxd.mail.parse import ParsedMessage
from inboxd.models import Outbound

_MSGID = re.compile(rb"<([^<>\s@]{1,200}@[^<>\s]{1,200})>")
_STATUS = re.compile(r"(?im)^Status:\s*([245]\.\d{1,3}\.\d{1,3})")
_DIAGNOSTIC = re.compile(r"(?im)^Diagnostic-Code:\s*(.+(?:\n[ \t].+)*)")
_RECIPIENT = re.compile(r"(?im)^Final-Recipient:\s*(?:rfc822;)?\s*(\S+)")


@dataclass(frozen=True)
class Bounce:
    """What a DSN says about one of our mails."""

    outbound_id: int
    ticket_id: int | None
    status: str
    detail: str

    @property
    def permanent(self) -> bool:
        return not self.status.startswith(("2", "4"))


def match_bounce(session: Session, raw: bytes, msg: ParsedMessage) -> Bounce | None:
    """The outbound mail this bounce is about, if it is one of ours."""
    candidates = list(
        dict.fromkeys(f"<{m.decode('ascii', 'replace')}>" for m in _MSGID.findall(raw))
    )
    if not candidates:
        return None
    query = select(Outbound).where(col(Outbound.message_id).in_(candidates[:200]))
    row = session.exec(query).first()
    if row is None or row.id is None:
        return None
    report = _delivery_status(msg)
    status = m.group(1) if (m := _STATUS.search(report)) else "5.0.0"
    detail = re.sub(r"\s+", " ", m.group(1)).strip() if (m := _DIAGNOSTIC.search(report)) else ""
    who = m.group(1) if (m := _RECIPIENT.search(report)) else ", ".join(row.rcpt_to)
    text = f"bounce {status} for {who}" + (f": {detail}" if detail else "")
    return Bounce(row.id, row.ticket_id, status, text[:2000])


def _delivery_status(msg: ParsedMessage) -> str:
    parts = [
        a.data.decode("utf-8", "replace")
        for a in msg.attachments
        if a.content_type in ("message/delivery-status", "message/global-delivery-status")
    ]
    # Some MTAs (qmail, old Exchange) put the status only in the human-readable text.
    return "\n".join(parts) or msg.text
