"""Hostile input: what parse_message promises about mail written to hurt us.

- Decoded header text is one clean line: never CR, LF or NUL, however it was encoded.
- A sender that could be read as two different people is flagged ambiguous, so it can
  never match an agent (CVE-2023-27043 and its relatives).
- Messages over the parser's limits are rejected quickly with a readable reason.
- Attachment filenames are display names only: no path, no control characters.

Every message here is built in the test from bytes; nothing large is committed.
"""

from __future__ import annotations

import base64
import time
import unicodedata

import pytest

from inboxd.errors import InboxdError, ParseRejected
from inboxd.mail.parse import parse_message

# A rejection must come fast: the worker is single-threaded, and a slow "no" is a
# denial of service just like a slow "yes".
REJECT_WITHIN_SECONDS = 2.0


def message(*headers: bytes | str, body: bytes | str = b"Hello.\r\n") -> bytes:
    """A message from header lines and a body, joined with CRLF exactly as given."""
    lines = [h.encode("utf-8", "surrogateescape") if isinstance(h, str) else h for h in headers]
    if isinstance(body, str):
        body = body.encode()
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def plain(*extra: bytes | str, sender: bytes | str = "Alice <alice@example.com>") -> bytes:
    """A one-part message with the usual headers, plus `extra` header lines."""
    return message(
        b"From: " + (sender.encode() if isinstance(sender, str) else sender),
        "To: support@example.com",
        "Message-ID: <hostile@example.com>",
        *extra,
    )


# --- header values are one clean line ---------------------------------------------------

CRLF_NUL = ("\r", "\n", "\x00")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


HOSTILE_HEADERS = [
    pytest.param(
        "Subject: =?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=", id="q-subject-crlf-injection"
    ),
    pytest.param("Subject: =?utf-8?b?" + _b64(b"a\r\nb\x00c") + "?=", id="b-subject-crlf-nul"),
    pytest.param("Subject: =?utf-8?q?a=00b?=", id="q-subject-nul"),
    pytest.param("Subject: =?utf-8?q?100%00_off=0D?=", id="q-subject-percent-nul-and-cr"),
    pytest.param(b"Subject: raw\x00nul", id="raw-nul-in-subject"),
    pytest.param(b"Subject: bare\rcr", id="bare-cr-in-subject"),
    pytest.param(b"Subject: bare\nlf-then-no-indent", id="bare-lf-continuation"),
    pytest.param(
        "Subject: =?utf-16?b?" + _b64("a\r\n\x00b".encode("utf-16")) + "?=", id="utf-16-controls"
    ),
    pytest.param(
        "Subject: =?iso-2022-jp?b?" + _b64(b"a\x1b$B\r\n\x1b(Bb") + "?=", id="iso-2022-jp-crlf"
    ),
    pytest.param(
        'Cc: "=?utf-8?q?Bob=0D=0AX-Injected:_1?=" <bob@example.com>', id="crlf-in-cc-name"
    ),
    pytest.param(b"Cc: Bob\x00 <bob@example.com>", id="raw-nul-in-cc-name"),
    pytest.param("X-Custom: =?utf-8?q?a=0D=0Ab=00c?=", id="crlf-nul-in-any-header"),
    pytest.param(b"X-Custom: raw \x00\x01\x7f controls", id="raw-controls-in-any-header"),
    pytest.param(
        "Content-Disposition: inline; filename*=utf-8''a%00b%0D%0A.txt", id="rfc2231-percent-nul"
    ),
]


@pytest.mark.parametrize("header", HOSTILE_HEADERS)
def test_decoded_headers_never_contain_cr_lf_or_nul(header):
    msg = parse_message(plain(header))
    values = [msg.subject, *(a.name for a in msg.to + msg.cc)]
    values += [text for pair in msg.headers for text in pair]
    for value in values:
        assert not any(c in value for c in CRLF_NUL), repr(value)


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param(b"=?utf-8?q?Eve=0D=0ABcc:_x@evil.com?= <eve@example.com>", id="q-crlf"),
        pytest.param(
            b"=?utf-8?b?" + _b64(b"Eve\x00").encode() + b"?= <eve@example.com>", id="b-nul"
        ),
        pytest.param(b"Eve\x00 <eve@example.com>", id="raw-nul"),
        pytest.param(b'"Eve\\\r\n Evil" <eve@example.com>', id="escaped-crlf-in-quotes"),
    ],
)
def test_sender_name_never_contains_cr_lf_or_nul(sender):
    msg = parse_message(plain(sender=sender))
    assert msg.sender is not None
    assert not any(c in msg.sender.name for c in CRLF_NUL), repr(msg.sender.name)
    assert not any(c in msg.sender.email for c in CRLF_NUL), repr(msg.sender.email)


