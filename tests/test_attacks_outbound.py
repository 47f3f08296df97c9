"""Outbound mail after a crash (issue 19, finding 8), kept fixed.

SIGKILL while a slow relay took 40 mails gave 42 deliveries (two sent twice) and left
the rest waiting for the 5-minute lease. Now the sender claims one mail at a time, just
before sending it, so a killed sender holds only the mail in its hands; a daemon on
SQLite makes even that one claimable at start-up; and a mail whose send was interrupted
is sent once more, never a third time. The "crash" here is a claim that is never settled,
which is what a killed sender leaves behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import daemon_runtime
from relay import CaptureRelay
from sqlmodel import col, select

from inboxd.daemon import sender
from inboxd.db import session_scope
from inboxd.models import Outbound
from inboxd.queues.outbox import compose, queue_mail
from inboxd.runtime import Runtime


@pytest.fixture
def relay() -> Iterator[CaptureRelay]:
    with CaptureRelay() as running:
        yield running


@pytest.fixture
def rt(tmp_path: Path, relay: CaptureRelay) -> Iterator[Runtime]:
    runtime = daemon_runtime(tmp_path, "", relay)
    yield runtime
    runtime.engine.dispose()


def queue(rt: Runtime, count: int) -> list[str]:
    ids = []
    with session_scope(rt.engine) as session:
        for n in range(count):
            msg = compose(
                [("From", "support@example.com"), ("To", f"c{n}@example.org")], "hi", cfg=None
            )
            found = queue_mail(
                session,
                msg,
                mail_from="support@example.com",
                rcpt_to=[f"c{n}@example.org"],
                ticket_id=None,
                purpose="test",
            )
            assert found is not None
            ids.append(found)
    return ids


def rows(rt: Runtime) -> dict[str, Outbound]:
    with session_scope(rt.engine) as session:
        return {r.message_id: r for r in session.exec(select(Outbound).order_by(col(Outbound.id)))}


def delivered(relay: CaptureRelay) -> list[str]:
    return [c.message_id for c in relay.captured()]


def test_a_killed_sender_holds_only_the_mail_in_its_hands(rt: Runtime, relay: CaptureRelay) -> None:
    ids = queue(rt, 5)
    [in_flight] = sender.claim_due(rt.engine)  # and then the sender is killed
    assert in_flight.message_id == ids[0]
    # Another sender (or this one restarted on PostgreSQL) sends the rest at once.
    assert sender.deliver_due(rt.config, rt.engine) == 4
    assert sorted(delivered(relay)) == sorted(ids[1:])
    # On SQLite the restarted daemon releases the dead claim: the fifth goes too, once.
    sender.release_claims(rt.engine)
    assert sender.deliver_due(rt.config, rt.engine) == 1
    assert sorted(delivered(relay)) == sorted(ids)
    assert {r.status for r in rows(rt).values()} == {"sent"}


def test_a_mail_interrupted_once_is_sent_once_more(rt: Runtime, relay: CaptureRelay) -> None:
    [mail_id] = queue(rt, 1)
    sender.claim_due(rt.engine)  # killed mid-send: it may or may not have gone out
    sender.release_claims(rt.engine)
    assert sender.deliver_due(rt.config, rt.engine) == 1
    assert delivered(relay) == [mail_id]
    assert rows(rt)[mail_id].status == "sent"


def test_a_mail_interrupted_twice_is_not_sent_again(rt: Runtime, relay: CaptureRelay) -> None:
    [mail_id] = queue(rt, 1)
    for _ in range(2):  # the sender is killed mid-send, twice, restarting each time
        assert [r.message_id for r in sender.claim_due(rt.engine)] == [mail_id]
        sender.release_claims(rt.engine)
    assert sender.deliver_due(rt.config, rt.engine) == 0
    row = rows(rt)[mail_id]
    assert (row.status, row.last_error) == ("failed", sender.INTERRUPTED_TWICE)
    assert delivered(relay) == []
