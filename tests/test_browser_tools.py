"""The web's everyday tools in a real browser (issue 16 item 9): bulk actions on the
list, the macro picker, CC and attachments that leave through the relay, split of one
message, the confirmation after each, and a phone-sized (390 px) screen.

Headless Chromium (Debian's) against a real `inboxd serve` with a capture relay (the
reply box, whose mail must really leave), or against the app under uvicorn in this
process (the list and the layout, which need no daemon).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import sign_in, web_server
from daemon_harness import ServeProcess, wait_until
from mailbuilder import mail
from relay import CaptureRelay
from test_browser import send, site, tickets_json  # noqa: F401 (site is a fixture)

from inboxd import pipeline
from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.runtime import Runtime
from inboxd.tickets.queries import get_ticket

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def desk(rt: Runtime) -> Iterator[tuple[Runtime, str]]:
    """The web app on a loopback port over a database with six tickets."""
    subjects = ["Order 1042 late", "Invoice VAT wrong", "发票抬头需要修改", "Login loop",
                "Refund for a crushed parcel with a very long subject line that wraps",
                "Quote for 200 units"]  # fmt: skip
    for n, subject in enumerate(subjects):
        pipeline.ingest(rt, mail(sender=f"Customer {n} <c{n}@example.org>", subject=subject))
    operations.run_commands(rt, 1, "#tag shipping\n#assign bob", None, "test")
    with web_server(rt) as base:
        yield rt, base


def statuses(rt: Runtime, ids: list[int]) -> list[str]:
    with session_scope(rt.engine) as session:
        return [get_ticket(session, i).status for i in ids]


def no_horizontal_scroll(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_bulk_actions_select_tickets_run_a_button_and_confirm_each(
    desk: tuple[Runtime, str], browser: Any
) -> None:
    rt, base = desk
    page = browser.new_page()
    try:
        sign_in(page, rt, base, "bob@example.com")
        page.check("#pick-2")
        page.check("#pick-3")
        page.click("button[name=quick][value='#status pending']")
        page.wait_for_load_state()
        flash = page.inner_text("#flash")
        assert "2 of 2 tickets done" in flash
        assert "#2: " in flash and "#3: " in flash
        assert statuses(rt, [2, 3, 4]) == ["pending", "pending", "new"]

        # Typed commands, Enter in the field; a refused line is reported per ticket.
        page.click("#select-all")
        page.wait_for_load_state()
        assert page.locator("input[form=bulk]:checked").count() == 6
        page.fill("#bulk-commands", "#tag triage")
        page.press("#bulk-commands", "Enter")
        page.wait_for_load_state()
        assert "6 of 6 tickets done" in page.inner_text("#flash")
        page.reload()
        assert page.locator("#flash").count() == 0  # shown once
        assert page.locator("tr.ticket .tag", has_text="triage").count() == 6
    finally:
        page.close()


def test_the_list_and_a_ticket_fit_a_390px_phone(
    desk: tuple[Runtime, str], browser: Any, tmp_path: Path
) -> None:
    rt, base = desk
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, rt, base, "bob@example.com")
        assert no_horizontal_scroll(page)
        # Cards: the header row is hidden, each ticket is a box as wide as the screen.
        assert page.locator("table.tickets thead").bounding_box()["height"] <= 1
        first = page.locator("tr.ticket").first.bounding_box()
        assert first["x"] >= 0 and first["x"] + first["width"] <= PHONE["width"]
        cell = page.locator("tr.ticket td.state").first
        assert cell.evaluate("td => getComputedStyle(td, '::before').content") == '"Status: "'
        # Bulk works on the phone too, with the checkboxes of the cards.
        page.check("#pick-4")
        page.click("button[name=quick][value='#status solved']")
        page.wait_for_load_state()
        assert "1 of 1 ticket done" in page.inner_text("#flash")
        assert no_horizontal_scroll(page)
        page.goto(f"{base}/tickets/5")
        assert no_horizontal_scroll(page)
        assert page.locator("#send-reply").bounding_box()["x"] < PHONE["width"]
    finally:
        context.close()


def test_the_reply_box_macro_cc_and_attachment_leave_through_the_relay(
    site: tuple[ServeProcess, CaptureRelay, str],  # noqa: F811 (the fixture)
    browser: Any,
    tmp_path: Path,
) -> None:
    server, relay, base = site
    send(server, "Where is order 1042?", "It has not arrived.", "o1")
    wait_until(lambda: len(tickets_json(server)) == 1, what="the ticket")
    ticket = tickets_json(server)[0]["id"]
    invoice = tmp_path / "invoice-1042.pdf"
    invoice.write_bytes(b"%PDF-1.4 not really a pdf\n")
    page = browser.new_page()
    try:
        sign_in_served(page, server, base)
        page.goto(f"{base}/tickets/{ticket}")
        page.fill("#reply-text", "Hi Carol,")
        page.select_option("#macro", "thanks")
        page.click("#insert-macro")
        page.wait_for_load_state()
        box = page.input_value("#reply-text")
        assert box.startswith("Hi Carol,") and "Thank you for getting in touch." in box
        assert not replies_to_carol(relay)  # inserting sends nothing (the ack went before)

        page.fill("#reply-text", "#status pending\n" + box)
        page.fill("#reply-cc", "dan@example.net")
        page.set_input_files("#reply-files", str(invoice))
        page.click("#send-reply")
        page.wait_for_load_state()
        flash = page.inner_text("#flash")
        assert "Reply sent to the customer with 1 attachment." in flash
        assert "pending" in flash and "dan@example.net" in flash
        assert page.inner_text("#ticket-status") == "pending"

        sent = wait_until(lambda: replies_to_carol(relay), what="the relayed reply")
        reply = sent[-1].message
        assert "dan@example.net" in reply["Cc"]
        assert "Thank you for getting in touch." in reply.get_body(("plain",)).get_content()
        (attached,) = list(reply.iter_attachments())
        assert attached.get_filename() == "invoice-1042.pdf"
        assert attached.get_content() == invoice.read_bytes()
        assert wait_until(lambda: relay.to("dan@example.net"), what="the CC's copy")
    finally:
        page.close()


def test_split_from_the_ticket_page(desk: tuple[Runtime, str], browser: Any) -> None:
    rt, base = desk
    second = mail(
        sender="Customer 0 <c0@example.org>",
        subject="Re: [#1] Order 1042 late",
        body="A new question: can I change my address?",
    )
    assert pipeline.ingest(rt, second).ticket == 1
    page = browser.new_page()
    try:
        sign_in(page, rt, base, "bob@example.com")
        page.goto(f"{base}/tickets/1")
        latest = page.locator("article#latest")
        latest.locator("summary", has_text="Split or move").click()
        latest.locator("button.split").click()
        page.wait_for_load_state()
        flash = page.inner_text("#flash")
        found = re.search(r"split out into #(\d+)", flash)
        assert found, flash
        assert "change my address" not in page.inner_text("section.thread")
        page.click(f"#flash a[href^='/tickets/{found[1]}']")
        page.wait_for_load_state()
        assert "change my address" in page.inner_text("section.thread")
    finally:
        page.close()


def replies_to_carol(relay: CaptureRelay) -> list[Any]:
    return [m for m in relay.to("carol@example.org") if b"Hi Carol," in m.data]


def sign_in_served(page: Any, server: ServeProcess, base: str) -> None:
    """Sign in to a served daemon with a link from `inboxd agents login-link`."""
    from test_browser import inboxd

    link = re.search(
        r"(http://\S+/login/\S+)", inboxd(server, "agents", "login-link", "bob@example.com")
    )
    assert link
    page.goto(link[1])
    page.click("#confirm")
    page.wait_for_url(base + "/")