# --- ambiguous senders ------------------------------------------------------------------

AMBIGUOUS_FROM = [
    pytest.param([b"alice@example.org", b"bob@evil.com"], id="two-from-headers"),
    pytest.param([b'"a@x.com" <b@y.com>'], id="display-name-is-another-address"),
    pytest.param([b"a@b@c.com"], id="two-at-signs"),
    # The CVE-2023-27043 family: parsers disagree about which address this is.
    pytest.param([b"alice@example.org)<bob@evil.com>"], id="cve-paren-then-angle"),
    pytest.param([b'"alice@example.org" <bob@evil.com>'], id="cve-quoted-address-name"),
    pytest.param([b"alice@example.org, bob@evil.com"], id="cve-two-mailboxes"),
    pytest.param([b"alice@example.org <bob@evil.com>"], id="cve-bare-address-name"),
    pytest.param([b'"alice@example.org"@evil.com'], id="quoted-local-part-address"),
    pytest.param([b"bob@evil.com (alice@example.org)"], id="address-in-comment"),
    pytest.param(
        [b"=?utf-8?q?alice=40example=2Eorg?= <bob@evil.com>"], id="q-encoded-address-name"
    ),
    pytest.param(
        [b"=?utf-8?b?" + _b64(b"alice@example.org").encode() + b"?= <bob@evil.com>"],
        id="b-encoded-address-name",
    ),
    pytest.param([b"Friends: alice@example.org, bob@evil.com;"], id="group-of-two"),
    pytest.param([b"Friends: alice@example.org;"], id="group-of-one"),
    pytest.param([b"Undisclosed recipients:;"], id="empty-group"),
    pytest.param([b""], id="empty-from"),
    pytest.param([b"<>"], id="null-address"),
    pytest.param([b"Alice"], id="name-without-address"),
    pytest.param([], id="no-from-header"),
]


def _with_from(values: list[bytes]) -> bytes:
    return message(
        *[b"From: " + value for value in values],
        "To: support@example.com",
        "Subject: hello",
        "Message-ID: <ambiguous@example.com>",
    )


@pytest.mark.parametrize("values", AMBIGUOUS_FROM)
def test_ambiguous_sender_is_flagged(values):
    assert parse_message(_with_from(values)).sender_ambiguous is True


CLEAR_FROM = [
    pytest.param(b"Alice <alice@example.com>", "alice@example.com", "Alice", id="name-addr"),
    pytest.param(
        b'"Alice Smith" <alice@example.com>', "alice@example.com", "Alice Smith", id="quoted-name"
    ),
    pytest.param(
        b'"alice@example.com" <alice@example.com>',
        "alice@example.com",
        "alice@example.com",
        id="name-is-the-same-address",
    ),
    pytest.param(b"alice@example.com", "alice@example.com", "", id="bare-address"),
    pytest.param(b"<alice@example.com>", "alice@example.com", "", id="angle-address"),
    pytest.param(
        b'"Smith, Alice" <alice@example.com>', "alice@example.com", "Smith, Alice", id="comma-in-q"
    ),
    pytest.param(
        b"=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.com>",
        "juergen@example.com",
        "Jürgen Müller",
        id="encoded-name",
    ),
    pytest.param(b"Alice <Alice@Example.COM>", "alice@example.com", "Alice", id="mixed-case"),
    pytest.param(
        b"Alice\r\n <alice@example.com>", "alice@example.com", "Alice", id="folded-before-address"
    ),
]


@pytest.mark.parametrize(("value", "email", "name"), CLEAR_FROM)
def test_clear_sender_is_not_ambiguous(value, email, name):
    msg = parse_message(_with_from([value]))
    assert msg.sender_ambiguous is False
    assert msg.sender is not None
    assert (msg.sender.email, msg.sender.name) == (email, name)


