"""quote_patterns.py: how quoted history begins, in the clients and languages seen in real mail.

Attribution lines ("On ... wrote:" and its translations), Outlook header blocks,
"-----Original Message-----" and forward markers, as compiled regular expressions.
quotes.py and html_quotes.py decide with them where the new text ends; the lines clients
add by themselves ("Sent from my iPhone") are in boilerplate.py. Pure.
"""

from __future__ import annotations

import re

# Quoted history is found near the top of a reply; past this many characters we stop
# looking for it and keep the rest as it is, so a 50 MB log pasted into a mail costs no
# more than a normal one.
MAX_SCAN_CHARS = 1_000_000
# Attribution and header lines are short. Longer lines are prose or data and are not
# matched against the patterns below, which also bounds the regex work per line.
MAX_HEADER_LINE = 400
# Gmail wraps long attributions over two or three lines; iOS Mail over three; Outlook's
# plain-text conversion over four ("On <date>" / name / "<address>" / "wrote:").
MAX_ATTRIBUTION_LINES = 4
# Outlook header blocks: From, then Sent/To/Cc/Subject within a few lines (a long To or
# Subject wraps; some webmails put a blank line between every header).
HEADER_WINDOW = 8

# Invisible characters that clients put around attributions: right-to-left marks in
# Arabic and Hebrew Gmail, a BOM or zero-width space at the start of an iOS quote.
INVISIBLE: dict[int, str | None] = dict.fromkeys(
    [0x00AD, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF], None
)
# Bidi embeddings and isolates.
INVISIBLE.update(dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)], None))
INVISIBLE[0x00A0] = " "

EMAIL_AT = r"@[\w-]+(?:\.[\w-]+)+"

# Anything that looks like a date or a time: "10:00", "10.00", "10h30", "2026",
# "23.11.2026", "2013/11/1", CJK date characters. Python's \d also matches the
# Arabic-Indic digits that Arabic Gmail writes dates with.
DATEISH = re.compile(r"\d{1,2}[:.h]\d{2}|\b\d{4}\b|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|[年月日년월일]")
TIME = re.compile(r"\d{1,2}[:.h]\d{2}")

