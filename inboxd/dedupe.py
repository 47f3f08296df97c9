"""dedupe.py: has this message been stored already? Reads the DB; writes nothing.

The same message arrives twice when SMTP and IMAP both deliver it, when a sender
retries after a lost 250, or when one archive is imported in several exports. Transport
headers (Received, Delivered-To, mbox "From " lines) differ between the copies, so after
the exact-bytes check the comparison is on the Message-ID plus a fingerprint of what the
sender wrote.
"""

from __future__ import annotations

import hashlib
import re

from sqlmodel import Session, select

from inboxd.models import Message
from inboxd.parse import ParsedMessage

_SPACE = re.compile(r"\s+")


def fingerprint(msg: ParsedMessage) -> str:
    """A hash of the sender, date, subject, text and attachments of a message."""
    h = hashlib.sha256()
    sender = msg.sender.email if msg.sender else ""
    date = msg.date.isoformat() if msg.date else ""
    # Archives re-wrap and re-escape bodies ("From " -> ">From "); compare the words.
    text = _SPACE.sub(" ", msg.text.replace("\n>From ", "\nFrom ")).strip()
    for piece in (sender, date, msg.subject, text):
        h.update(piece.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    for att in sorted(hashlib.sha256(a.data).hexdigest() for a in msg.attachments):
        h.update(att.encode("ascii"))
    return h.hexdigest()


def find_duplicate(
    session: Session, raw_sha256: str, msg: ParsedMessage | None, fp: str | None
) -> Message | None:
    """The stored copy of this message, if there is one."""
    same_bytes = session.exec(select(Message).where(Message.raw_sha256 == raw_sha256)).first()
    if same_bytes is not None or msg is None or fp is None:
        return same_bytes
    query = select(Message).where(Message.fingerprint == fp)
    if msg.message_id:
        query = query.where(Message.message_id == msg.message_id)
    return session.exec(query).first()
