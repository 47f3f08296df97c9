"""A labelled golden set of charset cases, made here for inboxd's tests (not real mail).

Every case below was written by hand for these tests; none is copied from a real message.
Each one records a habit of real mail clients: the charset label as the client writes it
in ``Content-Type``, the encoding it really used to produce the bytes (often a superset
of the label, or something else entirely), and the text a person typed. The tests turn
each case into whole messages byte by byte, so the bytes are exactly what such a client
sends, in every transfer encoding:

- ``base64``: body in base64, subject as one RFC 2047 B encoded word;
- ``quoted-printable``: body in quoted-printable, subject as one Q encoded word;
- ``8bit``: body as raw 8-bit bytes (``7bit`` for ISO-2022-JP, which is 7-bit by design),
  subject as raw unencoded bytes in the header, as Foxmail and old clients send it; the
  parser may use the body's charset as a hint to read it;
- ``split-words``: body in base64, subject as a run of short B encoded words that cut
  multi-byte characters in half, as Outlook does with GB2312 subjects (stateful
  ISO-2022 text is cut between characters instead, each word self-contained).

Real mail with these charsets is scarce in the shared corpora; the corpus checks in
``test_charsets.py`` cover the few real messages there are.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

# The transfer encodings every case is emitted in (see the module docstring).
TRANSFER_ENCODINGS = ("base64", "quoted-printable", "8bit", "split-words")


@dataclass(frozen=True)
class CharsetCase:
    """One labelled case: what the client wrote, what it really used, what it meant."""

    id: str
    # The charset parameter exactly as written after ``charset=`` (quotes included), or
    # None when the client wrote no charset at all.
    label: str | None
    # The Python codec that produced the bytes (the truth behind the label), or "cp50220"
    # for the Windows ISO-2022-JP variant that Python lacks (see `encode_text`).
    encoding: str
    subject: str
    body: str
    # What real client or habit this case stands for.
    note: str = ""

    @property
    def word_label(self) -> str:
        """The charset name written inside encoded words for this case.

        Quotes and spaces cannot appear there; a client that wrote no body charset but
        encodes the subject anyway writes "unknown-8bit" (RFC 1428), as sendmail does
        when it wraps raw 8-bit headers.
        """
        if self.label is None:
            return "unknown-8bit"
        return self.label.strip().strip('"').strip()

    @property
    def stateful(self) -> bool:
        """ISO-2022 text cannot be cut at an arbitrary byte; each piece needs its escapes."""
        return self.encoding.startswith(("iso2022", "cp5022"))


CASES: list[CharsetCase] = [
    # --- Chinese -----------------------------------------------------------------------
    CharsetCase(
        "gb2312-label-gbk-text",
        "gb2312",
        "gbk",
        "关于朱镕基和王喆的报告",
        "您好：\n李堃和张玥的订单已经发货，朱镕基路的仓库明天盘点。\n谢谢！",
        "镕 喆 堃 玥 are in GBK but not GB2312; Outlook and Foxmail still label it gb2312",
    ),
    CharsetCase(
        "gb2312-plain",
        "GB2312",
        "gb2312",
        "发票问题，请尽快处理",
        "您好，\n上个月的发票金额不对，请重新开具。\n谢谢",
    ),
    CharsetCase(
        "gbk",
        "gbk",
        "gbk",
        "訂單查詢：喆",
        "繁體字也在 GBK 裡面：請問我的訂單何時發貨？\n王喆",
        "GBK also carries traditional characters",
    ),
    CharsetCase(
        "gb18030-four-byte",
        "GB18030",
        "gb18030",
        "生僻字𠀀测试 😀",
        "这个名字里有一个扩展B区的字：𠀀\n表情也可以：😀 €100",
        "𠀀 and 😀 exist only as 4-byte GB18030 sequences",
    ),
    CharsetCase(
        "gb_2312-80-label",
        "gb_2312-80",
        "gbk",
        "会议通知（镕）",
        "明天上午十点开会，请准时参加。",
        "an old label WHATWG still maps to GBK; Python does not know it",
    ),
    CharsetCase(
        "x-gbk-label",
        "x-gbk",
        "gbk",
        "退款申请",
        "我要申请退款，订单号 20240101。",
        "a label WHATWG maps to GBK; Python does not know it",
    ),
    CharsetCase(
        "big5",
        "big5",
        "big5",
        "請問包裹何時到達",
        "您好，\n請問我的包裹何時到達？\n謝謝您的幫忙。",
    ),
    CharsetCase(
        "big5-label-hkscs-text",
        "big5",
        "big5hkscs",
        "部𨋢壞咗",
        "你好，\n大廈部𨋢壞咗，啲住客行樓梯好辛苦㗎。\n唔該晒",
        "Cantonese 𨋢 嘅 啲 咗 㗎 are HKSCS only; Hong Kong clients label them big5",
    ),
    # --- Japanese ----------------------------------------------------------------------
    CharsetCase(
        "iso-2022-jp",
        "iso-2022-jp",
        "iso2022_jp",
        "お問い合わせの件",
        "いつもお世話になっております。\n請求書を送付いたします。\nよろしくお願いいたします。",
        "the Japanese mail default: 7-bit with escape sequences",
    ),
    CharsetCase(
        "iso-2022-jp-label-cp50220-text",
        "ISO-2022-JP",
        "cp50220",
        "①お見積り（㈱テスト）",
        "株式会社は㈱と書きます。\n手順①、手順②、Ⅲ章を参照してください。",
        "Outlook writes NEC row 13 characters (① ㈱ Ⅲ) inside ISO-2022-JP",
    ),
    CharsetCase(
        "shift_jis",
        "shift_jis",
        "shift_jis",
        "会議のご案内",
        "明日の会議は１０時からです。\n会議室Ａでお待ちしております。",
    ),
    CharsetCase(
        "shift_jis-label-cp932-text",
        "Shift_JIS",
        "cp932",
        "①㈱テスト～ご確認",
        "㈱テストの髙橋です。\n手順①から③まで～よろしくお願いします。",
        "① ㈱ 髙 and the fullwidth tilde ～ are CP932; Windows labels them Shift_JIS",
    ),
    CharsetCase(
        "x-sjis-label",
        "x-sjis",
        "shift_jis",
        "注文の確認",
        "ご注文ありがとうございます。",
        "a label WHATWG maps to Shift_JIS; Python does not know it",
    ),
    CharsetCase(
        "euc-jp",
        "euc-jp",
        "euc_jp",
        "見積もり依頼",
        "お世話になっております。\n見積もりをお願いできますでしょうか。",
    ),
    # --- Korean ------------------------------------------------------------------------
    CharsetCase(
        "euc-kr",
        "euc-kr",
        "euc_kr",
        "문의 드립니다",
        "안녕하세요.\n주문 확인 부탁드립니다.",
    ),
    CharsetCase(
        "euc-kr-label-cp949-text",
        "euc-kr",
        "cp949",
        "똠방각하 쓩 문의",
        "똠, 햏, 뷁 같은 글자는 CP949에만 있습니다.",
        "똠 햏 뷁 쓩 are outside KS X 1001; Windows (CP949) labels them euc-kr",
    ),
    CharsetCase(
        "ks_c_5601-1987-label-cp949-text",
        "ks_c_5601-1987",
        "cp949",
        "견적서 똠",
        "견적서를 보내드립니다.\n똠얌꿍 주문 건입니다.",
        "Outlook's label for Korean, always CP949 in practice",
    ),
    # --- Windows code pages ------------------------------------------------------------
    CharsetCase(
        "windows-1250",
        "windows-1250",
        "cp1250",
        "Zażółć gęślą jaźń",
        "Příliš žluťoučký kůň úpěl ďábelské ódy.\n„Děkuji“ – Šárka",
    ),
    CharsetCase(
        "windows-1251",
        "windows-1251",
        "cp1251",
        "Счёт на оплату №41",
        "Здравствуйте!\nВысылаю счёт №41 — «срочно».",
    ),
    CharsetCase(
        "windows-1252",
        "windows-1252",
        "cp1252",
        "Café – “quoted” €5",
        "Grüße aus Köln — the fee is €5…\nDon’t forget the “invoice”.",
    ),
    CharsetCase(
        "windows-1253",
        "windows-1253",
        "cp1253",
        "Ερώτηση για την παραγγελία",
        "Καλημέρα σας,\nευχαριστώ για τη βοήθεια – Γιώργος",
    ),
    CharsetCase(
        "windows-1254",
        "windows-1254",
        "cp1254",
        "Şikâyet: sipariş",
        "Merhaba, ğüşıöç İĞÜŞÖÇ.\nTeşekkürler – Ayşe",
    ),
    CharsetCase(
        "windows-1255",
        "windows-1255",
        "cp1255",
        "שאלה לגבי ההזמנה",
        "שלום,\nתודה רבה – דוד",
    ),
    CharsetCase(
        "windows-1256",
        "windows-1256",
        "cp1256",
        "سؤال بخصوص الطلب",
        "مرحبا،\nشكرا لك – پاسخ",
        "پ is Persian, also in windows-1256",
    ),
    CharsetCase(
        "windows-1257",
        "windows-1257",
        "cp1257",
        "Ačiū už užsakymą",
        "Labas, ąčęėįšųūž.\nPaldies – ķēniņš",
    ),
    CharsetCase(
        "windows-1258",
        "windows-1258",
        "cp1258",
        # Windows Vietnamese keyboards type the tone mark as a combining character after a
        # base letter (ê, ơ are precomposed in the code page, the tones are not), so this
        # is the text as typed: "Cảm ơn" and "Tiếng Việt" in that decomposed form.
        "Ca\u0309m \u01a1n",
        "Xin cha\u0300o,\nTi\u00ea\u0301ng Vi\u00ea\u0323t",
    ),
    CharsetCase(
        "windows-874",
        "windows-874",
        "cp874",
        "สอบถามคำสั่งซื้อ",
        "สวัสดีครับ\nขอบคุณครับ",
        "Outlook's Thai label; Python only knows cp874",
    ),
    # --- ISO 8859 and KOI8 -------------------------------------------------------------
    CharsetCase(
        "iso-8859-1-label-cp1252-text",
        "iso-8859-1",
        "cp1252",
        "“Smart quotes” cost €10",
        "It’s a naïve café — “really”.\nTotal: €10…",
        "€ and curly quotes are cp1252; WHATWG decodes latin1 labels as cp1252",
    ),
    CharsetCase(
        "iso-8859-1",
        "ISO-8859-1",
        "iso8859_1",
        "Réponse à votre question",
        "Bonjour,\nVoilà la réponse, ça marche très bien.",
    ),
    CharsetCase(
        "iso-8859-2",
        "iso-8859-2",
        "iso8859_2",
        "Zażółć gęślą jaźń",
        "Dzień dobry,\nproszę o fakturę. Příliš žluťoučký kůň.",
    ),
    CharsetCase(
        "iso-8859-5",
        "iso-8859-5",
        "iso8859_5",
        "Вопрос по заказу",
        "Здравствуйте,\nкогда придёт мой заказ?",
    ),
    CharsetCase(
        "iso-8859-7",
        "iso-8859-7",
        "iso8859_7",
        "Καλημέρα σας",
        "Ευχαριστώ πολύ για την απάντηση.",
    ),
    CharsetCase(
        "iso-8859-8-i",
        "iso-8859-8-i",
        "iso8859_8",
        "שאלה דחופה",
        "שלום רב,\nתודה",
        "the logical-order Hebrew label; Python does not know the -i suffix",
    ),
    CharsetCase(
        "iso-8859-15",
        "iso-8859-15",
        "iso8859_15",
        "Prix : 5 € pour l'œuvre",
        "Bonjour,\nle prix de l'œuvre est de 5 €. Šárka, Žofie.",
        "€ œ Š ž are where 8859-15 differs from 8859-1",
    ),
    CharsetCase(
        "koi8-r",
        "koi8-r",
        "koi8_r",
        "Счёт прилагается",
        "Здравствуйте!\nСчёт прилагается, оплатите до пятницы.",
    ),
    CharsetCase(
        "koi8-u",
        "koi8-u",
        "koi8_u",
        "Ґанок і їжак",
        "Дякую за відповідь!\nЄ питання щодо ґанку.",
        "Ґ Є Ї are where KOI8-U differs from KOI8-R",
    ),
    # --- Unicode -----------------------------------------------------------------------
    CharsetCase(
        "utf-8-emoji",
        "utf-8",
        "utf-8",
        "Danke 👍 für die Hilfe",
        "Ça marche 😀 — 谢谢 — спасибо — 🇩🇪\nZeile zwei",
    ),
    # --- Mislabelled, unknown and missing labels ----------------------------------------
    CharsetCase(
        "iso-8859-1-label-utf-8-text",
        "iso-8859-1",
        "utf-8",
        "Grüße aus Köln",
        "Grüße aus Köln, schöne Grüße an alle – Jürgen",
        "a web form or script that writes UTF-8 under a hard-coded latin1 header",
    ),
    CharsetCase(
        "us-ascii-label-utf-8-text",
        "us-ascii",
        "utf-8",
        "naïve résumé ✓",
        "The naïve résumé is attached ✓\nThanks!",
        "a script that forgot to change its us-ascii default",
    ),
    CharsetCase(
        "us-ascii-label-cp1252-text",
        "us-ascii",
        "cp1252",
        "Don’t forget – it’s €5",
        "Don’t forget – the fee is €5.\nIt’s “urgent”.",
        "Outlook Express wrote 8-bit cp1252 under us-ascii",
    ),
    CharsetCase(
        "no-charset-utf-8-text",
        None,
        "utf-8",
        "Frage zur Bestellung – Müller",
        "Hallo, ich habe eine Frage zur Bestellung. Grüße, Jürgen Müller",
        "no charset parameter at all; the bytes are UTF-8",
    ),
    CharsetCase(
        "no-charset-cp1252-text",
        None,
        "cp1252",
        "Question about my order – café",
        "Hello, I’d like to ask about my order for the café. It’s “urgent” – thanks!",
        "no charset parameter at all; the bytes are windows-1252",
    ),
    CharsetCase(
        "x-unknown-label-utf-8-text",
        "x-unknown",
        "utf-8",
        "Überweisung erhalten ✓",
        "Die Überweisung ist angekommen, vielen Dank! ✓",
        "an unknown label: the bytes decide",
    ),
    CharsetCase(
        "unknown-8bit-label-utf-8-text",
        "unknown-8bit",
        "utf-8",
        "Réservation confirmée",
        "Votre réservation est confirmée. À bientôt !",
        "RFC 1428's label for 8-bit text of unknown charset",
    ),
    CharsetCase(
        "utf8-label-without-dash",
        "utf8",
        "utf-8",
        "Pedido nº 7 — ¿dónde está?",
        "¿Dónde está mi pedido? Gracias — José",
    ),
    CharsetCase(
        "quoted-utf-8-label",
        '"UTF-8"',
        "utf-8",
        "Ответ: всё хорошо",
        "Спасибо, всё хорошо 🙂",
    ),
    # --- Labels with odd case and whitespace --------------------------------------------
    CharsetCase(
        "mixed-case-label",
        "Utf-8",
        "utf-8",
        "Smørrebrød på fredag",
        "Vi ses på fredag til smørrebrød.",
    ),
    CharsetCase(
        "upper-case-koi8-r-label",
        "KOI8-R",
        "koi8_r",
        "Привет",
        "Привет, как дела?",
    ),
    CharsetCase(
        "quoted-label-with-spaces",
        '" windows-1251 "',
        "cp1251",
        "Вопрос",
        "Добрый день, вопрос по счёту.",
        "spaces inside the quotes, seen from hand-written scripts",
    ),
    CharsetCase(
        "windows-31j-label",
        "Windows-31J",
        "cp932",
        "ご請求書①",
        "請求書①を添付します。",
        "the IANA name of CP932; Python does not know it",
    ),
]

CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES), "case ids must be unique"


# --- producing bytes ---------------------------------------------------------------------


def _sjis_to_jis(lead: int, trail: int) -> tuple[int, int]:
    """Map a two-byte Shift_JIS code to its JIS X 0208 row/cell bytes."""
    lead -= 0x40 if lead >= 0xE0 else 0
    lead -= 0x81
    trail -= 1 if trail >= 0x80 else 0
    trail -= 0x40
    return lead * 2 + (1 if trail >= 94 else 0) + 0x21, trail % 94 + 0x21


def _encode_cp50220(text: str) -> bytes:
    """ISO-2022-JP as Windows writes it (CP50220): CP932's NEC row 13 inside ESC $ B.

    Python has no codec for it, so it is built here from CP932: each double-byte
    character is shifted to its JIS row and cell, between the usual escape sequences.
    """
    out = bytearray()
    kanji = False
    for char in text:
        if char.isascii():
            if kanji:
                out += b"\x1b(B"
                kanji = False
            out += char.encode("ascii")
            continue
        sjis = char.encode("cp932")
        assert len(sjis) == 2, f"{char!r} is not a double-byte CP932 character"
        if not kanji:
            out += b"\x1b$B"
            kanji = True
        out += bytes(_sjis_to_jis(sjis[0], sjis[1]))
    if kanji:
        out += b"\x1b(B"
    return bytes(out)


def encode_text(text: str, encoding: str) -> bytes:
    """Encode one line of text the way the case's client did."""
    if encoding == "cp50220":
        return _encode_cp50220(text)
    return text.encode(encoding)


