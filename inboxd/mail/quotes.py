"""quotes.py: keep only the text a sender newly wrote in a reply.

`strip_quoted` cuts plain text at the start of the quoted history (a "> " block, an
"On ... wrote:" attribution in any of the languages below, an Outlook header block, an
"-----Original Message-----" line). `strip_quoted_html` first removes the quote containers
that mail clients put in HTML, then converts to text and calls `strip_quoted`.

`reply_text` is what the pipeline stores: that, then boilerplate.py's removal of the
lines clients add by themselves ("Sent from my iPhone", empty signature delimiters).

Pure: no DB, no I/O, no logging. It must never raise and never take more than linear-ish
time, whatever the input; `strip_quoted` must not strip signatures ("-- \\nBob", "Sent from
my iPhone" stay) and must not cut text the sender wrote.

Decisions, each seen in real mail or in the corpora under ../shared/corpora:

* Forwards are content: from a "---------- Forwarded message ---------" or "Begin
  forwarded message:" line on, everything is kept. An Outlook forward has no such marker
  and looks exactly like an Outlook reply, so it is cut like one.
* A message that *starts* with a quote header (nothing written above it) is a bottom-posted
  reply or a forward without comment: the header is dropped and what follows is read as
  new text, so the result is never empty just because the sender wrote below the quote.
* Interleaved replies ("On ... wrote:" + "> question" + answer + "> question" + answer):
  the attribution goes and each answer is kept with the quoted lines it answers; the
  trailing quote nobody answered goes. One quote with text below it is bottom-posting:
  the quote is the old message and goes.
* A mail that is nothing but a quote keeps it: an empty message is never right.
* A "> " block with no attribution that is followed by more of the sender's text is kept:
  people quote a line to answer it, or paste log output, and nothing proves it is history.
"""

from __future__ import annotations

from inboxd.mail import quote_patterns as patterns
from inboxd.mail.boilerplate import MOBILE_SIGNATURE, strip_boilerplate
from inboxd.mail.header_blocks import Lines, header_block, is_separator
from inboxd.mail.html_quotes import prune_html
from inboxd.mail.htmltext import MAX_HTML_CHARS, html_to_text


def reply_text(text: str, html: str | None = None, *, keep_quote_only: bool = True) -> str:
    """What the sender newly wrote in a mail, as stored on its ticket: the plain text (or
    the HTML when there is no plain text) without quoted history or client boilerplate.

    A mail that is nothing but a quote keeps it, unless `keep_quote_only` is False: an
    agent's reply of nothing but the quoted notification says nothing to relay.
    """
    if text or not html:
        new = strip_quoted(text, keep_quote_only=keep_quote_only)
    else:
        new = strip_quoted_html(html, keep_quote_only=keep_quote_only)
    return strip_boilerplate(new)


def strip_quoted(text: str, *, keep_quote_only: bool = True) -> str:
    """Return only what the sender newly wrote in `text` (plain text, "\\n" line ends)."""
    try:
        return _strip(text, keep_quote_only)
    except Exception:  # pragma: no cover - a bug here must not lose the message
        return _tidy(text.split("\n"))


def strip_quoted_html(html: str, *, keep_quote_only: bool = True) -> str:
    """Return only what the sender newly wrote in an HTML-only mail, as plain text."""
    try:
        html = html[:MAX_HTML_CHARS]
        if not html.strip():
            return ""
        pruned = prune_html(html)
        text = html_to_text(pruned if pruned is not None else html)
        return strip_quoted(text, keep_quote_only=keep_quote_only)
    except Exception:  # pragma: no cover - see strip_quoted
        try:
            return strip_quoted(html_to_text(html), keep_quote_only=keep_quote_only)
        except Exception:
            return ""


# ---------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------


def _tidy(lines: list[str]) -> str:
    # A line holding only a zero-width space or a direction mark (Arabic iPhone mail
    # ends with one) counts as blank at either end.
    start, end = 0, len(lines)
    while start < end and not patterns.clean_line(lines[start]):
        start += 1
    while end > start and not patterns.clean_line(lines[end - 1]):
        end -= 1
    return "\n".join(line.rstrip() for line in lines[start:end])


def _strip(text: str, keep_quote_only: bool) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = text.split("\n")
    scanned, size = 0, 0
    for line in raw:
        size += len(line) + 1
        scanned += 1
        if size > patterns.MAX_SCAN_CHARS:
            break
    lines = Lines(raw[:scanned])
    keep = _select(lines)
    if keep is None:
        # No quote start in the scanned part: the whole message is new text.
        return _tidy(raw)
    new = _tidy([raw[k] for k in keep])
    # A mail that is nothing but a quote (a forward without comment, a reply whose text
    # was lost on the way) keeps it: an empty message is never what the sender meant.
    return new or (_tidy(raw) if keep_quote_only else "")


