"""Three `inboxd serve` on one PostgreSQL, one of them killed mid-run (SPEC §9, issue 18).

Real processes, real SMTP in and out: a load of new conversations spread over three
daemons, outbound mail through one capture relay, one daemon SIGKILLed while the mail
is arriving. The other two take over its work at once: every message that got a 250 is
stored exactly once, every acknowledgement reaches the relay once, and the last ticket
appears well before the 2-minute lease the claims used to wait out. Then the dead
daemon is started again and finds nothing left to do twice. With an IMAP account (a
real Dovecot), one daemon polls it at a time, and another takes over when it dies. A
daemon killed in the middle of a send loses its claim on that mail with its
connection, and another daemon sends it, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cluster import Cluster, customer_mails, duplicates, node_config
from daemon_harness import ServeProcess, free_port, wait_until
from dovecot import Dovecot, dovecot_server  # noqa: F401 - the fixture
from mailbuilder import mail
from relay import CaptureRelay

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MESSAGES = 150
# Generous: the claims used to hold the dead daemon's work for 120 s. Not a speed test.
TAKEOVER_BOUND = 60.0


@pytest.fixture
def relay() -> Iterator[CaptureRelay]:
    with CaptureRelay() as running:
        yield running


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, relay: CaptureRelay) -> Iterator[Cluster]:
    running = Cluster(tmp_path, pg_url, relay, nodes=3).start()
    try:
        yield running
    finally:
        running.ensure_stopped()


def test_a_killed_daemons_work_is_taken_over_and_nothing_is_lost_or_doubled(
    cluster: Cluster, relay: CaptureRelay
) -> None:
    mails = customer_mails(MESSAGES, "kill", mail)
    load = cluster.send_in_background(mails, threads=6)
    victim = cluster.nodes[0]
    wait_until(lambda: len(load.accepted) >= MESSAGES // 3, 120, 0.01, "a third of the load")
    victim.kill()
    killed_at = time.monotonic()
    load.join()

    last_stored_at = cluster.wait_all_processed(load.accepted, timeout=300)

    assert last_stored_at - killed_at < TAKEOVER_BOUND
    assert len(load.accepted) == MESSAGES  # the others took what the dead one refused
    stored = cluster.stored_ids()
    assert {m: n for m, n in stored.items() if n != 1} == {}
    assert set(stored) == set(load.accepted)
    assert cluster.tickets() == MESSAGES

    cluster.wait_outbound_sent(relay)
    acknowledged = {c.rcpt_tos[0].lower() for c in relay.messages if "customers." in c.rcpt_tos[0]}
    assert len(acknowledged) == MESSAGES
    # One mail whose send the kill cut short may have reached the relay before the
    # kill: it is sent once more, with the same Message-ID (SPEC §9). Nothing else.
    assert len(duplicates(relay)) <= 1, duplicates(relay)

    sent_before = len(relay.messages)
    victim.start(timeout=90)  # the dead daemon comes back: nothing is left to do twice
    time.sleep(3)
    assert cluster.pending() == 0
    assert cluster.stored_ids() == stored
    assert len(relay.messages) == sent_before
    assert cluster.stop() == [0, 0, 0]


LEADER = "holds the poller lock"


def test_one_daemon_polls_imap_at_a_time_and_another_takes_over_when_it_dies(
    tmp_path: Path, pg_url: str, relay: CaptureRelay, dovecot: Dovecot
) -> None:
    cluster = Cluster(tmp_path, pg_url, relay, nodes=3, imap=dovecot.imap_config()).start()
    try:
        first = customer_mails(10, "imap1", mail)
        dovecot.append("INBOX", *(raw for _, raw in first))
        cluster.wait_all_processed([m for m, _ in first], timeout=120)
        leaders = [n for n in cluster.nodes if LEADER in n.stderr()]
        assert len(leaders) == 1

        leaders[0].kill()
        second = customer_mails(10, "imap2", mail)
        dovecot.append("INBOX", *(raw for _, raw in second))
        cluster.wait_all_processed([m for m, _ in first + second], timeout=120)

        survivors = [n for n in cluster.nodes if n is not leaders[0]]
        assert len([n for n in survivors if LEADER in n.stderr()]) == 1
        stored = cluster.stored_ids()
        assert {m: n for m, n in stored.items() if n != 1} == {}
        assert cluster.tickets() == 20
        leaders[0].start(timeout=90)
        assert cluster.stop() == [0, 0, 0]
    finally:
        cluster.ensure_stopped()


class HangingRelay:
    """A relay that takes the mail's DATA and then never answers: a send in progress."""

    def __init__(self) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self.held: list[str] = []
        self.holding = threading.Event()
        self._controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(bytes(envelope.original_content or b""))
        self.held.append(str(message.get("Message-ID", "")).strip())
        self.holding.set()
        await asyncio.Event().wait()  # until the sender is gone
        return "451 4.3.0 never reached"

    def __enter__(self) -> HangingRelay:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def test_a_mail_whose_sender_is_killed_mid_send_is_sent_by_another_daemon_once(
    tmp_path: Path, pg_url: str, relay: CaptureRelay
) -> None:
    with HangingRelay() as hanging:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        stuck = ServeProcess(tmp_path / "a", node_config(tmp_path / "a", pg_url, hanging))
        other = ServeProcess(tmp_path / "b", node_config(tmp_path / "b", pg_url, relay))
        try:
            stuck.start(timeout=90)
            with smtplib.SMTP("127.0.0.1", stuck.smtp_port, timeout=30) as client:
                client.sendmail("c@example.org", ["support@example.com"], mail())
            wait_until(hanging.holding.is_set, 120, 0.05, "the first send to be under way")
            other.start(timeout=90)
            [held] = hanging.held
            # The other daemon sends the rest of the queue (the agent's notice of the new
            # ticket) but not the mail whose send is under way.
            wait_until(relay.message_ids, 120, 0.1, "the other daemon to send")
            assert held not in relay.message_ids()

            stuck.kill()
            wait_until(lambda: held in relay.message_ids(), 120, 0.1, "the mail to be sent")
            assert relay.message_ids().count(held) == 1
            assert other.stop() == 0
        finally:
            stuck.ensure_stopped()
            other.ensure_stopped()
