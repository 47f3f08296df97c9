"""trust.py: is an agent's mail authenticated by the Authentication-Results our MX wrote?

Pure: reads header strings, never touches the DB, the network or the clock.

SPEC §6 (b): a message claiming an agent's `From:` is verified when the **topmost**
`Authentication-Results` header (RFC 8601) was written by a host in
`[trust] trusted_authserv_ids` and reports DMARC pass for the `From:` domain, or DKIM pass
with a signing domain aligned with it (RFC 7489 relaxed alignment, approximated below).

Only the topmost header counts. Our MX prepends its own header, so anything below it came
with the message and may be forged; and if the topmost one names another host, our MX did
not write one at all (or wrote it below a forgery, which cannot happen with a prepending
MX). Every doubt resolves to "not verified": a result we cannot read is ignored, never
guessed at. SPF is never enough, aligned or not: it vouches for the envelope sender, and
SPEC §6 names only DMARC and aligned DKIM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = "authentication-results"

# Second-level labels under which country-code registries sell names (example.co.uk,
# example.com.au, example.co.jp, example.org.br, ...). A stand-in for the Public Suffix
# List, which inboxd does not ship: under a two-letter TLD with one of these labels the
# organizational domain keeps three labels, otherwise two. Erring towards three is the
# stricter mistake (fewer domains share an organization), so the list is generous.
_CCTLD_SECOND_LEVEL = frozenset(
    [
        "ac",
        "co",
        "com",
        "ed",
        "edu",
        "gen",
        "go",
        "gob",
        "gov",
        "gv",
        "lg",
        "ltd",
        "me",
        "mil",
        "ne",
        "net",
        "nhs",
        "nic",
        "nom",
        "or",
        "org",
        "plc",
        "police",
        "sch",
    ]
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_SHOWN_CHARS = 80  # attacker-controlled text quoted in a reason is cut to this length


@dataclass(frozen=True)
class AuthVerdict:
    passed: bool
    reason: str  # one line for the held note and the warning mail


@dataclass(frozen=True)
class _Result:
    """One resinfo of an Authentication-Results header: `dkim=pass header.d=example.com`."""

    method: str  # lowercase, method version removed
    result: str  # lowercase
    props: dict[str, str]  # "header.d" -> "example.com"; names lowercase


def authentication_verdict(
    headers: list[tuple[str, str]], trusted_authserv_ids: tuple[str, ...], from_domain: str
) -> AuthVerdict:
    """Whether the topmost Authentication-Results, from a trusted host, vouches for From.

    :param headers: the message's decoded header fields in order, topmost first (as
        `inboxd.parse.ParsedMessage.headers`).
    :param from_domain: the domain of the agent address in `From:`.
    """
    trusted = {i.strip().lower() for i in trusted_authserv_ids if i.strip()}
    if not trusted:
        return AuthVerdict(False, "no trusted_authserv_ids configured")
    domain = _domain(from_domain)
    if domain is None:
        return AuthVerdict(False, f"no usable From domain ({_show(from_domain)!r})")
    value = next((v for k, v in headers if k.strip().lower() == _HEADER), None)
    if value is None:
        return AuthVerdict(False, "no Authentication-Results from a trusted host")

    segments = _lex(value)
    head = segments[0] if segments else []
    # An authserv-id, optionally a version number, and nothing else before the first ";".
    if not segments or not 1 <= len(head) <= 2 or "=" in head or not _version(head):
        return AuthVerdict(
            False, "no Authentication-Results from a trusted host (the topmost is unreadable)"
        )
    authserv_id = head[0].lower()
    if authserv_id not in trusted:
        return AuthVerdict(
            False,
            "no Authentication-Results from a trusted host "
            f"(the topmost is from {_show(authserv_id)})",
        )
    by = _show(authserv_id)
    if len(head) == 2 and head[1] != "1":
        return AuthVerdict(
            False, f"Authentication-Results by {by} has unknown version {_show(head[1])}"
        )

    results = [r for r in map(_result, segments[1:]) if r is not None]
    notes: list[str] = []
    for r in results:
        if r.method == "dmarc" and r.result == "pass":
            # Without header.from the result can only be about the one From domain; an
            # unreadable header.from is not the same as none.
            if "header.from" not in r.props:
                return AuthVerdict(True, f"dmarc=pass for {domain} by {by}")
            about = r.props["header.from"]
            if _address_domain(about) == domain:
                return AuthVerdict(True, f"dmarc=pass for {domain} by {by}")
            notes.append(f"dmarc=pass for {_show(about)} is not about {domain}")
        elif r.method == "dmarc":
            notes.append(f"dmarc={_show(r.result)}")
    for r in results:
        if r.method == "dkim" and r.result == "pass":
            # header.i must be header.d or below it (RFC 6376 3.5), so d decides when given.
            claimed = r.props.get("header.d") or r.props.get("header.i", "").rpartition("@")[2]
            signer = _domain(claimed)
            if not claimed:
                notes.append("dkim=pass without a signing domain")
            elif signer is not None and _aligned(signer, domain):
                relaxed = "" if signer == domain else f" (aligned with {domain})"
                return AuthVerdict(True, f"dkim=pass for {signer} by {by}{relaxed}")
            else:
                shown = _show(signer or claimed)
                notes.append(f"dkim=pass for {shown} is not aligned with {domain}")
        elif r.method == "dkim":
            notes.append(f"dkim={_show(r.result)}")
    if any(r.method == "spf" and r.result == "pass" for r in results):
        notes.append("spf=pass alone is not accepted")
    if not notes:
        return AuthVerdict(False, f"no DMARC or DKIM result in Authentication-Results by {by}")
    return AuthVerdict(False, "; ".join(list(dict.fromkeys(notes))[:6]))


def organizational_domain(domain: str) -> str | None:
    """The registrable domain, approximately: example.com, example.co.uk; None if none.

    Not the Public Suffix List: two labels, or three under a two-letter TLD whose
    second-level label is a common registry label (co.uk, com.au, co.jp). Private
    suffixes such as github.io are not known, which is why `_aligned` also requires one
    domain to contain the other.
    """
    name = _domain(domain)
    if name is None:
        return None
    labels = name.split(".")
    keep = 3 if len(labels[-1]) == 2 and labels[-2] in _CCTLD_SECOND_LEVEL else 2
    return ".".join(labels[-keep:]) if len(labels) >= keep else None


def _aligned(signer: str, from_domain: str) -> bool:
    """Relaxed alignment, kept stricter than RFC 7489: siblings do not align.

    RFC 7489 aligns any two domains with the same organizational domain. We also require
    one to be the other or a subdomain of it (mail.example.com signs for example.com, and
    example.com for support.example.com), so a sibling host under a shared suffix our
    approximation does not know cannot sign for an agent's domain.
    """
    org = organizational_domain(signer)
    if org is None or org != organizational_domain(from_domain):
        return False
    return (
        signer == from_domain
        or signer.endswith("." + from_domain)
        or from_domain.endswith("." + signer)
    )


def _version(head: list[str]) -> bool:
    """Whether the authserv-id is followed by nothing or by a number."""
    return len(head) == 1 or (head[1].isascii() and head[1].isdigit())


def _domain(text: str | None) -> str | None:
    """A lowercase ASCII (IDNA) domain name of two or more labels, or None."""
    if text is None:
        return None
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        return None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # an IP address, not a domain
        return None
    return name


def _address_domain(value: str | None) -> str | None:
    """The domain of `example.com`, `@example.com` or `user@example.com`."""
    if value is None:
        return None
    return _domain(value.rpartition("@")[2])


def _result(tokens: list[str]) -> _Result | None:
    """`method[/version] = result [reason=...] [ptype.property=value ...]`, else None.

    The lexer gives `=` as its own token, so a well-formed resinfo is a run of
    name, "=", value triples. Anything else (including RFC 8601's bare `none`) is skipped.
    """
    if len(tokens) < 3 or len(tokens) % 3 or any(t != "=" for t in tokens[1::3]):
        return None
    if "=" in tokens[0::3] or "=" in tokens[2::3]:
        return None
    method, _, version = tokens[0].lower().partition("/")
    if version.strip() not in ("", "1"):
        return None
    props = {tokens[i].lower(): tokens[i + 2] for i in range(3, len(tokens), 3)}
    return _Result(method.strip(), tokens[2].lower(), props)


def _lex(value: str) -> list[list[str]] | None:
    """Split a header value into `;`-separated segments of tokens.

    Comments (nested, with backslash escapes) are dropped, quoted strings are unquoted,
    and `=` is a token of its own. Text and quoted strings with nothing between them are
    one token, so `"john doe"@example.com` stays whole. An unterminated comment or quoted
    string makes the whole value unreadable (None): cutting it short could drop a
    "fail" and leave a "pass".
    """
    segments: list[list[str]] = [[]]
    glued = False  # the next word continues the previous token
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == "(":
            depth, i = 1, i + 1
            while i < n and depth:
                if value[i] == "\\":
                    i += 1
                elif value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                i += 1
            if depth:
                return None
            glued = False
            continue
        if c in ";=":
            if c == ";":
                segments.append([])
            else:
                segments[-1].append("=")
            glued = False
            i += 1
            continue
        if c.isspace() or c == ")":
            glued = False
            i += 1
            continue
        if c == '"':
            chars: list[str] = []
            i += 1
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            if i >= n:
                return None
            word = "".join(chars)
            i += 1
        else:
            start = i
            while i < n and not value[i].isspace() and value[i] not in '();="':
                i += 1
            word = value[start:i]
        tokens = segments[-1]
        if glued and tokens:
            tokens[-1] += word
        else:
            tokens.append(word)
        glued = True
    return segments


def _show(text: str) -> str:
    """Text from the message, safe to quote in one line of a note or a mail."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= _SHOWN_CHARS else clean[: _SHOWN_CHARS - 1] + "…"


def autoreply_recipient(
    from_email: str,
    envelope_from: str | None,
    headers: list[tuple[str, str]],
    trusted_authserv_ids: tuple[str, ...],
) -> str | None:
    """Where automatic mail about a message (an acknowledgement) may go, if anywhere.

    Issue 19: acknowledgements went to `From:`, so 100 mails with forged `From:` lines
    produced 103 acknowledgements to third parties (backscatter). Zendesk's rule is the
    model: `From:` when it is the envelope sender (or shares its organizational domain),
    or when a trusted Authentication-Results vouches for it (DMARC or aligned DKIM);
    otherwise the envelope sender, the one address that really sent the mail. A null
    envelope sender (`<>`) is never answered (RFC 3834, SPEC §7). Without an envelope
    (IMAP, files) the delivering MTA's `Return-Path:` stands in for it.
    """
    if envelope_from is None:
        envelope_from = next((v for k, v in headers if k.strip().lower() == "return-path"), "")
    envelope = envelope_from.strip().removeprefix("<").removesuffix(">").strip().lower()
    if envelope_from.strip() and not envelope:
        return None  # "<>"
    from_email = from_email.lower()
    if not envelope or "@" not in envelope or envelope == from_email:
        return from_email
    from_domain = from_email.rpartition("@")[2]
    envelope_org = organizational_domain(envelope.rpartition("@")[2])
    if envelope_org is not None and envelope_org == organizational_domain(from_domain):
        return from_email
    if authentication_verdict(headers, trusted_authserv_ids, from_domain).passed:
        return from_email
    return envelope
