"""quotes.strip_quoted / strip_quoted_html: what the sender newly wrote, nothing else.

Short synthetic mails, made here, one per client and language the module knows about.
"""

from __future__ import annotations

import time

import pytest

from inboxd.mail.quotes import strip_quoted, strip_quoted_html

NEW = "Thanks, that fixed it.\n\nBob"


def reply(header: str, quote: str = "> Did the fix work?\n>\n> Alice") -> str:
    return f"{NEW}\n\n{header}\n{quote}\n"


ATTRIBUTIONS = {
    "english gmail": "On Mon, Nov 23, 2026 at 10:00 AM Alice <a@b.com> wrote:",
    "english gmail wrapped": "On Mon, Nov 23, 2026 at 10:00 AM Alice Example <\na@b.com> wrote:",
    "english wrapped in three": "On Mon, Nov 23, 2026 at 10:00 AM, Alice\n<a@b.com>\nwrote:",
    "apple mail": "On 23 Nov 2026, at 10:00, Alice <a@b.com> wrote:",
    "german": "Am 23.11.2026 um 10:00 schrieb Alice <a@b.com>:",
    "german gmail": "Alice <a@b.com> schrieb am Mo., 23. Nov. 2026, 10:00:",
    "french": "Le lun. 23 nov. 2026 à 10:00, Alice <a@b.com> a écrit :",
    "spanish": "El lun, 23 nov 2026 a las 10:00, Alice (<a@b.com>) escribió:",
    "portuguese": "Em seg., 23 de nov. de 2026 às 10:00, Alice escreveu:",
    "italian": "Il giorno lun 23 nov 2026 alle ore 10:00 Alice <a@b.com> ha scritto:",
    "dutch": "Op ma 23 nov. 2026 om 10:00 schreef Alice <a@b.com>:",
    "swedish": "Den mån 23 nov. 2026 kl 10:00 skrev Alice <a@b.com>:",
    "norwegian": "man. 23. nov. 2026 kl. 10:00 skrev Alice <a@b.com>:",
    "danish": "Den 23. nov. 2026 kl. 10.00 skrev Alice <a@b.com>:",
    "finnish": "ma 23.11.2026 klo 10.00 Alice (a@b.com) kirjoitti:",
    "polish": "W dniu 23.11.2026 o 10:00 Alice <a@b.com> napisał(a):",
    "czech": "Dne po 23. 11. 2026 10:00 uživatel Alice <a@b.com> napsal:",
    "russian": "23.11.2026 10:00, Alice <a@b.com> написал(а):",
    "russian gmail": "пн, 23 нояб. 2026 г. в 10:00, Alice <a@b.com>:",
    "chinese": "在 2026年11月23日 周一 10:00，张三 <a@b.cn> 写道：",
    "chinese name first": "张三 <a@b.cn> 于2026年11月23日周一 10:00写道：",
    "japanese": "2026年11月23日(月) 10:00 Alice <a@b.com>:",
    "japanese san": "2026/11/23 10:00、Alice さんは書きました:",
    "korean": "2026년 11월 23일 (월) 오전 10:00, Alice <a@b.com>님이 작성:",
    "hungarian": "Alice <a@b.com> ezt írta (időpont: 2026. nov. 23., H, 10:00):",
    "greek": "Στις Δευ, 23 Νοε 2026 στις 10:00, ο/η Alice <a@b.com> έγραψε:",
    "romanian": "În lun., 23 nov. 2026 la 10:00, Alice <a@b.com> a scris:",
    "turkish": "Alice <a@b.com>, 23 Kas 2026 Pzt, 10:00 tarihinde şunu yazdı:",
    "arabic": "\u202bفي الاثنين، 23 نوفمبر 2026 10:00 ص، كتب Alice <a@b.com>:\u202c",
}


@pytest.mark.parametrize("header", ATTRIBUTIONS.values(), ids=ATTRIBUTIONS.keys())
def test_attribution_and_quote_are_dropped(header: str) -> None:
    assert strip_quoted(reply(header)) == NEW


