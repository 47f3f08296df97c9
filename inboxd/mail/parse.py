"""parse.py: raw RFC 5322 bytes -> ParsedMessage. Pure; never touches the DB or disk.

The MIME tree comes from the standard library's parser (compat32, which keeps every raw
header and tolerates broken structure); all text decoding goes through charsets.py.
Addresses and the sender are read by addresses.py (with flanker's strict grammar).
flanker's MIME decoding was measured wrong on real mail (ISO-2022-JP bodies come back
undecoded; 10 of mikel/mail's 104 fixtures raise "Multipart message without starting
boundary"), so its MIME parser is not used; the stdlib parser is the correct path there.

Hostile input is bounded before and while parsing: a header block, a part count, a
nesting depth and a time budget. A message over any of them raises ParseRejected and
is quarantined by the pipeline with its raw bytes.
"""

from __future__ import annotations

import base64
import mimetypes
import quopri
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import TypeVar

from inboxd.errors import ParseRejected
from inboxd.mail.addresses import (
    SENDER_FALLBACKS,
    Address,
    addresses,
    read_sender,
    unescape_8bit,
)
from inboxd.mail.charsets import clean_header_text, decode_bytes, decode_header
from inboxd.mail.fallback import Fallbacks, plain_header
from inboxd.mail.htmltext import html_to_text

# Limits. Real support mail stays far below each: the largest header block seen in the
# corpora is ~40 KB (long References chains); the most parts ~150 (newsletters with
# inline images); the deepest nesting 6 (forwards of forwards).
MAX_HEADER_BYTES = 512 * 1024
MAX_PARTS = 1000
MAX_DEPTH = 50
MAX_PARSE_SECONDS = 5.0
# Issue 19: 40,000 Cc addresses took 45 s to read and 40,000 References 13 s. A list
# keeps its first MAX_ADDRESSES addresses, References its first id (the thread's root)
# and the last MAX_REFERENCES - 1 (the nearest ancestors); `limits` says what was cut.
MAX_ADDRESSES = 1000
MAX_REFERENCES = 100

INTERNAL_HEADER_PREFIX = "x-inboxd-"

T = TypeVar("T")

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_TYPE_LINE = re.compile(rb"(?im)^content-type[ \t]*:")
_MSGID = re.compile(r"<([^<>\s]+)>")
# Path separators, control characters, and bidi controls that make "invoice\u202egpj.exe"
# display as "invoiceexe.jpg".
_FILENAME_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