# --- address headers that recurse -----------------------------------------------------

# Every ":" opens an RFC 5322 group and every "(" a comment; the stdlib address parser
# recurses on each. MimeKit's stack-overflow.txt is a real To: header built this way
# (times like 10:08:28 inside encoded words, repeated a few thousand times).
RECURSIVE_ADDRESSES = [
    pytest.param(b"To: " + b"g:" * 2000 + b"bob@example.com", id="to-2000-group-colons"),
    pytest.param(b"Cc: " + b"(" * 5000 + b"bob@example.com", id="cc-5000-open-comments"),
    pytest.param(
        b"To: " + b"=?utf-8?Q?date=3E10:08:28=3C/pr?=\r\n\t" * 2000 + b"bob@example.com",
        id="to-encoded-words-with-colons",
    ),
]


@pytest.mark.parametrize("header", RECURSIVE_ADDRESSES)
def test_recursive_address_header_parses_or_is_rejected(header):
    raw = message("From: alice@example.com", header, "Subject: x")
    started = time.monotonic()
    try:
        msg = parse_message(raw)
    except ParseRejected as rejected:
        assert rejected.reason
    else:
        assert msg.sender is not None and msg.sender.email == "alice@example.com"
    assert time.monotonic() - started < REJECT_WITHIN_SECONDS


def test_recursive_from_header_is_ambiguous_or_rejected():
    raw = message(b"From: " + b"g:" * 2000 + b"alice@example.com", "Subject: x")
    try:
        msg = parse_message(raw)
    except ParseRejected as rejected:
        assert rejected.reason
    else:
        assert msg.sender_ambiguous is True


@pytest.mark.corpus
def test_mimekit_stack_overflow_message_parses_or_is_rejected(corpora):
    raw = (corpora / "mimekit/UnitTests/TestData/messages/stack-overflow.txt").read_bytes()
    try:
        msg = parse_message(raw)
    except ParseRejected as rejected:
        assert rejected.reason
    else:
        assert msg.sender is not None and msg.sender.email == "test@test.com"


# --- parse limits -----------------------------------------------------------------------


def nested_multipart(depth: int) -> bytes:
    """`depth` multiparts, each the only child of the one above, with text at the bottom."""
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return (
        b"From: alice@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
        + head
        + b"Content-Type: text/plain\r\n\r\nbottom\r\n"
        + tail
    )


def nested_forwards(depth: int) -> bytes:
    """`depth` forwarded messages, each an attached message/rfc822 of the one above."""
    inner = b"From: carol@example.com\r\nSubject: level %d\r\n\r\nthe original\r\n" % depth
    for level in reversed(range(depth)):
        inner = (
            b"From: alice@example.com\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=f%d\r\n\r\n"
            b"--f%d\r\nContent-Type: text/plain\r\n\r\nsee below (level %d)\r\n"
            b"--f%d\r\nContent-Type: message/rfc822\r\n\r\n"
            % (level, level, level, level, level)
            + inner
            + b"\r\n--f%d--\r\n" % level
        )
    return inner


def many_parts(count: int) -> bytes:
    """One multipart/mixed with a text body and `count - 1` small attachments."""
    parts = [b"--m\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"]
    parts += [
        b"--m\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="part%d.bin"\r\n\r\npart %d\r\n' % (i, i)
        for i in range(1, count)
    ]
    return (
        b"From: alice@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=m\r\n\r\n" + b"".join(parts) + b"--m--\r\n"
    )