@pytest.mark.parametrize("header", ATTRIBUTIONS.values(), ids=ATTRIBUTIONS.keys())
def test_attribution_cuts_even_without_quote_markers(header: str) -> None:
    # HTML-to-text conversions and some webmails quote without "> ".
    assert strip_quoted(reply(header, "Did the fix work?\n\nAlice")) == NEW


OUTLOOK_BLOCKS = {
    "english": "From: Alice <a@b.com>\nSent: Monday, November 23, 2026 10:00 AM\n"
    "To: Bob <b@b.com>\nSubject: RE: help",
    "german": "Von: Alice <a@b.com>\nGesendet: Montag, 23. November 2026 10:00\n"
    "An: Bob\nBetreff: AW: Hilfe",
    "french": "De : Alice <a@b.com>\nEnvoyé : lundi 23 novembre 2026 10:00\nÀ : Bob\n"
    "Objet : RE: aide",
    "spanish": "De: Alice <a@b.com>\nEnviado: lunes, 23 de noviembre de 2026 10:00\n"
    "Para: Bob\nAsunto: RE: ayuda",
    "dutch": "Van: Alice <a@b.com>\nVerzonden: maandag 23 november 2026 10:00\nAan: Bob\n"
    "Onderwerp: RE: hulp",
    "swedish": "Från: Alice <a@b.com>\nSkickat: den 23 november 2026 10:00\nTill: Bob\n"
    "Ämne: SV: hjälp",
    "norwegian": "Fra: Alice <a@b.com>\nSendt: 23. november 2026 10:00\nTil: Bob\nEmne: SV: hjelp",
    "polish": "Od: Alice <a@b.com>\nWysłano: poniedziałek, 23 listopada 2026 10:00\n"
    "Do: Bob\nTemat: RE: pomoc",
    "russian": "От: Alice <a@b.com>\nОтправлено: 23 ноября 2026 г. 10:00\nКому: Bob\n"
    "Тема: RE: помощь",
    "finnish": "Lähettäjä: Alice <a@b.com>\nLähetetty: maanantai 23. marraskuuta 2026 10.00\n"
    "Vastaanottaja: Bob\nAihe: VS: apua",
    "italian": "Da: Alice <a@b.com>\nInviato: lunedì 23 novembre 2026 10:00\nA: Bob\n"
    "Oggetto: R: aiuto",
    "chinese": "发件人: Alice <a@b.com>\n发送时间: 2026年11月23日 10:00\n"
    "收件人: Bob\n主题: 回复: 帮助",
    "chinese full-width colon": "发件人：Alice <a@b.com>\n日期：2026年11月23日 10:00\n"
    "收件人：Bob\n主题：回复：帮助",
    "traditional chinese": "寄件者: Alice <a@b.com>\n寄件日期: 2026年11月23日 10:00\n"
    "收件者: Bob\n主旨: 回覆: 幫助",
    "japanese": "差出人: Alice <a@b.com>\n送信日時: 2026年11月23日 10:00\n"
    "宛先: Bob\n件名: RE: 助け",
    "korean": "보낸 사람: Alice <a@b.com>\n보낸 날짜: 2026년 11월 23일 10:00\n받는 사람: Bob\n"
    "제목: RE: 도움",
    "bold from the html view": "*From:* Alice [mailto:a@b.com]\n*Sent:* Monday, November 23, "
    "2026 10:00 AM\n*To:* Bob\n*Subject:* RE: help",
}


@pytest.mark.parametrize("block", OUTLOOK_BLOCKS.values(), ids=OUTLOOK_BLOCKS.keys())
def test_outlook_header_block_and_everything_below_is_dropped(block: str) -> None:
    assert strip_quoted(f"{NEW}\n\n{block}\n\nDid the fix work?\n\nAlice") == NEW


