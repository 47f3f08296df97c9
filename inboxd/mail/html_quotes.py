"""html_quotes.py: remove the quote containers that mail clients put in HTML replies.

Each client marks quoted history its own way (Outlook's divRplyFwdMsg, Gmail's
gmail_quote, Thunderbird's moz-cite-prefix, <blockquote type="cite">...). Cutting there,
before the HTML becomes text, is more reliable than finding the quote in the text. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from inboxd.mail import quote_patterns as patterns

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
# Cap on blockquotes examined for "is anything written after it", each costing a walk
# over the rest of the document.
_MAX_BLOCKQUOTES = 50


def prune_html(html: str) -> str | None:
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
        head = patterns.clean_line(div.text_content())[:200].strip("* ")
        if patterns.FROM_HEADER.match(head):
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
