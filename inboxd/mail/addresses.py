"""addresses.py: who sent a message and to whom, read from its address headers. Pure.

flanker, the design card's mail library, is used here and only here, for what it does
best: a strict RFC 5322 address grammar that says when a sender header is ambiguous.
The stdlib's lenient reader gives the mailboxes; the two must agree on the sender.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from inboxd.mail.charsets import clean_header_text, decode_header, decode_header_bytes

# ply, under flanker's address grammar, prints parser-table warnings to stderr on first
# import; they are noise to an admin reading inboxd's output.
with contextlib.redirect_stderr(io.StringIO()):
    from flanker.addresslib import address as flanker_address
# flanker logs a warning for every address it cannot parse; for hostile senders that is
# the expected answer, which parse.py turns into `sender_problem`, not terminal noise.
for _name in ("flanker", "flanker.addresslib._parser.lexer"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_LOOKS_LIKE_ADDRESS = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+\.[^\s@<>\"'(),;:]+")
_GETADDRESSES_STRICT = "strict" in inspect.signature(getaddresses).parameters


@dataclass(frozen=True)
class Address:
    """One mailbox: `email` is lowercased (mail addresses are matched without case)."""

    email: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


def unescape_8bit(value: str, hint: str | None) -> str:
    """A raw header value with its 8-bit bytes decoded (UTF-8 first, then the hint)."""
    if value.isascii():
        return value
    data = value.encode("utf-8", "surrogateescape")
    return decode_header_bytes(data, hint or "utf-8")


def _getaddresses(values: list[str]) -> list[tuple[str, str]]:
    # Python 3.13 (and patched 3.11/3.12) answer ('', '') for addresses their strict mode
    # finds ambiguous. inboxd flags ambiguity itself (flanker and the display-name check
    # in _sender), with a reason, so every Python version gives the same result.
    if _GETADDRESSES_STRICT:
        return getaddresses(values, strict=False)  # type: ignore[call-arg,unused-ignore]
    return getaddresses(values)


def _valid_addr(email: str) -> bool:
    local, _, domain = email.rpartition("@")
    return bool(local) and bool(domain) and "@" not in local.strip('"') and " " not in email


def addresses(
    values: list[str], hint: str | None, check: Callable[[], None] | None = None
) -> list[Address]:
    """The mailboxes of address headers, each address once (the first mailbox of each
    wins). `check`, called every few hundred addresses, may raise to stop (the parser's
    time budget)."""
    out: dict[str, Address] = {}
    try:
        pairs = _getaddresses([str(v) for v in values])
    except RecursionError:
        # Thousands of nested comments or group colons exhaust the stdlib's recursive
        # address parser (seen in MimeKit's stack-overflow fixture): no usable address.
        return []
    for n, (name, email) in enumerate(pairs):
        if check is not None and n % 256 == 0:
            check()
        email = clean_header_text(email).lower()
        if _valid_addr(email) and email not in out:
            out[email] = Address(email=email, name=decode_header(name, hint) if name else "")
    return list(out.values())


# Where a sender is looked for when From: has no usable mailbox, in order: the address
# the sender asked replies to go to, the mailbox that says it sent it, and the envelope
# sender the delivering server recorded.
SENDER_FALLBACKS = ("reply-to", "sender", "return-path")


def read_sender(
    values: list[str], hint: str | None, fallbacks: Sequence[tuple[str, list[str]]] = ()
) -> tuple[Address | None, bool, str | None]:
    """The From: mailbox, and whether it is ambiguous (then it must never match anyone).

    With no usable From: ("我" <>, none at all, "undisclosed"), the first mailbox of the
    `fallbacks` headers (SENDER_FALLBACKS, in that order) is the sender, so the ticket
    has a requester who can be answered; it is flagged, and ambiguous because no From:
    vouches for it (it never matches a participant, and is never acknowledged).
    """
    best, ambiguous, problem = _from_header(values, hint)
    if best is not None:
        return best, ambiguous, problem
    for name, header_values in fallbacks:
        found = addresses(header_values, hint)
        if found:
            return found[0], True, f"{problem or 'no usable From'}: sender taken from {name}"
    return None, True, f"{problem or 'no usable From'}, and no Reply-To, Sender or Return-Path"


def _from_header(values: list[str], hint: str | None) -> tuple[Address | None, bool, str | None]:
    if not values:
        return None, True, "no From header"
    found = addresses(values, hint)
    best = found[0] if found else None
    if len(values) > 1:
        return best, True, f"{len(values)} From headers"
    raw_value = str(values[0])
    if len(found) != 1:
        return best, True, "From header does not hold exactly one mailbox"
    assert best is not None
    strict, rest = _flanker_parse(raw_value)
    if rest or len(strict) != 1:
        return best, True, "From header does not parse as one RFC 5322 mailbox"
    if strict[0] != best.email:
        # The two parsers disagree about who sent it: the CVE-2023-27043 family.
        return best, True, f"From header is read as both {strict[0]} and {best.email}"
    named = {a.lower() for a in _LOOKS_LIKE_ADDRESS.findall(best.name)}
    if named - {best.email}:
        return best, True, "display name shows a different address"
    return best, False, None


def _flanker_parse(value: str) -> tuple[list[str], list[str]]:
    strict, rest = _flanker_parse_cached(value)
    return list(strict), list(rest)


# flanker's grammar is the slowest step of reading a sender; the same From header comes
# back with every message of a conversation, and the answer depends on the text alone.
@functools.lru_cache(maxsize=4096)
def _flanker_parse_cached(value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # flanker reads encoded words itself; control characters would only confuse it.
    value = re.sub(
        r"[\r\n\t]+", " ", value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    )
    try:
        parsed, unparsed = flanker_address.parse_list(value, strict=True, as_tuple=True)
    except RecursionError:
        return (), (value,)
    return tuple(str(a.address).lower() for a in parsed), tuple(unparsed)
