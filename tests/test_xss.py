"""Whatever a customer sends, the web view never runs script or contacts another origin.

Every payload of tests/data/xss/payloads.txt (491 hand-written XSS vectors, see its
README.md) goes in through the real ingest path in every place a customer controls and
the web view shows:

    HTML bodies       one payload per message (a text/html part alone, so its text
                      rendering is shown too); each message is its own sandboxed frame
    text bodies       25 payloads per text/plain message
    subjects          25 per ticket, in its first message's subject (the only one a
                      ticket shows); RFC 2047 encoded unless plain ASCII, and folded
    display names     one per message: From: =?utf-8?...?= <mallory@example.org>
    filenames         one attachment per HTML message, RFC 2231 encoded
    tags              `#tag PAYLOAD` through operations.run_commands, and the refused
                      command block echoed by the web view's command box

25 HTML/name/filename messages plus one text message form a ticket, so one ticket page
shows 25 frames. Then a real headless Chromium signs in as an agent and loads every
list page, every such ticket page (with its <details> opened and each frame loaded),
every status page and the command box's error page, and watches:

    dialogs           alert()/confirm()/prompt(), dismissed and counted
    __xss             window.__xss in every frame after load (top.__xss lands on the
                      top page, which is a frame too)
    other origins     every request whose host is not 127.0.0.1 is recorded and aborted
    dangerous nodes   a DOM scan of every page and frame, independent of CSP: <script>,
                      on* attributes, javascript:/vbscript:/data:text URLs, foreign
                      iframes, object/embed/base/meta refresh (and a few more)
    CSP reports       console messages about the Content-Security-Policy: information only

and checks that every stored customer value shows up on the page as text. The "Open
with images" view is loaded too, for the payloads it changes: there remote images are
what the agent asked for (counted apart, and aborted); nothing else may leave.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import Header
from email.utils import encode_rfc2231
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser import sign_in, web_server
from sqlmodel import col, select

from inboxd.agents.operations import InvalidCommands, run_commands
from inboxd.db import session_scope
from inboxd.models import Attachment, Message, Ticket, TicketTag
from inboxd.pipeline import Incoming, ingest_batch
from inboxd.runtime import Runtime
from inboxd.tickets.links import status_token
from inboxd.web.sanitize import clean_html

CORPUS = Path(__file__).resolve().parent / "data" / "xss" / "payloads.txt"
CORPUS_SIZE = 491
PER_TICKET = 25
SUPPORT = "support@example.com"
CUSTOMER = "mallory@example.org"
DATE = "Mon, 23 Nov 2026 10:00:00 +0000"
BOUNDARY = "=_xss-part_="
LOCAL_HOST = "127.0.0.1"
# Schemes that never leave the browser; anything else must be for 127.0.0.1.
LOCAL_SCHEMES = {"data", "blob", "about"}
COMMAND_BOX_CHARS = 18_000  # the form takes 20,000
MAIL_PATH = re.compile(r"^/messages/\d+/html$")


def load_payloads() -> list[str]:
    """The corpus: one payload a line, "# " lines are comments, a literal \\n a newline."""
    lines = CORPUS.read_text(encoding="utf-8").split("\n")
    return [line.replace("\\n", "\n") for line in lines if line and not line.startswith("# ")]


def squash(text: str) -> str:
    """Text compared the way a page shows it: every run of whitespace one space."""
    return " ".join(text.split())


# --- mail ---------------------------------------------------------------------------


def encoded_words(text: str) -> str:
    """RFC 2047 encoded words, folded: any text, newlines included, as one header field."""
    return Header(text, "utf-8").encode(linesep="\r\n")


def subject_field(text: str) -> str:
    """A Subject field's value: as written when that is plain ASCII, else RFC 2047. Long
    values are folded (CRLF before a space), which readers undo; no payload's own
    newline ever reaches the header."""
    if not text.isascii() or "\n" in text or "\r" in text or "=?" in text:
        return encoded_words(text)
    first, *words = text.split(" ")
    lines = [first]
    for word in words:
        if len(lines[-1]) > 70 and word:
            lines.append(" " + word)
        else:
            lines[-1] += " " + word
    return "\r\n".join(lines)


def base64_lines(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def hostile_mail(
    *,
    name: str,
    subject: str,
    msgid: str,
    thread: list[str],
    parts: list[tuple[str, str, bytes]],
) -> bytes:
    """A multipart/mixed message from CUSTOMER; parts are (Content-Type,
    Content-Disposition or "", data), all sent base64 so every byte arrives as written."""
    fields = [
        ("From", f"{encoded_words(name)} <{CUSTOMER}>"),
        ("To", SUPPORT),
        ("Subject", subject_field(subject)),
        ("Date", DATE),
        ("Message-ID", msgid),
    ]
    if thread:
        fields += [("In-Reply-To", thread[-1]), ("References", "\r\n ".join(thread[-10:]))]
    fields += [
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/mixed; boundary="{BOUNDARY}"'),
    ]
    lines = [f"{k}: {v}" for k, v in fields] + ["", "This is a MIME message."]
    for ctype, disposition, data in parts:
        lines += [f"--{BOUNDARY}", f"Content-Type: {ctype}"]
        if disposition:
            lines.append(f"Content-Disposition: {disposition}")
        lines += ["Content-Transfer-Encoding: base64", "", base64_lines(data)]
    lines.append(f"--{BOUNDARY}--")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def attachment_disposition(filename: str) -> str:
    return f"attachment; filename*={encode_rfc2231(filename, 'utf-8')}"


@dataclass
class Planted:
    """Where the payloads went: ticket ids, and which message carries which payload."""

    groups: list[int] = field(default_factory=list)  # ticket ids, PER_TICKET payloads each
    html_message: dict[int, int] = field(default_factory=dict)  # message pk -> payload no.
    tickets: int = 0
    plain_ticket: int = 0
    placed: dict[str, int] = field(default_factory=dict)
    tags_accepted: list[str] = field(default_factory=list)
    tags_refused: int = 0


def plant(rt: Runtime, payloads: list[str]) -> Planted:
    """Ingest every payload in every customer-controlled place (see the module docstring).

    ingest_batch is what ingest() calls, with one transaction per batch: same code, and
    several times faster for the ~500 messages here.
    """
    planted = Planted()
    incoming: list[Incoming] = []
    html_ids: dict[str, int] = {}
    groups = [
        list(range(start, min(start + PER_TICKET, len(payloads))))
        for start in range(0, len(payloads), PER_TICKET)
    ]
    for g, numbers in enumerate(groups):
        thread: list[str] = []
        for n in numbers:
            p = payloads[n]
            msgid = f"<xss.{g}.{n}@example.org>"
            # A ticket shows only its first message's subject, so that one carries all
            # of the ticket's payloads.
            subject = f"Re: group {g}" if thread else " ".join(payloads[i] for i in numbers)
            incoming.append(
                Incoming(
                    hostile_mail(
                        name=p,
                        subject=subject,
                        msgid=msgid,
                        thread=thread,
                        parts=[
                            ("text/html; charset=utf-8", "", p.encode()),
                            (
                                "text/plain; charset=utf-8",
                                attachment_disposition(p),
                                f"attachment {n}\n".encode(),
                            ),
                        ],
                    )
                )
            )
            html_ids[msgid] = n
            thread.append(msgid)
        text = "\n\n".join(payloads[n] for n in numbers) + "\n"
        incoming.append(
            Incoming(
                hostile_mail(
                    name=f"Text probe {g}",
                    subject=f"Re: group {g}",
                    msgid=f"<xss.{g}.text@example.org>",
                    thread=thread,
                    parts=[("text/plain; charset=utf-8", "", text.encode())],
                )
            )
        )
    # A ticket without HTML, for the command box (so no frame is loaded twice).
    incoming.append(
        Incoming(
            hostile_mail(
                name="Carol",
                subject="Command box",
                msgid="<xss.commands@example.org>",
                thread=[],
                parts=[("text/plain; charset=utf-8", "", b"Nothing to see.\n")],
            )
        )
    )
    results = []
    for start in range(0, len(incoming), 100):
        results += ingest_batch(rt, incoming[start : start + 100])
    outcomes = {r.result for r in results}
    ingested = {"created", "appended"}
    assert outcomes <= ingested, [r for r in results if r.result not in ingested]
    planted.tickets = len({r.ticket for r in results})
    assert planted.tickets == len(groups) + 1
    planted.plain_ticket = results[-1].ticket or 0

    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(Message.id, Message.message_id, Message.ticket_id).where(
                col(Message.message_id).in_(list(html_ids))
            )
        ).all()
        for pk, msgid, _ticket in rows:
            assert pk is not None and msgid is not None
            planted.html_message[pk] = html_ids[msgid]
        by_msgid = {msgid: ticket for _pk, msgid, ticket in rows}
    planted.groups = [
        by_msgid[f"<xss.{g}.{numbers[0]}@example.org>"] for g, numbers in enumerate(groups)
    ]
    assert len(planted.html_message) == len(payloads)
    assert len(set(planted.groups)) == len(groups)

    # Tags: one command per payload, on the payload's group ticket.
    for g, numbers in enumerate(groups):
        for n in numbers:
            try:
                run_commands(
                    rt, planted.groups[g], f"#tag {payloads[n]}", "alice@example.com", "test"
                )
            except InvalidCommands:
                planted.tags_refused += 1
            else:
                planted.tags_accepted.append(payloads[n])

    planted.placed = {
        "html bodies": len(planted.html_message),
        "text bodies": len(payloads),
        "subjects": len(payloads),
        "display names": len(payloads),
        "filenames": len(payloads),
        "tags tried": len(payloads),
    }
    return planted


# --- the browser's side ---------------------------------------------------------------

# Runs in every page and frame: what should never be there, whatever CSP blocks.
SCAN = r"""
({top, mail}) => {
  // top: the page itself, not a frame; mail: one of our /messages/N/html documents.
  const bad = [];
  const notes = [];
  const show = (el) => el.outerHTML.slice(0, 200);
  const squash = (v) => v.replace(/[\u0000-\u0020]+/g, '').toLowerCase();
  const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'data',
    'poster', 'background', 'codebase', 'dynsrc', 'lowsrc', 'srcset', 'ping', 'manifest']);
  for (const el of document.querySelectorAll('*')) {
    const tag = el.localName.toLowerCase();
    if (tag === 'script') bad.push('script element: ' + show(el));
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = squash(attr.value);
      if (name.startsWith('on')) bad.push('event handler ' + name + ': ' + show(el));
      if (name === 'srcdoc' || name === 'formaction') bad.push(name + ': ' + show(el));
      if (URL_ATTRS.has(name) || name.endsWith(':href')) {
        if (/^(javascript|vbscript|livescript):/.test(value) || value.startsWith('data:text')) {
          bad.push('script URL in ' + name + ': ' + show(el));
        } else if (value.startsWith('data:')) {
          notes.push('data: URL kept: ' + show(el));
        }
      }
      if (value.includes('xss.invalid')) notes.push('xss.invalid kept: ' + show(el));
      if (name === 'style' && /url\(|expression|behavior|binding|image/.test(value)) {
        notes.push('style kept: ' + show(el));
      }
    }
    if (tag === 'iframe') {
      const sandbox = el.getAttribute('sandbox');
      const ours = top && !mail && el.classList.contains('mail') && sandbox !== null
        && !/allow-scripts|allow-same-origin|allow-top-navigation|allow-forms/.test(sandbox)
        && /^\/messages\/\d+\/html$/.test(el.getAttribute('src') || '');
      if (!ours) bad.push('iframe: ' + show(el));
    }
    if (['frame', 'frameset', 'object', 'embed', 'applet', 'portal', 'param'].includes(tag)) {
      bad.push(tag + ': ' + show(el));
    }
    if (tag === 'base') {
      // The mail documents carry one of ours: <base target="_blank">, no href.
      const ours = mail && !el.hasAttribute('href') && el.getAttribute('target') === '_blank';
      if (!ours) bad.push('base: ' + show(el));
    }
    if (tag === 'meta' && el.hasAttribute('http-equiv')) bad.push('meta http-equiv: ' + show(el));
    if (tag === 'link') {
      const ours = top && !mail && el.getAttribute('rel') === 'stylesheet'
        && el.getAttribute('href') === '/static/inboxd.css';
      if (!ours) bad.push('link: ' + show(el));
    }
    if (tag === 'form') {
      const action = el.getAttribute('action') || '';
      const local = action.startsWith('/') && !action.startsWith('//');
      if (!top || mail || !local) bad.push('form: ' + show(el));
    }
    if (['set', 'animate'].includes(tag)
        && /^(on|href|xlink:href)/i.test(el.getAttribute('attributeName') || '')) {
      bad.push('svg animation of ' + el.getAttribute('attributeName') + ': ' + show(el));
    }
  }
  const root = document.documentElement;
  return {
    bad, notes,
    xss: typeof window.__xss !== 'undefined',
    ready: document.readyState,
    text: root ? root.textContent : '',
  };
}
"""

SHOWN_IDS = "rows => rows.map(r => r.dataset.id)"
OPEN_DETAILS = "() => { for (const d of document.querySelectorAll('details')) d.open = true; }"


@dataclass
class Watch:
    """Everything the browser did that it should not have, over all pages."""

    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)
    xss: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    csp_messages: int = 0
    pages: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    opened: int = 0
    # Requests already counted (kept alive here, so no id is ever reused).
    seen: dict[int, Any] = field(default_factory=dict)
    # While set, a foreign image is what the agent asked for: recorded apart (and aborted).
    allow_remote_images: bool = False
    remote_images: list[str] = field(default_factory=list)

    def attach(self, context: Any) -> None:
        context.route("**/*", self._route)
        context.on("page", self._page)
        context.on("request", self._request)
        context.on("response", self._response)

    def _route(self, route: Any) -> None:
        if is_foreign(route.request.url):
            self._request(route.request)
            route.abort()
        else:
            route.continue_()

    def _request(self, request: Any) -> None:
        # Counted where first seen, the route or the request event, once per request.
        if is_foreign(request.url) and id(request) not in self.seen:
            self.seen[id(request)] = request
            entry = f"{request.resource_type} {request.url[:200]}"
            if self.allow_remote_images and request.resource_type == "image":
                self.remote_images.append(entry)
            else:
                self.foreign.append(entry)

    def _page(self, page: Any) -> None:
        self.opened += 1
        if self.opened > 1:
            # The test opens one page; any other is a popup something on a page opened.
            self.popups.append(page.url)
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)[:200]))

    def _dialog(self, dialog: Any) -> None:
        where = dialog.page.url if dialog.page else "?"
        self.dialogs.append(f"{dialog.type} {dialog.message!r} on {where}")
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_messages += 1

    def _response(self, response: Any) -> None:
        path = urlsplit(response.url).path
        if response.status >= 500 or (MAIL_PATH.match(path) and response.status != 200):
            self.server_errors.append(f"{response.status} {response.url}")

    def inspect(self, page: Any, kind: str, expected_frames: set[str] | None = None) -> list[Any]:
        """Scan the page and each of its frames; return [(frame path, scan result)]."""
        self.pages[kind] = self.pages.get(kind, 0) + 1
        if expected_frames:
            wait_for_frames(page, expected_frames)
        found = []
        for frame in page.frames:
            is_top = frame == page.main_frame
            where = f"{kind} {frame.url[:200]}"
            if is_foreign(frame.url):  # chrome-error:// too: the page for an aborted load
                # Something made the frame navigate away (its request was aborted above).
                self.foreign.append(f"{where}: a frame navigated away from this origin")
                continue
            path = urlsplit(frame.url).path
            mail = bool(MAIL_PATH.match(path))
            result = frame.evaluate(SCAN, {"top": is_top, "mail": mail})
            where = f"{kind} {path}"
            self.dangerous += [f"{where}: {b}" for b in result["bad"]]
            self.notes += [f"{where}: {n}" for n in result["notes"]]
            if result["xss"]:
                self.xss.append(where)
            if result["ready"] != "complete":
                self.missing.append(f"{where}: the document was not loaded ({result['ready']})")
            if not is_top:
                self.frames[kind] = self.frames.get(kind, 0) + 1
            found.append((path, result))
        return found

    def expect_text(self, where: str, text: str, values: list[str]) -> None:
        shown = squash(text)
        self.missing += [f"{where}: {v[:80]!r}" for v in values if squash(v) not in shown]

    def summary(self) -> str:
        return (
            f"dialogs {len(self.dialogs)}, __xss {len(self.xss)}, "
            f"requests to other origins {len(self.foreign)}, "
            f"dangerous nodes {len(self.dangerous)}, script errors {len(self.page_errors)}, "
            f"popups {len(self.popups)}, server errors {len(self.server_errors)}, "
            f"values not shown as text {len(self.missing)}; "
            f"information: CSP console messages {self.csp_messages}, "
            f"kept-but-inert notes {len(self.notes)}; "
            f"pages loaded {self.pages}, frames scanned {self.frames}"
        )

    def failures(self) -> list[str]:
        return [
            *(f"dialog: {d}" for d in self.dialogs),
            *(f"__xss set: {x}" for x in self.xss),
            *(f"request to another origin: {f}" for f in self.foreign),
            *(f"dangerous node: {d}" for d in self.dangerous),
            *(f"script error: {e}" for e in self.page_errors),
            *(f"popup: {p}" for p in self.popups),
            *(f"server error: {s}" for s in self.server_errors),
            *(f"not shown as text: {m}" for m in self.missing),
        ]


def is_foreign(url: str) -> bool:
    """Would loading this URL contact anything but the web server under test?"""
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname != LOCAL_HOST


def wait_for_frames(page: Any, paths: set[str], timeout: float = 20.0) -> None:
    """Until a frame shows each of `paths` (the frames sit in <details>)."""
    deadline = time.monotonic() + timeout
    while True:
        # page.goto waits for the load event, which waits for every frame: usually done
        # (and the scan checks that each document is complete).
        missing = paths - {urlsplit(f.url).path for f in page.frames if f != page.main_frame}
        if not missing:
            return
        assert time.monotonic() < deadline, f"frames never loaded on {page.url}: {missing}"
        page.wait_for_timeout(50)


@pytest.fixture
def watched(browser: Any, sqlite_rt: Runtime) -> Iterator[tuple[Any, Watch, str]]:
    """A signed-in agent's page (alice) in a fresh browser context under a Watch."""
    with web_server(sqlite_rt) as base:
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 1600})
        watch = Watch()
        watch.attach(context)
        page = context.new_page()
        try:
            sign_in(page, sqlite_rt, base, "alice@example.com")
            yield page, watch, base
        finally:
            context.close()


