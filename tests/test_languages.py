"""Which of inboxd's languages a tag means (one reading for templates, macros and quotes),
and which language a customer wrote in."""

from __future__ import annotations

from pathlib import Path

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


# --- detection --------------------------------------------------------------------------

SAMPLES = Path(__file__).parent / "data" / "language_samples.tsv"


def _samples() -> list[tuple[str, str]]:
    rows = []
    for line in SAMPLES.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            language, text = line.split("\t", 1)
            rows.append((language, text.replace("\\n", "\n")))
    return rows


def test_short_first_mails_in_the_seven_bundled_languages_are_told_apart() -> None:
    samples = _samples()
    assert len(samples) >= 100 and {lang for lang, _ in samples} == set(languages.BUNDLED)
    results = [(expected, languages.detect(text)) for expected, text in samples]
    wrong = [(e, got) for e, got in results if got is not None and got != e]
    undecided = [e for e, got in results if got is None]
    # Never the wrong language (a German customer mailed in Dutch is worse than English);
    # "can't tell" leaves the profile open for the next mail.
    assert wrong == []
    assert len(undecided) <= len(samples) // 50


def test_traditional_and_simplified_chinese_and_japanese_go_by_their_script() -> None:
    assert languages.script_language("忘記密碼了怎麼辦") == "zh-Hant"
    assert languages.script_language("密码忘了怎么办") == "zh-Hans"
    assert languages.script_language("パスワードを忘れました") == "ja"
    assert languages.script_language("비밀번호를 잊어버렸어요") == "ko"
    assert languages.script_language("I forgot my password") is None


def test_a_chinese_mail_with_english_product_names_is_chinese() -> None:
    assert languages.detect("Outlook 2019 的 IMAP 设置一直报错，SMTP 端口是 587 吗？") == "zh-Hans"


def test_an_english_mail_with_a_chinese_signature_line_is_english() -> None:
    text = "Hello, the invoice for March is missing from the portal. Could you resend it?\n王小明"
    assert languages.detect(text) == "en"


@pytest.mark.parametrize("text", ["ok", "Danke", "Merci", "Thanks!", "👍", "", "12345 ???"])
def test_a_mail_too_short_to_tell_names_no_language(text: str) -> None:
    assert languages.detect(text) is None


def test_neighbours_of_the_bundled_languages_are_recorded_as_themselves() -> None:
    assert languages.detect("Obrigado, o meu pedido chegou hoje mas a caixa estava aberta") == "pt"
    assert languages.detect("Bedankt, maar mijn bestelling is nog steeds niet aangekomen") == "nl"


def test_addresses_links_and_numbers_do_not_sway_the_guess() -> None:
    text = (
        "Bitte senden Sie die Rechnung an buchhaltung@example.com, siehe https://example.com/r/4471"
    )
    assert languages.detect(text) == "de"


@pytest.mark.parametrize(
    "text",
    [
        "Tohle je test českých písmen odeslaných z gmailu, prosím o odpověď",  # Czech
        "Eelanalüüsi päring: palun saatke mulle hinnapakkumine",  # Estonian
        "Dzień dobry, moje zamówienie jeszcze nie dotarło, proszę o pomoc",  # Polish
    ],
)
def test_a_latin_script_language_not_told_apart_is_not_forced_into_a_near_one(
    text: str,
) -> None:
    assert languages.detect(text) is None


def test_a_foreign_name_in_the_signature_does_not_unsettle_the_language() -> None:
    text = (
        "Hello, the invoice for March is still missing from the customer portal, although"
        " the payment went through last week. Could you send it again?\n\nJørn Støylen"
    )
    assert languages.detect(text) == "en"