SEPARATORS = [
    "________________________________",
    "-----Original Message-----",
    "----- Original Message -----",
    "-------- Original Message --------",
    "-----Ursprüngliche Nachricht-----",
    "-----Message d'origine-----",
    "-----Oorspronkelijk bericht-----",
    "----- 原始邮件 -----",
    "-----Opprinnelig melding-----",
    "-----Alkuperäinen viesti-----",
    "-----Mensaje original-----",
    "-----Messaggio originale-----",
    "-----Исходное сообщение-----",
    "-----Původní zpráva-----",
    "-----Wiadomość oryginalna-----",
]


@pytest.mark.parametrize("separator", SEPARATORS)
def test_separator_above_outlook_headers_is_dropped_too(separator: str) -> None:
    body = f"{NEW}\n\n{separator}\n{OUTLOOK_BLOCKS['english']}\n\nDid it work?"
    assert strip_quoted(body) == NEW


@pytest.mark.parametrize("separator", [s for s in SEPARATORS if "_" not in s])
def test_original_message_line_cuts_without_headers(separator: str) -> None:
    assert strip_quoted(f"{NEW}\n\n{separator}\n\nDid it work?") == NEW


def test_outlook_header_split_over_two_lines_is_found() -> None:
    body = f"{NEW}\n\nFrom: Human Resources\n<hr@example.com>\nSent: Monday\nTo: Bob\n\nold"
    assert strip_quoted(body) == NEW


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nBob Example\nACME Support",
        "Sent from my iPhone",
        "Best regards,\nAnna",
        "Gesendet von meinem iPhone",
        "Envoyé de mon iPhone",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
    ],
)
def test_signature_above_the_quote_is_kept(signature: str) -> None:
    body = f"Hello\n\n{signature}\n\nOn 23 Nov 2026, at 10:00, Alice <a@b.com> wrote:\n\n> Hi\n"
    # Trailing spaces go on every line, the "-- " delimiter's too.
    expected = "\n".join(line.rstrip() for line in f"Hello\n\n{signature}".split("\n"))
    assert strip_quoted(body) == expected


def test_text_after_a_mobile_signature_is_old_mail() -> None:
    body = "Hello\n\nSent from my Wiko RIDGE FAB 4G\n\nDid the fix work?"
    assert strip_quoted(body) == "Hello\n\nSent from my Wiko RIDGE FAB 4G"


def test_prose_that_starts_like_a_mobile_signature_is_kept() -> None:
    body = "Hello\n\nSent from my desk, is much easier than my phone.\n\nBob"
    assert strip_quoted(body) == body


def test_mail_without_quote_is_returned_tidied() -> None:
    assert strip_quoted("\n\n  Hello  \nworld \n\n\n") == "  Hello\nworld"


def test_command_block_at_top_is_ordinary_text() -> None:
    body = (
        "#status pending\n#assign anna\n\nWorking on it.\n\n"
        "On Mon, 23 Nov 2026 at 10:00, Alice <a@b.com> wrote:\n> Help"
    )
    assert strip_quoted(body) == "#status pending\n#assign anna\n\nWorking on it."


def test_angle_bracket_inside_new_text_is_not_a_quote_start() -> None:
    body = "Use a > b in the filter.\nThen x -> y.\n\nBob"
    assert strip_quoted(body) == body


def test_quote_block_followed_by_more_text_without_attribution_is_kept() -> None:
    body = "About this:\n> the disk is full\n\nI freed 10 GB.\n\nBob"
    assert strip_quoted(body) == body


def test_trailing_quote_block_without_attribution_is_dropped() -> None:
    assert strip_quoted("Hello\n\n> Hi\n> there\n") == "Hello"


def test_interleaved_reply_keeps_each_answer_with_its_question() -> None:
    # Issue #10: an answer without the question it answers ("Yes.") means nothing to an
    # agent; only the attribution goes.
    body = (
        "On Mon, Nov 23, 2026 at 10:00 AM Alice <a@b.com> wrote:\n"
        "> First question?\n\nFirst answer.\n\n> Second question?\n\nSecond answer.\n"
    )
    assert strip_quoted(body) == (
        "> First question?\n\nFirst answer.\n\n> Second question?\n\nSecond answer."
    )


