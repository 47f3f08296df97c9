"""Which of inboxd's languages a tag means: one reading for templates, macros and quotes."""

from __future__ import annotations

import pytest

from inboxd import languages
from inboxd.errors import InvalidValue


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-hant", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("zh_CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("ZH-hans", "zh-Hans"),
        ("de-AT", "de"),
        ("fr-CA", "fr"),
        ("ja", "ja"),
        ("es-419", "es"),
        ("pt-BR", "en"),
        ("", "en"),
        (None, "en"),
        ("not a tag", "en"),
    ],
)
def test_a_tag_as_people_write_it_picks_a_bundled_language(tag: str | None, expected: str) -> None:
    assert languages.bundled(tag) == expected


def test_the_most_specific_variant_wins_and_a_missing_one_falls_back() -> None:
    assert languages.variant("pt-BR", ["pt", "pt-BR"]) == "pt-BR"
    assert languages.variant("pt-PT", ["pt", "pt-BR"]) == "pt"
    assert languages.variant("zh-TW", ["zh-Hans"], default="") == ""
    assert languages.variant("sv", [], default="en") == "en"


def test_tags_are_written_in_their_usual_case() -> None:
    assert languages.normalized_tag(" zh_hant ") == "zh-Hant"
    assert languages.normalized_tag("PT-br") == "pt-BR"
    assert languages.normalized_tag("") == ""
    with pytest.raises(InvalidValue, match="not a language tag"):
        languages.normalized_tag("Deutsch!")
