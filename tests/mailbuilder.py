"""Build raw RFC 5322 messages (bytes) for tests, readably.

    raw = mail(sender="carol@example.org", subject="Order late", body="Where is it?")
    raw = mail(in_reply_to="<a@x>", references=["<a@x>"], cc=["dave@example.org"])
    copy = with_transport_headers(raw, "Delivered-To: support@example.com")

Header values are written as given (so a test can write hostile ones); a non-ASCII
subject is encoded as an RFC 2047 word, a non-ASCII body is sent as 8-bit UTF-8. Lines
end in CRLF, as on the wire. The date is fixed, so equal arguments give equal bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from email.header import Header
from email.message import Message

SUPPORT = "support@example.com"
DATE = "Mon, 23 Nov 2026 10:00:00 +0000"

# Pass as message_id to leave the Message-ID header out altogether.
NO_MESSAGE_ID = ""

_counter = itertools.count(1)


def new_msgid(domain: str = "mail.example.org") -> str:
    """A Message-ID no other call returns (in this test process)."""
    return f"<test.{next(_counter)}@{domain}>"


def mail(
    *,
    sender: str = "Carol Customer <carol@example.org>",
    to: str | Iterable[str] = SUPPORT,
    cc: str | Iterable[str] = (),
    subject: str = "Help needed",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | Iterable[str] = (),
    date: str = DATE,
    body: str = "Hello,\n\nplease help.\n\nCarol\n",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> bytes:
    """One text/plain message. `message_id` None means a fresh one; NO_MESSAGE_ID, none.

    `headers` are extra header fields, added after the standard ones; give a list of
    pairs to repeat a name.
    """
    if message_id is None:
        message_id = new_msgid()
    fields: list[tuple[str, str]] = [("From", sender), ("To", _join(to))]
    if cc:
        fields.append(("Cc", _join(cc)))
    fields += [("Subject", _encode(subject)), ("Date", date)]
    if message_id:
        fields.append(("Message-ID", message_id))
    if in_reply_to:
        fields.append(("In-Reply-To", in_reply_to))
    if references:
        refs = [references] if isinstance(references, str) else list(references)
        fields.append(("References", "\r\n ".join(refs)))
    fields += list(headers.items() if isinstance(headers, Mapping) else headers)
    fields += [
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return (head + "\r\n" + text).encode("utf-8")


def with_transport_headers(raw: bytes, *lines: str) -> bytes:
    """The same message as another hop delivered it: `lines` (Received:, ...) on top."""
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8") + raw


def _join(addresses: str | Iterable[str]) -> str:
    return addresses if isinstance(addresses, str) else ", ".join(addresses)


def _encode(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode()


def plain_text(msg: Message) -> str:
    """The plain text of a mail inboxd wrote, decoded: its first text/plain part, whether
    the mail is that part alone, an alternative beside HTML, or the body among files."""
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes), "a text/plain part holds bytes"
    return payload.decode(part.get_content_charset() or "utf-8")
