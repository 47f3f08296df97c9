"""quotes.py: keep only the text a sender newly wrote in a reply.

`strip_quoted` cuts plain text at the start of the quoted history (a "> " block, an
"On ... wrote:" attribution in any of the languages below, an Outlook header block, an
"-----Original Message-----" line). `strip_quoted_html` first removes the quote containers
that mail clients put in HTML, then converts to text and calls `strip_quoted`.

Pure: no DB, no I/O, no logging. It must never raise and never take more than linear-ish
time, whatever the input; it must not strip signatures ("-- \\nBob", "Sent from my iPhone"
stay) and must not cut text the sender wrote.

Decisions, each seen in real mail or in the corpora under ../shared/corpora:

* Forwards are content: from a "---------- Forwarded message ---------" or "Begin
  forwarded message:" line on, everything is kept. An Outlook forward has no such marker
  and looks exactly like an Outlook reply, so it is cut like one.
* A message that *starts* with a quote header (nothing written above it) is a bottom-posted
  reply or a forward without comment: the header is dropped and what follows is read as
  new text, so the result is never empty just because the sender wrote below the quote.
* Interleaved replies ("On ... wrote:" + "> question" + answer + "> question" + answer):
  the attributed "> " lines are dropped and every answer is kept.
* A "> " block with no attribution that is followed by more of the sender's text is kept:
  people quote a line to answer it, or paste log output, and nothing proves it is history.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from inboxd.htmltext import MAX_HTML_CHARS, html_to_text

# Quoted history is found near the top of a reply; past this many characters we stop
# looking for it and keep the rest as it is, so a 50 MB log pasted into a mail costs no
# more than a normal one.
MAX_SCAN_CHARS = 1_000_000
# Attribution and header lines are short. Longer lines are prose or data and are not
# matched against the patterns below, which also bounds the regex work per line.
_MAX_HEADER_LINE = 400
# Gmail wraps long attributions over two or three lines; iOS Mail over three.
_MAX_ATTRIBUTION_LINES = 3
# Outlook header blocks: From, then Sent/To/Cc/Subject within a few lines (a long To or
# Subject wraps; some webmails put a blank line between every header).
_HEADER_WINDOW = 8

# Invisible characters that clients put around attributions: right-to-left marks in
# Arabic and Hebrew Gmail, a BOM or zero-width space at the start of an iOS quote.
_INVISIBLE: dict[int, str | None] = dict.fromkeys(
    [0x00AD, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF], None
)
# Bidi embeddings and isolates.
_INVISIBLE.update(dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)], None))
_INVISIBLE[0x00A0] = " "

_EMAIL_AT = r"@[\w-]+(?:\.[\w-]+)+"

# Anything that looks like a date or a time: "10:00", "10.00", "10h30", "2026",
# "23.11.2026", "2013/11/1", CJK date characters. Python's \d also matches the
# Arabic-Indic digits that Arabic Gmail writes dates with.
_DATEISH = re.compile(r"\d{1,2}[:.h]\d{2}|\b\d{4}\b|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|[年月日년월일]")
_TIME = re.compile(r"\d{1,2}[:.h]\d{2}")

# The verb of an attribution line, where it ends the line: "... wrote:",
# "... a écrit :", "... 写道：". The colon is optional for "On ... wrote" (Zoho writes
# "---- On Wed, 24 Feb 2021 ... john@gmail.com wrote ----"). Each verb with whether it
# must start a word (scripts without spaces between words have no word boundary).
_END_VERB_WORDS = (
    *((True, verb) for verb in (
        "wrote", "writes", "a écrit", "escribió", "escreveu", "ha scritto", "scrisse",
        "kirjoitti", "napisał", "napisał(a)", "napisała", "napsal", "napsal(a)", "napsala",
        "написал", "написал(а)", "написала", "пишет", "έγραψε", "a scris", "yazdı", "írta",
        "skrev", "schreef", "schrieb",
    )),
    *((False, verb) for verb in ("كتب", "كتب/كتبت", "كتبت", "写道", "寫道", "書きました", "작성")),
)  # fmt: skip
_END_VERB = re.compile(
    "(?:"
    + "|".join((r"\b" if bounded else "") + re.escape(verb) for bounded, verb in _END_VERB_WORDS)
    + r")\s*[:：]?$",
    re.IGNORECASE,
)
# _END_VERB for the reversed line, anchored at its start: one match attempt instead of
# a search that tries every alternative at each of the last _END_VERB_REACH positions
# (that search was a fifth of the time spent preparing a message). `$` matches before a
# final newline, hence the optional one; \b sees the same two characters either way.
_END_VERB_REVERSED = re.compile(
    r"\n?[:：]?\s*(?:"
    + "|".join(
        re.escape(verb[::-1]) + (r"\b" if bounded else "") for bounded, verb in _END_VERB_WORDS
    )
    + ")",
    re.IGNORECASE,
)
# Verbs that sit in the middle, followed by the name and a final colon:
# "Am 23.11.2026 um 10:00 schrieb Alice <a@b.com>:", "Op ... schreef Alice:",
# "ons 4 dec. 2024 kl. 20:42 skrev Person B <b@x.com>:",
# "Alice <a@b.com> ezt írta (időpont: 2026. nov. 23., H, 10:00):",
# "Wiadomość napisana przez Alice w dniu 17.01.2023, o godz. 11:09:", Arabic "كتب".
_MID_VERB = re.compile(
    r"\b(?:schrieb|schreef|skrev|ezt írta|napisana przez)\b|napisał\(a\)|كتب|写道",
    re.IGNORECASE,
)
_ENDS_COLON = re.compile(r"[:：]$")
# No verb at all, just date, name, address and a colon: Russian and Japanese Gmail
# ("ср, 30 апр. 2025 г. в 15:19, John <doe@example.com>:"), Yandex, mail.ru ("... от
# Alice <a@b.com>:"), and some webmails ("2017-11-24 16:32 GMT+01:00 Bob <b@x.com>:").
_ENDS_ADDRESS_COLON = re.compile(_EMAIL_AT + r"[\s>)\]\"'*]*[:：]$")
_ENDS_ADDRESS = re.compile(_EMAIL_AT + r"[\s>)\]\"'*]*$|<$")
# "janedoe@something.com wrote:" with no date, seen below "Sent from my iPhone".
_ADDRESS_WROTE = re.compile(r"^\S+" + _EMAIL_AT + r"\S*\s+wrote\s*:$", re.IGNORECASE)
# Words that begin an attribution; used to pull a wrapped first line into the block
# ("On Nov 21, 2014,\nat 10:18,\nJohn Doe <john@doe123.com> wrote:").
# The longest verb above with its colon and some trailing space fits in this many chars.
_END_VERB_REACH = 48
_ATTRIBUTION_START = re.compile(
    r"^(?:(?:On|Am|Le|El|Em|No dia|Il|In data|Op|Den|På|W dniu|Dnia|Dne|Στις|În)\b|\d)",
    re.IGNORECASE,
)

# Outlook (desktop, web, mobile), AOL, Yahoo, Apple Mail forwards and many webmails put
# the old message under a block of headers. Localized names as the clients write them.
_FROM_NAMES = (
    r"from|von|de|van|från|fra|od|от|lähettäjä|da|feladó|από|kimden|gönderen|mittente"
    r"|remitente|nadawca|afzender|expéditeur|من|发件人|寄件者|寄件人|差出人|보낸 사람"
)
_OTHER_HEADER_NAMES = (
    r"sent|date|to|subject|cc|bcc|reply-to|gesendet|datum|an|betreff|envoyé le|envoyé"
    r"|objet|à|a|copie à|verzonden|aan|onderwerp|skickat|till|ämne|sendt|til|emne|dato"
    r"|sujet|wysłano|do|temat|data|adresat|отправлено|кому|копия|тема|дата|lähetetty"
    r"|vastaanottaja|aihe|päivämäärä|inviato|oggetto|enviado|enviada|para|asunto|fecha"
    r"|assunto|elküldve|címzett|tárgy|dátum|στάλθηκε|προς|θέμα|gönderildi|kime|konu"
    r"|tarih|trimis|către|subiect|odesláno|komu|předmět|تم الإرسال|إلى"
    r"|الموضوع|التاريخ|发送时间|日期|收件人|抄送|主题|寄件日期|收件者|副本|主旨|送信日時"
    r"|宛先|件名|보낸 날짜|받는 사람|제목|message du"
)
_FROM_HEADER = re.compile(r"^(?:" + _FROM_NAMES + r")\s*[:：]", re.IGNORECASE)
_OTHER_HEADER = re.compile(r"^(?:" + _OTHER_HEADER_NAMES + r")\s*[:：]", re.IGNORECASE)
# Onet/WP webmail put a whole header block on one line:
# "Temat: RE: x 2023-01-17 13:46Nadawca: "test.pl" test@test.pl Adresat:".
_INLINE_HEADER = re.compile(
    r"(?:^|\s|\d)(?:" + _FROM_NAMES + r"|" + _OTHER_HEADER_NAMES + r")\s*[:：]",
    re.IGNORECASE,
)

# "-----Original Message-----" and its translations; Outlook for Mac and some German
# clients put the first header on the same line, so only the start is matched.
_ORIGINAL_MESSAGE = re.compile(
    r"^[-_=*\s]{2,}(?:original message|original-nachricht|originalnachricht"
    r"|ursprüngliche nachricht|message d'origine|message d’origine|message original"
    r"|oorspronkelijk bericht|origineel bericht|原始邮件|原始郵件|opprinnelig melding"
    r"|oprindelig meddelelse|oprindelig besked|originalmeddelande|ursprungligt meddelande"
    r"|alkuperäinen viesti|mensaje original|messaggio originale|исходное сообщение"
    r"|původní zpráva|wiadomość oryginalna|oryginalna wiadomość|mensagem original"
    r"|eredeti üzenet|αρχικό μήνυμα|mesaj original|orijinal mesaj|الرسالة الأصلية"
    r"|元のメッセージ|원본 메시지)",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|original message follows|weitergeleitete nachricht"
    r"|message transféré|doorgestuurd bericht|mensaje reenviado|mensagem encaminhada"
    r"|messaggio inoltrato|videresendt (?:melding|meddelelse)|vidarebefordrat meddelande"
    r"|välitetty viesti|пересылаемое сообщение|转发的邮件|轉寄的郵件|wiadomość przekazana"
    r"|přeposlaná zpráva|továbbított üzenet)"
    r"|begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:"
    r"|début du message réexpédié\s*:|inicio del mensaje reenviado\s*:)",
    re.IGNORECASE,
)
# The one-line signatures that mobile clients append, in the languages of the corpora.
# Whole line only, short, and not a sentence ("Sent from my desk, is much easier..."
# is prose).
_MOBILE_SIGNATURE = re.compile(
    r"^(?:sent from (?:my )?[\w' -]{2,40}|sent (?:using|with) [\w' -]{2,40}"
    r"|get outlook for \w+|gesendet (?:von|mit|vom) [\w' -]{2,40}"
    r"|von meinem [\w' -]{2,30} gesendet|envoyé (?:de|depuis|à partir de) [\w' -]{2,40}"
    r"|verstuurd (?:vanaf|vanuit|met) [\w' -]{2,40}|verzonden (?:vanaf|vanuit|met) [\w' -]{2,40}"
    r"|enviado (?:desde|do|de) [\w' -]{2,40}|inviato da [\w' -]{2,40}"
    r"|skickat från [\w' -]{2,40}|sendt fra [\w' -]{2,40}|lähetetty [\w' -]{2,40}"
    r"|wysłane z [\w' -]{2,40}|отправлено (?:с|из) [\w' -]{2,40}"
    r"|trimis de pe [\w'‑ -]{2,40}|obter o outlook para \w+|az [\w-]+ küldve"
    r"|أُرسلت من الـ iPhone|从我的\w+发送|iPhoneから送信)(?:<[^>\s]{1,200}>)?$",
    re.IGNORECASE,
)
# A rule line: Outlook's "________________________________", Gmail's
# "------------------------------", "====" from French webmails.
_RULE = re.compile(r"^(?:[-_=]\s*){4,}$")
# What may follow a quote and still count as "nothing new": a signature separator or
# the rule that starts a mailing-list footer.
_FOOTER_START = re.compile(r"^(?:--\s*|[-_=—]{2,}.*)$")


def strip_quoted(text: str) -> str:
    """Return only what the sender newly wrote in `text` (plain text, "\\n" line ends)."""
    try:
        return _strip(text)
    except Exception:  # pragma: no cover - a bug here must not lose the message
        return _tidy(text.split("\n"))


def strip_quoted_html(html: str) -> str:
    """Return only what the sender newly wrote in an HTML-only mail, as plain text."""
    try:
        html = html[:MAX_HTML_CHARS]
        if not html.strip():
            return ""
        pruned = _prune_html(html)
        return strip_quoted(html_to_text(pruned if pruned is not None else html))
    except Exception:  # pragma: no cover - see strip_quoted
        try:
            return strip_quoted(html_to_text(html))
        except Exception:
            return ""


# ---------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------


def _clean(line: str) -> str:
    return line.translate(_INVISIBLE).strip()


def _tidy(lines: list[str]) -> str:
    # A line holding only a zero-width space or a direction mark (Arabic iPhone mail
    # ends with one) counts as blank at either end.
    start, end = 0, len(lines)
    while start < end and not _clean(lines[start]):
        start += 1
    while end > start and not _clean(lines[end - 1]):
        end -= 1
    return "\n".join(line.rstrip() for line in lines[start:end])


class _Lines:
    """The lines of one message, with cached classification."""

    def __init__(self, raw: list[str]) -> None:
        self.raw = raw
        self.clean = [_clean(line) for line in raw]
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


def _strip(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = text.split("\n")
    scanned, size = 0, 0
    for line in raw:
        size += len(line) + 1
        scanned += 1
        if size > MAX_SCAN_CHARS:
            break
    lines = _Lines(raw[:scanned])
    keep = _select(lines)
    if keep is None:
        # No quote start in the scanned part: the whole message is new text.
        return _tidy(raw)
    return _tidy([raw[k] for k in keep])


def _select(lines: _Lines) -> list[int] | None:
    """Indices of the lines to keep, or None when nothing was cut at all."""
    out: list[int] = []
    cut = False
    anchored = False  # inside an attributed reply: "> " lines are the old message
    i = 0
    while i < lines.n:
        if lines.blank(i):
            out.append(i)
            i += 1
            continue

        if not lines.quoted(i) and _FORWARD.match(lines.clean[i]):
            # Forwards are content; keep everything from here on.
            out.extend(range(i, lines.n))
            return out if cut else None

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
                else:
                    out.extend(range(i, end + 1))
                i = end + 1
                continue
            out = [k for k in out if k < start]
            return out

        span = _header_block(lines, i)
        if span is None and not _quote_follows(lines, i):
            # An attribution right above "> " lines is handled with its quote block.
            span = _attribution(lines, i)
        if span is not None:
            start, end = span
            cut = True
            if _has_content(lines, out, start):
                return [k for k in out if k < start]
            # Nothing written above the header: drop it and read on.
            out = [k for k in out if k < start]
            i = end + 1
            continue

        if _MOBILE_SIGNATURE.match(lines.clean[i]) and _has_content(lines, out, i):
            # "Sent from my iPhone" ends what the sender typed; some mobile clients put
            # the old message right under it with no header at all (seen with Outlook
            # for Android and a Wiko phone).
            out.append(i)
            if lines.next_nonblank(i + 1) < lines.n:
                return out
            i += 1
            continue

        out.append(i)
        i += 1
    return out if cut else None


def _next_marker(lines: _Lines, j: int) -> str:
    """The next quote marker from line `j` on: "quote" ("> "), "header" or "end"."""
    while j < lines.n:
        if not lines.blank(j):
            if lines.quoted(j):
                return "quote"
            if _header_block(lines, j) or (not _quote_follows(lines, j) and _attribution(lines, j)):
                return "header"
        j += 1
    return "end"


def _quote_follows(lines: _Lines, i: int) -> bool:
    j = lines.next_nonblank(i + 1)
    return j < lines.n and lines.quoted(j)


def _has_content(lines: _Lines, out: list[int], before: int) -> bool:
    return any(k < before and not lines.blank(k) for k in out)


def _quote_block_end(lines: _Lines, i: int) -> int:
    """Index of the last line of the "> " block that starts at `i`."""
    last = i
    j = i + 1
    while j < lines.n:
        if lines.quoted(j):
            last = j
            j += 1
        elif lines.blank(j):
            j += 1
        elif j == last + 1 and _lazy_continuation(lines, j):
            # Some clients wrap a long quoted line without repeating the ">" (seen from
            # Italian and Dutch webmails): one or two bare lines glued between quotes.
            while not lines.quoted(j):
                j += 1
        else:
            break
    return last


def _lazy_continuation(lines: _Lines, j: int) -> bool:
    for k in (j, j + 1):
        if k >= lines.n or lines.blank(k):
            return False
        if lines.quoted(k):
            return True
    return k + 1 < lines.n and lines.quoted(k + 1)


def _after_quote(lines: _Lines, end: int) -> str:
    """What follows a quote block: "none", a "footer" (signature/list footer) or "text"."""
    j = lines.next_nonblank(end + 1)
    if j >= lines.n:
        return "none"
    if _header_block(lines, j) or _attribution(lines, j) or _is_separator(lines, j):
        return "none"
    if _FOOTER_START.match(lines.clean[j]):
        return "footer"
    return "text"


def _soft_attribution_start(lines: _Lines, q: int) -> int:
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


def _attribution(lines: _Lines, e: int, soft: bool = False) -> tuple[int, int] | None:
    """(start, end) of an attribution whose last line is `e`, or None.

    With soft=True the next line is known to be quoted, so weaker evidence is enough.
    """
    if lines.quoted(e) or len(lines.clean[e]) > _MAX_HEADER_LINE:
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
    for k in range(_MAX_ATTRIBUTION_LINES):
        s = e - k
        if s < 0 or lines.blank(s) or lines.quoted(s) or len(lines.clean[s]) > _MAX_HEADER_LINE:
            break
        parts.insert(0, lines.clean[s])
        joined = _decorations(" ".join(parts))
        if _looks_like_attribution(joined, soft):
            return _attribution_top(lines, s, e), e
    return None


def _attribution_top(lines: _Lines, s: int, e: int) -> int:
    """Pull the wrapped first line(s) of an attribution into it.

    "wrote:" alone, or "<reply@reply.github.com>\nwrote:", is already an attribution;
    its first line is the one above that starts like one ("On Dec 16, 2011, at 12:47 PM,
    Corey Donohoe"). Prose above ("Hi,") does not start like one and stays.
    """
    if _ATTRIBUTION_START.match(lines.clean[s]):
        return s
    for top in range(s - 1, e - _MAX_ATTRIBUTION_LINES, -1):
        if top < 0 or lines.blank(top) or lines.quoted(top):
            break
        above = lines.clean[top]
        if len(above) > _MAX_HEADER_LINE or above.endswith((".", "!", "?")):
            break
        if _ATTRIBUTION_START.match(above):
            return top
    return s


def _decorations(text: str) -> str:
    # Zoho: "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@gmail.com wrote ----".
    return text.strip("-* ").strip()


def _ends_with_verb(text: str) -> bool:
    # _END_VERB is anchored at the end of the line; starting the search near the end
    # gives the same answer (\b and look-behinds still see the text before) in a
    # fraction of the time, which matters: this runs on most lines of every reply.
    # A reversed match proves a match of _END_VERB that starts where the reversed one
    # ends, and finding none proves there is none; only a match longer than the reach
    # (a verb followed by much white space) needs the search itself.
    found = _END_VERB_REVERSED.match(text[::-1])
    if found is None:
        return False
    if found.end() <= _END_VERB_REACH:
        return True
    return _END_VERB.search(text, max(0, len(text) - _END_VERB_REACH)) is not None


def _looks_like_attribution(text: str, soft: bool) -> bool:
    if len(text) > _MAX_HEADER_LINE:
        return False
    dated = _DATEISH.search(text) is not None
    has_address = "@" in text
    if _ends_with_verb(text):
        if text.endswith((":", "：")) or _ATTRIBUTION_START.match(text):
            return dated or soft or (has_address and _ADDRESS_WROTE.match(text) is not None)
        return False
    if _ENDS_COLON.search(text) and _MID_VERB.search(text):
        return dated or soft
    if has_address and _ENDS_ADDRESS_COLON.search(text):
        return _TIME.search(text) is not None or (soft and dated)
    if soft and has_address and dated:
        # Quoted-printable left undecoded breaks the verb ("w=\nrote:"), seen in
        # a forwarded Gmail thread; right above "> " lines the shape is enough.
        if _ENDS_ADDRESS.search(text):
            return True
        if _ENDS_COLON.search(text) and _ATTRIBUTION_START.match(text):
            return True
    return False


def _is_separator(lines: _Lines, i: int) -> bool:
    return _ORIGINAL_MESSAGE.match(lines.clean[i]) is not None


def _header_block(lines: _Lines, i: int) -> tuple[int, int] | None:
    """(start, end) of an Outlook-style header block that involves line `i`, or None.

    The start includes a rule line, an "-----Original Message-----" line and an
    attribution line directly above the headers; the end is the last header line plus
    its wrapped continuation.
    """
    c = lines.clean[i]
    if lines.quoted(i) or len(c) > _MAX_HEADER_LINE * 2:
        return None
    if _ORIGINAL_MESSAGE.match(c):
        return i, _header_end(lines, i)
    head = lines.header_text(i)
    if _FROM_HEADER.match(head):
        others = 0
        j = i + 1
        seen = 0
        while j < lines.n and seen < _HEADER_WINDOW:
            if not lines.blank(j):
                seen += 1
                if lines.quoted(j):
                    break
                if _OTHER_HEADER.match(lines.header_text(j)):
                    others += 1
            j += 1
        if others == 0 and len(_INLINE_HEADER.findall(head)) < 3:
            return None
    elif _OTHER_HEADER.match(head) and len(_INLINE_HEADER.findall(head)) >= 3:
        pass  # the one-line header block
    elif _OTHER_HEADER.match(head) and _from_below(lines, i):
        pass  # "Date:/Subject:" above "From:" (Hotmail), "Gesendet:" first (web.de)
    else:
        return None
    return _header_top(lines, i), _header_end(lines, i)


def _from_below(lines: _Lines, i: int) -> bool:
    j, seen = i + 1, 0
    while j < lines.n and seen < 4:
        if not lines.blank(j):
            seen += 1
            head = lines.header_text(j)
            if _FROM_HEADER.match(head):
                return True
            if not _OTHER_HEADER.match(head):
                return False
        j += 1
    return False


def _header_top(lines: _Lines, i: int) -> int:
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
            _OTHER_HEADER.match(lines.header_text(j))
            or _RULE.match(c)
            or _ORIGINAL_MESSAGE.match(c)
        ):
            top = j
            j -= 1
            continue
        # German Outlook for Android: "Am 20.06.24 um 16:20 schrieb Klarstein" (no colon)
        # directly above "Von:/Datum:/An:".
        if (
            _ATTRIBUTION_START.match(c)
            and _MID_VERB.search(c)
            and _DATEISH.search(c)
            and len(c) <= _MAX_HEADER_LINE
        ):
            top = j
        break
    return top


def _header_end(lines: _Lines, i: int) -> int:
    end = i
    j = i + 1
    seen = 0
    while j < lines.n and seen < _HEADER_WINDOW:
        if lines.blank(j):
            j += 1
            continue
        seen += 1
        head = lines.header_text(j)
        if _OTHER_HEADER.match(head) or _FROM_HEADER.match(head):
            end = j
        elif j == end + 1 and not lines.quoted(j) and seen <= _HEADER_WINDOW - 1:
            # A wrapped To: or Subject: line.
            if _looks_like_continuation(lines, j):
                end = j
            else:
                break
        else:
            break
        j += 1
    return end


def _looks_like_continuation(lines: _Lines, j: int) -> bool:
    # Only lines squeezed between two headers are continuations; anything else after
    # the last header is the start of the old body.
    k = j + 1
    return (
        k < lines.n
        and not lines.blank(k)
        and (_OTHER_HEADER.match(lines.header_text(k)) is not None)
    )


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
# Cap on blockquotes examined for "is anything written after it", each costing a walk
# over the rest of the document.
_MAX_BLOCKQUOTES = 50


def _prune_html(html: str) -> str | None:
    """`html` with the quote containers removed, or None if it cannot be parsed."""
    html = _XML_DECLARATION.sub("", html)
    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None

    # Markers after which everything is the old message, in document order:
    #  - Outlook on the web / new Outlook: <div id="appendonsend">, <hr> +
    #    <div id="divRplyFwdMsg"> holding From/Sent/To/Subject;
    #  - Hotmail: <hr id="stopSpelling">;
    #  - Thunderbird: <div class="moz-cite-prefix">On ... wrote:</div> + <blockquote>;
    #  - Outlook for Mac: <div id="OLK_SRC_BODY_SECTION">, <span id="OLK_SRC_BODY_SECTION">;
    #  - Gmail: the attribution and quote share <div class="gmail_quote">
    #    (newer Gmail: "gmail_quote_container").
    cut_markers = doc.xpath(
        "//*[@id='appendonsend' or @id='divRplyFwdMsg' or @id='stopSpelling'"
        " or @id='OLK_SRC_BODY_SECTION' or @id='mail-editor-reference-message-container'"
        " or contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')"
        " or contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote_container ')"
        " or (contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')"
        "     and not(ancestor::*[contains(concat(' ', normalize-space(@class), ' '),"
        "     ' gmail_quote ')]))"
        " or contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')"
        " or contains(concat(' ', normalize-space(@class), ' '), ' OutlookMessageHeader ')]"
    )
    # Outlook desktop: <div style="border:none;border-top:solid #E1E1E1 1.0pt;..."> (older
    # versions #B5C4DF) around the From/Sent/To/Subject paragraph; Windows 10 Mail uses a
    # border-top div too. Only divs whose text starts with a From header count.
    for div in doc.xpath(
        "//div[contains(translate(@style, 'BORDERTOP', 'bordertop'), 'border-top')]"
    ):
        head = _clean(div.text_content())[:200].strip("* ")
        if _FROM_HEADER.match(head):
            cut_markers.append(div)
    if cut_markers:
        first = min(cut_markers, key=_document_position(doc))
        if first.get("id") == "divRplyFwdMsg":
            prev = first.getprevious()
            if prev is not None and prev.tag == "hr":
                first = prev
        _cut_from(first)

    # Apple Mail, Thunderbird and Gmail mark quotes with <blockquote type="cite">;
    # mail.ru and Yandex use a bare <blockquote> after an "... от Alice <a@b.com>:" line.
    # A quote that nothing follows is history; one that the sender answered below is an
    # interleaved reply, where only the cited ones are removed.
    quotes = doc.xpath("//blockquote[not(ancestor::blockquote)]")
    for bq in quotes[:_MAX_BLOCKQUOTES]:
        if bq.getparent() is None:
            continue
        cited = (bq.get("type") or "").lower() == "cite"
        if cited or not _text_after(bq):
            bq.drop_tree()
    return str(lxml.html.tostring(doc, encoding="unicode"))


def _document_position(doc: HtmlElement) -> Callable[[HtmlElement], int]:
    order = {el: n for n, el in enumerate(doc.iter())}
    return lambda el: order.get(el, 0)


def _cut_from(el: HtmlElement) -> None:
    """Remove `el` and everything after it in document order."""
    node = el
    while node is not None:
        parent = node.getparent()
        if parent is None or node.tag in ("body", "html"):
            break
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)
        node.tail = None
        node = parent
    parent = el.getparent()
    if parent is not None:
        parent.remove(el)


def _text_after(el: HtmlElement) -> bool:
    texts = el.xpath("following::text()")
    return any(t.strip() for t in texts)
