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

from sqlmodel import Session, col, or_, select

from inboxd.models import Message
from inboxd.parse import ParsedMessage

_SPACE = re.compile(r"\s+")
# mbox exports escape a "From " line with ">" to different depths (Pony Mail's three
# exports of one archive have ">>From" and ">>>From" for the same line).
_MBOX_FROM = re.compile(r"(?m)^>+From ")


def fingerprint(msg: ParsedMessage) -> str:
    """A hash of the sender, date, subject, text and attachments of a message."""
    h = hashlib.sha256()
    sender = msg.sender.email if msg.sender else ""
    date = msg.date.isoformat() if msg.date else ""
    # Archives re-wrap and re-escape bodies; compare the words.
    text = _SPACE.sub(" ", _MBOX_FROM.sub("From ", msg.text)).strip()
    for piece in (sender, date, msg.subject, text):
        h.update(piece.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    for att in sorted(hashlib.sha256(a.data).hexdigest() for a in msg.attachments):
        h.update(att.encode("ascii"))
    return h.hexdigest()


def find_copy(
    session: Session, raw_sha256: str, msg: ParsedMessage, fp: str
) -> tuple[Message | None, str]:
    """The stored copy of this message and how it matched ("same bytes", "same
    message"), in one query for both checks."""
    query = select(Message).where(
        or_(col(Message.raw_sha256) == raw_sha256, col(Message.fingerprint) == fp)
    )
    for found in session.exec(query):
        if found.raw_sha256 == raw_sha256:
            return found, "same bytes"
        if found.fingerprint == fp and found.message_id == msg.message_id:
            return found, "same message"
    return None, ""
