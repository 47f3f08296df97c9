"""Shortcuts taken for ingest speed give exactly what the slower, general code gives.

The reversed regex that tells whether a line ends with an attribution verb (quotes.py),
the white space the fingerprint collapses (dedupe.py), the part count parse.py skips for
small messages, the header lines the outbound policy writes without the Header folding
algorithm (outbox.py), and the ticket objects the store makes persistent without a
flush (store.py).
"""

from __future__ import annotations

import random
import re
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.policy import compat32
from io import BytesIO
from pathlib import Path

import pytest
from sqlmodel import select

from inboxd.db import session_scope
from inboxd.errors import ParseRejected
from inboxd.mail import parse, quote_patterns, quotes
from inboxd.models import Participant, Ticket
from inboxd.queues import outbox
from inboxd.runtime import Runtime
from inboxd.tickets import store


def _searched(text: str) -> bool:
    """What quotes._ends_with_verb answered before the reversed regex."""
    start = max(0, len(text) - quote_patterns.END_VERB_REACH)
    return quote_patterns.END_VERB.search(text, start) is not None


def test_every_spelled_out_verb_is_one_the_verb_pattern_matches() -> None:
    for _bounded, verb in quote_patterns.END_VERB_WORDS:
        found = quote_patterns.END_VERB.search(verb)
        assert found is not None and found.span() == (0, len(verb)), verb


TAILS = ["", ":", " :", "：", " ", "  ", "\t", ":\n", "\n", " \n", ": ", "\n:", "\n\n", " " * 45]
HEADS = ["", "Alice <a@b.com> ", "On Mon, 23 Nov 2026 10:00, Bob ", "x", "über", "_", "é", "2026 "]


def _variants(verb: str, rng: random.Random) -> list[str]:
    upper = "".join(c.upper() if rng.random() < 0.5 else c for c in verb)
    return [verb, verb.upper(), upper, verb[1:], verb[:-1], verb + "s", verb.replace(" ", "  ")]


def test_the_reversed_verb_regex_answers_as_the_search_did() -> None:
    rng = random.Random(5322)
    lines = []
    for _bounded, verb in quote_patterns.END_VERB_WORDS:
        for word in _variants(verb, rng):
            lines += [head + word + tail for head in HEADS for tail in TAILS]
    for _ in range(3000):  # random neighbours: glued words, stray letters, long tails
        _bounded, verb = rng.choice(quote_patterns.END_VERB_WORDS)
        noise = "".join(rng.choice("ab :\n\t_-éł(a)") for _ in range(rng.randrange(6)))
        lines.append(rng.choice(HEADS) + noise + rng.choice(_variants(verb, rng)) + noise)
    assert sum(_searched(line) for line in lines) > 1000  # the cases include many matches
    for line in lines:
        assert quotes._ends_with_verb(line) == _searched(line), repr(line)


def test_the_reversed_verb_regex_agrees_on_real_mail(corpora: Path) -> None:
    checked = 0
    for path in sorted(corpora.rglob("*.eml"))[:400]:
        text = path.read_bytes().decode("utf-8", "replace")
        for line in text.splitlines():
            assert quotes._ends_with_verb(line) == _searched(line), repr(line)
            checked += 1
    assert checked > 1000


def test_the_fingerprint_collapses_white_space_as_the_regex_did() -> None:
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    others = ["a", "From", "é", "\u200b", "\ufeff", "\x00", "\udce9", "字"]
    rng = random.Random(1)
    for _ in range(2000):
        text = "".join(rng.choice(spaces + others) for _ in range(rng.randrange(12)))
        assert " ".join(text.split()) == re.sub(r"\s+", " ", text).strip(), repr(text)


def test_the_part_count_is_skipped_only_below_the_limit() -> None:
    raw = b"Subject: x\r\n\r\n" + b"Content-Type: text/plain\r\n" * (parse.MAX_PARTS + 1)
    with pytest.raises(ParseRejected):
        parse._check_shape(raw)
    parse._check_shape(b"Subject: x\r\n\r\n" + b"Content-Type: text/plain\r\n" * parse.MAX_PARTS)


def _folded(policy: object, name: str, value: object) -> bytes:
    msg = Message()
    msg[name] = value  # type: ignore[assignment]
    buffer = BytesIO()
    BytesGenerator(buffer, policy=policy).flatten(msg)  # type: ignore[arg-type]
    return buffer.getvalue()


HEADER_VALUES = [
    "Support <support@example.com>",
    "[#12] Question about your data retention policy",
    "<20260302080631.1.20ba8706@example.org>",
    "a" * 60,
    "a" * 70,
    "a b  c   d",
    " leading space",
    "trailing space ",
    "trailing tab\t",
    "two\nlines",
    "",
    "x",
    'text/plain; charset="utf-8"',
    "Support <support+ab3dmq5gzr2q4ydq7q2qjrvrhe7hxyyu@example.com>",
    "Mon, 23 Nov 2026 15:18:02 +0000",
    "<a@b> <c@d> <e@f> <g@h> <i@j> <k@l> <m@n> <o@p> <q@r> <s@t> <u@v>",
    "Ünïcode subject",
    Header("Ünïcode subject", "utf-8"),
    "caf\udce9",  # raw 8-bit byte, as the parser leaves it
]


@pytest.mark.parametrize("name", ["To", "Subject", "X-Auto-Response-Suppress", "References"])
def test_headers_written_as_they_are_match_the_folding_algorithm(name: str) -> None:
    slow = compat32.clone(linesep="\r\n")
    rng = random.Random(2822)
    values: list[object] = list(HEADER_VALUES)
    for _ in range(500):
        size = rng.randrange(90)
        values.append("".join(rng.choice('ab<>@.;, \t"x') for _ in range(size)))
    for value in values:
        assert _folded(outbox._SMTP_32, name, value) == _folded(slow, name, value), value


def test_a_ticket_opened_without_a_flush_is_the_one_the_database_holds(rt: Runtime) -> None:
    with session_scope(rt.engine) as session:
        ticket = store.open_ticket(session, "Printer on fire", "carol@example.org", None)
        assert ticket.id is not None
        assert session.get(Ticket, ticket.id) is ticket  # no second object, no query
        ticket.status = "open"  # a later change is written as an UPDATE
        session.add(ticket)
        ticket_id = ticket.id
    with session_scope(rt.engine) as session:
        stored = session.get(Ticket, ticket_id)
        assert stored is not None
        assert (stored.subject, stored.requester, stored.status) == (
            "Printer on fire",
            "carol@example.org",
            "open",
        )
        people = session.exec(select(Participant).where(Participant.ticket_id == ticket_id))
        assert [(p.email, p.role) for p in people] == [("carol@example.org", "requester")]
