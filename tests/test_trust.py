"""Trust (SPEC §6 b): only the topmost Authentication-Results, from our MX, can vouch for an
agent's From:, and only with DMARC pass or aligned DKIM pass. The spoofing matrix of issue 4
lives here at the level of the decision; the end-to-end version runs nothing and leaks
nothing."""

from __future__ import annotations

import random

import pytest

from inboxd.agents.trust import AuthVerdict, authentication_verdict, organizational_domain

MX = "mx.example.com"
TRUSTED = (MX,)


def verdict(
    *results: str, from_domain: str = "example.com", trusted: tuple[str, ...] = TRUSTED
) -> AuthVerdict:
    """The verdict on a message whose Authentication-Results are `results`, topmost first."""
    headers = [("Received", "from mx.example.com by inboxd")]
    headers += [("Authentication-Results", r) for r in results]
    headers += [("From", f"Alice <alice@{from_domain}>"), ("Subject", "Re: [#12] help")]
    return authentication_verdict(headers, trusted, from_domain)


# Each row: a real-world shape of the topmost Authentication-Results and why it passes.
PASSES = [
    pytest.param(f"{MX}; dmarc=pass header.from=example.com", id="dmarc-pass"),
    pytest.param(f"{MX}; dmarc=pass", id="dmarc-pass-without-header.from"),
    pytest.param(f"{MX}; dkim=pass header.d=example.com", id="dkim-pass-same-domain"),
    pytest.param(f"{MX}; dkim=pass header.i=@example.com", id="dkim-pass-header.i"),
    pytest.param(f"{MX}; dkim=pass header.i=alice@example.com", id="dkim-pass-header.i-addr"),
    pytest.param(f"{MX}; dkim=pass header.d=mail.example.com", id="dkim-pass-aligned-subdomain"),
    pytest.param(
        f"{MX}; dkim=fail header.d=example.com; dkim=pass header.d=example.com",
        id="second-dkim-signature-passes",
    ),
    pytest.param(
        f"{MX}; dkim=pass header.d=esp.example.net; dkim=pass header.d=example.com",
        id="any-aligned-dkim-is-enough",
    ),
    pytest.param(
        f"{MX}; spf=fail smtp.mailfrom=other.org; dmarc=pass header.from=example.com",
        id="dmarc-pass-despite-spf-fail",
    ),
    pytest.param(
        f"{MX} 1; dmarc=pass (p=reject sp=reject dis=none) header.from=example.com",
        id="version-and-comment",
    ),
    pytest.param(
        f"{MX}; dkim=pass (2048-bit key; secure) header.d=example.com header.s=s1 "
        'header.b="ab;c=d"',
        id="semicolon-in-comment-and-quotes",
    ),
    pytest.param(
        f'{MX}; dmarc=pass (a (nested (deep)) comment) header.from="example.com"',
        id="nested-comment-quoted-value",
    ),
    pytest.param(f'"{MX}"; dmarc=pass header.from=example.com', id="quoted-authserv-id"),
    pytest.param("MX.Example.COM; DMARC=Pass Header.From=EXAMPLE.com", id="case-insensitive"),
    pytest.param(f"{MX};dmarc=pass header.from=example.com.", id="no-space-trailing-dot"),
    pytest.param(f'{MX}; dkim=pass reason="good sig" header.d=example.com', id="reason-quoted"),
    pytest.param(f"{MX}; dkim/1=pass header.d=example.com", id="method-version"),
    pytest.param(f'{MX}; dkim=pass header.i="alice smith"@example.com', id="quoted-local-part"),
    pytest.param(
        f"{MX}; arc=pass; dmarc=pass policy.dmarc=reject header.from=example.com",
        id="other-methods-ignored",
    ),
    pytest.param(f"{MX};\r\n\tdkim=pass header.d=example.com", id="folding-whitespace-left-in"),
]


@pytest.mark.parametrize("result", PASSES)
def test_authenticated_agent_mail_passes(result: str) -> None:
    outcome = verdict(result)
    assert outcome.passed, outcome.reason
    assert MX in outcome.reason


