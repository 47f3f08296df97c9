"""Cases for issue #10's classes of mail, written here by hand (none copied from real mail).

Each case imitates what a real client produces (Outlook, Gmail, Apple Mail, Thunderbird,
Foxmail, QQ Mail, Yahoo, mobile clients), in the languages inboxd supports. They are data
only: tests/test_mail_classes.py asserts them and bench/mail_classes.py scores them per
class, before and after a change.

Classes 1-3 give a plain-text body and the new text inboxd must store for it. Classes
4-6 give a raw message and the fields that must come out of it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

ATTR = "On Mon, Nov 23, 2026 at 10:00 AM Alice Agent <alice@support.example> wrote:"


@dataclass(frozen=True)
class TextCase:
    """A reply body and the text a person newly wrote in it."""

    cls: int
    name: str
    body: str
    expected: str
    html: bool = False  # `body` is the HTML of an HTML-only mail


@dataclass(frozen=True)
class RawCase:
    """A raw message and what parsing must make of it (only the fields given are checked)."""

    cls: int
    name: str
    raw: bytes
    subject: str | None = None
    sender: str | None = None  # the sender's address, "" for none
    sender_name: str | None = None
    sender_problem: bool | None = None  # whether a problem must be flagged
    filenames: tuple[str, ...] | None = None
    body: str | None = None
    flagged_headers: tuple[str, ...] = field(default=())  # headers read in degraded mode


def message(headers: bytes, body: bytes = b"Hello\r\n") -> bytes:
    """A whole message: the given header lines, a Message-ID, and the body."""
    if not headers.endswith(b"\r\n"):
        headers += b"\r\n"
    return headers + b"Message-ID: <case@client.example>\r\n\r\n" + body


# --- class 1: interleaved replies, quote-only mail, bottom-posting ----------------------

INTERLEAVED = [
    TextCase(
        1,
        "gmail-inline-answers",
        f"{ATTR}\n> What is your order number?\n\n12345\n\n> Which address should we use?\n\n"
        "Hauptstr. 1, Berlin\n\nThanks\nCarol\n",
        "> What is your order number?\n\n12345\n\n> Which address should we use?\n\n"
        "Hauptstr. 1, Berlin\n\nThanks\nCarol",
    ),
    TextCase(
        1,
        "thunderbird-inline-with-greeting",
        "Hi Alice,\n\nanswers below.\n\nOn 23.11.26 10:00, Alice Agent wrote:\n"
        "> Which version do you run?\n3.2.1\n> Does it crash at start?\nOnly after login.\n",
        "Hi Alice,\n\nanswers below.\n\n> Which version do you run?\n3.2.1\n"
        "> Does it crash at start?\nOnly after login.",
    ),
    TextCase(
        1,
        "inline-then-trailing-history",
        "Answers inline.\n\n> What is your order number?\n12345\n\n> Which address?\nBerlin\n\n"
        "On Sun, 22 Nov 2026 at 09:00, Carol <carol@customer.example> wrote:\n"
        "> Hello, my order is late.\n> Carol\n",
        "Answers inline.\n\n> What is your order number?\n12345\n\n> Which address?\nBerlin",
    ),
    TextCase(
        1,
        "german-inline",
        "Am 23.11.2026 um 10:00 schrieb Alice Agent <alice@support.example>:\n"
        "> Welche Bestellnummer?\n\nA-778\n\n> Seit wann?\n\nSeit Montag.\n\nGrüße\nJürgen\n",
        "> Welche Bestellnummer?\n\nA-778\n\n> Seit wann?\n\nSeit Montag.\n\nGrüße\nJürgen",
    ),
    TextCase(1, "only-a-quote", "> Hello\n> my order is late\n", "> Hello\n> my order is late"),
    TextCase(
        1,
        "only-an-attributed-quote",
        f"{ATTR}\n> Did the fix work?\n",
        f"{ATTR}\n> Did the fix work?",
    ),
    TextCase(
        1,
        "bottom-posted-list-reply",
        "On 23/11/2026 10:00, Alice Agent wrote:\n> Did it work?\n> Tell us.\n\n"
        "Yes, it did. Thanks for the quick fix.\n",
        "Yes, it did. Thanks for the quick fix.",
    ),
    TextCase(
        1,
        "top-posted-plain",
        f"It works now, thank you.\n\n{ATTR}\n> Did it work?\n",
        "It works now, thank you.",
    ),
]

# --- class 2: attribution lines and header blocks as clients really write them ----------

_NEW = "Thanks, that helped."

ATTRIBUTIONS = [
    TextCase(2, name, f"{_NEW}\n\n{attribution}\n\n{old}\n", _NEW)
    for name, attribution, old in [
        ("cn-date-no-verb-quoted", "2026-11-23 10:12 GMT+08:00 张三 <zhang@shop.cn>:", "> 您好"),
        ("cn-date-no-verb-bare", "2026-11-23 10:12 GMT+08:00 张三 <zhang@shop.cn>:", "您好，请问"),
        ("slash-date-quoted", "2026/11/23 Carol Customer <carol@customer.example>", "> hi"),
        ("slash-date-bare", "2026/11/23 Carol Customer <carol@customer.example>", "hi there"),
        ("name-address-wrote-bare", "Carol Customer <carol@customer.example> wrote:", "old text"),
        ("name-address-wrote-quoted", "Carol Customer <carol@customer.example> wrote:", "> old"),
        ("fr-name-address-bare", '"Carole" <carole@client.fr> a écrit :', "ancien texte"),
        ("es-name-address-bare", "Carla <carla@cliente.es> escribió:", "texto antiguo"),
        (
            "outlook-two-lines",
            "On Mon, Nov 23, 2026 at 10:00 AM Carol Customer\n<carol@customer.example> wrote:",
            "old text",
        ),
        (
            "outlook-mailto",
            "On Mon, Nov 23, 2026 at 10:00 AM Carol Customer <carol@customer.example"
            "<mailto:carol@customer.example>>\nwrote:",
            "old text",
        ),
        (
            "four-lines-lone-wrote",
            "On Mon, Nov 23, 2026 at 10:00 AM\nCarol Customer\n<carol@customer.example>\nwrote:",
            "old text",
        ),
        (
            "de-two-lines",
            "Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb Carol Kundin <\ncarol@kunde.de>:",
            "> alt",
        ),
        ("jp-gmail", "2026年11月23日(月) 10:12 山田太郎 <taro@example.jp>:", "> 以前の"),
        (
            "original-message",
            "-----Original Message-----\nFrom: Carol <carol@customer.example>\nSent: Monday, "
            "November 23, 2026 10:00 AM\nTo: support@support.example\nSubject: order",
            "old",
        ),
        (
            "outlook-fr",
            "De : Carole <carole@client.fr>\nEnvoyé : lundi 23 novembre 2026 10:00\n"
            "À : support@support.example\nObjet : RE: commande",
            "ancien",
        ),
        (
            "outlook-de",
            "Von: Carol <carol@kunde.de>\nGesendet: Montag, 23. November 2026 10:00\n"
            "An: support@support.example\nBetreff: AW: Bestellung",
            "alt",
        ),
        (
            "outlook-cn",
            "发件人: 张三 <zhang@shop.cn>\n发送时间: 2026年11月23日 10:12\n"
            "收件人: support@support.example\n主题: 问题",
            "旧的",
        ),
        (
            "qq-mail",
            '------------------ 原始邮件 ------------------\n发件人: "张三"<zhang@qq.com>;\n'
            '发送时间: 2026年11月23日(星期一) 上午10:12\n收件人: "support"<s@support.example>;\n'
            "主题: 问题",
            "旧的",
        ),
        (
            "outlook-html-converted-bold",
            "________________________________\n*From:* Carol Customer <carol@customer.example"
            "<mailto:carol@customer.example>>\n*Sent:* Monday, November 23, 2026 10:00 AM\n"
            "*To:* Support <support@support.example<mailto:support@support.example>>\n"
            "*Subject:* order",
            "old",
        ),
        (
            "outlook-es",
            "De: Carla <carla@cliente.es>\nEnviado: lunes, 23 de noviembre de 2026 10:00\n"
            "Para: support@support.example\nAsunto: RE: pedido",
            "antiguo",
        ),
        (
            "outlook-jp",
            "差出人: 山田太郎 <taro@example.jp>\n送信日時: 2026年11月23日 10:12\n"
            "宛先: support@support.example\n件名: RE: 注文",
            "以前の",
        ),
        (
            "yahoo-attribution",
            "On Monday, November 23, 2026, 10:00:00 AM GMT+1, Carol Customer "
            "<carol@customer.example> wrote:",
            "old",
        ),
    ]
]

# Text that looks like a quote start but is what the customer wrote: nothing may be cut.
NOT_ATTRIBUTIONS = [
    TextCase(2, name, body, body.strip())
    for name, body in [
        (
            "booking-form-en",
            "Hi,\n\nmy booking:\nFrom: Berlin\nTo: Munich\nDate: 24.11.2026\n\n"
            "Please move it to Friday.\n\nCarol",
        ),
        ("booking-form-fr", "Bonjour,\n\nDe : Paris\nÀ : Lyon\nDate : 24/11/2026\n\nMerci.\n"),
        (
            "booking-form-de",
            "Hallo,\n\nVon: Berlin Hbf\nAn: München Hbf\nDatum: 24.11.2026\n\nBitte umbuchen.",
        ),
        (
            "pasted-changelog",
            "It broke after this:\n\n2026-11-20  Carol Customer  <carol@example.org>\n\n"
            "\t* src/main.c: Fix the parser.\n\nCan you look?",
        ),
        ("korean-prose-line", "Hello\n\n회사에서 보냈습니다.\n\n내일 다시 연락드리겠습니다."),
    ]
]

_HTML_NEW = "<div>Thanks, that helped.</div>"

HTML_ATTRIBUTIONS = [
    TextCase(2, name, f"<html><body>{_HTML_NEW}{quote}</body></html>", _NEW, html=True)
    for name, quote in [
        (
            "html-outlook-desktop",
            '<div id="divRplyFwdMsg"><hr><b>From:</b> Carol &lt;carol@x.org&gt;<br><b>Sent:</b> '
            "Monday, November 23, 2026 10:00 AM<br><b>To:</b> support@s.example<br>"
            "<b>Subject:</b> order</div><div>old text</div>",
        ),
        (
            "html-outlook-web-fr",
            '<hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg" dir="ltr">'
            "<b>De :</b> Carole &lt;c@x.fr&gt;<br><b>Envoyé :</b> lundi 23 novembre 2026 10:00"
            "<br><b>À :</b> support@s.example<br><b>Objet :</b> RE: commande</div>"
            "<div>ancien</div>",
        ),
        (
            "html-gmail-zh",
            '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">张三 &lt;<a href="mailto:'
            'z@s.cn">z@s.cn</a>&gt; 于2026年11月23日周一 10:12写道：<br></div>'
            '<blockquote class="gmail_quote">您好</blockquote></div>',
        ),
        (
            "html-qq-mail",
            "<div><div>------------------&nbsp;原始邮件&nbsp;------------------</div><div><b>发件人:"
            '</b>&nbsp;"张三"&lt;z@qq.com&gt;;</div><div><b>发送时间:</b>&nbsp;'
            "2026年11月23日(星期一) 上午10:12</div>"
            '<div><b>收件人:</b>&nbsp;"support"&lt;s@s.example&gt;;</div><div><b>主题:'
            "</b>&nbsp;问题</div></div><div>旧的</div>",
        ),
        (
            "html-foxmail",
            '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
            '<div><b>From:</b>&nbsp;<a href="mailto:z@s.cn">张三</a></div><div><b>Date:</b>&nbsp;'
            '2026-11-23&nbsp;10:12</div><div><b>To:</b>&nbsp;<a href="mailto:s@s.example">support'
            "</a></div><div><b>Subject:</b>&nbsp;问题</div></div><div>旧的</div>",
        ),
        (
            "html-outlook-de",
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt"><p><b>Von:</b> Carol '
            "&lt;c@kunde.de&gt;<br><b>Gesendet:</b> Montag, 23. November 2026 10:00<br><b>An:</b>"
            " support@s.example<br><b>Betreff:</b> AW: Bestellung</p></div><p>alt</p>",
        ),
        (
            "html-yahoo",
            '<div class="yahoo_quoted"><div>On Monday, November 23, 2026, 10:00:00 AM GMT+1, Carol'
            " &lt;c@x.org&gt; wrote:</div><div>old text</div></div>",
        ),
        (
            "html-mailto-broken-attribution",
            '<p>On Mon, Nov 23, 2026 at 10:00 AM Carol Customer &lt;<a href="mailto:c@x.org">'
            "c@x.org</a>&gt;<br>wrote:</p><p>old text</p>",
        ),
    ]
]

# --- class 3: mobile and client boilerplate, delimiter runs -----------------------------

BOILERPLATE = [
    TextCase(3, name, f"Thanks, it works.\n\n{tail}", expected)
    for name, tail, expected in [
        ("iphone", "Sent from my iPhone", "Thanks, it works."),
        ("iphone-fr", "Envoyé de mon iPhone", "Thanks, it works."),
        ("ipad-da", "Sendt fra min iPad", "Thanks, it works."),
        ("android-de", "Von meinem Android gesendet", "Thanks, it works."),
        ("iphone-zh", "发自我的iPhone", "Thanks, it works."),
        ("iphone-zh-tw", "從我的 iPhone 傳送", "Thanks, it works."),
        ("iphone-ja", "iPhoneから送信", "Thanks, it works."),
        ("iphone-es", "Enviado desde mi iPhone", "Thanks, it works."),
        ("outlook-ios", "Get Outlook for iOS<https://aka.ms/o0ukef>", "Thanks, it works."),
        ("outlook-android", "Get Outlook for Android", "Thanks, it works."),
        ("yahoo-android", "Sent from Yahoo Mail on Android", "Thanks, it works."),
        ("samsung", "Sent from my Galaxy", "Thanks, it works."),
        ("samsung-ko", "삼성 갤럭시 스마트폰에서 보냈습니다.", "Thanks, it works."),
        ("iphone-tr", "iPhone'umdan gönderildi", "Thanks, it works."),
        ("iphone-cs", "Odesláno z iPhonu", "Thanks, it works."),
        ("iphone-el", "Στάλθηκε από το iPhone μου", "Thanks, it works."),
        ("iphone-he", "נשלח מה-iPhone שלי", "Thanks, it works."),
        ("iphone-vi", "Gửi từ iPhone của tôi", "Thanks, it works."),
        ("android-ja", "Android端末から送信", "Thanks, it works."),
        ("delimiter-runs", "--\n***\n____\n====", "Thanks, it works."),
        ("iphone-then-delimiter", "Sent from my iPhone\n\n--", "Thanks, it works."),
        (
            "real-signature-kept",
            "Carol Customer\nHead of IT, Example GmbH\n+49 30 1234567",
            "Thanks, it works.\n\nCarol Customer\nHead of IT, Example GmbH\n+49 30 1234567",
        ),
        (
            "dash-signature-kept",
            "-- \nCarol Customer\n+49 30 1234567",
            "Thanks, it works.\n\n--\nCarol Customer\n+49 30 1234567",
        ),
        (
            "signature-then-iphone",
            "Carol\n\nSent from my iPhone",
            "Thanks, it works.\n\nCarol",
        ),
        (
            "prose-kept",
            "Sent from my desk, which is easier than the phone.",
            "Thanks, it works.\n\nSent from my desk, which is easier than the phone.",
        ),
    ]
]

# --- class 4: 8-bit bytes inside encoded words and headers ------------------------------

_MULTIPART = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n"


def _with_attachment(part_headers: bytes) -> bytes:
    return message(
        b"From: a@b.example\r\nSubject: file\r\n" + _MULTIPART,
        b"--BB\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--BB\r\n"
        + part_headers
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--BB--\r\n",
    )


EIGHT_BIT = [
    RawCase(
        4,
        "raw-byte-in-q-word-name",
        message(b"From: =?iso-8859-1?Q?J\xfcrgen_M=FCller?= <j@kunde.de>\r\nSubject: hi"),
        sender="j@kunde.de",
        sender_name="Jürgen Müller",
        subject="hi",
    ),
    RawCase(
        4,
        "raw-byte-in-q-word-subject",
        message(b"From: j@kunde.de\r\nSubject: =?iso-8859-1?Q?Gr\xfc=DFe?="),
        subject="Grüße",
    ),
    RawCase(
        4,
        "raw-utf8-in-b-word-subject",
        message(b"From: j@kunde.de\r\nSubject: =?utf-8?B?R3LDvMOfZQ==?= \xc3\xbc"),
        subject="Grüße ü",
    ),
    RawCase(
        4,
        "raw-byte-in-q-word-filename",
        _with_attachment(
            b'Content-Type: application/pdf; name="=?iso-8859-1?Q?R\xe9sum\xe9?=.pdf"\r\n'
            b'Content-Disposition: attachment; filename="=?iso-8859-1?Q?R\xe9sum\xe9.pdf?="'
        ),
        filenames=("Résumé.pdf",),
    ),
    RawCase(
        4,
        "raw-utf8-in-q-word-subject",
        message(b"From: a@b.example\r\nSubject: =?utf-8?Q?\xe4\xb8\xad=E6=96=87?="),
        subject="中文",
    ),
    RawCase(
        4,
        "raw-latin1-display-name",
        message(b'From: "J\xfcrgen M\xfcller" <j@kunde.de>\r\nSubject: hi'),
        sender="j@kunde.de",
        sender_name="Jürgen Müller",
    ),
    RawCase(
        4,
        "raw-gbk-subject-with-gbk-body",
        message(
            b"From: a@b.cn\r\nSubject: \xc4\xe3\xba\xc3\r\n"
            b"Content-Type: text/plain; charset=gbk\r\n",
            "你好".encode("gbk") + b"\r\n",
        ),
        subject="你好",
        body="你好",
    ),
    RawCase(
        4,
        "raw-byte-in-rfc2231-filename",
        _with_attachment(
            b"Content-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename*=iso-8859-1''R%E9sum\xe9.pdf"
        ),
        filenames=("Résumé.pdf",),
    ),
]

# --- class 5: a declared charset is believed unless clearly wrong -----------------------

# (language, declared label, Python codec, text). Most texts' bytes also decode without
# error as a CJK codec (each of DECOY_CODECS accepts at least one; a test checks it).
DECLARED = [
    ("de", "iso-8859-1", "iso8859_1", "aaäöüßad"),
    ("de", "iso-8859-1", "iso8859_1", "Grüße aus Köln"),
    ("de", "iso-8859-15", "iso8859_15", "Bestätigung für Jürgen"),
    ("fr", "iso-8859-1", "iso8859_1", "Réponse à votre requête"),
    ("fr", "windows-1252", "cp1252", "Problème résolu, élève"),
    ("pl", "iso-8859-2", "iso8859_2", "Zażółć gęślą jaźń"),
    ("pl", "windows-1250", "cp1250", "Proszę o szybką odpowiedź"),
    ("cs", "iso-8859-2", "iso8859_2", "Příliš žluťoučký kůň"),
    ("tr", "iso-8859-9", "cp1254", "Şikayetim var, ödeme yapılmadı"),
    ("ru", "koi8-r", "koi8_r", "Здравствуйте, заказ не пришёл"),
    ("ru", "windows-1251", "cp1251", "Здравствуйте, где мой заказ"),
    ("ru", "koi8-r", "koi8_r", "Привет"),
    ("ru", "windows-1251", "cp1251", "Спасибо"),
]

DECOY_CODECS = ("gb18030", "gb2312", "gbk", "big5", "cp932", "cp949")


def _declared_cases() -> list[RawCase]:
    cases: list[RawCase] = []
    for lang, label, codec, text in DECLARED:
        data = text.encode(codec)
        q = "".join(f"={b:02X}" if b > 0x7E or b in b"=?_ " else chr(b) for b in data)
        cases.append(
            RawCase(
                5,
                f"{lang}-{label}-subject-{text[:12]}",
                message(
                    f"From: a@b.example\r\nSubject: =?{label}?Q?{q}?=\r\n"
                    f"Content-Type: text/plain; charset={label}\r\n"
                    "Content-Transfer-Encoding: 8bit".encode("ascii"),
                    data + b"\r\n",
                ),
                subject=text,
                body=text,
            )
        )
    # The label is clearly wrong here: CJK bytes under a us-ascii label (no 8-bit byte
    # can be us-ascii) or under ISO-8859-1 (whose reading is mojibake), common words of
    # the script, so the override stays.
    for label, (lang, codec, text) in itertools.product(("us-ascii", "iso-8859-1"), MISLABELLED):
        cases.append(
            RawCase(
                5,
                f"{lang}-{codec}-under-{label}",
                message(
                    b"From: a@b.example\r\nSubject: order\r\n"
                    + f"Content-Type: text/plain; charset={label}\r\n".encode()
                    + b"Content-Transfer-Encoding: 8bit",
                    text.encode(codec) + b"\r\n",
                ),
                body=text,
            )
        )
    # Raw UTF-8 in the headers (RFC 6532) of a mail whose body is in a CJK charset: the
    # body's charset is no label for the headers, only a hint.
    for lang, body_label, text in RAW_UTF8_HEADERS:
        body = "你好" if body_label in ("gb2312", "gbk") else "こんにちは"
        body_codec = {"gb2312": "gbk", "euc-kr": "cp949"}.get(body_label, body_label)
        if body_label in ("big5", "euc-kr"):
            body = "請問" if body_label == "big5" else "안녕하세요"
        cases.append(
            RawCase(
                5,
                f"{lang}-raw-utf8-headers-under-{body_label}-body",
                message(
                    f'From: "{text}" <a@b.example>\r\nSubject: {text}\r\n'.encode()
                    + f"Content-Type: text/plain; charset={body_label}\r\n".encode()
                    + b"Content-Transfer-Encoding: 8bit",
                    body.encode(body_codec) + b"\r\n",
                ),
                subject=text,
                sender_name=text,
                body=body,
            )
        )
    return cases


# (language, the body's charset label, header text sent as raw UTF-8).
RAW_UTF8_HEADERS = [
    ("de", "gb2312", "Grüße aus Köln"),
    ("ru", "gbk", "Спасибо за помощь"),
    ("fr", "big5", "Problème résolu"),
    ("de", "shift_jis", "Ärger mit der Lieferung"),
    ("zh", "gb2312", "中文问题"),
    ("tr", "euc-kr", "Şikayetim var"),
]

# (language, codec really used, text) of mail sent under a wrong single-byte label.
MISLABELLED = [
    ("zh", "gbk", "您好，我的订单还没有到"),
    ("zh-tw", "big5", "請問我的訂單什麼時候到"),
    ("ja", "cp932", "こんにちは、注文が届きません"),
    ("ko", "cp949", "안녕하세요 주문이 아직 안 왔어요"),
]


DECLARED_CASES = _declared_cases()

# --- class 6: no usable From ------------------------------------------------------------

NO_FROM = [
    RawCase(
        6,
        "empty-address-reply-to",
        message('From: "我" <>\r\nReply-To: wo@customer.cn\r\nSubject: s'.encode()),
        sender="wo@customer.cn",
        sender_problem=True,
    ),
    RawCase(
        6,
        "no-from-sender",
        message(b"Sender: carol@customer.example\r\nSubject: s"),
        sender="carol@customer.example",
        sender_problem=True,
    ),
    RawCase(
        6,
        "undisclosed-return-path",
        message(b"Return-Path: <carol@customer.example>\r\nFrom: undisclosed\r\nSubject: s"),
        sender="carol@customer.example",
        sender_problem=True,
    ),
    RawCase(
        6,
        "reply-to-before-sender",
        message(
            b"From: undisclosed-recipients:;\r\nSender: list@lists.example\r\n"
            b"Reply-To: Carol <carol@customer.example>\r\nSubject: s"
        ),
        sender="carol@customer.example",
        sender_name="Carol",
        sender_problem=True,
    ),
    RawCase(
        6,
        "null-return-path-gives-nobody",
        message(b"Return-Path: <>\r\nFrom: undisclosed\r\nSubject: s"),
        sender="",
        sender_problem=True,
    ),
    RawCase(
        6,
        "good-from-wins",
        message(b"From: Carol <carol@customer.example>\r\nReply-To: other@x.example\r\nSubject: s"),
        sender="carol@customer.example",
        sender_problem=False,
    ),
]

TEXT_CASES: list[TextCase] = [
    *INTERLEAVED,
    *ATTRIBUTIONS,
    *NOT_ATTRIBUTIONS,
    *HTML_ATTRIBUTIONS,
    *BOILERPLATE,
]
RAW_CASES: list[RawCase] = [*EIGHT_BIT, *DECLARED_CASES, *NO_FROM]
CLASS_NAMES = {
    1: "interleaved replies",
    2: "attribution lines",
    3: "mobile boilerplate",
    4: "8-bit in headers",
    5: "declared charsets",
    6: "no usable From",
}
