"""The HTML alternative of every mail inboxd sends (issue 15 item 7).

The plain text is written once, by the templates; the HTML part is that same text laid
out by templates/email/layout.html.j2, so the two never say different things. Nothing a
customer or an agent wrote becomes markup in it, and `[outbound] html = false` sends the
very same plain text alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import make_config
from daemon_harness import listening
from mailbuilder import mail, plain_text
from relay import CaptureRelay
from replyclients import gmail_reply
from sqlmodel import Session, col, select
from test_agent_mail import CAROL, Desk

from inboxd.models import Outbound
from inboxd.pipeline import ingest
from inboxd.queues import html_part
from inboxd.queues.outbox import FilePart, compose
from inboxd.runtime import Runtime, open_runtime

# The only tags the layout writes; anything else in an HTML part came from someone's text.
LAYOUT_TAGS = {"html", "head", "meta", "title", "body", "div", "p", "br", "a", "blockquote", "hr"}


class Tags(HTMLParser):
    """The tags of a page and the targets of its links."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value or "" for name, value in attrs if tag == "a" and name == "href"]


def tags_of(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    return parser


def html_of(msg: Message) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


# --- the text, read for its shapes (pure) --------------------------------------------


def test_paragraphs_insets_quotes_rules_and_the_signature_are_told_apart() -> None:
    text = (
        "Hello Ann,\nthanks.\n\n    Order 1042\n\n> you wrote\n> > earlier\n"
        "---------- Alice wrote ----------\n\nBody\n-- \nAlice, Support\n"
    )
    shapes = [(b.kind, b.depth, len(b.lines)) for b in html_part.blocks(text)]
    assert shapes == [
        ("p", 0, 2),
        ("inset", 0, 1),
        ("quote", 1, 1),
        ("quote", 2, 1),
        ("rule", 0, 1),
        ("p", 0, 1),
        ("signature", 0, 1),
    ]


def test_links_are_http_only_and_leave_a_sentences_punctuation_outside() -> None:
    (line,) = html_part.blocks("See https://x.example/s/a?b=1. Or javascript:alert(1)")[0].lines
    assert [p.href for p in line if p.href] == ["https://x.example/s/a?b=1"]
    assert "".join(p.text for p in line) == "See https://x.example/s/a?b=1. Or javascript:alert(1)"
    (line,) = html_part.blocks("请看 https://x.example/s/abc。谢谢")[0].lines
    assert [p.href for p in line if p.href] == ["https://x.example/s/abc"]


def test_nothing_anyone_wrote_becomes_markup() -> None:
    hostile = '<script>alert(1)</script> <img src=x onerror=alert(2)> "><a href="javascript:x">'
    page = html_part.html_text(f"{hostile}\n\n    {hostile}\n> {hostile}", title=hostile)
    found = tags_of(page)
    assert found.tags <= LAYOUT_TAGS
    assert found.links == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_reply_only_of_a_signature_separator_is_a_signature_not_a_crash() -> None:
    assert [b.kind for b in html_part.blocks("-- \n")] == ["signature"]
    assert html_part.blocks("") == []


# --- composing a mail ----------------------------------------------------------------


HEADERS = [("From", "support@example.com"), ("Subject", "[#7] Refund 退款")]
TEXT = "Hello 王小明,\n\nyour refund is on its way: https://shop.example/r/7\n\n-- \nSupport\n"


def test_a_mail_is_its_plain_text_beside_the_same_text_in_html(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    msg = message_from_bytes(compose(HEADERS, TEXT, cfg=cfg).as_bytes())
    assert msg.get_content_type() == "multipart/alternative"
    plain, page = msg.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain" and page.get_content_type() == "text/html"
    assert plain_text(msg) == TEXT
    assert "王小明" in html_of(msg)
    assert tags_of(html_of(msg)).links == ["https://shop.example/r/7"]
    assert "<title>[#7] Refund 退款</title>" in html_of(msg)


def test_the_plain_text_is_byte_for_byte_the_same_with_html_on_or_off(tmp_path: Path) -> None:
    on = compose(HEADERS, TEXT, cfg=make_config(tmp_path))
    off = compose(HEADERS, TEXT, cfg=make_config(tmp_path, outbound={"html": False}))
    plain_on = next(p for p in on.walk() if p.get_content_type() == "text/plain")
    assert not off.is_multipart() and off.get_content_type() == "text/plain"
    assert plain_on.get_payload() == off.get_payload()
    assert plain_on["Content-Transfer-Encoding"] == off["Content-Transfer-Encoding"]


def test_files_go_beside_the_alternative_in_a_mixed_mail(tmp_path: Path) -> None:
    files = [FilePart("收据.pdf", "application/pdf", b"%PDF-1.4")]
    msg = message_from_bytes(compose(HEADERS, TEXT, files, cfg=make_config(tmp_path)).as_bytes())
    assert msg.get_content_type() == "multipart/mixed"
    body, file = msg.get_payload()  # type: ignore[misc]
    assert body.get_content_type() == "multipart/alternative"
    assert file.get_filename() == "收据.pdf" and file.get_payload(decode=True) == b"%PDF-1.4"
    assert plain_text(msg) == TEXT


def test_a_message_written_down_as_the_customers_is_plain_text_alone() -> None:
    assert compose(HEADERS, TEXT, cfg=None).get_content_type() == "text/plain"


def test_an_admin_may_lay_the_html_out_themselves(tmp_path: Path) -> None:
    own = tmp_path / "own" / "email"
    own.mkdir(parents=True)
    (own / "layout.html.j2").write_text(
        "<p class=brand>{% for b in blocks %}{{ b.kind }} {% endfor %}</p>", encoding="utf-8"
    )
    cfg = make_config(tmp_path, inboxd={"templates_dir": str(tmp_path / "own")})
    assert html_of(compose(HEADERS, TEXT, cfg=cfg)) == "<p class=brand>p p signature </p>"


# --- every mail inboxd sends ---------------------------------------------------------


@pytest.fixture
def desk_rt(tmp_path: Path) -> Runtime:
    return open_runtime(make_config(tmp_path))


@pytest.mark.parametrize("purpose", ["ack", "notify:new"])
def test_the_acknowledgement_and_the_notification_carry_an_html_part(
    desk_rt: Runtime, purpose: str
) -> None:
    ingest(desk_rt, mail(sender=CAROL, subject="Where is <b>my</b> order?", body="Hi"))
    with Session(desk_rt.engine) as session:
        raws = session.exec(
            select(Outbound.raw).where(Outbound.purpose == purpose).order_by(col(Outbound.id))
        ).all()
    assert raws
    for raw in raws:
        msg = message_from_bytes(raw)
        page = html_of(msg)
        assert tags_of(page).tags <= LAYOUT_TAGS
        assert "Where is &lt;b&gt;my&lt;/b&gt; order?" in page
        assert [link for link in tags_of(page).links if link] == [
            word for word in plain_text(msg).split() if word.startswith("http")
        ]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """A running daemon with a capture relay behind it (as in test_agent_mail)."""
    with CaptureRelay() as relay, listening(tmp_path, relay) as (rt, daemon):
        yield Desk(rt, daemon, relay, tmp_path)


def test_a_relayed_reply_reaches_the_customer_as_text_and_html(desk: Desk) -> None:
    """End to end, over real sockets: the customer's client gets both parts."""
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "Your parcel left today.\n")
    (relayed,) = desk.replies_to_customer()
    page = html_of(relayed.message)
    assert "Your parcel left today." in plain_text(relayed.message)
    assert "Your parcel left today." in page
    assert any("/status/" in link for link in tags_of(page).links)
    assert "<blockquote" in page  # the customer's message, quoted below the answer
