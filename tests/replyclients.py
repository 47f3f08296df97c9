"""An agent's reply to an inboxd notification, built the way real mail clients build it.

    raw = gmail_reply(notification_bytes, "#status pending\n\nHi Carol, ...\n\n-- \nAlice")
    raw = outlook_reply(notification_bytes, text)      # text/plain + text/html, RE:, header block
    raw = apple_mail_reply(notification_bytes, text)
    raw = mutt_reply(notification_bytes, text, workdir) # composed and "sent" by a real mutt

Each returns the bytes the client hands to its submission server: From the notification's
To (the agent), To the notification's Reply-To (the agent's token address), Subject
"Re: <subject>", In-Reply-To the notification's Message-ID and References its References
plus that Message-ID. The notification is quoted below the agent's text with that
client's own attribution, as seen in mail from these clients:

* Gmail: "On Mon, Nov 23, 2026 at 10:00 AM Example Support <support@example.com>" wrapped
  onto a second line "wrote:" when it passes 78 characters, then "> " lines (">" alone for
  an empty line); a text/html alternative with a `gmail_quote` div.
* Outlook desktop: a line of 32 underscores, then a "From:/Sent:/To:/Subject:" block and
  the original *unquoted*; "RE:" in the subject, Thread-Topic/Thread-Index, an HTML
  alternative with `divRplyFwdMsg`; addresses in the text get "<mailto:...>" after them.
* Apple Mail: "On 23 Nov 2026, at 10:00, Example Support <support@example.com> wrote:",
  a blank line, then "> " lines; quoted-printable.
* mutt: mutt itself reads a draft (headers and a body quoted with mutt's default
  attribution "On Mon, Nov 23, 2026 at 10:00:00AM +0000, Example Support wrote:") and
  hands the message to a `sendmail` that only writes it to a file. Nothing is sent.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import uuid
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from html import escape
from pathlib import Path

REPLY_DATE = "Mon, 23 Nov 2026 10:05:00 +0000"


class Notification:
    """What a client reads from the notification it answers."""

    def __init__(self, raw: bytes) -> None:
        msg = message_from_bytes(raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        self.msg = msg
        self.from_header = msg["From"]
        self.from_name = msg["From"].addresses[0].display_name
        self.from_addr = msg["From"].addresses[0].addr_spec
        self.agent = str(msg["To"])  # the agent, who now replies
        self.agent_addr = msg["To"].addresses[0].addr_spec
        reply_to = msg["Reply-To"] or msg["From"]
        self.reply_to = str(reply_to)
        self.reply_to_addr = reply_to.addresses[0].addr_spec
        self.subject = str(msg["Subject"])
        self.message_id = str(msg["Message-ID"]).strip()
        self.references = str(msg.get("References", "")).split()
        self.date = parsedate_to_datetime(str(msg["Date"]))
        part = msg.get_body(("plain",))
        assert part is not None
        self.text = part.get_content().replace("\r\n", "\n").rstrip("\n")

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def thread_headers(self) -> list[tuple[str, str]]:
        refs = [*self.references, self.message_id]
        return [("In-Reply-To", self.message_id), ("References", " ".join(refs))]


def _quote(lines: list[str], *, empty: str) -> str:
    return "\n".join(f"> {line}" if line else empty for line in lines)


def _build(
    headers: list[tuple[str, str]], plain: str, html: str | None, *, cte: str = "quoted-printable"
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    for name, value in headers:
        msg[name] = value
    msg.set_content(plain, subtype="plain", charset="utf-8", cte=cte)
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte=cte)
    return msg.as_bytes()


def _html_paragraphs(text: str) -> str:
    return "".join(f"<div>{escape(line) or '<br>'}</div>" for line in text.split("\n"))


# --- Gmail ------------------------------------------------------------------------------


def gmail_attribution(n: Notification) -> str:
    """Gmail's attribution line, wrapped at 78 characters as Gmail's plain text is."""
    when = n.date.strftime("%a, %b %-d, %Y at %-I:%M %p")
    line = f"On {when} {n.from_name} <{n.from_addr}> wrote:"
    if len(line) <= 78:
        return line
    return line[: -len(" wrote:")] + "\nwrote:"


def gmail_reply(notification: bytes, text: str, *, html_text: str | None = None) -> bytes:
    """A Gmail (web) reply: top-posted text, the attribution, then "> " lines.

    `html_text` puts different text in the HTML alternative (to test that only the plain
    part is read); by default it carries the same text as the plain part.
    """
    n = Notification(notification)
    plain = f"{text.rstrip()}\n\n{gmail_attribution(n)}\n\n{_quote(n.lines, empty='>')}\n"
    html_body = html_text if html_text is not None else text
    html = (
        f'<div dir="ltr">{_html_paragraphs(html_body.rstrip())}</div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f"{escape(gmail_attribution(n).replace(chr(10), ' '))}<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        f"{_html_paragraphs(n.text)}</blockquote></div>\n"
    )
    headers = [
        ("MIME-Version", "1.0"),
        ("Date", REPLY_DATE),
        *n.thread_headers(),
        ("Message-ID", f"<CA+{uuid.uuid4().hex[:30]}@mail.gmail.com>"),
        ("Subject", f"Re: {n.subject}"),
        ("From", n.agent),
        ("To", n.reply_to),
    ]
    return _build(headers, plain, html)


# --- Outlook ----------------------------------------------------------------------------


def _outlook_links(text: str, address: str) -> str:
    """Outlook writes a link's target after its text: "a@b.c<mailto:a@b.c>"."""
    return text.replace(address, f"{address}<mailto:{address}>")