# The spoofing matrix: each must fail, and the reason says why in words an agent can act on.
FAILS = [
    pytest.param(f"{MX}; spf=pass smtp.mailfrom=mailer.example.net", "spf=pass", id="spf-only"),
    pytest.param(
        f"{MX}; spf=pass smtp.mailfrom=example.com", "spf=pass alone", id="spf-aligned-only"
    ),
    pytest.param(
        f"{MX}; dkim=pass header.d=mailer.example.net; spf=pass smtp.mailfrom=example.net",
        "dkim=pass for mailer.example.net is not aligned with example.com",
        id="dkim-third-party",
    ),
    pytest.param(f"{MX}; dmarc=fail header.from=example.com", "dmarc=fail", id="dmarc-fail"),
    pytest.param(
        f"{MX}; dmarc=fail header.from=example.com; dkim=fail header.d=example.com",
        "dkim=fail",
        id="dmarc-and-dkim-fail",
    ),
    pytest.param(
        f"{MX}; dmarc=pass header.from=evil.example.org",
        "dmarc=pass for evil.example.org is not about example.com",
        id="dmarc-pass-other-domain",
    ),
    pytest.param(
        f'{MX}; dmarc=pass header.from="not a domain"',
        "dmarc=pass for not a domain is not about example.com",
        id="dmarc-pass-unreadable-header.from",
    ),
    pytest.param(
        f"{MX}; dkim=pass header.d=example.com.evil.net",
        "not aligned",
        id="dkim-domain-suffix-trick",
    ),
    pytest.param(f"{MX}; dkim=pass header.d=notexample.com", "not aligned", id="dkim-lookalike"),
    pytest.param(f"{MX}; dkim=pass header.d=com", "for com is not aligned", id="dkim-bare-tld"),
    pytest.param(
        f"{MX}; dkim=pass header.d=co.uk", "for co.uk is not aligned", id="dkim-public-suffix"
    ),
    pytest.param(f"{MX}; dkim=pass", "without a signing domain", id="dkim-pass-no-domain"),
    pytest.param(f"{MX}; none", "no DMARC or DKIM result", id="none"),
    pytest.param(f"{MX}", "no DMARC or DKIM result", id="no-results"),
    pytest.param(f"{MX}; dmarc=temperror", "dmarc=temperror", id="temperror"),
    pytest.param(f"{MX}; dmarc=permerror", "dmarc=permerror", id="permerror"),
    pytest.param(f"{MX}; dkim=neutral header.d=example.com", "dkim=neutral", id="neutral"),
    pytest.param(f"{MX}; dmarc=none header.from=example.com", "dmarc=none", id="dmarc-none"),
    pytest.param(
        f"{MX}; dmarc=bestguesspass header.from=example.com",
        "dmarc=bestguesspass",
        id="not-quite-pass",
    ),
    pytest.param(
        f"{MX}; dmarc=fail (dmarc=pass) header.from=example.com",
        "dmarc=fail",
        id="pass-only-in-comment",
    ),
    pytest.param(
        f'{MX}; dkim=fail reason="dkim=pass header.d=example.com"',
        "dkim=fail",
        id="pass-only-in-quoted-reason",
    ),
    pytest.param(f"{MX} 2; dmarc=pass", "unknown version 2", id="unknown-version"),
    pytest.param(f"{MX}; dkim/2=pass header.d=example.com", "no DMARC", id="dkim-version-2"),
    pytest.param(f"{MX}; dmarc=pass header.from", "no DMARC", id="malformed-property"),
    pytest.param(
        "mx.evil.example; dmarc=pass header.from=example.com",
        "no Authentication-Results from a trusted host (the topmost is from mx.evil.example)",
        id="topmost-from-untrusted-host",
    ),
    pytest.param(
        f"{MX}.evil.net; dmarc=pass header.from=example.com",
        "the topmost is from mx.example.com.evil.net",
        id="authserv-id-suffix-trick",
    ),
    pytest.param(
        f"{MX} extra; dmarc=pass", "the topmost is unreadable", id="junk-after-authserv-id"
    ),
    pytest.param(
        f"{MX}; dmarc=pass; dkim=fail (cut off", "the topmost is unreadable", id="open-comment"
    ),
    pytest.param(f'{MX}; dmarc=pass; dmarc=fail reason="cut off', "unreadable", id="open-quote"),
]


@pytest.mark.parametrize(("result", "reason"), FAILS)
def test_spoofing_matrix_fails(result: str, reason: str) -> None:
    outcome = verdict(result)
    assert not outcome.passed
    assert reason in outcome.reason


def test_no_authentication_results_fails() -> None:
    assert verdict() == AuthVerdict(False, "no Authentication-Results from a trusted host")


def test_forged_copy_below_the_real_header_is_ignored() -> None:
    # The attacker's own header claims our authserv-id; our MX's real one sits above it.
    outcome = verdict(f"{MX}; dmarc=fail header.from=example.com", f"{MX}; dmarc=pass")
    assert outcome == AuthVerdict(False, "dmarc=fail")


def test_forged_copy_below_a_real_pass_does_not_spoil_it() -> None:
    outcome = verdict(f"{MX}; dmarc=pass header.from=example.com", f"{MX}; dmarc=fail")
    assert outcome == AuthVerdict(True, "dmarc=pass for example.com by mx.example.com")


def test_trusted_header_below_an_untrusted_topmost_is_not_read() -> None:
    outcome = verdict("relay.elsewhere.net; none", f"{MX}; dmarc=pass")
    assert not outcome.passed
    assert "the topmost is from relay.elsewhere.net" in outcome.reason


def test_arc_authentication_results_is_a_different_header() -> None:
    headers = [
        ("ARC-Authentication-Results", f"i=1; {MX}; dmarc=pass"),
        ("Authentication-Results", f"{MX}; dmarc=fail"),
    ]
    assert not authentication_verdict(headers, TRUSTED, "example.com").passed


