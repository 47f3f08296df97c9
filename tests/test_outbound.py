"""The outbound sender: a transactional outbox that never loses or doubles a mail (SPEC §7).

Mail is queued by ingesting new tickets (each gets an acknowledgement) and sent to a
capture relay (tests/relay.py) that can be down, answer 4xx or 5xx, or hang up after
taking the mail. Some tests drive the sender by hand (`sender.deliver_due`), the ones
about its loop run the daemon.

Since issue 4 a new ticket also queues one "notify:new" mail per active agent (Alice and
Bob in make_config). Most tests here are about the acknowledgement and the failure
notices, so they count those (`rows(rt, "ack", ...)`, `captured_of`, `relay.to(CAROL)`);
where the agents' notifications fail as well, a test accounts for them exactly.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import daemon_harness
import pytest
from daemon_harness import daemon_runtime, listening, running_daemon, wait_until, write_toml
from mailbuilder import mail, new_msgid
from relay import Captured, CaptureRelay
from sqlmodel import col, select
from typer.testing import CliRunner

from cli.main import app
from inboxd import pipeline
from inboxd.daemon import sender, serve
from inboxd.db import session_scope
from inboxd.models import Agent, Event, Outbound, Ticket
from inboxd.queues import outbox
from inboxd.runtime import Runtime
from inboxd.tickets.tokens import make_token, token_address

database_url = daemon_harness.database_url

CAROL = "carol@example.org"
ALICE = "alice@example.com"  # the admin in make_config
BOB = "bob@example.com"  # an agent


@pytest.fixture
def relay() -> Iterator[CaptureRelay]:
    with CaptureRelay() as running:
        yield running


@pytest.fixture
def sender_rt(tmp_path: Path, relay: CaptureRelay, database_url: str) -> Iterator[Runtime]:
    """A runtime whose outbound mail goes to the relay, with quick retries."""
    rt = daemon_runtime(tmp_path, database_url, relay, outbound={"retry_seconds": 0.05})
    yield rt
    rt.engine.dispose()


def new_ticket(rt: Runtime, sender: str = f"Carol <{CAROL}>", subject: str = "Help") -> int:
    """Ingest a new customer message; its acknowledgement is queued with it."""
    result = pipeline.ingest(rt, mail(sender=sender, subject=subject), "test")
    assert result.result == "created", result
    assert result.ticket is not None
    return result.ticket


def rows(rt: Runtime, *purposes: str) -> list[Outbound]:
    """The outbox in order of id; only the mail of these purposes when any are given."""
    with session_scope(rt.engine) as session:
        query = select(Outbound).order_by(col(Outbound.id))
        if purposes:
            query = query.where(col(Outbound.purpose).in_(purposes))
        return list(session.exec(query))


def captured_of(relay: CaptureRelay, mails: list[Outbound]) -> list[Captured]:
    """What the relay received of these outbox rows (matched by Message-ID), in order."""
    wanted = {m.message_id for m in mails}
    return [m for m in relay.captured() if m.message_id in wanted]


def captured_except_notifications(relay: CaptureRelay, rt: Runtime) -> list[Captured]:
    """Everything the relay received but the agents' notifications (issue 4)."""
    notifications = {r.message_id for r in rows(rt) if r.purpose.startswith("notify:")}
    return [m for m in relay.captured() if m.message_id not in notifications]


def row(rt: Runtime, row_id: int) -> Outbound:
    with session_scope(rt.engine) as session:
        found = session.get(Outbound, row_id)
        assert found is not None
        return found


def events(rt: Runtime, ticket_id: int, type_: str) -> list[Event]:
    with session_scope(rt.engine) as session:
        query = select(Event).where(Event.ticket_id == ticket_id, Event.type == type_)
        return list(session.exec(query))


def deliver_until_idle(rt: Runtime) -> None:
    """Run the sender by hand until no queued mail is left (retries included)."""

    def idle() -> bool:
        sender.deliver_due(rt.config, rt.engine)
        return all(r.status != "queued" for r in rows(rt))

    wait_until(idle, what="the outbox to empty")


# --- relay down, then back ---------------------------------------------------------------