# The verb of an attribution line, where it ends the line: "... wrote:",
# "... a écrit :", "... 写道：". The colon is optional for "On ... wrote" (Zoho writes
# "---- On Wed, 24 Feb 2021 ... john@gmail.com wrote ----"). Each verb with whether it
# must start a word (scripts without spaces between words have no word boundary).
END_VERB_WORDS = (
    *((True, verb) for verb in (
        "wrote", "writes", "a écrit", "escribió", "escreveu", "ha scritto", "scrisse",
        "kirjoitti", "napisał", "napisał(a)", "napisała", "napsal", "napsal(a)", "napsala",
        "написал", "написал(а)", "написала", "пишет", "έγραψε", "a scris", "yazdı", "írta",
        "skrev", "schreef", "schrieb",
    )),
    *((False, verb) for verb in ("كتب", "كتب/كتبت", "كتبت", "写道", "寫道", "書きました", "작성")),
)  # fmt: skip
_VERBS = "|".join((r"\b" if bounded else "") + re.escape(verb) for bounded, verb in END_VERB_WORDS)
END_VERB = re.compile("(?:" + _VERBS + r")\s*[:：]?$", re.IGNORECASE)
# END_VERB for the reversed line, anchored at its start: one match attempt instead of
# a search that tries every alternative at each of the last END_VERB_REACH positions
# (that search was a fifth of the time spent preparing a message). `$` matches before a
# final newline, hence the optional one; \b sees the same two characters either way.
END_VERB_REVERSED = re.compile(
    r"\n?[:：]?\s*(?:"
    + "|".join(
        re.escape(verb[::-1]) + (r"\b" if bounded else "") for bounded, verb in END_VERB_WORDS
    )
    + ")",
    re.IGNORECASE,
)
# Verbs that sit in the middle, followed by the name and a final colon:
# "Am 23.11.2026 um 10:00 schrieb Alice <a@b.com>:", "Op ... schreef Alice:",
# "ons 4 dec. 2024 kl. 20:42 skrev Person B <b@x.com>:",
# "Alice <a@b.com> ezt írta (időpont: 2026. nov. 23., H, 10:00):",
# "Wiadomość napisana przez Alice w dniu 17.01.2023, o godz. 11:09:", Arabic "كتب".
MID_VERB = re.compile(
    r"\b(?:schrieb|schreef|skrev|ezt írta|napisana przez)\b|napisał\(a\)|كتب|写道",
    re.IGNORECASE,
)
ENDS_COLON = re.compile(r"[:：]$")
# No verb at all, just date, name, address and a colon: Russian and Japanese Gmail
# ("ср, 30 апр. 2025 г. в 15:19, John <doe@example.com>:"), Yandex, mail.ru ("... от
# Alice <a@b.com>:"), and some webmails ("2017-11-24 16:32 GMT+01:00 Bob <b@x.com>:").
ENDS_ADDRESS_COLON = re.compile(EMAIL_AT + r"[\s>)\]\"'*]*[:：]$")
ENDS_ADDRESS = re.compile(EMAIL_AT + r"[\s>)\]\"'*]*$|<$")
# "janedoe@something.com wrote:" with no date, seen below "Sent from my iPhone".
ADDRESS_WROTE = re.compile(r"^\S+" + EMAIL_AT + r"\S*\s+wrote\s*:$", re.IGNORECASE)
# "Carol Customer <carol@x.org> wrote:", '"Carole" <c@x.fr> a écrit :' with no date
# (Thunderbird's default without date, many webmails): the address in angle brackets
# right before the verb, after a name, is what prose never has.
ADDRESS_VERB = re.compile(
    r"^[^<>]*[^\s<>][^<>]*<[^<>\s@]+"
    + EMAIL_AT
    + r"(?:<mailto:[^<>\s]+>)?>[\])\"']*\s*(?:"
    + _VERBS
    + r")\s*[:：]$",
    re.IGNORECASE,
)
# "2026/11/23 Carol Customer <carol@x.org>": old Android Gmail, a full date first and an
# address in angle brackets last, alone on its line, with nothing else. ISO dates with
# dashes are left out: "2026-11-20  Carol Customer  <carol@x.org>" heads every entry of
# a GNU ChangeLog, which customers paste.
DATE_NAME_ADDRESS = re.compile(
    r"^(?:\d{4}[/.]\d{1,2}[/.]\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{4})\b[^<>@]{1,80}"
    r"<[^<>\s@]+" + EMAIL_AT + r">$"
)
# Words that begin an attribution; used to pull a wrapped first line into the block
# ("On Nov 21, 2014,\nat 10:18,\nJohn Doe <john@doe123.com> wrote:").
# The longest verb above with its colon and some trailing space fits in this many chars.
END_VERB_REACH = 48
ATTRIBUTION_START = re.compile(
    r"^(?:(?:On|Am|Le|El|Em|No dia|Il|In data|Op|Den|På|W dniu|Dnia|Dne|Στις|În)\b|\d)",
    re.IGNORECASE,
)

