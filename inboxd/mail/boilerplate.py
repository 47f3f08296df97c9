"""boilerplate.py: the lines mail clients add by themselves, which nobody typed.

"Sent from my iPhone", "Envoyé de mon iPhone", "发自我的iPhone", "Get Outlook for iOS"
and the runs of delimiter lines ("--", "***", "____", "====") that are left when a
client's signature is empty say nothing to an agent, so they are dropped from the end of
the stored text. A real signature (a name, a title, a phone number, with or without the
"-- " line above it) is what the sender chose to write and is kept.

quotes.py also uses MOBILE_SIGNATURE: some mobile clients put the old message right
under the line with no header at all, so the line ends what the sender typed.

Pure: no DB, no I/O; never raises.
"""

from __future__ import annotations

import re

# The one-line signatures that mobile and web clients append, in the languages inboxd
# supports. Whole line only, short, and not a sentence ("Sent from my desk, which is
# easier" is prose).
MOBILE_SIGNATURE = re.compile(
    r"^(?:sent from (?:my )?[\w' -]{2,40}|sent (?:using|with|via) [\w' -]{2,40}"
    r"|get outlook for \w+|gesendet (?:von|mit|vom) [\w' -]{2,40}"
    r"|von meinem [\w' -]{2,30} gesendet|envoyé (?:de|depuis|à partir de) [\w' -]{2,40}"
    r"|verstuurd (?:vanaf|vanuit|met) [\w' -]{2,40}|verzonden (?:vanaf|vanuit|met) [\w' -]{2,40}"
    r"|enviado (?:desde|do|de) [\w' -]{2,40}|inviato da [\w' -]{2,40}"
    r"|skickat från [\w' -]{2,40}|sendt fra [\w' -]{2,40}|lähetetty [\w' -]{2,40}"
    r"|wysłane z [\w' -]{2,40}|отправлено (?:с|из) [\w' -]{2,40}"
    r"|trimis de pe [\w'‑ -]{2,40}|obter o outlook para \w+|az [\w-]+ küldve"
    r"|أُرسلت من الـ iPhone"
    # Chinese clients: "发自我的iPhone", "从我的 iPhone 发送", "從我的 iPhone 傳送".
    r"|(?:发自|發自)我的\s?[\w -]{1,30}|(?:从|從)我的\s?[\w -]{1,30}?\s?(?:发送|傳送|寄出)"
    r"|iPhoneから送信)(?:<[^>\s]{1,200}>)?$",
    re.IGNORECASE,
)
# Client lines whose words are also ordinary prose ("<device>から送信", "<device>에서
# 보냄", Turkish "<device>'dan gönderildi", "来自我的<device>", Czech "Odesláno z",
# Greek "Στάλθηκε από", Hebrew "נשלח מ", Vietnamese "Gửi từ"): they are dropped only at
# the very end of a mail, never taken as the end of what the sender typed.
CLIENT_TAIL = re.compile(
    r"^(?:(?:来自|來自)我的\s?[\w -]{1,30}|[\w -]{2,30}から送信|[\w -]{2,30}에서 보냄"
    r"|[\w -]{2,30}에서 보냈습니다\.?|[\w'’ -]{2,30}(?:dan|den|tan|ten) gönderildi"
    r"|odesláno z [\w' -]{2,40}|στάλθηκε από [\w' -]{2,40}|נשלח מ[\w' -]{2,40}"
    r"|gửi từ [\w' -]{2,40})$",
    re.IGNORECASE,
)

# A line of nothing but delimiter characters: "--", "-- ", "***", "____", "====", "~~~".
DELIMITER = re.compile(r"^(?:[-_=*~#]\s*){2,}$")

# How far from the end boilerplate is looked for: a client adds a line or two, and a
# pasted list of "----" lines further up is the sender's.
_MAX_TAIL_LINES = 12


def strip_boilerplate(text: str) -> str:
    """`text` without the client lines and delimiter runs at its end.

    A text that is nothing but boilerplate is returned as it is: an empty message would
    hide that the sender wrote from a phone and said nothing else.
    """
    lines = text.split("\n")
    end = len(lines)
    floor = max(0, end - _MAX_TAIL_LINES)
    while end > floor:
        line = lines[end - 1].strip()
        if line and not (
            DELIMITER.match(line) or MOBILE_SIGNATURE.match(line) or CLIENT_TAIL.match(line)
        ):
            break
        end -= 1
    kept = "\n".join(lines[:end]).rstrip()
    if not kept.strip():
        return text
    return kept
