"""inboxd behind a real Postfix, as a site runs it (issue 17 item 8; README "Behind your
MTA").

The site's MTA takes support@ mail from the world and hands it to inboxd by LMTP (or
SMTP) through a `transport_maps` entry; inboxd sends its own mail back through the MTA.
These tests start a throwaway Postfix (tests/postfix.py) on loopback ports and a real
`inboxd serve`, and follow the mail through both: delivery over LMTP and over SMTP, a
refused recipient bounced by Postfix with inboxd's reason, nothing lost while inboxd is
down, and acknowledgements relayed by Postfix to a capture relay.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_harness import ServeProcess, free_port, serve_config, serving, wait_until
from mailbuilder import mail, new_msgid
from postfix import Postfix, postfix_instance
from relay import CaptureRelay
from sqlmodel import Session, select

from inboxd.config import load
from inboxd.models import Message, RawMessage, Ticket
from inboxd.runtime import open_runtime


def stored_messages(config_path: Path) -> list[tuple[Message, bytes]]:
    rt = open_runtime(load(config_path), create=False)
    try:
        with Session(rt.engine) as session:
            rows = session.exec(select(Message).order_by(Message.id)).all()
            return [(m, session.get(RawMessage, m.raw_sha256).data) for m in rows if m.raw_sha256]
    finally:
        rt.engine.dispose()


def tickets(config_path: Path) -> list[Ticket]:
    rt = open_runtime(load(config_path), create=False)
    try:
        with Session(rt.engine) as session:
            return list(session.exec(select(Ticket).order_by(Ticket.id)).all())
    finally:
        rt.engine.dispose()


def wait_for_message(config_path: Path, msgid: str) -> tuple[Message, bytes]:
    def stored() -> tuple[Message, bytes] | None:
        return next(
            ((m, raw) for m, raw in stored_messages(config_path) if m.message_id == msgid), None
        )

    return wait_until(stored, 60, what=f"message {msgid} to be stored")


def ticket_of(config_path: Path, message: Message) -> Ticket:
    return next(t for t in tickets(config_path) if t.id == message.ticket_id)


@dataclass
class Site:
    """A site as the README describes it: Postfix in front, inboxd behind it on LMTP,
    inboxd's own mail sent back out through Postfix; "the world" is a capture relay."""

    mta: Postfix
    inboxd: ServeProcess
    world: CaptureRelay


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("postfix-site")
    lmtp_port = free_port()
    with (
        CaptureRelay() as world,
        postfix_instance(
            {
                "example.com": f"lmtp:inet:127.0.0.1:{lmtp_port}",
                "example.org": f"smtp:[127.0.0.1]:{world.port}",
            }
        ) as mta,
    ):
        config = serve_config(
            base,
            smtp={"port": lmtp_port, "lmtp": True},
            outbound={"mode": "smtp", "host": "127.0.0.1", "port": mta.port},
        )
        with serving(base, config) as inboxd:
            yield Site(mta, inboxd, world)


def test_postfix_delivers_support_mail_to_inboxd_over_lmtp(site: Site) -> None:
    msgid = new_msgid()
    site.mta.send(
        mail(message_id=msgid, subject="打印机坏了", body="打印机又卡纸了。\n"),
        "support@example.com",
    )

    site.mta.wait_for(r"status=sent \(250 2\.0\.0 .*\)")
    message, raw = wait_for_message(site.inboxd.config_path, msgid)
    assert b"by mx.test.example (Postfix)" in raw  # the MTA's own Received: line
    ticket = ticket_of(site.inboxd.config_path, message)
    assert ticket.subject == "打印机坏了"
    assert ticket.requester == "carol@example.org"


def test_inboxd_sends_its_mail_back_out_through_postfix(site: Site) -> None:
    msgid = new_msgid()
    site.mta.send(mail(message_id=msgid, subject="Where is my order?"), "support@example.com")

    def acknowledged() -> list[object] | None:
        found = [
            c
            for c in site.world.to("carol@example.org")
            if msgid in (c.message["In-Reply-To"] or "")
        ]
        return found or None

    [ack] = wait_until(acknowledged, 60, what="the acknowledgement")
    assert "[#" in ack.message["Subject"]
    assert "by mx.test.example (Postfix)" in ack.message.as_string()  # it went through the MTA


def test_a_recipient_inboxd_refuses_is_bounced_by_postfix_with_inboxds_reason(site: Site) -> None:
    site.mta.send(mail(message_id=new_msgid()), rcpt="nobody-here@example.com")

    [bounced] = site.mta.wait_for(r"to=<nobody-here@example\.com>.*status=bounced")
    assert "said: 550" in bounced

    # The sender hears of it from Postfix: nothing accepted is silently dropped.
    def bounce() -> list[object] | None:
        found = [
            c
            for c in site.world.to("carol@example.org")
            if "nobody-here@example.com" in c.message.as_string()
        ]
        return found or None

    wait_until(bounce, 60, what="the bounce")


def test_mail_that_arrives_while_inboxd_is_down_waits_in_postfix_and_is_delivered_after(
    site: Site,
) -> None:
    site.inboxd.stop()
    try:
        sent = [new_msgid() for _ in range(3)]
        for number, msgid in enumerate(sent):
            site.mta.send(
                mail(message_id=msgid, subject=f"while down {number}"), "support@example.com"
            )
        site.mta.wait_for(r"status=deferred \(connect to 127\.0\.0\.1", count=3)
    finally:
        site.inboxd.start()
    site.mta.flush()
    for msgid in sent:
        wait_for_message(site.inboxd.config_path, msgid)


def test_postfix_delivers_to_inboxd_over_smtp_too(tmp_path: Path) -> None:
    with (
        serving(tmp_path, serve_config(tmp_path)) as server,
        postfix_instance({"support@example.com": f"smtp:[127.0.0.1]:{server.smtp_port}"}) as mta,
    ):
        msgid = new_msgid()
        mta.send(mail(message_id=msgid, subject="Rechnung fehlt"), rcpt="support@example.com")
        mta.wait_for(r"status=sent \(250")
        message, _ = wait_for_message(server.config_path, msgid)
        assert ticket_of(server.config_path, message).subject == "Rechnung fehlt"
