"""The SMTP listener, spoken to over real sockets on 127.0.0.1 (SPEC §3, §7, §8; issue 3).

Each test runs the daemon (`Daemon(rt).run()`) in a thread with the listener on a free
port, sends with smtplib (or a raw socket where smtplib would tidy up what the test needs
to send badly), and reads the outcome from the database or from the capture relay that
stands in for the outbound mail server.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import daemon_harness
import pytest
from conftest import require
from daemon_harness import DaemonThread, listening, wait_until
from mailbuilder import mail, new_msgid
from relay import Captured, CaptureRelay
from sqlalchemy import create_engine, text
from sqlmodel import col, func, select

from inboxd.db import session_scope
from inboxd.models import Inbound, Message, Outbound
from inboxd.queues import spool
from inboxd.runtime import Runtime
from inboxd.tickets import store
from inboxd.tickets.links import status_url
from inboxd.tickets.tokens import make_token, token_address

# Run a test on SQLite and on PostgreSQL by asking for `database_url`.
database_url = daemon_harness.database_url

SUPPORT = "support@example.com"
CAROL = "carol@example.org"


# --- helpers ---------------------------------------------------------------------------


def client(daemon: DaemonThread) -> smtplib.SMTP:
    host, port = daemon.smtp_address
    return smtplib.SMTP(host, port, timeout=30)


def send(
    daemon: DaemonThread, raw: bytes, rcpt: list[str] | None = None, mail_from: str = CAROL
) -> None:
    """Deliver one message as an MTA would; raises what smtplib raises on a refusal."""
    with client(daemon) as smtp:
        smtp.sendmail(mail_from, rcpt or [SUPPORT], raw)


def stored(rt: Runtime, message_id: str) -> Message | None:
    with session_scope(rt.engine) as session:
        return session.exec(select(Message).where(Message.message_id == message_id)).first()


def wait_stored(rt: Runtime, message_id: str) -> Message:
    """The message once the ingest worker has put it on a ticket."""
    return wait_until(lambda: stored(rt, message_id), what=f"{message_id} to be stored")


def count(rt: Runtime, model: Any, *where: Any) -> int:
    with session_scope(rt.engine) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def notification_ids(rt: Runtime) -> set[str]:
    """The Message-IDs of the agents' notifications (issue 4) in the outbox."""
    with session_scope(rt.engine) as session:
        query = select(Outbound.message_id).where(col(Outbound.purpose).like("notify:%"))
        return set(session.exec(query))


def settled(rt: Runtime) -> bool:
    """Everything received is processed and every queued mail has been sent (or failed)."""
    return (
        spool.pending_count(rt.engine) == 0
        and count(rt, Outbound, Outbound.status == "queued") == 0
    )


def ack_for(relay: CaptureRelay, message_id: str) -> Captured:
    """The acknowledgement the relay received in reply to `message_id`."""

    def found() -> Captured | None:
        for item in relay.captured():
            if str(item.message.get("In-Reply-To", "")).strip() == message_id:
                return item
        return None

    return wait_until(found, what=f"the acknowledgement of {message_id}")


class Wire:
    """A raw SMTP conversation: bytes exactly as written, replies as read."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=30)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One reply line without its CRLF; b"" when the server has closed the connection."""
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buffer = self.buffer, b""
                return rest
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> bytes:
        """A whole (possibly multi-line) reply; its last line, which carries the code."""
        while True:
            line = self.line()
            if len(line) < 4 or line[3:4] != b"-":
                return line

    def cmd(self, command: str | bytes) -> bytes:
        self.send((command.encode() if isinstance(command, str) else command) + b"\r\n")
        return self.reply()

    def closed_by_server(self) -> bool:
        """Read until the server hangs up (True) or stays silent for 30 s (False)."""
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return True


@pytest.fixture
def relay() -> Iterator[CaptureRelay]:
    with CaptureRelay() as running:
        yield running


# --- end to end ------------------------------------------------------------------------