def test_mail_queued_while_the_relay_is_down_is_delivered_exactly_once_when_it_is_back(
    tmp_path: Path,
) -> None:
    relay = CaptureRelay()  # its port is reserved, nothing listens: the relay is down
    retry = 0.2
    settings = {"retry_seconds": retry, "max_attempts": 50}
    began = time.monotonic()
    try:
        with listening(tmp_path, relay, outbound=settings) as (rt, daemon):
            customers = [f"Customer {n} <c{n}@example.net>" for n in range(5)]
            for n, sender in enumerate(customers):
                new_ticket(rt, sender, subject=f"Problem {n}")
            daemon.wake_outbound()

            def tried_several_times() -> list[Outbound]:
                queued = rows(rt)
                return queued if all(r.attempts >= 3 for r in queued) else []

            waiting = wait_until(tried_several_times, what="several failed attempts each")
            elapsed = time.monotonic() - began
            # One ack per customer, and (issue 4) one notify:new per agent per ticket: all
            # of it is queued while the relay is down, so all of it must get through once.
            assert Counter(r.purpose for r in waiting) == {"ack": 5, "notify:new": 10}
            for item in waiting:
                assert item.status == "queued"
                assert item.last_error and "refused" in item.last_error.lower()
                # Backoff, not a busy loop: the k-th retry waits at least
                # retry/2 * 2**(k-1), so k cannot outgrow log2 of the time spent.
                assert item.attempts <= 2 + math.log2(1 + elapsed / (retry / 2)), item.attempts

            relay.start()
            wait_until(lambda: all(r.status == "sent" for r in rows(rt)), 60, what="delivery")
            sent = rows(rt)
    finally:
        relay.stop()
    delivered = Counter(relay.message_ids())
    assert delivered == Counter(r.message_id for r in sent)
    assert set(delivered.values()) == {1}
    acks = [r for r in sent if r.purpose == "ack"]
    assert {m.rcpt_tos for m in captured_of(relay, acks)} == {
        (f"c{n}@example.net",) for n in range(5)
    }