def _select(lines: Lines) -> list[int] | None:
    """Indices of the lines to keep, or None when nothing was cut at all."""
    out: list[int] = []
    cut = False
    anchored = False  # inside an attributed reply: "> " lines are the old message
    # "> " blocks of an attributed reply that the sender's text answers; two or more of
    # them make an interleaved reply, whose questions are kept with their answers.
    answered: list[range] = []
    i = 0
    while i < lines.n:
        if lines.blank(i):
            out.append(i)
            i += 1
            continue

        if not lines.quoted(i) and patterns.FORWARD.match(lines.clean[i]):
            # Forwards are content; keep everything from here on.
            out.extend(range(i, lines.n))
            return _with_answered(out, answered) if cut else None

        if lines.quoted(i):
            end = _quote_block_end(lines, i)
            start = _soft_attribution_start(lines, i)
            after = _after_quote(lines, end)
            has_before = _has_content(lines, out, start)
            # Top-posted text, then an attributed quote, then more text: either the
            # sender answered inline (more "> " blocks follow) or the text below is
            # older history that lost its quoting (another header follows).
            if (
                after == "text"
                and start < i
                and has_before
                and not anchored
                and _next_marker(lines, end + 1) == "header"
            ):
                return [k for k in out if k < start]
            if after == "text" or (after == "footer" and (anchored or not has_before)):
                cut = True
                if start < i or anchored or not has_before:
                    # Attributed (or leading) quote followed by the sender's own text:
                    # a bottom-posted or interleaved reply. Drop the old lines.
                    out = [k for k in out if k < start]
                    anchored = True
                    if after == "text":
                        answered.append(range(i, end + 1))
                else:
                    out.extend(range(i, end + 1))
                i = end + 1
                continue
            out = [k for k in out if k < start]
            return _with_answered(out, answered)

        span = header_block(lines, i)
        if span is None and not _quote_follows(lines, i):
            # An attribution right above "> " lines is handled with its quote block.
            span = _attribution(lines, i)
        if span is not None:
            start, end = span
            cut = True
            if _has_content(lines, out, start):
                return _with_answered([k for k in out if k < start], answered)
            # Nothing written above the header: drop it and read on.
            out = [k for k in out if k < start]
            i = end + 1
            continue

        if MOBILE_SIGNATURE.match(lines.clean[i]) and _has_content(lines, out, i):
            # "Sent from my iPhone" ends what the sender typed; some mobile clients put
            # the old message right under it with no header at all (seen with Outlook
            # for Android and a Wiko phone).
            out.append(i)
            if lines.next_nonblank(i + 1) < lines.n:
                return _with_answered(out, answered)
            i += 1
            continue

        out.append(i)
        i += 1
    return _with_answered(out, answered) if cut else None


def _with_answered(out: list[int], answered: list[range]) -> list[int]:
    """`out` plus the quoted questions of an interleaved reply (two answered blocks or
    more). One answered block is a bottom-posted reply: its quote is the old message."""
    if len(answered) < 2:
        return out
    kept = set(out)
    for block in answered:
        kept.update(block)
    return sorted(kept)


def _next_marker(lines: Lines, j: int) -> str:
    """The next quote marker from line `j` on: "quote" ("> "), "header" or "end"."""
    while j < lines.n:
        if not lines.blank(j):
            if lines.quoted(j):
                return "quote"
            if header_block(lines, j) or (not _quote_follows(lines, j) and _attribution(lines, j)):
                return "header"
        j += 1
    return "end"


def _quote_follows(lines: Lines, i: int) -> bool:
    j = lines.next_nonblank(i + 1)
    return j < lines.n and lines.quoted(j)


def _has_content(lines: Lines, out: list[int], before: int) -> bool:
    return any(k < before and not lines.blank(k) for k in out)


def _quote_block_end(lines: Lines, i: int) -> int:
    """Index of the last line of the "> " block that starts at `i`."""
    last = i
    j = i + 1
    while j < lines.n:
        if lines.quoted(j):
            last = j
            j += 1
        elif lines.blank(j):
            j += 1
        elif j == last + 1 and len(lines.clean[last]) >= _WRAPPED and _lazy_continuation(lines, j):
            # Some clients wrap a long quoted line without repeating the ">" (seen from
            # Italian and Dutch webmails): one or two bare lines glued between quotes.
            while not lines.quoted(j):
                j += 1
        else:
            break
    return last


# A quoted line shorter than this was not wrapped by the client, so a bare line right
# under it is the sender's answer ("> Which version?" / "3.2.1"), not its continuation.
_WRAPPED = 50


def _lazy_continuation(lines: Lines, j: int) -> bool:
    for k in (j, j + 1):
        if k >= lines.n or lines.blank(k):
            return False
        if lines.quoted(k):
            return True
    return k + 1 < lines.n and lines.quoted(k + 1)


def _after_quote(lines: Lines, end: int) -> str:
    """What follows a quote block: "none", a "footer" (signature/list footer) or "text"."""
    j = lines.next_nonblank(end + 1)
    if j >= lines.n:
        return "none"
    if header_block(lines, j) or _attribution(lines, j) or is_separator(lines, j):
        return "none"
    if patterns.FOOTER_START.match(lines.clean[j]):
        return "footer"
    return "text"