def outlook_reply(notification: bytes, text: str) -> bytes:
    """An Outlook (Windows desktop / Microsoft 365) reply: plain and HTML alternatives."""
    n = Notification(notification)
    sent = n.date.strftime("%A, %B %-d, %Y %-I:%M %p")
    block = (
        "________________________________\n"
        f"From: {n.from_name} <{n.from_addr}>\n"
        f"Sent: {sent}\n"
        f"To: {n.agent}\n"
        f"Subject: {n.subject}\n"
    )
    own = _outlook_links(text.rstrip(), n.agent_addr)
    plain = f"{own}\n\n{block}\n{n.text}\n"
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} '
        '</style></head><body dir="ltr"><div class="elementToProof" style="font-family: '
        'Aptos, sans-serif; font-size: 12pt;">'
        f"{_html_paragraphs(text.rstrip())}</div>"
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        f'style="font-size:11pt" color="#000000"><b>From:</b> {escape(n.from_name)} '
        f"&lt;{escape(n.from_addr)}&gt;<br><b>Sent:</b> {escape(sent)}<br>"
        f"<b>To:</b> {escape(n.agent)}<br><b>Subject:</b> {escape(n.subject)}</font>"
        f"<div>&nbsp;</div></div><div>{_html_paragraphs(n.text)}</div></body></html>\n"
    )
    topic = n.subject
    headers = [
        ("From", n.agent),
        ("To", n.reply_to),
        ("Subject", f"RE: {n.subject}"),
        ("Thread-Topic", topic),
        ("Thread-Index", "AQHbPh8vN2m5d1Xo0kOqYb3fcQn1mQ=="),
        ("Date", REPLY_DATE),
        (
            "Message-ID",
            f"<DM6PR11MB{uuid.uuid4().hex[:20].upper()}@DM6PR11MB4107.namprd11.prod.outlook.com>",
        ),
        *n.thread_headers(),
        ("Accept-Language", "en-US"),
        ("Content-Language", "en-US"),
        ("X-MS-Has-Attach", ""),
        ("X-MS-TNEF-Correlator", ""),
        ("MIME-Version", "1.0"),
    ]
    return _build(headers, plain, html)


# --- Apple Mail -------------------------------------------------------------------------


