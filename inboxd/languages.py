"""languages.py: which of inboxd's languages a customer's or agent's tag means.

One place for the languages inboxd ships (SPEC §10.8) and for reading a tag as people
write it (zh_CN, zh-TW, de-AT, ZH-hant): mail templates, macro variants and quote
attributions all pick their variant here, so a customer tagged zh-TW gets Traditional
characters everywhere or nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from inboxd.errors import InvalidValue

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
