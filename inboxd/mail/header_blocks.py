"""header_blocks.py: the lines of a reply, classified, and the header blocks among them.

Outlook (desktop, web, mobile), AOL, Yahoo, Apple Mail forwards and many webmails put
the old message under a block of headers ("From:/Sent:/To:/Subject:" in the client's
language, often under "-----Original Message-----" or a rule line). quotes.py asks
`header_block` whether a line belongs to one; `Lines` holds the per-line facts both
modules need. Pure.
"""

from __future__ import annotations

from inboxd.mail import quote_patterns as patterns


class Lines:
    """The lines of one message, with cached classification."""

    def __init__(self, raw: list[str]) -> None:
        self.raw = raw
        self.clean = [patterns.clean_line(line) for line in raw]
        self.n = len(raw)

    def blank(self, i: int) -> bool:
        return not self.clean[i]

    def quoted(self, i: int) -> bool:
        c = self.clean[i]
        # "<bob@example.com\n>:" is a wrapped attribution, not a quote (Norwegian Gmail).
        return c.startswith(">") and not (len(c) <= 3 and c.rstrip().endswith((":", "：")))

    def next_nonblank(self, i: int) -> int:
        while i < self.n and self.blank(i):
            i += 1
        return i

    def header_text(self, i: int) -> str:
        """The line with bold markers removed, as "*From:*" and "** De : x **" come."""
        return self.clean[i].strip("* ").replace("**", "").replace("*", "", 2)


def is_separator(lines: Lines, i: int) -> bool:
    return patterns.ORIGINAL_MESSAGE.match(lines.clean[i]) is not None


def header_block(lines: Lines, i: int) -> tuple[int, int] | None:
    """(start, end) of an Outlook-style header block that involves line `i`, or None.

    The start includes a rule line, an "-----Original Message-----" line and an
    attribution line directly above the headers; the end is the last header line plus
    its wrapped continuation.
    """
    c = lines.clean[i]
    if lines.quoted(i) or len(c) > patterns.MAX_HEADER_LINE * 2:
        return None
    if patterns.ORIGINAL_MESSAGE.match(c):
        return i, _header_end(lines, i)
    head = lines.header_text(i)
    if patterns.FROM_HEADER.match(head):
        others = 0
        mail_like = "@" in c or "mailto:" in c
        j = i + 1
        seen = 0
        while j < lines.n and seen < patterns.HEADER_WINDOW:
            if not lines.blank(j):
                seen += 1
                if lines.quoted(j):
                    break
                text = lines.header_text(j)
                if patterns.OTHER_HEADER.match(text):
                    others += 1
                    mail_like = mail_like or "@" in text or bool(patterns.SUBJECT.match(text))
                elif seen == 1 and "@" in text:
                    mail_like = True  # the address wrapped onto its own line
            j += 1
        if others == 0 and len(patterns.INLINE_HEADER.findall(head)) < 3:
            return None
        if not mail_like and _header_top(lines, i) == i:
            # "From: Berlin / To: Munich / Date: 24.11." is a booking the customer
            # typed: a mail's header block names an address or a subject, or sits under
            # a rule, an "Original Message" line or an attribution.
            return None
    elif patterns.OTHER_HEADER.match(head) and len(patterns.INLINE_HEADER.findall(head)) >= 3:
        pass  # the one-line header block
    elif patterns.OTHER_HEADER.match(head) and _from_below(lines, i):
        pass  # "Date:/Subject:" above "From:" (Hotmail), "Gesendet:" first (web.de)
    else:
        return None
    return _header_top(lines, i), _header_end(lines, i)


def _from_below(lines: Lines, i: int) -> bool:
    j, seen = i + 1, 0
    while j < lines.n and seen < 4:
        if not lines.blank(j):
            seen += 1
            head = lines.header_text(j)
            if patterns.FROM_HEADER.match(head):
                return True
            if not patterns.OTHER_HEADER.match(head):
                return False
        j += 1
    return False


def _header_top(lines: Lines, i: int) -> int:
    """Walk up from the first header over other headers, a rule and an attribution."""
    top = i
    j = i - 1
    steps = 0
    while j >= 0 and steps < 6:
        steps += 1
        if lines.blank(j):
            j -= 1
            continue
        c = lines.clean[j]
        if lines.quoted(j):
            break
        if (
            patterns.OTHER_HEADER.match(lines.header_text(j))
            or patterns.RULE.match(c)
            or patterns.ORIGINAL_MESSAGE.match(c)
        ):
            top = j
            j -= 1
            continue
        # German Outlook for Android: "Am 20.06.24 um 16:20 schrieb Klarstein" (no colon)
        # directly above "Von:/Datum:/An:".
        if (
            patterns.ATTRIBUTION_START.match(c)
            and patterns.MID_VERB.search(c)
            and patterns.DATEISH.search(c)
            and len(c) <= patterns.MAX_HEADER_LINE
        ):
            top = j
        break
    return top


def _header_end(lines: Lines, i: int) -> int:
    end = i
    j = i + 1
    seen = 0
    while j < lines.n and seen < patterns.HEADER_WINDOW:
        if lines.blank(j):
            j += 1
            continue
        seen += 1
        head = lines.header_text(j)
        if patterns.OTHER_HEADER.match(head) or patterns.FROM_HEADER.match(head):
            end = j
        elif j == end + 1 and not lines.quoted(j) and seen <= patterns.HEADER_WINDOW - 1:
            # A wrapped To: or Subject: line.
            if _looks_like_continuation(lines, j):
                end = j
            else:
                break
        else:
            break
        j += 1
    return end


def _looks_like_continuation(lines: Lines, j: int) -> bool:
    # Only lines squeezed between two headers are continuations; anything else after
    # the last header is the start of the old body.
    k = j + 1
    return (
        k < lines.n
        and not lines.blank(k)
        and (patterns.OTHER_HEADER.match(lines.header_text(k)) is not None)
    )
