"""languages.py: which of inboxd's languages a customer's or agent's tag means.

One place for the languages inboxd ships (SPEC §10.8) and for reading a tag as people
write it (zh_CN, zh-TW, de-AT, ZH-hant): mail templates, macro variants and quote
attributions all pick their variant here, so a customer tagged zh-TW gets Traditional
characters everywhere or nowhere. `detect` reads the language a customer wrote in: by
script for Chinese (Simplified or Traditional, told apart by OpenCC), Japanese and Korean,
and with lingua's n-gram models for the Latin-script languages, answering None rather
than guessing when a mail is too short to tell.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from inboxd.errors import InvalidValue

if TYPE_CHECKING:
    import lingua
    import opencc

# The languages of the bundled customer-facing text, English first (the fallback).
BUNDLED = ("en", "zh-Hans", "zh-Hant", "ja", "de", "fr", "es")
DEFAULT = "en"

_TAG = re.compile(r"^([a-z]{2,3})(?:-([a-z]{4}|[a-z]{2}|\d{3}))?$", re.IGNORECASE)
# Chinese written in Traditional characters: by script subtag, or by region.
_TRADITIONAL = {"hant", "tw", "hk", "mo"}


def normalized_tag(value: str) -> str:
    """A language tag in its usual case (zh-hans -> zh-Hans, pt_br -> pt-BR); "" = none.

    Raises InvalidValue for anything that is not a language tag, with an example."""
    value = value.strip().replace("_", "-")
    if not value:
        return ""
    match = _TAG.match(value)
    if not match:
        raise InvalidValue(
            "language", f"{value!r} is not a language tag like en, de, fr, zh-Hans, pt-BR"
        )
    primary, sub = match.group(1).lower(), match.group(2) or ""
    sub = sub.title() if len(sub) == 4 else sub.upper()
    return f"{primary}-{sub}" if sub else primary


def candidates(tag: str | None) -> list[str]:
    """The variants to try for `tag`, most specific first, never English unless asked:
    zh-TW -> [zh-Hant, zh]; zh -> [zh-Hans, zh]; de-AT -> [de-AT, de]; pt-BR -> [pt-BR, pt]."""
    parts = (tag or "").strip().replace("_", "-").split("-")
    primary = parts[0].lower()
    if not primary:
        return []
    subtags = {p.lower() for p in parts[1:]}
    if primary == "zh":
        return ["zh-Hant" if subtags & _TRADITIONAL else "zh-Hans", "zh"]
    try:
        full = normalized_tag(tag or "")
    except InvalidValue:
        return [primary]
    return [full, primary] if full != primary else [primary]


def variant(tag: str | None, available: Iterable[str], default: str = DEFAULT) -> str:
    """The best of `available` for `tag` (see candidates), else `default`.

    `available` holds tags in normalized case, such as a template folder's variants."""
    offered = set(available)
    for wanted in candidates(tag):
        if wanted in offered:
            return wanted
    return default


def bundled(tag: str | None) -> str:
    """The bundled language for `tag`: zh-TW -> zh-Hant, de-AT -> de, pt-BR -> en."""
    return variant(tag, BUNDLED)


# --- detection ----------------------------------------------------------------------------

