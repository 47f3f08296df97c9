"""The web view in a real browser, against a real `inboxd serve`: an agent signs in
with the magic link the daemon mailed, finds a ticket, runs commands from the command
box and answers the customer, and the answer leaves through the relay.

Everything is real: headless Chromium (Debian's), `inboxd serve` in a subprocess with
its SMTP listener and web port on 127.0.0.1, and a capture relay for outgoing mail.
"""

from __future__ import annotations

import re
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import INBOXD, ServeProcess, serve_config, serving, wait_until
from mailbuilder import plain_text
from relay import CaptureRelay

from inboxd.tickets.links import read_status_token

CUSTOMER_MAIL = (
    "From: Carol Customer <carol@example.org>\r\n"
    "To: support@example.com\r\n"
    "Subject: {subject}\r\n"
    "Message-ID: <{mid}@example.org>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "{body}\r\n"
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[ServeProcess, CaptureRelay, str]]:
    """`inboxd serve` with bob as an agent, mail out through a capture relay."""
    with CaptureRelay() as relay:
        config = serve_config(
            tmp_path, outbound={"mode": "smtp", "host": relay.host, "port": relay.port}
        )
        base = f"http://127.0.0.1:{config['web']['port']}"
        config["inboxd"]["web_base_url"] = base
        config["agents"] = [
            {"email": "alice@example.com", "name": "Alice", "role": "admin"},
            {"email": "bob@example.com", "name": "Bob", "role": "agent"},
        ]
        with serving(tmp_path, config) as server:
            yield server, relay, base


def send(server: ServeProcess, subject: str, body: str, mid: str) -> None:
    raw = CUSTOMER_MAIL.format(subject=subject, body=body, mid=mid).encode()
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail("carol@example.org", ["support@example.com"], raw)


def inboxd(server: ServeProcess, *args: str) -> str:
    done = subprocess.run(
        [str(INBOXD), *args, "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.base,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def tickets_json(server: ServeProcess) -> list[dict[str, Any]]:
    import json

    return list(json.loads(inboxd(server, "tickets", "--json")))


def test_an_agent_signs_in_by_mail_filters_runs_commands_and_replies(
    site: tuple[ServeProcess, CaptureRelay, str],
    browser: Any,
) -> None:
    server, relay, base = site
    send(server, "Printer on fire", "The printer in room 4 is on fire.", "p1")
    send(server, "Invoice 1042 is wrong", "Please fix invoice 1042.", "i1")
    wait_until(lambda: len(tickets_json(server)) == 2, what="both tickets")

    page = browser.new_page()
    try:
        # Sign in: the page mails a link; the link's page asks for one click.
        page.goto(base + "/")
        page.fill("#email", "bob@example.com")
        page.click("text=Mail me a sign-in link")
        assert "a sign-in link is on its way" in page.inner_text("[role=status]")

        def sign_in_mail() -> list[Any]:
            mine = relay.to("bob@example.com")
            return [m for m in mine if m.message["Subject"] == "Your sign-in link"]

        body = plain_text(wait_until(sign_in_mail, what="the sign-in mail")[0].message)
        link = re.search(r"(http://\S+/login/\S+)", body)
        assert link, body
        page.goto(link.group(1))
        page.click("#confirm")
        page.wait_for_url(base + "/")
        assert page.locator("tr.ticket").count() == 2

        # Filter: full text and status together.
        page.fill("input[name=q]", "invoice")
        page.select_option("select[name=status]", "new")
        page.click("text=Filter")
        page.wait_for_url(re.compile(r".*q=invoice.*"))
        assert page.locator("tr.ticket").count() == 1
        page.click("tr.ticket a")
        assert "Invoice 1042 is wrong" in page.inner_text("h1")

        # Commands from the command box: applied, and visible on the page.
        page.fill("textarea[name=commands]", "#assign me\n#status pending")
        page.click("#run-commands")
        page.wait_for_load_state()
        assert page.inner_text("#ticket-assignee") == "bob@example.com"
        assert page.inner_text("#ticket-status") == "pending"

        # A public reply: stored on the ticket, and relayed to the customer.
        page.fill("textarea[name=text]", "We have corrected invoice 1042.")
        page.click("#send-reply")
        page.wait_for_load_state()
        assert "We have corrected invoice 1042." in page.inner_text("article#latest")
        to_carol = wait_until(lambda: relay.to("carol@example.org"), what="the relayed reply")
        reply = to_carol[-1].message
        assert "We have corrected invoice 1042." in plain_text(reply)
        assert "bob@example.com" not in str(reply["From"])
    finally:
        page.close()


def test_a_customer_reads_the_status_page_and_replies_onto_the_ticket(
    site: tuple[ServeProcess, CaptureRelay, str],
    browser: Any,
) -> None:
    server, relay, base = site
    send(server, "Where is my parcel?", "Order 77 has not arrived.", "w1")
    ticket = wait_until(lambda: tickets_json(server), what="the ticket")[0]["id"]
    token = inboxd(server, "agents", "token", "alice@example.com").split()[-1]
    noted = httpx.post(
        f"{base}/api/v1/tickets/{ticket}/replies",
        json={"text": "Customer is a VIP, call bob@example.com", "note": True},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert noted.status_code == 200, noted.text
    ack = wait_until(lambda: relay.to("carol@example.org"), what="the acknowledgement")
    link = re.search(r"(http://\S+/status/\S+)", plain_text(ack[0].message))
    assert link, "the acknowledgement carries the status link"
    secret = (server.base / "data" / "secret.key").read_text().strip().encode()
    assert read_status_token(secret, link.group(1).rsplit("/", 1)[1]) == ticket

    page = browser.new_page()
    try:
        page.goto(link.group(1))
        text = page.inner_text("main")
        assert "Where is my parcel?" in text and "Order 77 has not arrived." in text
        assert "VIP" not in text and "bob@example.com" not in text
        page.fill("textarea[name=text]", "It is a blue box, by the way.")
        page.click("text=Send")
        assert "your message was received" in page.inner_text("[role=status]")
    finally:
        page.close()

    def on_ticket() -> bool:
        shown = inboxd(server, "show", str(ticket), "--json")
        return "It is a blue box" in shown

    wait_until(on_ticket, what="the status-page reply on the ticket")
    assert len(tickets_json(server)) == 1