def encode_body(case: CharsetCase) -> bytes:
    """The body bytes with CRLF line ends; ISO-2022 lines each end back in ASCII."""
    return b"\r\n".join(encode_text(line, case.encoding) for line in case.body.split("\n"))


def b_word(label: str, data: bytes) -> bytes:
    """One RFC 2047 B encoded word."""
    return b"=?" + label.encode() + b"?B?" + base64.b64encode(data) + b"?="


def q_word(label: str, data: bytes) -> bytes:
    """One RFC 2047 Q encoded word: letters and digits as they are, space as "_"."""
    out = bytearray()
    for byte in data:
        if byte == 0x20:
            out += b"_"
        elif chr(byte).isascii() and chr(byte).isalnum():
            out.append(byte)
        else:
            out += b"=%02X" % byte
    return b"=?" + label.encode() + b"?Q?" + bytes(out) + b"?="


def split_words(case: CharsetCase, size: int = 5) -> bytes:
    """The subject as a folded run of short B words that cut characters in half.

    Outlook cuts GB2312 subjects by bytes, so a two-byte character can start in one word
    and end in the next; a decoder must join the bytes of adjacent words before decoding.
    ISO-2022 text is cut by characters instead, each piece with its own escapes.
    """
    if case.stateful:
        pieces = [
            encode_text(case.subject[i : i + 3], case.encoding)
            for i in range(0, len(case.subject), 3)
        ]
    else:
        data = encode_text(case.subject, case.encoding)
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"\r\n ".join(b_word(case.word_label, piece) for piece in pieces)