def test_mail_sent_over_smtp_becomes_a_ticket(tmp_path: Path, database_url: str) -> None:
    msgid = new_msgid()
    with listening(tmp_path, database_url=database_url) as (rt, daemon):
        send(daemon, mail(message_id=msgid, subject="Order 1234 never arrived"))
        message = wait_stored(rt, msgid)
        with session_scope(rt.engine) as session:
            spooled = session.exec(select(Inbound)).all()
        assert [(row.state, row.result, row.ticket_id) for row in spooled] == [
            ("done", "created", message.ticket_id)
        ]
        assert spooled[0].rcpt_to == [SUPPORT]
        assert spooled[0].source.startswith("smtp:127.0.0.1")
        assert message.from_email == CAROL
        assert message.subject == "Order 1234 never arrived"


def test_the_acknowledgement_reaches_the_relay_with_the_headers_of_spec_7(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    msgid = new_msgid()
    secret_text = "Your verification code is 834-221"
    with listening(tmp_path, relay) as (rt, daemon):
        send(daemon, mail(message_id=msgid, subject="Account question", body=secret_text))
        ack = ack_for(relay, msgid)
        ticket_id = wait_stored(rt, msgid).ticket_id
    token = make_token(rt.secret_key, ticket_id)
    head = ack.message
    assert ack.mail_from == SUPPORT
    assert ack.rcpt_tos == (CAROL,)
    assert head["From"].addresses[0].addr_spec == SUPPORT
    assert head["To"].addresses[0].addr_spec == CAROL
    assert f"[#{ticket_id}]" in head["Subject"] and "Account question" in head["Subject"]
    assert str(head["In-Reply-To"]).strip() == msgid
    assert msgid in str(head["References"])
    assert head["Reply-To"].addresses[0].addr_spec == token_address(SUPPORT, token)
    assert head["Auto-Submitted"] == "auto-replied"
    assert head["X-Auto-Response-Suppress"] == "All"
    assert head["Message-ID"]
    body = head.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert status_url(rt.config.inboxd.web_base_url, rt.secret_key, ticket_id) in body
    # The "ticket trick": an acknowledgement never echoes what was sent to support@.
    assert "834-221" not in ack.data.decode("utf-8", "replace")
    assert "834-221" not in body


def test_a_reply_to_the_reply_token_address_threads_onto_the_ticket(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    first = new_msgid()
    with listening(tmp_path, relay) as (rt, daemon):
        send(daemon, mail(message_id=first, subject="Printer on fire"))
        reply_to = ack_for(relay, first).message["Reply-To"].addresses[0].addr_spec
        reply = new_msgid()
        # No In-Reply-To, a different subject: only the token address can thread it.
        raw = mail(message_id=reply, to=reply_to, subject="more details", body="It smokes.\n")
        send(daemon, raw, rcpt=[reply_to])
        threaded = wait_stored(rt, reply)
        assert threaded.ticket_id == wait_stored(rt, first).ticket_id
        assert threaded.threaded_by == "token"


def test_a_reply_in_reply_to_the_acknowledgement_threads_onto_the_ticket(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    first = new_msgid()
    with listening(tmp_path, relay) as (rt, daemon):
        send(daemon, mail(message_id=first, subject="Invoice wrong"))
        ack_id = ack_for(relay, first).message_id
        reply = new_msgid()
        raw = mail(message_id=reply, in_reply_to=ack_id, references=[ack_id], subject="hello?")
        send(daemon, raw)
        threaded = wait_stored(rt, reply)
        assert threaded.ticket_id == wait_stored(rt, first).ticket_id
        assert threaded.threaded_by == "references"
        # The relay's copy of our own acknowledgement is never ingested as customer mail.
        assert stored(rt, ack_id) is None


AUTOMATIC = {
    "auto-reply": dict(
        sender="Dave <dave@example.org>", headers={"Auto-Submitted": "auto-replied"}
    ),
    "vacation (X-Autoreply)": dict(
        sender="Erin <erin@example.org>", headers={"X-Autoreply": "yes"}
    ),
    "mailing list": dict(
        sender="List <list@lists.example.org>", headers={"List-Id": "<users.lists.example.org>"}
    ),
    "bulk": dict(sender="News <news@example.org>", headers={"Precedence": "bulk"}),
    "bounce": dict(sender="Mail Delivery System <MAILER-DAEMON@mx.example.org>"),
}


def test_no_acknowledgement_goes_to_auto_replies_bounces_lists_or_bulk_mail(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    with listening(tmp_path, relay) as (rt, daemon):
        for kind, fields in AUTOMATIC.items():
            envelope_from = "" if kind == "bounce" else fields["sender"].split("<")[1][:-1]
            send(daemon, mail(subject=f"automatic: {kind}", **fields), mail_from=envelope_from)
        customer = new_msgid()
        send(daemon, mail(message_id=customer))
        ack_for(relay, customer)
        wait_until(lambda: settled(rt), what="the queues to drain")
        notifications = notification_ids(rt)
    # The customer's new ticket is also announced to each of the two agents (notify:new,
    # issue 4); those are not acknowledgements, so they are left out of what is counted.
    # The automatic mail sets off no notification either: there are only those two.
    assert len(notifications) == 2
    assert [m.rcpt_tos for m in relay.captured() if m.message_id not in notifications] == [(CAROL,)]
    assert count(rt, Outbound, col(Outbound.purpose).not_like("notify:%")) == 1
    assert count(rt, Outbound, Outbound.purpose == "ack") == 1


def test_at_most_max_acks_per_sender_per_hour_are_sent(tmp_path: Path, relay: CaptureRelay) -> None:
    ids = [new_msgid() for _ in range(4)]
    with listening(tmp_path, relay, inboxd={"max_acks_per_sender_per_hour": 2}) as (rt, daemon):
        for n, msgid in enumerate(ids):
            send(daemon, mail(message_id=msgid, subject=f"Separate problem {n}"))
        for msgid in ids:
            wait_stored(rt, msgid)
        wait_until(lambda: settled(rt), what="the queues to drain")
        tickets = {wait_stored(rt, msgid).ticket_id for msgid in ids}
    assert len(tickets) == 4
    assert len(relay.to(CAROL)) == 2


# --- rejections: no open relay ---------------------------------------------------------

REFUSED_RECIPIENTS = [
    "someone@elsewhere.example",
    "support@example.org",
    "other@example.com",
    "support%evil.example@example.com",
    "victim%evil.example@example.com",
    "evil.example!support@example.com",
    "<@relay.example,@evil.example:support@example.com>",
    "<@evil.example:victim@evil.example>",
    '<"support@evil.example"@example.com>',
    '<"support"@example.com>',
    "support+@example.com",
    "support+bad.token@example.com",
    "supportx@example.com",
]


@pytest.mark.parametrize("address", REFUSED_RECIPIENTS)
def test_recipients_that_are_not_ours_are_refused_550_5_7_1(tmp_path: Path, address: str) -> None:
    with listening(tmp_path) as (rt, daemon), Wire(daemon.smtp_address) as wire:
        wire.reply()
        assert wire.cmd("EHLO client.example").startswith(b"250")
        assert wire.cmd(f"MAIL FROM:<{CAROL}>").startswith(b"250")
        path = address if address.startswith("<") else f"<{address}>"
        reply = wire.cmd(f"RCPT TO:{path}")
        assert reply.startswith(b"550 5.7.1"), reply
        assert wire.cmd("DATA").startswith(b"5"), "DATA without a recipient must fail"
    assert count(rt, Inbound) == 0


ACCEPTED_RECIPIENTS = [
    "support@example.com",
    "Support@Example.COM",
    "support+abc123@example.com",
    "help@example.com",
    "help+abc123@example.com",
]


def test_the_support_address_its_aliases_and_their_token_forms_are_accepted(
    tmp_path: Path,
) -> None:
    aliases = {"aliases": ["help@example.com"]}
    with listening(tmp_path, inboxd=aliases) as (rt, daemon), client(daemon) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls"), "no certificates, no STARTTLS"
        smtp.mail(CAROL)
        replies = {address: smtp.rcpt(address)[0] for address in ACCEPTED_RECIPIENTS}
        assert replies == {address: 250 for address in ACCEPTED_RECIPIENTS}
        code, _ = smtp.data(mail())
        assert code == 250
        with session_scope(rt.engine) as session:
            row = session.exec(select(Inbound)).one()
        assert len(row.rcpt_to) == len(ACCEPTED_RECIPIENTS)


def test_a_declared_size_over_the_limit_is_refused_552_at_mail(tmp_path: Path) -> None:
    with (
        listening(tmp_path, smtp={"max_message_bytes": 4096}) as (rt, daemon),
        client(daemon) as smtp,
    ):
        smtp.ehlo()
        assert smtp.has_extn("size") and smtp.esmtp_features["size"] == "4096"
        code, _ = smtp.mail(CAROL, ["SIZE=100000"])
        assert code == 552
    assert count(rt, Inbound) == 0


def test_a_message_streamed_over_the_limit_is_refused_552_after_data(tmp_path: Path) -> None:
    big = mail(body=("y" * 70 + "\n") * 200)
    with (
        listening(tmp_path, smtp={"max_message_bytes": 4096}) as (rt, daemon),
        client(daemon) as smtp,
    ):
        smtp.ehlo()
        # No SIZE declared: the server only finds out while the data streams in.
        assert smtp.mail(CAROL)[0] == 250
        assert smtp.rcpt(SUPPORT)[0] == 250
        code, _ = smtp.data(big)
        assert code == 552
        assert count(rt, Inbound) == 0
        # The session is still usable, and a message under the limit gets through.
        assert smtp.mail(CAROL)[0] == 250
        assert smtp.rcpt(SUPPORT)[0] == 250
        assert smtp.data(mail())[0] == 250
    assert count(rt, Inbound) == 1


def test_more_than_max_recipients_is_answered_452(tmp_path: Path) -> None:
    with listening(tmp_path, smtp={"max_recipients": 3}) as (rt, daemon), client(daemon) as smtp:
        smtp.ehlo()
        smtp.mail(CAROL)
        codes = [smtp.rcpt(f"support+r{n}@example.com") for n in range(5)]
        assert [code for code, _ in codes] == [250, 250, 250, 452, 452]
        assert codes[3][1].startswith(b"4.5.3")
        assert smtp.data(mail())[0] == 250
    with session_scope(rt.engine) as session:
        assert len(session.exec(select(Inbound)).one().rcpt_to) == 3


def test_bare_lf_line_endings_in_data_are_refused(tmp_path: Path) -> None:
    untrusted = {"trusted_networks": []}  # as if 127.0.0.1 were any client on the Internet
    with listening(tmp_path, smtp=untrusted) as (rt, daemon), Wire(daemon.smtp_address) as wire:
        wire.reply()
        wire.cmd("EHLO client.example")
        wire.cmd(f"MAIL FROM:<{CAROL}>")
        wire.cmd(f"RCPT TO:<{SUPPORT}>")
        assert wire.cmd("DATA").startswith(b"354")
        wire.send(b"From: carol@example.org\nSubject: bare\n\nline one\nline two\r\n.\r\n")
        reply = wire.reply()
        assert reply[:1] in (b"4", b"5") and not reply.startswith(b"250"), reply
    assert count(rt, Inbound) == 0


def test_bare_lf_from_a_trusted_network_is_accepted_and_stored_as_crlf(tmp_path: Path) -> None:
    msgid = new_msgid()
    raw = f"From: {CAROL}\nTo: {SUPPORT}\nSubject: from a script\nMessage-ID: {msgid}\n\nhi\n"
    with listening(tmp_path) as (rt, daemon), Wire(daemon.smtp_address) as wire:
        wire.reply()
        wire.cmd("EHLO client.example")
        wire.cmd(f"MAIL FROM:<{CAROL}>")
        wire.cmd(f"RCPT TO:<{SUPPORT}>")
        assert wire.cmd("DATA").startswith(b"354")
        wire.send(raw.encode() + b"\r\n.\r\n")
        assert wire.reply().startswith(b"250")
        message = wait_stored(rt, msgid)
        assert message.subject == "from a script"
    assert message.raw_sha256 is not None
    with session_scope(rt.engine) as session:
        stored = store.load_raw(session, message.raw_sha256)
    assert stored is not None and b"\r\n" in stored and re.search(rb"(?<!\r)\n", stored) is None


SMUGGLED = (
    b"MAIL FROM:<mallory@evil.example>\r\n"
    b"RCPT TO:<support@example.com>\r\n"
    b"DATA\r\n"
    b"From: admin@example.com\r\n"
    b"Subject: smuggled\r\n"
    b"\r\n"
    b"I was smuggled in.\r\n"
)


@pytest.mark.parametrize(
    "separator",
    [b"\n.\n", b"\r.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r"],
    ids=repr,
)
def test_a_smuggling_attempt_never_produces_two_messages(tmp_path: Path, separator: bytes) -> None:
    head = f"From: {CAROL}\r\nTo: {SUPPORT}\r\nSubject: innocent\r\nMessage-ID: {new_msgid()}\r\n"
    payload = head.encode() + b"\r\nHello.\r\n" + separator + SMUGGLED + b"\r\n.\r\n"
    untrusted = {"trusted_networks": []}  # the strict path, as for any client
    with listening(tmp_path, smtp=untrusted) as (rt, daemon), Wire(daemon.smtp_address) as wire:
        wire.reply()
        wire.cmd("EHLO client.example")
        wire.cmd(f"MAIL FROM:<{CAROL}>")
        wire.cmd(f"RCPT TO:<{SUPPORT}>")
        assert wire.cmd("DATA").startswith(b"354")
        wire.send(payload)
        replies = [wire.reply()]
        # Whatever the server made of it, it must be one transaction at most.
        replies.append(wire.cmd("QUIT"))
        wait_until(lambda: spool.pending_count(rt.engine) == 0, what="the spool to drain")
        assert count(rt, Inbound) <= 1, replies
        assert count(rt, Message) <= 1, replies
        with session_scope(rt.engine) as session:
            subjects = [m.subject for m in session.exec(select(Message))]
        assert "smuggled" not in subjects


def test_a_handler_exception_answers_451_without_internals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kw: Any) -> list[int]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(spool, "store_arrivals", broken)  # the SMTP edge commits in groups
    with listening(tmp_path) as (_, daemon):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(daemon, mail())
        assert refused.value.smtp_code == 451
        reply = refused.value.smtp_error
        assert reply.startswith(b"4.3.0"), reply
        assert b"secret internals" not in reply and b"RuntimeError" not in reply


# --- limits on connections and time ----------------------------------------------------


def test_connections_beyond_max_connections_get_421(tmp_path: Path) -> None:
    with (
        listening(tmp_path, smtp={"max_connections": 2}) as (_, daemon),
        Wire(daemon.smtp_address) as one,
        Wire(daemon.smtp_address) as two,
    ):
        assert one.reply().startswith(b"220") and two.reply().startswith(b"220")
        with Wire(daemon.smtp_address) as three:
            assert three.reply().startswith(b"421")
            assert three.closed_by_server()
        # A slot that frees up is available again.
        assert one.cmd("QUIT").startswith(b"221")

        def fourth_gets_a_banner() -> bool:
            with Wire(daemon.smtp_address) as four:
                return four.reply().startswith(b"220")

        wait_until(fourth_gets_a_banner, what="a freed connection slot")


def test_an_idle_session_is_closed_by_the_server(tmp_path: Path) -> None:
    with (
        listening(tmp_path, smtp={"idle_seconds": 1}) as (_, daemon),
        Wire(daemon.smtp_address) as wire,
    ):
        assert wire.reply().startswith(b"220")
        assert wire.cmd("EHLO client.example").startswith(b"250")
        # Say nothing more: the server hangs up long before the socket's 30 s timeout.
        assert wire.closed_by_server()


def test_a_busy_session_is_closed_at_the_session_deadline(tmp_path: Path) -> None:
    limits = {"idle_seconds": 600, "session_seconds": 2}
    with listening(tmp_path, smtp=limits) as (_, daemon), Wire(daemon.smtp_address) as wire:
        assert wire.reply().startswith(b"220")
        replies = []
        # Keep talking, so the idle timer never fires; only the deadline can end it.
        for _ in range(600):
            try:
                reply = wire.cmd("NOOP")
            except (BrokenPipeError, ConnectionResetError):
                break
            replies.append(reply)
            if not reply.startswith(b"250"):
                break
            time.sleep(0.1)
        assert replies and replies[-1].startswith(b"421 4.4.2"), replies[-3:]
        assert wire.closed_by_server()


def test_a_nearly_full_disk_is_answered_452_4_3_1_at_mail(tmp_path: Path) -> None:
    with (
        listening(tmp_path, smtp={"min_free_disk_mb": 10**9}) as (rt, daemon),
        client(daemon) as smtp,
    ):
        smtp.ehlo()
        code, reply = smtp.mail(CAROL)
        assert (code, reply[:5]) == (452, b"4.3.1")
    assert count(rt, Inbound) == 0


# --- the database goes away: 4xx, never 250 and a lost message ---------------------------


def test_a_locked_sqlite_database_is_answered_451_and_the_retry_is_stored_once(
    tmp_path: Path,
) -> None:
    msgid = new_msgid()
    raw = mail(message_id=msgid, subject="Sent while the database was locked")
    with listening(tmp_path, inboxd={"database_timeout_seconds": 1}) as (rt, daemon):
        locker = sqlite3.connect(rt.config.data_dir / "inboxd.db", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(daemon, raw)
            assert refused.value.smtp_code == 451
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        # The sending MTA tries again later, with the very same message.
        send(daemon, raw)
        wait_stored(rt, msgid)
        wait_until(lambda: spool.pending_count(rt.engine) == 0, what="the spool to drain")
        assert count(rt, Message, Message.message_id == msgid) == 1
        assert count(rt, Inbound) == 1


@pytest.mark.postgres
def test_a_locked_postgresql_table_is_answered_451_and_the_retry_is_stored_once(
    tmp_path: Path, pg_url: str
) -> None:
    msgid = new_msgid()
    raw = mail(message_id=msgid, subject="Sent while the spool table was locked")
    settings = {"database_timeout_seconds": 1}
    with listening(tmp_path, database_url=pg_url, inboxd=settings) as (rt, daemon):
        locker = create_engine(pg_url)
        try:
            with locker.connect() as conn:
                conn.execute(text("LOCK TABLE inbound IN ACCESS EXCLUSIVE MODE"))
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    send(daemon, raw)
                assert refused.value.smtp_code == 451
                conn.rollback()
        finally:
            locker.dispose()
        send(daemon, raw)
        wait_stored(rt, msgid)
        wait_until(lambda: spool.pending_count(rt.engine) == 0, what="the spool to drain")
        assert count(rt, Message, Message.message_id == msgid) == 1
        assert count(rt, Inbound) == 1


# --- STARTTLS -------------------------------------------------------------------------


def test_starttls_is_offered_when_certificates_are_configured_and_works_once(
    tmp_path: Path,
) -> None:
    require(shutil.which("openssl") is not None, "openssl not found")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=example.com", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    msgid = new_msgid()
    tls = {"tls_cert_file": str(cert), "tls_key_file": str(key)}
    with listening(tmp_path, smtp=tls) as (rt, daemon), client(daemon) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        assert smtp.starttls(context=context)[0] == 220
        smtp.ehlo()
        assert not smtp.has_extn("starttls"), "STARTTLS is offered once per session"
        assert smtp.docmd("STARTTLS")[0] >= 500
        smtp.sendmail(CAROL, [SUPPORT], mail(message_id=msgid))
        wait_stored(rt, msgid)


# --- LMTP ------------------------------------------------------------------------------


def test_lmtp_mode_answers_lhlo_and_one_reply_per_recipient_after_data(tmp_path: Path) -> None:
    msgid = new_msgid()
    with (
        listening(tmp_path, smtp={"lmtp": True}) as (rt, daemon),
        Wire(daemon.smtp_address) as wire,
    ):
        assert wire.reply().startswith(b"220")
        assert wire.cmd("LHLO mx.example").startswith(b"250")
        assert wire.cmd(f"MAIL FROM:<{CAROL}>").startswith(b"250")
        assert wire.cmd(f"RCPT TO:<{SUPPORT}>").startswith(b"250")
        assert wire.cmd("RCPT TO:<support+abc@example.com>").startswith(b"250")
        assert wire.cmd("DATA").startswith(b"354")
        wire.send(mail(message_id=msgid) + b".\r\n")
        replies = [wire.reply(), wire.reply()]
        assert all(r.startswith(b"250") for r in replies), replies
        assert wire.cmd("QUIT").startswith(b"221")
        wait_stored(rt, msgid)
        assert count(rt, Inbound) == 1