def huge_header_value(size: int) -> bytes:
    """One header folded over many lines, `size` bytes in all."""
    line = b" " + b"a" * 70 + b"\r\n"
    return (
        b"From: alice@example.com\r\nSubject: big\r\nX-Filler:"
        + line * (size // len(line))
        + b"\r\nbody\r\n"
    )


def many_header_lines(size: int) -> bytes:
    """Many short header lines, `size` bytes in all (a header block, not one header)."""
    line = b"Received: from relay.example.com by mx.example.com; x\r\n"
    return b"From: alice@example.com\r\n" + line * (size // len(line)) + b"\r\nbody\r\n"


OVER_LIMITS = [
    # A thousand levels are also a thousand parts: either limit may be the one named.
    pytest.param(
        lambda: nested_multipart(1000), ("nest", "deep", "part"), id="1000-level-multipart"
    ),
    pytest.param(lambda: nested_forwards(1000), ("nest", "deep", "part"), id="1000-level-forwards"),
    # Deep but with few parts: only the depth limit can catch these.
    pytest.param(lambda: nested_multipart(200), ("nest", "deep"), id="200-level-multipart"),
    pytest.param(lambda: nested_forwards(200), ("nest", "deep"), id="200-level-forwards"),
    pytest.param(lambda: many_parts(10_000), ("part",), id="10000-parts"),
    pytest.param(lambda: huge_header_value(1_000_000), ("header",), id="1mb-header-value"),
    pytest.param(lambda: many_header_lines(1_000_000), ("header",), id="1mb-header-block"),
]


@pytest.mark.parametrize(("build", "words"), OVER_LIMITS)
def test_over_limit_is_rejected_quickly_with_a_reason(build, words):
    raw = build()
    started = time.monotonic()
    with pytest.raises(ParseRejected) as caught:
        parse_message(raw)
    elapsed = time.monotonic() - started
    assert elapsed < REJECT_WITHIN_SECONDS, f"took {elapsed:.2f} s to reject"
    assert isinstance(caught.value, InboxdError)
    reason = caught.value.reason
    assert any(word in reason.lower() for word in words), reason
    assert reason.isprintable() and len(reason) < 200, reason


def test_five_forwards_deep_parse_fine():
    started = time.monotonic()
    msg = parse_message(nested_forwards(5))
    assert time.monotonic() - started < REJECT_WITHIN_SECONDS
    assert msg.subject == "level 0"
    assert msg.text.strip() == "see below (level 0)"
    assert len(msg.attachments) == 1
    assert b"the original" in msg.attachments[0].data


def test_five_multiparts_deep_parse_fine():
    assert parse_message(nested_multipart(5)).text.strip() == "bottom"


def test_fifty_parts_parse_fine():
    msg = parse_message(many_parts(50))
    assert msg.text.strip() == "the body"
    assert [a.filename for a in msg.attachments] == [f"part{i}.bin" for i in range(1, 50)]
    assert msg.attachments[-1].data == b"part 49"


# --- attachment display names -----------------------------------------------------------

BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _attachment(disposition: bytes, content_type: bytes = b"application/octet-stream") -> bytes:
    return message(
        "From: alice@example.com",
        "Subject: files",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=z",
        body=(
            b"--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--z\r\nContent-Type: " + content_type + b"\r\n" + disposition + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nUEFZTE9BRA==\r\n--z--\r\n"
        ),
    )


FILENAMES = [
    pytest.param(
        b'Content-Disposition: attachment; filename="../../etc/passwd"', "passwd", id="dot-dot-path"
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="/etc/passwd"', "passwd", id="absolute-path"
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="C:\\\\x\\\\y.exe"',
        "y.exe",
        id="windows-path-escaped",
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="C:\\x\\y.exe"', "y.exe", id="windows-path-raw"
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="..\\..\\boot.ini"',
        "boot.ini",
        id="windows-dot-dot",
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="evil\x00.txt.exe"', "evil", id="raw-nul"
    ),
    pytest.param(
        b"Content-Disposition: attachment; filename*=utf-8''evil%00.txt", "evil", id="rfc2231-nul"
    ),
    pytest.param(
        b"Content-Disposition: attachment; filename*=utf-8''a%0D%0Ab.txt",
        "b.txt",
        id="rfc2231-crlf",
    ),
    pytest.param(
        b"Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%2Fpasswd",
        "passwd",
        id="rfc2231-encoded-slashes",
    ),
    pytest.param(
        b"Content-Disposition: attachment; filename*=utf-8''%E6%96%87%E4%BB%B6.txt",
        "文件.txt",
        id="rfc2231-utf-8",
    ),
    pytest.param(
        b"Content-Disposition: attachment;\r\n filename*0*=utf-8''%E6%96%87;\r\n"
        b" filename*1*=%E4%BB%B6.txt",
        "文件.txt",
        id="rfc2231-continuation",
    ),
    pytest.param(
        b"Content-Disposition: attachment; filename*=gb2312''%D6%EC%E9%46%BB%F9.doc",
        "朱镕基.doc",
        id="rfc2231-gbk-under-gb2312",
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="=?utf-8?b?5paH5Lu2LnR4dA==?="',
        "文件.txt",
        id="encoded-word-in-quotes",
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="=?utf-8?q?a=0D=0Ab.txt?="',
        "b.txt",
        id="encoded-word-crlf",
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="=?utf-8?q?..=2F..=2Fx.sh?="',
        "x.sh",
        id="encoded-word-slashes",
    ),
    pytest.param(
        'Content-Disposition: attachment; filename="invoice\u202egpj.exe"'.encode(),
        "invoice",
        id="right-to-left-override",
    ),
    pytest.param(
        b'Content-Disposition: attachment; filename="tab\tand\x7fdel\x1b.txt"',
        "tab",
        id="other-controls",
    ),
    pytest.param(b'Content-Disposition: attachment; filename=".."', "", id="only-dots"),
    pytest.param(b'Content-Disposition: attachment; filename="   "', "", id="only-spaces"),
    pytest.param(
        b'Content-Disposition: attachment; filename="' + b"a" * 10_000 + b'.txt"',
        "aaa",
        id="ten-thousand-characters",
    ),
    pytest.param(b"Content-Disposition: attachment", "", id="no-filename"),
]


@pytest.mark.parametrize(("disposition", "fragment"), FILENAMES)
def test_attachment_filename_is_a_safe_display_name(disposition, fragment):
    msg = parse_message(_attachment(disposition))
    assert len(msg.attachments) == 1
    attachment = msg.attachments[0]
    name = attachment.filename
    assert name and name == name.strip(" .") and name not in {".", ".."}, repr(name)
    assert "/" not in name and "\\" not in name, repr(name)
    assert not any(unicodedata.category(c) == "Cc" for c in name), repr(name)
    assert not BIDI_CONTROLS & set(name), repr(name)
    assert len(name) <= 255, len(name)
    assert fragment in name, repr(name)
    # The name is cleaned, never the content.
    assert attachment.data == b"PAYLOAD"


def test_content_type_name_is_cleaned_too():
    raw = _attachment(
        b"Content-Disposition: attachment",
        content_type=b'application/octet-stream; name="../../root/.ssh/authorized_keys"',
    )
    name = parse_message(raw).attachments[0].filename
    assert "/" not in name and "authorized_keys" in name, repr(name)


# --- the real corpora -------------------------------------------------------------------

# The corpora that hold whole messages (shared/corpora/MANIFEST.md: "Parsing").
MESSAGE_CORPORA = (
    "mikel-mail/spec/fixtures/emails",
    "imap-tools/tests/messages",
    "enmime/testdata",
    "flanker/tests/fixtures/messages",
    "spamscope-mail-parser/tests/mails",
    "php-mime-mail-parser/tests/mails",
    "mimekit/UnitTests/TestData/messages",
    "cpython-test-email",
    "django-helpdesk",
)


@pytest.mark.corpus
def test_real_mail_never_yields_header_text_with_cr_lf_or_nul(corpora):
    """Every real message parses to clean header text, or is rejected with a reason."""
    bad = []
    for folder in MESSAGE_CORPORA:
        for path in sorted((corpora / folder).rglob("*")):
            if not path.is_file() or path.suffix in {".json", ".md", ".png", ".gif", ".wav"}:
                continue
            try:
                msg = parse_message(path.read_bytes())
            except ParseRejected:
                continue
            except Exception as error:  # list every bad message, not just the first
                bad.append(f"{path.relative_to(corpora)}: raised {error!r}"[:200])
                continue
            values = [msg.subject, *(text for pair in msg.headers for text in pair)]
            values += [a.name for a in msg.to + msg.cc]
            values += [a.filename for a in msg.attachments]
            if any(c in value for value in values for c in CRLF_NUL):
                bad.append(f"{path.relative_to(corpora)}: control character in a header")
    assert not bad, "\n".join(bad)
