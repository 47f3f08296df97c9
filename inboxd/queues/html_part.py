"""html_part.py: the HTML alternative of a mail inboxd writes, made from its plain text.

Every template inboxd sends is written once, as plain text; the HTML part is that text
laid out by `templates/email/layout.html.j2` (an admin may override it like any template),
so the two can never say different things. The text is read for the few shapes our
templates and agents use: paragraphs, `>` quotes, indented lines (a subject, a link set
apart), a `---------- Alice wrote ----------` rule, and the signature under `-- `.
Links become anchors for http(s) only; everything else reaches the page as text, escaped
by the template, so nothing in a customer's subject or an agent's reply can become markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from inboxd import render

LAYOUT = "email/layout.html.j2"

# ASCII only: a link written into prose in Chinese or Japanese runs straight on into the
# sentence ("https://x.example/s/abc。谢谢"), and the links inboxd writes are ASCII.
_URL = re.compile(r"https?://[!-~]+")
_NOT_IN_URL = re.compile(r"[<>\"']")
_TRAILING = ".,;:!?)]}"  # punctuation a URL in prose is followed by
_RULE = re.compile(r"^-{5,}\s*(.*?)\s*-{5,}$")
_QUOTE = re.compile(r"^((?:>\s?)+)")


@dataclass(frozen=True)
class Piece:
    """A run of a line: text, or a link whose text is its address."""

    text: str
    href: str = ""


@dataclass
class Block:
    """A paragraph (`kind` "p"), an inset ("inset"), a quote of some depth ("quote"), a
    rule with its caption ("rule") or the signature ("signature")."""

    kind: str
    lines: list[list[Piece]] = field(default_factory=list)
    depth: int = 0


def pieces(line: str) -> list[Piece]:
    """A line cut into text and links, a sentence's closing punctuation left outside."""
    out: list[Piece] = []
    at = 0
    for match in _URL.finditer(line):
        url = _NOT_IN_URL.split(match.group(0), maxsplit=1)[0].rstrip(_TRAILING)
        if match.start() > at:
            out.append(Piece(line[at : match.start()]))
        out.append(Piece(url, href=url))
        at = match.start() + len(url)
    if at < len(line) or not out:
        out.append(Piece(line[at:]))
    return out


def _kind(line: str) -> tuple[str, int, str]:
    """What one non-blank line is: its block kind, quote depth and the text to show."""
    quote = _QUOTE.match(line)
    if quote:
        return "quote", quote.group(1).count(">"), line[quote.end() :]
    if line.startswith(("    ", "\t")):
        return "inset", 0, line.strip()
    return "p", 0, line


def blocks(text: str) -> list[Block]:
    """The plain text as blocks, in order."""
    out: list[Block] = []
    current: Block | None = None
    lines = text.replace("\r\n", "\n").split("\n")
    for number, raw in enumerate(lines):
        line = raw.rstrip()
        if raw == "-- " or (line == "--" and number > 0 and not lines[number - 1].strip()):
            rest = [pieces(rest_line.rstrip()) for rest_line in lines[number + 1 :]]
            while rest and rest[-1] == [Piece("")]:
                rest.pop()
            out.append(Block("signature", rest))
            return out
        if not line.strip():
            current = None
            continue
        rule = _RULE.match(line)
        if rule:
            out.append(Block("rule", [pieces(rule.group(1))] if rule.group(1) else []))
            current = None
            continue
        kind, depth, shown = _kind(line)
        if current is None or current.kind != kind or current.depth != depth:
            current = Block(kind, depth=depth)
            out.append(current)
        current.lines.append(pieces(shown))
    return out


@lru_cache(maxsize=64)
def html_text(text: str, *, title: str = "", lang: str = "", override_dir: str = "") -> str:
    """The HTML document for a mail whose plain text is `text` (cached: the agents told of
    one change get the same text, laid out once)."""
    return render.render(
        LAYOUT,
        {"blocks": blocks(text), "title": title, "lang": lang or "en"},
        override_dir,
    )