@dataclass(frozen=True)
class ParsedAttachment:
    """A non-body part. `filename` is a display name only, never a path to write to."""

    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class ParsedMessage:
    """What the pipeline needs of a message, decoded and sanitised."""

    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    sender: Address | None
    sender_ambiguous: bool
    sender_problem: str | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    date: datetime | None
    text: str
    html: str | None
    attachments: list[ParsedAttachment]
    headers: list[tuple[str, str]]
    stripped_internal_headers: int = 0
    defects: list[str] = field(default_factory=list)
    # Parse-time limits that cut a header ("cc: 40000 addresses, the first 1000 kept").
    limits: list[str] = field(default_factory=list)
    # True when `text` is a rendering of the HTML part (the mail had no text/plain part).
    text_from_html: bool = False
    # Fields read the degraded way after the careful reading failed (fallback.py).
    degraded: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The first decoded header of that name, or None."""
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def header_all(self, name: str) -> list[str]:
        """Every decoded header of that name, in order."""
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw bytes; raise ParseRejected when the message exceeds a limit."""
    deadline = time.monotonic() + MAX_PARSE_SECONDS
    # A UTF-8 byte order mark before the headers (Windows tools that save .eml files,
    # MimeKit's feedback-report fixture) would hide every header from the parser.
    raw = _obsolete_header_colons(raw.removeprefix(b"\xef\xbb\xbf"))
    _check_shape(raw)
    try:
        msg = BytesParser(policy=compat32).parsebytes(raw)
    except RecursionError:
        raise ParseRejected(f"MIME nesting deeper than {MAX_DEPTH} levels") from None
    if not msg.keys():
        raise ParseRejected("no header fields: this is not an email message")
    internal = [k for k in msg if k.lower().startswith(INTERNAL_HEADER_PREFIX)]
    for name in set(internal):
        # Headers inboxd writes itself are never believed when they come from outside.
        del msg[name]
    fb = Fallbacks()
    body = _Body(deadline, fb)
    fb.read("body", "", lambda: body.collect(msg, depth=0), lambda: None)
    hint = body.charset_hint
    # Raw header values: compat32 turns 8-bit ones into Header objects on access.
    raw_headers = [(str(k), str(v)) for k, v in msg.raw_items()]

    def values(name: str) -> list[str]:
        return [v for k, v in raw_headers if k.lower() == name]

    def address_values(name: str) -> list[str]:
        # RFC 6532 allows UTF-8 in addresses; raw 8-bit bytes arrive as surrogate escapes
        # and are decoded before any address parser sees them.
        return [unescape_8bit(v, hint) for v in values(name)]

    def header(name: str, reader: Callable[[], T], degraded: Callable[[], T]) -> T:
        return fb.read(name, next(iter(values(name)), ""), reader, degraded)

    limits: list[str] = []

    def mailboxes(name: str) -> list[Address]:
        found = header(
            name, lambda: addresses(address_values(name), hint, lambda: _within(deadline)), list
        )
        if len(found) > MAX_ADDRESSES:
            limits.append(f"{name}: {len(found)} addresses, the first {MAX_ADDRESSES} kept")
        return found[:MAX_ADDRESSES]

    headers = [(clean_header_text(k), _header_value(fb, k, v, hint)) for k, v in raw_headers]
    sender, ambiguous, problem = header(
        "from",
        lambda: read_sender(
            address_values("from"), hint, [(n, address_values(n)) for n in SENDER_FALLBACKS]
        ),
        lambda: (None, True, "From header could not be read"),
    )
    subject = next(iter(values("subject")), None)
    text = fb.read("text", "", body.text, lambda: "\n\n".join(body.plain))
    references = _msgids(values("references"))
    if len(references) > MAX_REFERENCES:
        limits.append(
            f"references: {len(references)} ids, the first and the last {MAX_REFERENCES - 1} kept"
        )
        references = [references[0], *references[-(MAX_REFERENCES - 1) :]]
    in_reply_to = _msgids(values("in-reply-to"))
    if len(in_reply_to) > MAX_REFERENCES:
        limits.append(f"in-reply-to: {len(in_reply_to)} ids, the last {MAX_REFERENCES} kept")
        in_reply_to = in_reply_to[-MAX_REFERENCES:]
    return ParsedMessage(
        message_id=_first_msgid(next(iter(values("message-id")), None)),
        in_reply_to=in_reply_to,
        references=references,
        subject=header(
            "subject", lambda: decode_header(subject, hint), lambda: plain_header(subject or "")
        ),
        sender=sender,
        sender_ambiguous=ambiguous,
        sender_problem=problem,
        to=mailboxes("to"),
        cc=mailboxes("cc"),
        reply_to=mailboxes("reply-to"),
        date=header("date", lambda: _date(next(iter(values("date")), None)), lambda: None),
        text=text,
        html=body.html(),
        attachments=body.attachments,
        headers=headers,
        stripped_internal_headers=len(internal),
        text_from_html=not body.plain and bool(body.htmls),
        defects=[type(d).__name__ for d in msg.defects],
        degraded=fb.used,
        limits=limits,
    )


def _header_value(fb: Fallbacks, name: str, value: str, hint: str | None) -> str:
    return fb.read(
        name.lower(), value, lambda: decode_header(value, hint), lambda: plain_header(value)
    )


_OBS_COLON = re.compile(rb"(?m)^([!-9;-~]+)[ \t]+:")