def test_interleaved_reply_drops_the_trailing_history() -> None:
    body = (
        "On Mon, Nov 23, 2026 at 10:00 AM Alice <a@b.com> wrote:\n"
        "> First?\nYes.\n> Second?\nNo.\n> Regards, Alice\n>\n"
        "> On Sun, Nov 22, 2026 at 9:00 AM Carol <c@d.com> wrote:\n> > old\n"
    )
    assert strip_quoted(body) == "> First?\nYes.\n> Second?\nNo."


def test_short_quoted_line_then_bare_answer_is_not_a_wrapped_quote() -> None:
    body = "On 23.11.26 10:00, Alice wrote:\n> Version?\n3.2.1\n> Crash?\nOnly after login.\n"
    assert strip_quoted(body) == "> Version?\n3.2.1\n> Crash?\nOnly after login."


def test_a_mail_that_is_only_a_quote_keeps_it() -> None:
    assert strip_quoted("> Hello\n> my order is late\n") == "> Hello\n> my order is late"


def test_bottom_posted_reply_keeps_the_text_below_the_quote() -> None:
    body = "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello"
    assert strip_quoted(body) == "Hello"


def test_forwarded_message_is_kept_whole() -> None:
    body = (
        "Please look at this.\n\n---------- Forwarded message ---------\n"
        "From: Carol <c@d.com>\nDate: Mon, Nov 23, 2026 at 10:00 AM\nSubject: broken\n"
        "To: Bob <b@b.com>\n\nIt is broken.\n"
    )
    assert strip_quoted(body) == body.strip()


def test_prose_starting_with_on_is_not_an_attribution() -> None:
    body = "On the other hand, we wrote:\nthis in 2026.\n\nOn Monday I will call.\n\nBob"
    assert strip_quoted(body) == body


def test_from_in_prose_is_not_an_outlook_header() -> None:
    body = "From: the logs it looks fine.\nThe data comes from: our database.\n\nBob"
    assert strip_quoted(body) == body


def test_outlook_header_at_the_very_top_is_dropped_and_the_rest_kept() -> None:
    body = "From: Alice <a@b.com>\nSent: Monday\nTo: Bob\nSubject: x\n\nPlease help."
    assert strip_quoted(body) == "Please help."


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "\n\n\n",
        ">",
        ">:",
        "> " * 10_000,
        "On wrote:",
        "From:\nSent:\nTo:",
        "\x00\x01\ufeff\u200f",
        "a" * 200_000,
        "@" * 50_000 + ":",
        ("On " + "1" * 300 + " wrote:\n") * 300,
        "-" * 100_000,
        ("From: x\n" * 5_000),
        "\r\n".join(["> quoted", "new"] * 2_000),
    ],
    ids=lambda g: repr(g[:20]),
)
def test_garbage_never_raises(garbage: str) -> None:
    assert isinstance(strip_quoted(garbage), str)
    assert isinstance(strip_quoted_html(garbage), str)


def test_huge_body_is_handled_quickly() -> None:
    body = "Hello\n\n" + ("lorem ipsum dolor sit amet, " * 3 + "\n") * 60_000
    body += "\nOn Mon, Nov 23, 2026 at 10:00 AM Alice <a@b.com> wrote:\n> old\n"
    started = time.perf_counter()
    result = strip_quoted(body)
    assert time.perf_counter() - started < 5
    # Past MAX_SCAN_CHARS the module stops looking for quotes and keeps the rest.
    assert result.startswith("Hello")


def test_pathological_line_is_linear() -> None:
    line = "On " + "x@y." * 20_000 + " wrote"
    started = time.perf_counter()
    strip_quoted(("Hi\n" + line + "\n") * 3)
    assert time.perf_counter() - started < 2