def stored_values(rt: Runtime) -> dict[str, Any]:
    """What the database holds of the customer's values, to find on the pages."""
    with session_scope(rt.engine) as session:
        tickets = {t.id: t for t in session.exec(select(Ticket))}
        messages = list(session.exec(select(Message).order_by(col(Message.id))))
        files = list(session.exec(select(Attachment)))
        tags = list(session.exec(select(TicketTag)))
        by_ticket: dict[int, list[Message]] = {}
        for m in messages:
            by_ticket.setdefault(m.ticket_id, []).append(m)
        return {
            "subjects": {tid: t.subject for tid, t in tickets.items()},
            "messages": {
                tid: [(m.id, m.kind, m.from_name, m.text or m.body, m.body) for m in ms]
                for tid, ms in by_ticket.items()
            },
            "files": {f.message_pk: f.filename for f in files},
            "tags": {(t.ticket_id, t.tag) for t in tags},
        }


def arrivals(rt: Runtime, payloads: list[str]) -> dict[str, int]:
    """How many payloads the database holds as sent, per place (whitespace aside)."""
    found = dict.fromkeys(("subjects", "display names", "html bodies", "text bodies"), 0)
    found["filenames"] = 0
    with session_scope(rt.engine) as session:
        messages = {m.message_id: m for m in session.exec(select(Message))}
        subjects = {t.id: squash(t.subject) for t in session.exec(select(Ticket))}
        files = {a.message_pk: a.filename for a in session.exec(select(Attachment))}
        for n, p in enumerate(payloads):
            g = n // PER_TICKET
            m = messages[f"<xss.{g}.{n}@example.org>"]
            text = messages[f"<xss.{g}.text@example.org>"]
            found["subjects"] += squash(p) in subjects[m.ticket_id]
            found["display names"] += squash(m.from_name) == squash(p)
            found["html bodies"] += m.html == p
            found["text bodies"] += squash(p) in squash(text.body)
            found["filenames"] += files[m.id] == p
    return found