def _obsolete_header_colons(raw: bytes) -> bytes:
    """RFC 5322's obsolete syntax allows space before a header's colon ("From  : x");
    the stdlib parser does not, and would read the whole message as body."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BYTES + 4)
    head = raw[: end.start()] if end else raw[:MAX_HEADER_BYTES]
    if not _OBS_COLON.search(head):
        return raw
    return _OBS_COLON.sub(rb"\1:", head) + raw[len(head) :]


def _check_shape(raw: bytes) -> None:
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BYTES + 4)
    if end is None and len(raw) > MAX_HEADER_BYTES:
        raise ParseRejected(f"header block larger than {MAX_HEADER_BYTES} bytes")
    if raw.count(b"\n--") > MAX_PARTS:
        delimiters = _delimiter_lines(raw)
        if delimiters > MAX_PARTS:
            raise ParseRejected(f"more than {MAX_PARTS} MIME parts ({delimiters} boundary lines)")
    if raw.count(b":") <= MAX_PARTS:
        return  # each Content-Type line has a colon: too few to be over the limit
    parts = len(_CONTENT_TYPE_LINE.findall(raw))
    if parts > MAX_PARTS:
        raise ParseRejected(f"more than {MAX_PARTS} MIME parts ({parts} Content-Type headers)")


_BOUNDARY = re.compile(rb'(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))')
_DASH_LINE = re.compile(rb"\n--([^\r\n]{1,202})")


def _delimiter_lines(raw: bytes) -> int:
    """How many lines delimit MIME parts. Issue 19: a million parts without Content-Type
    lines took the stdlib parser 19 s before the part limit could say no; this counts
    them in one pass over the bytes first."""
    boundaries = {m.group(1) or m.group(2) for m in _BOUNDARY.finditer(raw)}
    count = 0
    for found in _DASH_LINE.finditer(raw):
        token = found.group(1).rstrip()
        if token in boundaries or (token.endswith(b"--") and token[:-2] in boundaries):
            count += 1
    return count


def _within(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise ParseRejected(f"parsing took longer than {MAX_PARSE_SECONDS:g} s")


class _Body:
    """Walks the MIME tree once, sorting parts into body text, HTML and attachments."""

    def __init__(self, deadline: float, fb: Fallbacks) -> None:
        self.deadline = deadline
        self.fb = fb
        self.parts = 0
        self.plain: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.charset_hint: str | None = None

    def text(self) -> str:
        if self.plain:
            return _normalise_text("\n\n".join(t for t in self.plain if t.strip()))
        if self.htmls:
            return html_to_text("\n".join(self.htmls))
        return ""

    def html(self) -> str | None:
        return "\n".join(self.htmls) if self.htmls else None

    def collect(self, part: Message, depth: int) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ParseRejected(f"more than {MAX_PARTS} MIME parts")
        if depth > MAX_DEPTH:
            raise ParseRejected(f"MIME nesting deeper than {MAX_DEPTH} levels")
        if time.monotonic() > self.deadline:
            raise ParseRejected(f"parsing took longer than {MAX_PARSE_SECONDS:g} s")
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = self.fb.read("filename", "", lambda: _filename(part), lambda: None)
        if part.is_multipart() and ctype != "message/rfc822":
            children = _children(part)
            if ctype == "multipart/alternative":
                self._alternative(children, depth)
            else:
                for child in children:
                    self.collect(child, depth + 1)
            return
        if ctype == "message/rfc822" or part.is_multipart():
            self._count_nested(part, depth + 1)
            self._attach(part, disposition, filename)
            return
        is_body = disposition != "attachment" and not filename
        if ctype.startswith("multipart/"):
            # A multipart whose boundary never appears: its content is kept as text
            # rather than lost (seen in mikel/mail's illegal-boundary fixtures).
            ctype = "text/plain"
        if is_body and ctype == "text/plain":
            self.plain.append(self._decode(part))
        elif is_body and ctype == "text/html":
            self.htmls.append(self._decode(part))
        else:
            self._attach(part, disposition, filename)

    def _alternative(self, children: list[Message], depth: int) -> None:
        # Take the plain version when the client sent one, else the richest rendering.
        plain = [c for c in children if c.get_content_type() == "text/plain"]
        chosen = plain[:1] or children[-1:]
        for child in chosen:
            self.collect(child, depth + 1)
        for child in children:
            if child not in chosen:
                if child.get_content_type() == "text/html" and not self.htmls:
                    self.htmls.append(self._decode(child))
                elif child.is_multipart() or child.get_content_type() != "text/html":
                    # A related/mixed alternative carries inline images worth keeping.
                    sub = _Body(self.deadline, self.fb)
                    sub.parts = self.parts
                    sub.collect(child, depth + 1)
                    self.parts = sub.parts
                    self.attachments.extend(sub.attachments)
                    if not self.htmls:
                        self.htmls.extend(sub.htmls)

    def _count_nested(self, part: Message, depth: int) -> None:
        stack = [(p, depth) for p in _children(part)]
        while stack:
            child, level = stack.pop()
            self.parts += 1
            if self.parts > MAX_PARTS:
                raise ParseRejected(f"more than {MAX_PARTS} MIME parts")
            if level > MAX_DEPTH:
                raise ParseRejected(f"MIME nesting deeper than {MAX_DEPTH} levels")
            stack.extend((p, level + 1) for p in _children(child))

    def _decode(self, part: Message) -> str:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        charset = part.get_content_charset() or part.get_param("charset")
        if isinstance(charset, tuple):
            charset = charset[2]
        if charset and self.charset_hint is None:
            self.charset_hint = str(charset)
        return self.fb.read(
            "body text",
            charset,
            lambda: decode_bytes(data, str(charset) if charset else None),
            lambda: data.decode("utf-8", "replace"),
        )

    def _attach(self, part: Message, disposition: str, filename: str | None) -> None:
        ctype = part.get_content_type()
        if ctype == "message/rfc822" or part.is_multipart():
            inner = _children(part)
            cte = (_raw_header(part, "content-transfer-encoding") or "").strip().lower()
            if inner and cte in ("base64", "quoted-printable"):
                # A message/rfc822 part sent encoded (RFC 2046 forbids it; Yandex does
                # it): the stdlib takes the encoded text for the message; decode it.
                text = inner[0].as_bytes(policy=compat32)
                data = base64.b64decode(text) if cte == "base64" else quopri.decodestring(text)
                subject = None
            elif inner:
                data = inner[0].as_bytes(policy=compat32)
                subject = _raw_header(inner[0], "subject")
            else:
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                subject = None
            if not filename:
                filename = (decode_header(subject) or "message") + ".eml"
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        cid = _first_msgid(_raw_header(part, "content-id"))
        self.attachments.append(
            ParsedAttachment(
                filename=self.fb.read(
                    "filename",
                    filename,
                    lambda: safe_filename(filename, ctype, self.charset_hint),
                    lambda: safe_filename(plain_header(filename or ""), ctype),
                ),
                content_type=ctype,
                data=data,
                inline=disposition == "inline",
                content_id=cid,
            )
        )


def _raw_header(part: Message, name: str) -> str | None:
    return next((str(v) for k, v in part.raw_items() if k.lower() == name), None)


def _filename(part: Message) -> str | None:
    """The attachment's name, decoded with our charset rules (RFC 2231 or encoded words)."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        raw_value = _raw_header(part, header)
        if raw_value and not raw_value.isascii():
            # Raw 8-bit parameters: the stdlib would replace the bytes with U+FFFD, so
            # the header is decoded first and its parameters read from the result.
            holder = Message()
            holder[header] = unescape_8bit(raw_value, None)
            value = holder.get_param(param, header=header)
        else:
            value = part.get_param(param, header=header)
        if isinstance(value, tuple):
            # RFC 2231: (charset, language, percent-decoded text as latin-1 code points).
            charset, _lang, text = value
            data = str(text).encode("latin-1", "replace")
            return decode_bytes(data, charset or "utf-8")
        if value:
            return str(value)
    return None


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def safe_filename(name: str | None, content_type: str, hint: str | None = None) -> str:
    """A display name with no path, no control characters and a sensible extension."""
    decoded = decode_header(name, hint) if name else ""
    decoded = re.split(r"[/\\]", decoded)[-1]
    decoded = _FILENAME_UNSAFE.sub("_", decoded).strip(" ._")[:200]
    if decoded:
        return decoded
    ext = mimetypes.guess_extension(content_type) or ".bin"
    return f"attachment{ext}"


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _first_msgid(value: str | None) -> str | None:
    ids = _msgids([value] if value else [])
    if ids:
        return ids[0]
    if value and (bare := clean_header_text(value)) and " " not in bare and "@" in bare:
        # Some old mailers omit the angle brackets around their Message-ID.
        return f"<{bare}>"
    return None


def _msgids(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}  # ordered, and a set: a list's `in` made this quadratic
    for value in values:
        for found in _MSGID.findall(str(value)):
            msgid = f"<{found}>"
            if len(msgid) <= 998:
                seen[msgid] = None
    return list(seen)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(clean_header_text(str(value)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