HTML_CASES = {
    "gmail": '<div dir="ltr">Fixed.<br><br>Bob</div><div class="gmail_quote">'
    '<div class="gmail_attr">On Mon, Nov 23, 2026 at 10:00 AM Alice &lt;a@b.com&gt; wrote:'
    '</div><blockquote class="gmail_quote">Did it work?</blockquote></div>',
    "apple mail": '<div>Fixed.<br><br>Bob</div><div><br><blockquote type="cite">'
    "<div>On 23 Nov 2026, at 10:00, Alice &lt;a@b.com&gt; wrote:</div>"
    "<div>Did it work?</div></blockquote></div>",
    "outlook web": '<div>Fixed.<br><br>Bob</div><div id="appendonsend"></div><hr>'
    '<div id="divRplyFwdMsg"><b>From:</b> Alice<br><b>Sent:</b> Monday</div>'
    "<div>Did it work?</div>",
    "outlook desktop": "<div class=WordSection1><p>Fixed.</p><p>Bob</p><div>"
    "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>"
    "<p><b>From:</b> Alice<br><b>Sent:</b> Monday<br><b>To:</b> Bob</p></div></div>"
    "<p>Did it work?</p></div>",
    "thunderbird": '<p>Fixed.<br><br>Bob</p><div class="moz-cite-prefix">On 23.11.2026 10:00,'
    ' Alice wrote:<br></div><blockquote type="cite">Did it work?</blockquote>',
    "yahoo": '<div>Fixed.<br><br>Bob</div><div class="yahoo_quoted"><div>On Monday, '
    "November 23, 2026, 10:00 AM, Alice &lt;a@b.com&gt; wrote:</div><div>Did it work?"
    "</div></div>",
    "yandex": '<p>Fixed.<br /><br />Bob<br /><br />23.11.2026, 10:00, "Alice" '
    "&lt;a@b.com&gt;:</p><blockquote>Did it work?</blockquote>",
}


@pytest.mark.parametrize("html", HTML_CASES.values(), ids=HTML_CASES.keys())
def test_html_quote_containers_are_removed(html: str) -> None:
    assert "".join(strip_quoted_html(html).split()) == "Fixed.Bob"


def test_html_interleaved_blockquote_without_cite_is_kept() -> None:
    html = "<p>About this:</p><blockquote>the disk is full</blockquote><p>I freed 10 GB.</p>"
    assert "the disk is full" in strip_quoted_html(html)


def test_html_with_xml_declaration_is_parsed() -> None:
    html = '<?xml version="1.0" encoding="UTF-8"?><html><body><p>Hi</p></body></html>'
    assert strip_quoted_html(html) == "Hi"


def test_a_pasted_changelog_entry_is_not_an_attribution() -> None:
    body = (
        "The crash started after this change:\n\n"
        "2026-11-20  Carol Customer  <carol@example.org>\n\n"
        "\t* src/main.c: Fix the parser.\n\nCan you look?"
    )
    assert strip_quoted(body) == body


def test_date_first_attribution_without_verb_ends_the_new_text() -> None:
    body = "Thanks!\n\n2026/11/23 Carol Customer <carol@example.org>\n\nold text\n"
    assert strip_quoted(body) == "Thanks!"


def test_a_prose_line_that_ends_like_a_client_line_does_not_end_the_new_text() -> None:
    # "Sent from the office." in Korean, then more text: only a line at the very end
    # is dropped as client boilerplate (boilerplate.py), never taken as a cut.
    body = "Hello\n\n회사에서 보냈습니다.\n\n내일 다시 연락드리겠습니다."
    assert strip_quoted(body) == body


@pytest.mark.parametrize(
    "form",
    ["From: Berlin\nTo: Munich\nDate: 24.11.2026", "De : Paris\nÀ : Lyon\nDate : 24/11/2026"],
)
def test_a_typed_booking_is_not_a_header_block(form: str) -> None:
    # A mail's header block names an address or a subject, or sits under a rule, an
    # "Original Message" line or an attribution; a route the customer typed does not.
    body = f"Hi,\n\nmy booking:\n{form}\n\nPlease move it to Friday."
    assert strip_quoted(body) == body
