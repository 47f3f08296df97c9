"""peek.py: a look at a message that could not be processed, read defensively.

A quarantined message is one the parser refused, one that hit a bug, or one from a sender
marked as spam: the admin deciding what to do with it needs its sender and subject and
a readable text, without running the parser that may have refused it, and without the
message being able to write escape sequences to their terminal or reorder text with
bidirectional controls. Pure: bytes in, strings out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inboxd.mail.charsets import clean_header_text, decode_bytes, decode_header
from inboxd.mail.parse import parse_message

PEEK_HEADER_BYTES = 64 * 1024  # enough for any real header block; the rest is not read
PEEK_TEXT_CHARS = 20_000
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^([!-9;-~]{1,100}):[ \t]*(.*)$", re.DOTALL)
_CONTINUATION = re.compile(rb"\r?\n(?=[ \t])")  # a folded line goes on after it
# C0/C1 controls but newline and tab, DEL, and the Unicode controls that reorder or hide
# text (bidi embeddings, overrides and isolates; zero-width marks; the BOM).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


@dataclass(frozen=True)
class Peek:
    """What an admin reads of a quarantined message."""

    headers: list[tuple[str, str]]  # decoded, one line each, in order
    sender: str
    subject: str


def peek(raw: bytes) -> Peek:
    """The header fields of `raw` (decoded, each on one line) and its From and Subject."""
    end = _HEADER_END.search(raw, 0, PEEK_HEADER_BYTES)
    block = raw[: end.start() if end else PEEK_HEADER_BYTES]
    headers: list[tuple[str, str]] = []
    for line in re.split(rb"\r?\n", _CONTINUATION.sub(b"", block)):
        match = _FIELD.match(line)
        if match is None:
            continue
        name = match.group(1).decode("ascii")
        value = safe_line(decode_header(match.group(2)))
        headers.append((name, value))
    first = {name.lower(): value for name, value in reversed(headers)}
    return Peek(headers, first.get("from", ""), first.get("subject", ""))


def safe_line(text: str) -> str:
    """One line that cannot move the cursor, colour the terminal or reorder text."""
    return clean_header_text(_UNSAFE.sub("\ufffd", text))


def safe_text(text: str, limit: int = PEEK_TEXT_CHARS) -> str:
    """Text with its lines kept and every unsafe character shown as U+FFFD, cut to
    `limit` characters (saying so)."""
    text = _UNSAFE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
    if len(text) > limit:
        text = text[:limit] + f"\n[… cut at {limit} characters]"
    return text


def text_view(raw: bytes) -> str:
    """The message's text as safe_text: the parser's text part when it can read the
    message, else the raw body as UTF-8 (or its best guess)."""
    try:
        msg = parse_message(raw)
        body = msg.text or msg.html or ""
    except Exception:  # ParseRejected, or the bug that quarantined it: show the bytes
        end = _HEADER_END.search(raw, 0, PEEK_HEADER_BYTES)
        body = decode_bytes(raw[end.end() :] if end else b"", None)
    return safe_text(body)
