"""dedupe.py: has this message been stored already? Reads the DB; writes nothing.

The same message arrives twice when SMTP and IMAP both deliver it, when a sender
retries after a lost 250, or when one archive is imported in several exports. Transport
headers (Received, Delivered-To, mbox "From " lines) differ between the copies, so after
the exact-bytes check the comparison is on the Message-ID plus a fingerprint of what the
sender wrote.

Two daemons on one PostgreSQL may receive copies of one message at the same moment;
the pipeline holds a transaction-scoped advisory lock on the fingerprint (and on the
Message-IDs, claims.lock_keys) from before `find_copy` until its commit, so the second
copy's check sees the first one stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select
from sqlmodel import Session

from inboxd.mail.parse import ParsedMessage
from inboxd.models import Message

# mbox exports escape a "From " line with ">" to different depths (Pony Mail's three
# exports of one archive have ">>From" and ">>>From" for the same line).
_MBOX_FROM = re.compile(r"(?m)^>+From ")


def fingerprint(msg: ParsedMessage) -> str:
    """A hash of the sender, date, subject, text and attachments of a message."""
    h = hashlib.sha256()
    sender = msg.sender.email if msg.sender else ""
    date = msg.date.isoformat() if msg.date else ""
    # Archives re-wrap and re-escape bodies; compare the words.
    # (str.split() splits at the characters \s matches: runs become one space, and
    # the ends are stripped, as _SPACE.sub(" ", ...).strip() did.)
    text = " ".join(_MBOX_FROM.sub("From ", msg.text).split())
    for piece in (sender, date, msg.subject, text):
        h.update(piece.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    for att in sorted(hashlib.sha256(a.data).hexdigest() for a in msg.attachments):
        h.update(att.encode("ascii"))
    return h.hexdigest()


@dataclass(frozen=True)
class StoredCopy:
    """The stored message a new one duplicates: where it is."""

    id: int
    ticket_id: int
    message_id: str | None


_MESSAGE = Message.__table__  # type: ignore[attr-defined]
# Built once: a Core SELECT of the few columns needed, not a Message object per row.
_FIND_COPY = select(
    _MESSAGE.c.id,
    _MESSAGE.c.ticket_id,
    _MESSAGE.c.message_id,
    _MESSAGE.c.raw_sha256,
    _MESSAGE.c.fingerprint,
).where(
    or_(_MESSAGE.c.raw_sha256 == bindparam("raw_sha256"), _MESSAGE.c.fingerprint == bindparam("fp"))
)


def find_copy(
    session: Session, raw_sha256: str, msg: ParsedMessage, fp: str
) -> tuple[StoredCopy | None, str]:
    """The stored copy of this message and how it matched ("same bytes", "same
    message"), in one query for both checks."""
    session.flush()  # as the ORM's autoflush did: a moved message is read where it is now
    rows = session.connection().execute(_FIND_COPY, {"raw_sha256": raw_sha256, "fp": fp}).all()
    for found in rows:
        if found.raw_sha256 == raw_sha256:
            return StoredCopy(found.id, found.ticket_id, found.message_id), "same bytes"
        if found.fingerprint == fp and found.message_id == msg.message_id:
            return StoredCopy(found.id, found.ticket_id, found.message_id), "same message"
    return None, ""