_KANA = re.compile("[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HANGUL = re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")
_NOISE = re.compile(r"\S+@\S+|https?://\S+|www\.\S+|\S*\d\S*")
# The Latin-script languages told apart: the bundled ones, and the neighbours a Spanish
# or German mail is most often mistaken for, so that a Portuguese or Dutch customer is
# recorded as such (and gets English) instead of Spanish or German.
_LATIN_LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl")
# lingua's confidence (0..1, summing to 1 over the languages above) that settles it, and
# how far ahead of the runner-up it must be: below either, a mail such as "Danke" (German
# or Dutch) says nothing, and a later mail may tell. So does one under MIN_LETTERS ("ok",
# "Broken MIME").
MIN_CONFIDENCE = 0.4
MIN_LEAD = 2.0
MIN_LETTERS = 16
# The accented letters each of those languages writes. A text whose letters are more than
# FOREIGN_SHARE others (Czech č and ů, Estonian õ, Polish ł; or mojibake) is in a language
# not told apart here, which the models would still fit to the nearest one they know.
_OWN_LETTERS = {
    "en": "",
    "de": "äöüß",
    "fr": "àâæçéèêëîïôœùûüÿ",
    "es": "áéíñóúü",
    "pt": "áâãàçéêíóôõú",
    "it": "àèéìíîòóù",
    "nl": "áéëïóöüèàç",
}
FOREIGN_SHARE = 0.02
# Characters read: a mail's first lines say its language (0.3 ms, where 2000 took 1.3 ms).
_SAMPLE = 500


def detect(text: str) -> str | None:
    """The language `text` is written in as a tag of this module (en, zh-Hant, pt), or
    None when it is too short or mixed to tell or in a language not told apart here."""
    text = text[:_SAMPLE]
    return script_language(text) or _latin_language(text)


def script_language(text: str) -> str | None:
    """Japanese, Korean, or Simplified or Traditional Chinese, when most of `text` is in
    their scripts (a Han character counts as a short word); None otherwise. Cheap: no model."""
    kana, han, hangul = (len(p.findall(text)) for p in (_KANA, _HAN, _HANGUL))
    if (kana + han + hangul) * 3 < len(_LATIN.findall(text)) or not (kana + han + hangul):
        return None
    if hangul > kana + han:
        return "ko"
    if kana * 20 >= kana + han:  # Japanese writes its grammar in kana; Chinese has none
        return "ja"
    return "zh-Hant" if _is_traditional("".join(_HAN.findall(text))) else "zh-Hans"


def _is_traditional(han: str) -> bool:
    # Text written in Traditional changes under the fold to Simplified; Simplified stays.
    folded = _to_simplified().convert(han)
    changed = sum(a != b for a, b in zip(han, folded, strict=False))
    return changed * 10 >= len(han)


@cache
def _to_simplified() -> opencc.OpenCC:
    import opencc  # loaded on first use: its dictionaries take a few ms

    return opencc.OpenCC("tw2sp")


def _latin_language(text: str) -> str | None:
    words = _NOISE.sub(" ", text)
    if len(_LATIN.findall(words)) < MIN_LETTERS:
        return None
    with _BUILDING:  # one build, however many threads ask first
        detector, tags = _detector()
    values = detector.compute_language_confidence_values(words)
    best, runner_up = values[0].value, values[1].value
    if best < MIN_CONFIDENCE or best < MIN_LEAD * runner_up:
        return None
    language = tags[values[0].language]
    return language if _writes_like(words, language) else None


def _writes_like(text: str, language: str) -> bool:
    letters = _LATIN.findall(text.casefold())
    own = _OWN_LETTERS[language]
    foreign = sum(1 for c in letters if not c.isascii() and c not in own)
    return foreign <= FOREIGN_SHARE * len(letters)


def warm_up() -> None:
    """Load the detector's models now, so the first customer's mail does not wait for
    them. lingua loads them holding the GIL (about 1 s): every other thread of the
    process stops meanwhile, so a daemon calls this before it listens (serve.py)."""
    with _BUILDING:
        _detector()


_BUILDING = threading.Lock()


@cache
def _detector() -> tuple[lingua.LanguageDetector, dict[lingua.Language, str]]:
    # Built on first use (about 1 s and 130 MB for these models), never at import. All
    # models at once: loaded lazily, on the first text, the same models took 1.7 s.
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    tags = {
        Language.from_iso_code_639_1(getattr(IsoCode639_1, tag.upper())): tag
        for tag in _LATIN_LANGUAGES
    }
    builder = LanguageDetectorBuilder.from_languages(*tags).with_preloaded_language_models()
    return builder.build(), tags
