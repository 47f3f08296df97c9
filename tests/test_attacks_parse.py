"""Headers built to make parsing slow (issue 19, finding 6), kept fixed.

A 430 KB `Cc:` of 40,000 addresses took 45 s to read and 40,000 `References` 13 s (both
quadratic), holding every other message behind them. Now a list keeps its first
`MAX_ADDRESSES` addresses and References its root and nearest ancestors, the cut is
recorded, and the message is ingested like any other.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from inboxd import pipeline
from inboxd.db import session_scope
from inboxd.errors import ParseRejected
from inboxd.mail.parse import MAX_ADDRESSES, MAX_REFERENCES, parse_message
from inboxd.models import Message
from inboxd.runtime import Runtime

HEAD = "From: carol@example.org\r\nTo: support@example.com\r\nSubject: x\r\n"


def test_forty_thousand_cc_addresses_keep_the_first_thousand_and_say_so() -> None:
    crowd = ",".join(f"{n}@b.cd" for n in range(40_000))
    msg = parse_message(f"{HEAD}Cc: {crowd}\r\n\r\nhi\r\n".encode())
    assert [a.email for a in msg.cc] == [f"{n}@b.cd" for n in range(MAX_ADDRESSES)]
    assert msg.limits == [f"cc: 40000 addresses, the first {MAX_ADDRESSES} kept"]


def test_forty_thousand_references_keep_the_root_and_the_nearest_ancestors() -> None:
    chain = " ".join(f"<{n}@r>" for n in range(40_000))
    msg = parse_message(f"{HEAD}References: {chain}\r\n\r\nhi\r\n".encode())
    nearest = [f"<{n}@r>" for n in range(40_000 - MAX_REFERENCES + 1, 40_000)]
    assert msg.references == ["<0@r>", *nearest]
    assert msg.limits and msg.limits[0].startswith("references: 40000 ids")


def test_a_from_line_of_forty_thousand_addresses_is_one_ambiguous_sender() -> None:
    crowd = ",".join(f"{n}@b.cd" for n in range(40_000))
    msg = parse_message(f"From: {crowd}\r\nTo: support@example.com\r\n\r\nhi\r\n".encode())
    assert msg.sender_ambiguous


def test_the_cut_is_recorded_on_the_stored_message(rt: Runtime) -> None:
    crowd = ",".join(f"{n}@b.cd" for n in range(5_000))
    result = pipeline.ingest(rt, f"{HEAD}Cc: {crowd}\r\n\r\nhi\r\n".encode(), "test")
    assert result.result == "created"
    with session_scope(rt.engine) as session:
        stored = session.exec(select(Message)).one()
    assert len(stored.cc) == MAX_ADDRESSES
    assert stored.flags["limits"] == [f"cc: 5000 addresses, the first {MAX_ADDRESSES} kept"]


def test_a_hundred_thousand_parts_without_content_type_lines_are_refused_before_parsing() -> None:
    """A million such parts took the stdlib parser 19 s before the part limit said no."""
    body = b"--b\r\n\r\nx\r\n" * 100_000 + b"--b--\r\n"
    raw = HEAD.encode() + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    with pytest.raises(ParseRejected, match=r"more than 1000 MIME parts \(100001 boundary lines\)"):
        parse_message(raw + body)


def test_lines_that_only_look_like_boundaries_do_not_count() -> None:
    """Signatures ("-- "), dashed rules and quoted boundaries of other mails are text."""
    text = b"--\r\n-- \r\n--------\r\n--other\r\n" * 400
    raw = HEAD.encode() + b"\r\n" + text
    assert parse_message(raw).text.count("--other") == 400