def test_header_name_is_case_insensitive() -> None:
    headers = [("authentication-RESULTS", f"{MX}; dmarc=pass")]
    assert authentication_verdict(headers, TRUSTED, "example.com").passed


def test_empty_trusted_list_always_fails() -> None:
    outcome = verdict(f"{MX}; dmarc=pass header.from=example.com", trusted=())
    assert outcome == AuthVerdict(False, "no trusted_authserv_ids configured")
    assert not verdict(f"{MX}; dmarc=pass", trusted=("", "  ")).passed


def test_trusted_ids_are_matched_case_insensitively() -> None:
    assert verdict(f"{MX}; dmarc=pass", trusted=("other.host", " MX.EXAMPLE.COM ")).passed


@pytest.mark.parametrize(
    ("signer", "from_domain", "passed"),
    [
        ("example.com", "example.com", True),
        ("mail.example.com", "example.com", True),  # relaxed: signer below From
        ("example.com", "support.example.com", True),  # relaxed: From below signer
        ("a.b.example.com", "example.com", True),
        ("mail.example.com", "support.example.com", False),  # siblings: stricter than 7489
        ("example.co.uk", "example.co.uk", True),
        ("mail.example.co.uk", "example.co.uk", True),
        ("co.uk", "example.co.uk", False),  # a public suffix signs for nobody
        ("other.co.uk", "example.co.uk", False),
        ("example.com.au", "help.example.com.au", True),
        ("com.au", "example.com.au", False),
        ("mail.example.co.jp", "example.co.jp", True),
        ("example.net", "example.com", False),
        ("xn--bcher-kva.example", "bücher.example", True),  # IDNA forms compare equal
    ],
)
def test_dkim_relaxed_alignment(signer: str, from_domain: str, passed: bool) -> None:
    outcome = verdict(f"{MX}; dkim=pass header.d={signer}", from_domain=from_domain)
    assert outcome.passed is passed, outcome.reason


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("Mail.Example.CO.UK.", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("co.uk", None),
        ("www.example.com.au", "example.com.au"),
        ("deep.example.ne.jp", "example.ne.jp"),
        ("co.example.com", "example.com"),  # the registry-label rule is for ccTLDs only
        ("com", None),
        ("192.0.2.1", None),
        ("", None),
        ("exa mple.com", None),
    ],
)
def test_organizational_domain_approximation(domain: str, org: str | None) -> None:
    assert organizational_domain(domain) == org


@pytest.mark.parametrize("from_domain", ["", "   ", "localhost", "[192.0.2.1]", "a..b"])
def test_unusable_from_domain_fails(from_domain: str) -> None:
    outcome = verdict(f"{MX}; dmarc=pass", from_domain=from_domain)
    assert not outcome.passed
    assert "no usable From domain" in outcome.reason


def test_pass_reasons_name_domain_and_host() -> None:
    assert verdict(f"{MX}; dkim=pass header.d=mail.example.com").reason == (
        "dkim=pass for mail.example.com by mx.example.com (aligned with example.com)"
    )
    assert verdict(f"{MX}; dkim=pass header.d=example.com").reason == (
        "dkim=pass for example.com by mx.example.com"
    )


def test_reasons_quote_message_text_safely() -> None:
    outcome = verdict(f'{MX}; dmarc=pass header.from="evil\x1b[31m.example\n{"x" * 500}"')
    assert not outcome.passed
    assert outcome.reason.isprintable()
    assert len(outcome.reason) < 200


JUNK = [
    "",
    ";",
    ";;;",
    "=",
    "(",
    ")",
    '"',
    "\\",
    f"{MX}; (",
    f"{MX}; dmarc=pass (unterminated",
    f'{MX}; dmarc="unterminated',
    f"{MX}; dmarc==pass",
    f"{MX}; =pass",
    f"{MX}; dmarc=",
    f"{MX}; dkim=pass header.d=" + "a." * 200 + "com",
    f"{MX}; dkim=pass header.d=\udcff.com",
    f"{MX}; dkim=pass header.d=xn--.com",
    f"{MX}; dkim=pass header.d=" + "ü" * 80 + ".com",
    "\x00\x01\x02",
    "(" * 10_000,
    f"{MX}; " + "dkim=pass header.d=a.b; " * 2_000,
]


@pytest.mark.parametrize("value", JUNK)
def test_junk_never_raises_and_never_passes(value: str) -> None:
    assert not verdict(value).passed


def test_random_junk_never_raises() -> None:
    rng = random.Random(8601)
    alphabet = 'ab.@=;()"\\ \t/1 ü\x00' + MX
    for _ in range(3_000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        from_domain = "".join(rng.choice("ab.ü-@ ") for _ in range(rng.randrange(8)))
        outcome = authentication_verdict(
            [("Authentication-Results", f"{MX}; {value}")], TRUSTED, from_domain
        )
        assert isinstance(outcome.reason, str) and outcome.reason
