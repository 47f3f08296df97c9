"""subjects.py: compare subjects the way people read them. Pure.

Reply and forward prefixes differ by language and client; "Re: AW: 回复: [#12] x" is the
same conversation as "x". Only prefixes at the start are removed, repeatedly.
"""

from __future__ import annotations

import re

# Seen in real mail: English, German (AW, WG), Nordic (SV, VS, VB, Vs), Dutch (Antw, Doorst),
# French (Réf, TR), Spanish/Portuguese (RV, ENC), Italian (R, I), Polish (Odp, PD),
# Czech (Odp, Fw), Finnish (VL, VS), Turkish (YNT, İLT), Greek (ΑΠ, ΣΧΕΤ, ΠΡΘ),
# Hebrew (השב), Chinese (回复, 答复, 转发, 回覆, 轉寄), Japanese (返信, 転送), Korean (회신, 전달).
_PREFIXES = (
    "re|r|aw|wg|sv|vs|vb|antw|antwort|doorst|réf|ref|tr|rv|enc|odp|pd|fw|fwd|vl|ynt|ilt|"
    "İlt|απ|σχετ|πρθ|השב|回复|答复|转发|回覆|轉寄|轉發|返信|転送|회신|전달"
)
_PREFIX = re.compile(
    rf"^\s*(?:(?:{_PREFIXES})\.?\s*(?:\[\d+\]|\(\d+\))?\s*[:：]|\[[^\]\[]{{0,40}}\]\s*(?=\S))\s*",
    re.IGNORECASE,
)


def subject_tag_pattern(subject_tag: str) -> re.Pattern[str]:
    """A regex that finds the configured ticket tag (e.g. "[#{id}]") and captures the id."""
    before, _, after = subject_tag.partition("{id}")
    return re.compile(re.escape(before) + r"\s*(\d{1,12})\s*" + re.escape(after))


def clean_subject(subject: str, tag: re.Pattern[str] | None = None) -> str:
    """The subject without reply/forward prefixes, list tags and inboxd's ticket tag."""
    text = tag.sub(" ", subject) if tag else subject
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text, count=1)
    return re.sub(r"\s{2,}", " ", text).strip()
