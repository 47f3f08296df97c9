"""plausible.py: does a decoded text look like what a person wrote? Used by charsets.py.

A declared charset is believed unless it is clearly wrong. "aaäöüßad" in ISO-8859-1 is
also valid GBK ("aa噈晧ad"), and a statistical guess picks GBK on so few bytes; but the
Latin reading is ordinary German, and the Chinese one is made of rare characters. So the
label is overridden only when its reading is implausible (symbols inside words, capitals
after small letters, words made of accented letters only: the look of mojibake) and
another reading is strongly plausible: nearly all of its letters are *common* ones of
one script (the 3,755 first-level GB2312 hanzi, Big5's frequent set, JIS level 1 kanji,
kana, the 2,350 KS X 1001 hangul, Cyrillic with sensible case).

Pure; no I/O.
"""

from __future__ import annotations

import re
import unicodedata

# Non-letters that Western text has between or inside words legitimately.
_TYPOGRAPHIC = set("’‘“”„«»–—…€£§°©®™·•¿¡\u00a0")
# Readings tried when a declared single-byte label is wrong, most common first.
_CANDIDATES = ("gb18030", "big5hkscs", "cp932", "cp949", "cp1251", "koi8_r")
# The share of non-ASCII characters that must be common for a reading to win.
_STRONG = 0.9


def latin_plausible(text: str) -> bool:
    """Whether a text read as Latin-1/windows-1252 looks like a Western language."""
    high = sum(1 for c in text if ord(c) > 0x7F)
    if high == 0:
        return True
    weird = 0
    for word in _words(text):
        accented = sum(1 for c in word if ord(c) > 0x7F)
        if not accented:
            continue
        if len(word) >= 4 and accented / len(word) > 0.6:
            weird += accented
            continue
        previous = ""
        for c in word:
            if ord(c) > 0x7F:
                symbol = (not c.isalpha() or c in "ªº") and c not in _TYPOGRAPHIC
                weird += symbol or (c.isupper() and previous.islower())
            previous = c
    return weird < max(1, 0.3 * high)


def _words(text: str) -> list[str]:
    # A "word" here is a run without spaces or ASCII punctuation, so symbols inside
    # a run of accented letters ("ÄãºÃ") stay inside it.
    out: list[str] = []
    current: list[str] = []
    for c in text:
        if c.isspace() or (c.isascii() and not c.isalnum()):
            if current:
                out.append("".join(current))
            current = []
        else:
            current.append(c)
    if current:
        out.append("".join(current))
    return out


def strong_reading(data: bytes) -> str | None:
    """The one reading of `data` whose characters are nearly all common ones, or None."""
    best: tuple[float, str] | None = None
    for codec in _CANDIDATES:
        try:
            text = data.decode(codec)
        except (UnicodeError, LookupError):
            continue
        share = common_share(text)
        if share >= _STRONG and (best is None or share > best[0]):
            best = (share, text)
    return best[1] if best else None


def common_share(text: str) -> float:
    """The share of a text's non-ASCII characters that are common in their script."""
    high = [c for c in text if ord(c) > 0x7F]
    if len(high) < 2:
        return 0.0
    if len(_SPACED_HAN.findall(text)) >= 2:
        # Chinese and Japanese put no spaces between words; Korean does, and EUC-KR
        # hangul bytes always read as first-level GB2312 hanzi: "救崇窍技夸 林巩捞".
        return 0.0
    common = 0
    previous = ""
    for c in text:
        if ord(c) > 0x7F and _common(c, previous):
            common += 1
        previous = c
    return common / len(high)


_SPACED_HAN = re.compile(r"[\u4e00-\u9fff] (?=[\u4e00-\u9fff])")


def _common(c: str, previous: str) -> bool:
    code = ord(c)
    if 0x3000 <= code <= 0x30FF or 0xFF01 <= code <= 0xFF5E:
        return True  # CJK punctuation, kana, full-width forms
    if 0x0410 <= code <= 0x044F or c in "Ёё":
        # A capital right after a small letter is what KOI8-R read as cp1251 looks like.
        return not (c.isupper() and previous.islower())
    if 0xAC00 <= code <= 0xD7A3:
        return _lead(c, "euc_kr", 0xB0, 0xC8)
    if unicodedata.category(c) == "Lo" and 0x4E00 <= code <= 0x9FFF:
        return (
            _lead(c, "gb2312", 0xB0, 0xD7)
            or _lead(c, "big5", 0xA4, 0xC6)
            or _lead(c, "shift_jis", 0x88, 0x98)
        )
    return False


def _lead(c: str, codec: str, low: int, high: int) -> bool:
    try:
        data = c.encode(codec)
    except UnicodeError:
        return False
    return len(data) == 2 and low <= data[0] <= high


def looks_written(text: str) -> bool:
    """Whether a text reads as a person's: common letters of one script, or Latin."""
    if common_share(text) >= _STRONG:
        return True
    high = [c for c in text if ord(c) > 0x7F]
    latin = all(c in _TYPOGRAPHIC or unicodedata.name(c, "").startswith("LATIN") for c in high)
    return latin and latin_plausible(text)