def test_hostile_mail_never_runs_script_or_reaches_another_origin(
    sqlite_rt: Runtime, watched: tuple[Any, Watch, str]
) -> None:
    """Every payload in every customer-controlled place, every page that shows them.

    sqlite_rt, not the rt fixture's SQLite + PostgreSQL: escaping, sanitizing and the
    headers are the same whatever the database, and one database keeps the ~500
    messages and ~65 page loads within budget.
    """
    rt = sqlite_rt
    page, watch, _base = watched
    payloads = load_payloads()
    assert len(payloads) == CORPUS_SIZE, "the corpus changed: update CORPUS_SIZE and README"
    planted = plant(rt, payloads)
    stored = stored_values(rt)
    # Every payload is stored as sent, but filenames: those are made safe on the way in
    # (no path, no <>:"/\|?* or control characters), and the safe name is what is shown.
    arrived = arrivals(rt, payloads)
    assert {k: v for k, v in arrived.items() if k != "filenames"} == dict.fromkeys(
        ("subjects", "display names", "html bodies", "text bodies"), CORPUS_SIZE
    ), arrived

    # The list, every page of it: subjects, requesters, tags.
    listed: set[int] = set()
    for number in range(1, -(-planted.tickets // 50) + 1):
        response = page.goto(f"/?page={number}")
        assert response is not None and response.status == 200
        top = watch.inspect(page, "list")[0][1]
        shown_ids = [int(i) for i in page.eval_on_selector_all("tr.ticket", SHOWN_IDS)]
        listed.update(shown_ids)
        watch.expect_text(
            f"list page {number}", top["text"], [stored["subjects"][i] for i in shown_ids]
        )
        watch.expect_text(
            f"list page {number}",
            top["text"],
            [tag for tid, tag in stored["tags"] if tid in shown_ids],
        )
    assert listed == set(stored["subjects"]), "every ticket is on some page of the list"

    template_probes = 0
    framed: set[int] = set()
    for g, ticket_id in enumerate(planted.groups):
        messages = stored["messages"][ticket_id]
        frames = {f"/messages/{pk}/html" for pk, *_ in messages if pk in planted.html_message}
        assert len(frames) == min(PER_TICKET, CORPUS_SIZE - g * PER_TICKET)
        response = page.goto(f"/tickets/{ticket_id}")
        assert response is not None and response.status == 200
        page.evaluate(OPEN_DETAILS)
        page.wait_for_timeout(50)  # anything a toggle, focus or animation might start
        found = watch.inspect(page, "ticket", frames)
        top = found[0][1]
        where = f"ticket {ticket_id}"
        watch.expect_text(where, top["text"], [stored["subjects"][ticket_id]])
        watch.expect_text(where, top["text"], [name for _, _, name, _, _ in messages])
        watch.expect_text(where, top["text"], [text for _, _, _, text, _ in messages])
        watch.expect_text(where, top["text"], [body for _, _, _, _, body in messages])
        watch.expect_text(
            where,
            top["text"],
            [stored["files"][pk] for pk, *_ in messages if pk in stored["files"]],
        )
        watch.expect_text(
            where, top["text"], [tag for tid, tag in stored["tags"] if tid == ticket_id]
        )
        for path, result in found[1:]:
            if not MAIL_PATH.match(path):
                continue  # a frame inside a mail frame: scanned, and already reported
            pk = int(path.split("/")[2])
            number = planted.html_message[pk]
            framed.add(number)
            if "7*7" in payloads[number] or "7*'7'" in payloads[number]:
                template_probes += 1
                for evaluated in ("49", "7777777"):
                    if evaluated in result["text"] and evaluated not in payloads[number]:
                        watch.dangerous.append(f"{path}: template evaluated: {payloads[number]}")

        # The customer's own view of the same ticket.
        page.goto(f"/status/{status_token(rt.secret_key, ticket_id)}")
        status = watch.inspect(page, "status")[0][1]
        public = [m for m in messages if m[1] in ("customer", "reply")]
        assert len(public) == len(messages), "every customer message is public"
        watch.expect_text(
            f"status {ticket_id}",
            status["text"],
            [stored["subjects"][ticket_id], *(m[2] for m in public), *(m[3] for m in public)],
        )

    # An agent who pastes the payloads into the command box sees them echoed back.
    block: list[str] = []
    for number, p in enumerate(payloads):
        block.append(f"#tag {p}")
        if number == len(payloads) - 1 or sum(map(len, block)) > COMMAND_BOX_CHARS:
            page.goto(f"/tickets/{planted.plain_ticket}")
            page.fill("textarea[name=commands]", "\n".join(block))
            with page.expect_response(lambda r: r.request.method == "POST") as posted:
                page.click("#run-commands")
            assert posted.value.status == 422, "every block has refused lines"
            page.wait_for_load_state()
            found = watch.inspect(page, "command errors")
            watch.expect_text(
                "command errors",
                found[0][1]["text"],
                [line for b in block for line in b.split("\n")],
            )
            block = []

    # "Open with images": the agent asks for remote images, and gets those and nothing
    # else. Loaded as the link opens it, as a page of its own, for each payload whose
    # sanitized HTML then differs by a URL to another origin (the corpus puts all of
    # those under xss.invalid). The other payloads differ at most by a relative image
    # URL, or only in the policy's img-src; and a load the policy blocked in the frames
    # above would have been counted there (Chromium reports the request all the same).
    pk_of = {number: pk for pk, number in planted.html_message.items()}
    with_images = [
        n
        for n, p in enumerate(payloads)
        if clean_html(p) != (allowed := clean_html(p, remote_images=True))
        and "xss.invalid" in allowed
    ]
    watch.allow_remote_images = True
    for n in with_images:
        response = page.goto(f"/messages/{pk_of[n]}/html?images=1")
        assert response is not None and response.status == 200
        watch.inspect(page, "with images")
    watch.allow_remote_images = False

    placed = ", ".join(f"{k} {v}" for k, v in planted.placed.items())
    report = (
        f"{placed}; tags accepted {len(planted.tags_accepted)}, refused {planted.tags_refused}; "
        f"stored as sent {arrived}; template probes in frames {template_probes}; "
        f"remote images loaded on request {len(watch.remote_images)} "
        f"(from {len(with_images)} documents); {watch.summary()}"
    )
    print(report)
    for note in sorted(set(watch.notes)):
        print("  kept:", note)
    failures = watch.failures()
    assert not failures, report + "\n" + "\n".join(failures[:60])
    assert len(framed) == CORPUS_SIZE, report


# --- attachments ------------------------------------------------------------------------

SCRIPT = "top.__xss=1;alert(1);fetch('http://xss.invalid/x')"
HOSTILE_FILES = [
    # (filename, Content-Type, disposition, content)
    ("evil.html", "text/html", "attachment", f"<html><script>{SCRIPT}</script></html>"),
    (
        "x.svg",
        "image/svg+xml",
        "attachment",
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="{SCRIPT}"><script>{SCRIPT}</script>'
        '<image href="http://xss.invalid/i.png"/></svg>',
    ),
    ("inline.htm", "text/html", "inline", f'<body onload="{SCRIPT}"><img src=//xss.invalid/p>'),
    (
        "page.xhtml",
        "application/xhtml+xml",
        "attachment",
        f'<html xmlns="http://www.w3.org/1999/xhtml"><script>{SCRIPT}</script></html>',
    ),
]


def test_an_html_or_svg_attachment_is_only_ever_downloaded(
    sqlite_rt: Runtime, watched: tuple[Any, Watch, str]
) -> None:
    """/attachments/{id} is a download with nosniff and a sandboxing CSP; opening it in the
    browser, by address or by its link, downloads it and runs nothing."""
    from playwright.sync_api import Error as PlaywrightError

    rt = sqlite_rt
    page, watch, _base = watched
    raw = hostile_mail(
        name="Carol",
        subject="Files",
        msgid="<files@example.org>",
        thread=[],
        parts=[
            ("text/plain; charset=utf-8", "", b"Files attached.\n"),
            *(
                (f"{ctype}; charset=utf-8", f'{disp}; filename="{name}"', content.encode())
                for name, ctype, disp, content in HOSTILE_FILES
            ),
        ],
    )
    [result] = ingest_batch(rt, [Incoming(raw)])
    assert result.result == "created"
    with session_scope(rt.engine) as session:
        files = {a.filename: a.id for a in session.exec(select(Attachment))}
    assert sorted(files) == sorted(name for name, *_ in HOSTILE_FILES)

    ticket_url = f"/tickets/{result.ticket}"
    for name, _ctype, _disp, content in HOSTILE_FILES:
        url = f"/attachments/{files[name]}"
        answer = page.request.get(url)
        assert answer.status == 200, (name, answer.status)
        headers = answer.headers
        assert headers["content-disposition"].startswith("attachment"), (name, headers)
        assert name in headers["content-disposition"], (name, headers)
        assert headers["x-content-type-options"] == "nosniff", (name, headers)
        assert "sandbox" in headers["content-security-policy"], (name, headers)
        assert "default-src 'none'" in headers["content-security-policy"], (name, headers)
        assert headers["content-type"].startswith("application/octet-stream"), (name, headers)
        assert answer.body() == content.encode()

        # Typed into the address bar: a download, and the page stays where it was.
        page.goto(ticket_url)
        with page.expect_download() as typed:
            try:
                page.goto(url)
            except PlaywrightError as exc:  # Playwright refuses to "navigate" to a download
                assert "Download is starting" in str(exc) or "ERR_ABORTED" in str(exc), exc
        assert typed.value.suggested_filename == name
        assert Path(typed.value.path()).read_bytes() == content.encode()
        assert urlsplit(page.url).path == ticket_url

        # Its link on the ticket page: the same.
        with page.expect_download() as clicked:
            page.click(f"a[href='{url}']")
        assert clicked.value.suggested_filename == name
        page.wait_for_timeout(100)
        assert urlsplit(page.url).path == ticket_url
        watch.inspect(page, "ticket")

    failures = watch.failures()
    assert not failures, watch.summary() + "\n" + "\n".join(failures)