def apple_mail_reply(notification: bytes, text: str) -> bytes:
    """An Apple Mail (macOS, en_GB) reply: top-posted, attribution, "> " lines."""
    n = Notification(notification)
    when = n.date.strftime("%-d %b %Y, at %H:%M")
    attribution = f"On {when}, {n.from_name} <{n.from_addr}> wrote:"
    plain = f"{text.rstrip()}\n\n{attribution}\n\n{_quote(n.lines, empty='>')}\n\n"
    headers = [
        ("From", n.agent),
        ("Content-Type", "text/plain"),
        ("Mime-Version", "1.0 (Mac OS X Mail 16.0 \\(3826.400.131.1.6\\))"),
        ("Subject", f"Re: {n.subject}"),
        ("Date", REPLY_DATE),
        *n.thread_headers(),
        ("To", n.reply_to),
        ("Message-Id", f"<{str(uuid.uuid4()).upper()}@example.com>"),
        ("X-Mailer", "Apple Mail (2.3826.400.131.1.6)"),
    ]
    msg = EmailMessage(policy=SMTP)
    for name, value in headers:
        if name != "Content-Type":
            msg[name] = value
    msg.set_content(plain, subtype="plain", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


# --- mutt -------------------------------------------------------------------------------


def mutt_binary() -> str | None:
    """mutt or neomutt on PATH, or None."""
    return shutil.which("mutt") or shutil.which("neomutt")


def mutt_attribution(n: Notification) -> str:
    """mutt's default `attribution` "On %d, %n wrote:" with its default `date_format`."""
    when = n.date.strftime("%a, %b %d, %Y at %I:%M:%S%p %z")
    return f"On {when}, {n.from_name} wrote:"


def mutt_reply(
    notification: bytes, text: str, workdir: Path, *, bottom_post: bool = False
) -> bytes:
    """Have a real mutt compose and "send" the reply; return the bytes it handed over.

    mutt reads a draft (`-H`) holding the reply's headers and body, adds its own headers
    (Message-ID, Date, User-Agent, MIME) and pipes the message to `sendmail`, which here
    is a script that writes it to a file. `-F /dev/null` keeps the user's muttrc out.
    """
    binary = mutt_binary()
    assert binary is not None, "mutt is not installed"
    n = Notification(notification)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"mutt-{uuid.uuid4().hex[:8]}.eml"
    sendmail = workdir / "sendmail.sh"
    sendmail.write_text(f'#!/bin/sh\ncat > "{out}"\n', encoding="utf-8")
    sendmail.chmod(sendmail.stat().st_mode | stat.S_IXUSR)
    quoted = f"{mutt_attribution(n)}\n{_quote(n.lines, empty='>')}\n"
    body = f"{quoted}\n{text.rstrip()}\n" if bottom_post else f"{text.rstrip()}\n\n{quoted}"
    refs = " ".join([*n.references, n.message_id])
    draft = workdir / "draft.txt"
    draft.write_text(
        f"From: {n.agent}\n"
        f"To: {n.reply_to}\n"
        f"Subject: Re: {n.subject}\n"
        f"In-Reply-To: {n.message_id}\n"
        f"References: {refs}\n"
        f"\n{body}",
        encoding="utf-8",
    )
    settings = [
        f'set sendmail="{sendmail}"',
        "set use_from=yes",
        f'set from="{n.agent_addr}"',
        "set hostname=example.com",
        'set record=""',
        "set copy=no",
        "set charset=utf-8",
        'set send_charset="us-ascii:utf-8"',
    ]
    args = [binary, "-n", "-F", "/dev/null"]
    for setting in settings:
        args += ["-e", setting]
    args += ["-H", str(draft)]
    env = {**os.environ, "HOME": str(workdir), "TERM": "dumb", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=30, check=False
    )
    if done.returncode != 0 or not out.exists():
        raise AssertionError(
            f"mutt failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    # sendmail takes local (LF) line ends and puts CRLF on the wire, as SMTP requires.
    return re.sub(rb"\r?\n", b"\r\n", out.read_bytes())


def replied_headers(raw: bytes) -> EmailMessage:
    """The reply parsed, for assertions about what a builder produced."""
    msg = message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


__all__ = [
    "Notification",
    "apple_mail_reply",
    "gmail_reply",
    "mutt_binary",
    "mutt_reply",
    "outlook_reply",
    "replied_headers",
]