def quoted_printable(data: bytes) -> bytes:
    """Quoted-printable body (RFC 2045) with CRLF hard breaks and 76-column soft breaks."""
    lines = []
    for line in data.split(b"\r\n"):
        encoded = bytearray()
        column = 0
        for index, byte in enumerate(line):
            last = index == len(line) - 1
            if (33 <= byte <= 126 and byte != 0x3D) or (byte == 0x20 and not last):
                token = bytes([byte])
            else:
                token = b"=%02X" % byte
            if column + len(token) > 75:
                encoded += b"=\r\n"
                column = 0
            encoded += token
            column += len(token)
        lines.append(bytes(encoded))
    return b"\r\n".join(lines)


def _base64_lines(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def build_message(case: CharsetCase, transfer: str) -> bytes:
    """A whole message for `case` in one of TRANSFER_ENCODINGS, by byte concatenation.

    The stdlib generator is not used on purpose: it would re-encode the headers and body,
    and the point is to feed the parser exactly what a client sends.
    """
    body = encode_body(case)
    subject_bytes = encode_text(case.subject, case.encoding)
    if transfer == "base64":
        subject, cte, payload = b_word(case.word_label, subject_bytes), b"base64", body
        payload = _base64_lines(body)
    elif transfer == "quoted-printable":
        subject, cte = q_word(case.word_label, subject_bytes), b"quoted-printable"
        payload = quoted_printable(body)
    elif transfer == "8bit":
        subject, payload = subject_bytes, body
        cte = b"7bit" if case.stateful else b"8bit"
    elif transfer == "split-words":
        subject, cte, payload = split_words(case), b"base64", _base64_lines(body)
    else:
        raise ValueError(f"unknown transfer encoding {transfer!r}")
    content_type = b"Content-Type: text/plain"
    if case.label is not None:
        content_type += b"; charset=" + case.label.encode("ascii")
    headers = [
        b"From: Customer <customer@example.com>",
        b"To: support@example.com",
        b"Subject: " + subject,
        b"Date: Mon, 01 Jan 2024 10:00:00 +0000",
        b"Message-ID: <" + case.id.encode() + b"." + transfer.encode() + b"@example.com>",
        b"MIME-Version: 1.0",
        content_type,
        b"Content-Transfer-Encoding: " + cte,
    ]
    return b"\r\n".join(headers) + b"\r\n\r\n" + payload + b"\r\n"