def _soft_attribution_start(lines: Lines, q: int) -> int:
    """Start of the attribution right above the "> " block at `q` (or `q` if none).

    Verb-less attributions only count here, directly above quoted lines: old Android
    Gmail wrote "2013/11/1 John Smith <john@smith.org>" and nothing else.
    """
    p = q - 1
    while p >= 0 and lines.blank(p):
        p -= 1
    if p < 0 or lines.quoted(p):
        return q
    span = _attribution(lines, p, soft=True)
    return span[0] if span else q


def _attribution(lines: Lines, e: int, soft: bool = False) -> tuple[int, int] | None:
    """(start, end) of an attribution whose last line is `e`, or None.

    With soft=True the next line is known to be quoted, so weaker evidence is enough.
    """
    if lines.quoted(e) or len(lines.clean[e]) > patterns.MAX_HEADER_LINE:
        return None
    last = _decorations(lines.clean[e])
    if not (":" in last or "：" in last or "@" in last or _ends_with_verb(last)):
        # Every shape _looks_like_attribution accepts ends in a colon, an address or a
        # verb, all on the last line: most lines of a mail are ruled out here, cheaply.
        return None
    if not soft:
        nxt = lines.next_nonblank(e + 1)
        soft = nxt < lines.n and lines.quoted(nxt)
    parts: list[str] = []
    for k in range(patterns.MAX_ATTRIBUTION_LINES):
        s = e - k
        if (
            s < 0
            or lines.blank(s)
            or lines.quoted(s)
            or len(lines.clean[s]) > patterns.MAX_HEADER_LINE
        ):
            break
        parts.insert(0, lines.clean[s])
        joined = _decorations(" ".join(parts))
        if _looks_like_attribution(joined, soft):
            return _attribution_top(lines, s, e), e
    return None


def _attribution_top(lines: Lines, s: int, e: int) -> int:
    """Pull the wrapped first line(s) of an attribution into it.

    "wrote:" alone, or "<reply@reply.github.com>\nwrote:", is already an attribution;
    its first line is the one above that starts like one ("On Dec 16, 2011, at 12:47 PM,
    Corey Donohoe"). Prose above ("Hi,") does not start like one and stays.
    """
    if patterns.ATTRIBUTION_START.match(lines.clean[s]):
        return s
    for top in range(s - 1, e - patterns.MAX_ATTRIBUTION_LINES, -1):
        if top < 0 or lines.blank(top) or lines.quoted(top):
            break
        above = lines.clean[top]
        if len(above) > patterns.MAX_HEADER_LINE or above.endswith((".", "!", "?")):
            break
        if patterns.ATTRIBUTION_START.match(above):
            return top
    return s


def _decorations(text: str) -> str:
    # Zoho: "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@gmail.com wrote ----".
    return text.strip("-* ").strip()


def _ends_with_verb(text: str) -> bool:
    # patterns.END_VERB is anchored at the end of the line; starting the search near the end
    # gives the same answer (\b and look-behinds still see the text before) in a
    # fraction of the time, which matters: this runs on most lines of every reply.
    # A reversed match proves a match of patterns.END_VERB that starts where the reversed one
    # ends, and finding none proves there is none; only a match longer than the reach
    # (a verb followed by much white space) needs the search itself.
    found = patterns.END_VERB_REVERSED.match(text[::-1])
    if found is None:
        return False
    if found.end() <= patterns.END_VERB_REACH:
        return True
    return patterns.END_VERB.search(text, max(0, len(text) - patterns.END_VERB_REACH)) is not None


def _looks_like_attribution(text: str, soft: bool) -> bool:
    if len(text) > patterns.MAX_HEADER_LINE:
        return False
    dated = patterns.DATEISH.search(text) is not None
    has_address = "@" in text
    if _ends_with_verb(text):
        if text.endswith((":", "：")) or patterns.ATTRIBUTION_START.match(text):
            return (
                dated
                or soft
                or (
                    has_address
                    and (
                        patterns.ADDRESS_WROTE.match(text) is not None
                        or patterns.ADDRESS_VERB.search(text) is not None
                    )
                )
            )
        return False
    if has_address and patterns.DATE_NAME_ADDRESS.match(text):
        return True
    if patterns.ENDS_COLON.search(text) and patterns.MID_VERB.search(text):
        return dated or soft
    if has_address and patterns.ENDS_ADDRESS_COLON.search(text):
        return patterns.TIME.search(text) is not None or (soft and dated)
    if soft and has_address and dated:
        # Quoted-printable left undecoded breaks the verb ("w=\nrote:"), seen in
        # a forwarded Gmail thread; right above "> " lines the shape is enough.
        if patterns.ENDS_ADDRESS.search(text):
            return True
        if patterns.ENDS_COLON.search(text) and patterns.ATTRIBUTION_START.match(text):
            return True
    return False