# Outlook (desktop, web, mobile), AOL, Yahoo, Apple Mail forwards and many webmails put
# the old message under a block of headers. Localized names as the clients write them.
FROM_NAMES = (
    r"from|von|de|van|från|fra|od|от|lähettäjä|da|feladó|από|kimden|gönderen|mittente"
    r"|remitente|nadawca|afzender|expéditeur|من|发件人|寄件者|寄件人|差出人|보낸 사람"
)
OTHER_HEADER_NAMES = (
    r"sent|date|to|subject|cc|bcc|reply-to|gesendet|datum|an|betreff|envoyé le|envoyé"
    r"|objet|à|a|copie à|verzonden|aan|onderwerp|skickat|till|ämne|sendt|til|emne|dato"
    r"|sujet|wysłano|do|temat|data|adresat|отправлено|кому|копия|тема|дата|lähetetty"
    r"|vastaanottaja|aihe|päivämäärä|inviato|oggetto|enviado|enviada|para|asunto|fecha"
    r"|assunto|elküldve|címzett|tárgy|dátum|στάλθηκε|προς|θέμα|gönderildi|kime|konu"
    r"|tarih|trimis|către|subiect|odesláno|komu|předmět|تم الإرسال|إلى"
    r"|الموضوع|التاريخ|发送时间|日期|收件人|抄送|主题|寄件日期|收件者|副本|主旨|送信日時"
    r"|宛先|件名|보낸 날짜|받는 사람|제목|message du"
)
# The subject line of a header block, in the same languages.
SUBJECT = re.compile(
    r"^(?:subject|betreff|objet|onderwerp|ämne|emne|temat|тема|aihe|oggetto|asunto|assunto"
    r"|tárgy|θέμα|konu|subiect|předmět|الموضوع|主题|主旨|件名|제목|sujet)\s*[:：]",
    re.IGNORECASE,
)
FROM_HEADER = re.compile(r"^(?:" + FROM_NAMES + r")\s*[:：]", re.IGNORECASE)
OTHER_HEADER = re.compile(r"^(?:" + OTHER_HEADER_NAMES + r")\s*[:：]", re.IGNORECASE)
# Onet/WP webmail put a whole header block on one line:
# "Temat: RE: x 2023-01-17 13:46Nadawca: "test.pl" test@test.pl Adresat:".
INLINE_HEADER = re.compile(
    r"(?:^|\s|\d)(?:" + FROM_NAMES + r"|" + OTHER_HEADER_NAMES + r")\s*[:：]",
    re.IGNORECASE,
)

# "-----Original Message-----" and its translations; Outlook for Mac and some German
# clients put the first header on the same line, so only the start is matched.
ORIGINAL_MESSAGE = re.compile(
    r"^[-_=*\s]{2,}(?:original message|original-nachricht|originalnachricht"
    r"|ursprüngliche nachricht|message d'origine|message d’origine|message original"
    r"|oorspronkelijk bericht|origineel bericht|原始邮件|原始郵件|opprinnelig melding"
    r"|oprindelig meddelelse|oprindelig besked|originalmeddelande|ursprungligt meddelande"
    r"|alkuperäinen viesti|mensaje original|messaggio originale|исходное сообщение"
    r"|původní zpráva|wiadomość oryginalna|oryginalna wiadomość|mensagem original"
    r"|eredeti üzenet|αρχικό μήνυμα|mesaj original|orijinal mesaj|الرسالة الأصلية"
    r"|元のメッセージ|원본 메시지)",
    re.IGNORECASE,
)
FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|original message follows|weitergeleitete nachricht"
    r"|message transféré|doorgestuurd bericht|mensaje reenviado|mensagem encaminhada"
    r"|messaggio inoltrato|videresendt (?:melding|meddelelse)|vidarebefordrat meddelande"
    r"|välitetty viesti|пересылаемое сообщение|转发的邮件|轉寄的郵件|wiadomość przekazana"
    r"|přeposlaná zpráva|továbbított üzenet)"
    r"|begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:"
    r"|début du message réexpédié\s*:|inicio del mensaje reenviado\s*:)",
    re.IGNORECASE,
)
# A rule line: Outlook's "________________________________", Gmail's
# "------------------------------", "====" from French webmails.
RULE = re.compile(r"^(?:[-_=]\s*){4,}$")
# What may follow a quote and still count as "nothing new": a signature separator or
# the rule that starts a mailing-list footer.
FOOTER_START = re.compile(r"^(?:--\s*|[-_=—]{2,}.*)$")


def clean_line(line: str) -> str:
    """A line without the invisible characters clients put around quotes, stripped."""
    return line.translate(INVISIBLE).strip()