def test_a_4xx_reply_is_retried_and_the_mail_then_delivered_once(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    new_ticket(sender_rt)
    relay.fail_all("451 4.7.1 Greylisted, try again later")
    # The ack and (issue 4) the notify:new to each of the two agents are all due now;
    # a 4xx is temporary for them too, so they wait and no failure notice is queued.
    assert sender.deliver_due(sender_rt.config, sender_rt.engine) == 3
    [waiting] = rows(sender_rt, "ack")
    assert (waiting.status, waiting.attempts) == ("queued", 1)
    assert waiting.last_error and "451 4.7.1" in waiting.last_error
    assert waiting.next_attempt_at > waiting.created_at
    relay.fail_all(None)
    deliver_until_idle(sender_rt)
    [done] = rows(sender_rt, "ack")
    assert (done.status, done.attempts) == ("sent", 2)
    assert [m.message_id for m in relay.to(CAROL)] == [done.message_id]
    assert relay.message_ids().count(done.message_id) == 1


def test_a_connection_error_is_retried(tmp_path: Path, relay: CaptureRelay) -> None:
    rt = daemon_runtime(tmp_path, "", relay, outbound={"retry_seconds": 0.05})
    try:
        new_ticket(rt)
        relay.stop()
        sender.deliver_due(rt.config, rt.engine)
        [waiting] = rows(rt, "ack")
        assert (waiting.status, waiting.attempts) == ("queued", 1)
        relay.start()
        deliver_until_idle(rt)
        assert [r.status for r in rows(rt, "ack")] == ["sent"]
        assert len(relay.to(CAROL)) == 1
        assert len(captured_of(relay, [waiting])) == 1
    finally:
        rt.engine.dispose()


# --- permanent failures ------------------------------------------------------------------


def test_a_5xx_reply_fails_the_mail_records_it_on_the_ticket_and_tells_the_admin(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    ticket = new_ticket(sender_rt, subject="Where is my order")
    relay.fail_recipient(CAROL, "550 5.1.1 No such user here")
    deliver_until_idle(sender_rt)
    ack, notice = rows(sender_rt, "ack", "delivery_failed")
    assert (ack.purpose, ack.status, ack.attempts) == ("ack", "failed", 1)
    assert ack.last_error and "550" in ack.last_error
    [failed] = events(sender_rt, ticket, "delivery_failed")
    assert failed.from_value == CAROL and "550" in (failed.to_value or "")
    # Nobody is assigned, so the admins are told, and that notice is delivered.
    assert (notice.purpose, notice.rcpt_to, notice.status) == ("delivery_failed", [ALICE], "sent")
    [told] = captured_of(relay, [notice])
    assert told.rcpt_tos == (ALICE,)
    assert "Where is my order" in told.message["Subject"]
    # Besides the notice, Alice gets only her notify:new about the ticket (issue 4).
    [to_alice] = [r for r in rows(sender_rt, "notify:new") if r.rcpt_to == [ALICE]]
    assert sorted(m.message_id for m in relay.to(ALICE)) == sorted(
        [to_alice.message_id, notice.message_id]
    )
    assert relay.to(CAROL) == []


def test_the_assignee_rather_than_the_admins_is_told_of_a_failure(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    ticket_id = new_ticket(sender_rt)
    with session_scope(sender_rt.engine) as session:
        bob = session.exec(select(Agent).where(Agent.email == BOB)).one()
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.assignee_id = bob.id
        session.add(ticket)
    relay.fail_recipient(CAROL, "554 5.7.1 Rejected")
    deliver_until_idle(sender_rt)
    # Both agents were sent notify:new when the ticket came in, before it was assigned
    # (issue 4); apart from those, the one mail is the failure notice, to Bob alone.
    [notice] = rows(sender_rt, "delivery_failed")
    assert [m.rcpt_tos for m in captured_except_notifications(relay, sender_rt)] == [(BOB,)]
    assert [m.message_id for m in captured_except_notifications(relay, sender_rt)] == [
        notice.message_id
    ]


def test_a_failed_failure_notice_is_recorded_but_never_reported_again(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    ticket = new_ticket(sender_rt)
    relay.fail_recipient(CAROL, "550 5.1.1 No such user")
    relay.fail_recipient(ALICE, "550 5.2.2 Mailbox full")
    deliver_until_idle(sender_rt)
    # Alice (the admin) also gets the ticket's notify:new (issue 4), and the relay refuses
    # that too: it fails and is reported to the admins like the ack. So there are two
    # failure notices, both to Alice, both failed, and neither of them reported again.
    statuses = sorted((r.purpose, r.rcpt_to, r.status) for r in rows(sender_rt))
    assert statuses == [
        ("ack", [CAROL], "failed"),
        ("delivery_failed", [ALICE], "failed"),
        ("delivery_failed", [ALICE], "failed"),
        ("notify:new", [ALICE], "failed"),
        ("notify:new", [BOB], "sent"),
    ]
    # The ack (to Carol), Alice's notification, and the two notices: nothing more.
    failures = events(sender_rt, ticket, "delivery_failed")
    assert sorted(e.from_value or "" for e in failures) == [ALICE, ALICE, ALICE, CAROL]
    assert captured_except_notifications(relay, sender_rt) == []


def test_mail_that_keeps_failing_temporarily_is_given_up_after_max_attempts(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    settings = {"retry_seconds": 0.01, "max_attempts": 3}
    rt = daemon_runtime(tmp_path, "", relay, outbound=settings)
    try:
        ticket = new_ticket(rt)
        relay.fail_all("421 4.3.2 Service shutting down")
        deliver_until_idle(rt)
        for item in rows(rt):
            assert (item.status, item.attempts) == ("failed", 3)
        # The relay turns everyone away, so besides the ack the two agents' notify:new
        # (issue 4) are given up too; each of the three is reported once to the admin,
        # and those three notices, given up in turn, are not reported.
        originals = rows(rt, "ack", "notify:new")
        notices = rows(rt, "delivery_failed")
        assert [r.purpose for r in originals] == ["ack", "notify:new", "notify:new"]
        assert [r.rcpt_to for r in notices] == [[ALICE]] * 3
        assert min(r.id or 0 for r in notices) > max(r.id or 0 for r in originals)
        assert len(rows(rt)) == 6
        assert len(events(rt, ticket, "delivery_failed")) == 6
    finally:
        rt.engine.dispose()


# --- the same mail, every time -----------------------------------------------------------


def test_a_retry_after_an_unclear_failure_sends_the_very_same_mail(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    new_ticket(sender_rt)
    # The relay takes the mail and hangs up before saying 250: did it go through?
    relay.drop_after_data(1)
    sender.deliver_due(sender_rt.config, sender_rt.engine)  # the ack goes first
    [unclear] = rows(sender_rt, "ack")
    assert (unclear.status, unclear.attempts) == ("queued", 1)
    deliver_until_idle(sender_rt)
    first, second = relay.to(CAROL)
    assert first.message_id == second.message_id == unclear.message_id
    assert first.data == second.data
    assert row(sender_rt, unclear.id or 0).status == "sent"


def test_a_rolled_back_change_queues_no_mail(sender_rt: Runtime) -> None:
    msg = EmailMessage()
    msg["Subject"] = "never"
    msg.set_content("never sent")
    with pytest.raises(RuntimeError), session_scope(sender_rt.engine) as session:
        outbox.queue_mail(
            session,
            msg,
            mail_from="support@example.com",
            rcpt_to=[CAROL],
            ticket_id=None,
            purpose="test",
        )
        raise RuntimeError("the change that caused the mail failed")
    assert rows(sender_rt) == []


def test_each_queued_mail_has_its_message_id_fixed_in_the_row(sender_rt: Runtime) -> None:
    new_ticket(sender_rt)
    everything = rows(sender_rt)
    # The ack, and (issue 4) a notify:new to each agent: every one has its own.
    assert sorted(r.purpose for r in everything) == ["ack", "notify:new", "notify:new"]
    assert len({r.message_id for r in everything}) == 3
    for queued in everything:
        assert queued.message_id.startswith("<") and queued.message_id.endswith("@example.com>")
        assert f"Message-ID: {queued.message_id}".encode() in queued.raw


def test_file_mode_writes_each_mail_to_data_dir_outbox(tmp_path: Path) -> None:
    rt = daemon_runtime(tmp_path)
    try:
        assert rt.config.outbound.mode == "file"
        new_ticket(rt)
        deliver_until_idle(rt)
        [ack] = rows(rt, "ack")
        everything = rows(rt)  # the ack and (issue 4) a notify:new to each agent
        assert len(everything) == 3
        assert all(r.status == "sent" for r in everything)
        files = sorted((rt.config.data_dir / "outbox").glob("*.eml"))
        assert [int(f.stem) for f in files] == [r.id for r in everything]
        for sent, file in zip(everything, files, strict=True):
            assert file.read_bytes() == sent.raw
        assert ack.raw in [f.read_bytes() for f in files]
    finally:
        rt.engine.dispose()


def test_backoff_doubles_with_jitter_and_is_capped_at_an_hour() -> None:
    for attempts in range(1, 8):
        delay = outbox.backoff(60, attempts).total_seconds()
        # Doubling from 60 s, capped at an hour (the 7th try, 3,840 s, is capped).
        full = min(60 * 2 ** (attempts - 1), 3600)
        assert full / 2 <= delay <= full
    assert outbox.backoff(60, 40).total_seconds() <= 3600


# --- the sender loop in the daemon ---------------------------------------------------------


def test_mail_queued_while_the_sender_reads_the_queue_is_sent_without_waiting_for_the_poll(
    tmp_path: Path, relay: CaptureRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The poll is there for mail queued by other processes; our own wake-ups must not
    # depend on it. Make it an hour, and queue a mail (with its wake-up, as the ingest
    # worker does) at the worst moment: while the sender is reading the queue.
    monkeypatch.setattr(serve, "OUTBOUND_POLL", serve.timedelta(hours=1))
    rt = daemon_runtime(tmp_path, "", relay)
    runner = daemon_harness.DaemonThread(rt)
    real_next_due_at = outbox.next_due_at
    queued: list[int] = []

    def next_due_at(engine: Any) -> Any:
        due = real_next_due_at(engine)
        if not queued:
            queued.append(new_ticket(rt))
            runner.wake_outbound()
            wake = runner.daemon.outbound_wake
            wait_until(lambda: wake is not None and wake.is_set(), what="the wake-up")
        return due

    monkeypatch.setattr(outbox, "next_due_at", next_due_at)
    try:
        runner.start()
        wait_until(lambda: queued, what="the mail to be queued")
        wait_until(lambda: relay.captured(), what="the mail to be sent")
        assert runner.stop() == 0
    finally:
        runner.daemon.request_stop()
        rt.engine.dispose()


def test_a_stop_requested_while_the_sender_reads_the_queue_stops_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM can arrive at any moment; one arriving while the sender is reading the queue
    # must stop the sender too, not leave it asleep until a grace period runs out.
    monkeypatch.setattr(serve, "OUTBOUND_POLL", serve.timedelta(hours=1))
    monkeypatch.setattr(serve, "SHUTDOWN_GRACE_SECONDS", 3600.0)
    rt = daemon_runtime(tmp_path)
    runner = daemon_harness.DaemonThread(rt)
    real_next_due_at = outbox.next_due_at

    def next_due_at(engine: Any) -> Any:
        runner.daemon.request_stop()
        # The daemon has begun to stop (and woken the sender) before this read returns.
        wait_until(runner.daemon.stopping.is_set, what="the daemon to begin stopping")
        return real_next_due_at(engine)

    monkeypatch.setattr(outbox, "next_due_at", next_due_at)
    try:
        runner.start()
        assert runner.stop(timeout=15) == 0
    finally:
        runner.wake_outbound()  # lets a sender that slept through the stop end now
        rt.engine.dispose()


# --- bounces -------------------------------------------------------------------------------


def dsn_for(original: bytes, recipient: str) -> bytes:
    """A DSN (RFC 3464) as a relay sends it back: report + the original's headers."""
    headers = original.split(b"\r\n\r\n", 1)[0].decode()
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        "To: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {new_msgid('mx.example.org')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        f"I could not deliver your message to {recipient}.\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n"
        "--B\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{headers}\r\n"
        "--B--\r\n"
    ).encode()


def test_a_bounce_for_our_mail_is_matched_to_it_and_recorded_on_the_ticket(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    # Issue 3: "Bounces (DSNs) that come back for inboxd's mail are matched to the
    # message and recorded"; SPEC §7: a bounce is recorded on the ticket, the agent told.
    ticket = new_ticket(sender_rt)
    deliver_until_idle(sender_rt)
    [ack] = relay.to(CAROL)
    result = pipeline.ingest(sender_rt, dsn_for(ack.data, CAROL), "test")
    assert result.ticket == ticket, result
    assert len(events(sender_rt, ticket, "delivery_failed")) == 1


# --- `inboxd outbox` -----------------------------------------------------------------------


@pytest.fixture
def outbox_config(tmp_path: Path, relay: CaptureRelay) -> Iterator[tuple[Path, Runtime]]:
    """A config file (for the CLI) whose relay refuses Carol for good; one failed ack."""
    path = write_toml(
        tmp_path / "inboxd.toml",
        {
            "inboxd": {"support_address": "support@example.com"},
            "outbound": {"mode": "smtp", "host": relay.host, "port": relay.port},
            "agents": [{"email": ALICE, "name": "Alice", "role": "admin"}],
        },
    )
    rt = daemon_runtime(tmp_path, "", relay)  # the same data dir and database
    relay.fail_recipient(CAROL, "550 5.1.1 No such user here")
    new_ticket(rt)
    sender.deliver_due(rt.config, rt.engine)  # the ack fails; the admin's notice waits
    yield path, rt
    rt.engine.dispose()


def run_outbox_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["outbox", *args])
    return result.exit_code, result.stdout, result.stderr


def test_outbox_lists_queued_and_failed_mail_with_the_last_error(
    outbox_config: tuple[Path, Runtime],
) -> None:
    path, _ = outbox_config
    code, out, _ = run_outbox_cli("--config", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "TRIES"]
    assert any("failed" in line and CAROL in line and "550" in line for line in lines[1:])
    assert any("queued" in line and ALICE in line for line in lines[1:])


def test_outbox_json_and_failed_print_one_json_document(
    outbox_config: tuple[Path, Runtime],
) -> None:
    path, _ = outbox_config
    code, out, _ = run_outbox_cli("--config", str(path), "--json")
    assert code == 0
    everything = json.loads(out)
    assert [(o["purpose"], o["status"]) for o in everything] == [
        ("ack", "failed"),
        ("delivery_failed", "queued"),
    ]
    ack = everything[0]
    assert ack["to"] == [CAROL] and ack["attempts"] == 1 and "550" in ack["last_error"]
    assert ack["message_id"].startswith("<") and ack["ticket"] == 1
    code, out, _ = run_outbox_cli("--config", str(path), "--failed", "--json")
    assert code == 0
    assert [o["id"] for o in json.loads(out)] == [ack["id"]]


def test_outbox_retry_queues_a_failed_mail_again_and_it_is_sent(
    outbox_config: tuple[Path, Runtime], relay: CaptureRelay
) -> None:
    path, rt = outbox_config
    [failed] = [r for r in rows(rt) if r.status == "failed"]
    relay.fail_recipient(CAROL, None)  # the customer fixed their mailbox
    code, out, _ = run_outbox_cli("--config", str(path), "retry", str(failed.id))
    assert code == 0 and CAROL in out
    again = row(rt, failed.id or 0)
    assert (again.status, again.attempts) == ("queued", 0)
    deliver_until_idle(rt)
    assert row(rt, failed.id or 0).status == "sent"
    assert [m.message_id for m in relay.to(CAROL)] == [failed.message_id]


def test_outbox_retry_of_an_unknown_or_sent_mail_exits_1(
    outbox_config: tuple[Path, Runtime],
) -> None:
    path, rt = outbox_config
    code, _, err = run_outbox_cli("--config", str(path), "retry", "999")
    assert code == 1 and "999" in err
    deliver_until_idle(rt)
    # The admin's failure notice (the agents' notify:new were sent in the fixture already).
    [sent] = [r for r in rows(rt, "ack", "delivery_failed") if r.status == "sent"]
    assert sent.purpose == "delivery_failed"
    code, _, err = run_outbox_cli("--config", str(path), "retry", str(sent.id))
    assert code == 1 and "already sent" in err


def test_the_daemon_sends_what_the_pipeline_queues(tmp_path: Path, relay: CaptureRelay) -> None:
    rt = daemon_runtime(tmp_path, "", relay)
    try:
        with running_daemon(rt) as daemon:
            new_ticket(rt)
            daemon.wake_outbound()
            # The ack and (issue 4) a notify:new to each agent: all of it goes out.
            wait_until(lambda: len(relay.captured()) == 3, what="the ack and notifications")
        assert [r.status for r in rows(rt)] == ["sent"] * 3
        assert Counter(relay.message_ids()) == Counter(r.message_id for r in rows(rt))
        [ack] = rows(rt, "ack")
        assert [m.message_id for m in relay.to(CAROL)] == [ack.message_id]
    finally:
        rt.engine.dispose()


# --- agent notifications (issue 4) ---------------------------------------------------------


def test_a_new_ticket_notifies_each_active_agent_with_a_reply_token_of_their_own(
    sender_rt: Runtime, relay: CaptureRelay
) -> None:
    with session_scope(sender_rt.engine) as session:
        session.add(Agent(email="dave@example.com", name="Dave", active=False))
    ticket = new_ticket(sender_rt, subject="The printer is on fire")
    with session_scope(sender_rt.engine) as session:
        agent_ids = {a.email: a.id for a in session.exec(select(Agent))}
    notes = rows(sender_rt, "notify:new")
    # One per active agent; Dave, who is not active, gets none.
    assert sorted(r.rcpt_to for r in notes) == [[ALICE], [BOB]]
    assert all(r.ticket_id == ticket and r.status == "queued" for r in notes)
    deliver_until_idle(sender_rt)
    support = sender_rt.config.inboxd.support_address
    reply_to: dict[str, str] = {}
    for note in notes:
        [agent] = note.rcpt_to
        [got] = captured_of(relay, [note])  # delivered, once
        assert got.rcpt_tos == (agent,)
        assert [m.message_id for m in relay.to(agent)] == [note.message_id]
        message = got.message
        assert "The printer is on fire" in message["Subject"]
        assert message["To"].addresses[0].addr_spec == agent
        reply_to[agent] = message["Reply-To"].addresses[0].addr_spec
        token = make_token(sender_rt.secret_key, ticket, agent_ids[agent])
        assert reply_to[agent] == token_address(support, token)
        assert row(sender_rt, note.id or 0).status == "sent"
    # Each agent's token is their own, and neither is the customer's.
    [ack] = relay.to(CAROL)
    customer = ack.message["Reply-To"].addresses[0].addr_spec
    assert len({reply_to[ALICE], reply_to[BOB], customer}) == 3
    assert relay.to("dave@example.com") == []
