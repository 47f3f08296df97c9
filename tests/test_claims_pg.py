"""Claims on PostgreSQL end with the connection that holds them (SPEC §9, issue 18).

Several daemons share one PostgreSQL database. A daemon that is killed holds up none of
its work: the spool rows it was processing and the mail it was sending are free for the
others the moment its connection ends, while a live daemon's claims are skipped. Each
spooled message is processed once, and two copies of one message, or a reply and its
parent, arriving at two daemons at the same moment are decided one after the other.
Real PostgreSQL, each test in a schema of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_config
from daemon_harness import wait_until
from mailbuilder import mail, new_msgid
from sqlalchemy import create_engine, text
from sqlmodel import col, delete, func, select

from inboxd import pipeline
from inboxd.daemon import sender
from inboxd.db import session_scope
from inboxd.errors import DatabaseUnavailable
from inboxd.models import Inbound, Message, Outbound, Ticket
from inboxd.queues import spool
from inboxd.queues.claims import OUTBOUND, SPOOL, ClaimLocks
from inboxd.runtime import Runtime, open_runtime

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_rt(tmp_path: Path, pg_url: str) -> Iterator[Runtime]:
    runtime = open_runtime(make_config(tmp_path, pg_url))
    yield runtime
    runtime.engine.dispose()


def second_runtime(tmp_path: Path, rt: Runtime) -> Runtime:
    """Another daemon's runtime on the same database (its own engine and connections)."""
    return open_runtime(make_config(tmp_path / "other", str(rt.engine.url)))


def kill_connection(rt: Runtime, locks: ClaimLocks) -> None:
    """What a SIGKILL does to a daemon's claim: its server session ends."""
    pid = locks.backend_pid()
    # Autocommit: within one transaction pg_stat_activity is a snapshot, and a session
    # seen alive once would stay alive to every later look.
    admin = create_engine(rt.engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        alive = text("select count(*) from pg_stat_activity where pid = :pid")
        wait_until(lambda: conn.execute(alive, {"pid": pid}).scalar_one() == 0)
    admin.dispose()


def spool_some(rt: Runtime, count: int) -> list[int]:
    return [
        spool.accept(rt.engine, mail(sender=f"c{i}@example.org"), source="smtp")
        for i in range(count)
    ]


def claimed_ids(rt: Runtime, locks: ClaimLocks, limit: int = 50) -> list[int]:
    return [int(row.id or 0) for row in spool.claim(rt.engine, limit, locks=locks)]


def test_a_live_claim_is_skipped_and_a_dead_ones_rows_are_free_at_once(pg_rt: Runtime) -> None:
    ids = spool_some(pg_rt, 3)
    first, second = ClaimLocks(pg_rt.engine, SPOOL), ClaimLocks(pg_rt.engine, SPOOL)
    try:
        assert claimed_ids(pg_rt, first, 2) == ids[:2]
        assert claimed_ids(pg_rt, second) == ids[2:]
        second.unlock_all()
        assert claimed_ids(pg_rt, second) == ids[2:]  # the first one's rows stay its own
        second.unlock_all()

        kill_connection(pg_rt, first)

        assert wait_until(lambda: claimed_ids(pg_rt, second) == ids or second.unlock_all())
    finally:
        first.close()
        second.close()


def test_a_closed_claim_connection_frees_its_rows(pg_rt: Runtime) -> None:
    ids = spool_some(pg_rt, 2)
    first, second = ClaimLocks(pg_rt.engine, SPOOL), ClaimLocks(pg_rt.engine, SPOOL)
    try:
        assert claimed_ids(pg_rt, first) == ids
        assert claimed_ids(pg_rt, second) == []
        first.close()
        assert claimed_ids(pg_rt, second) == ids
    finally:
        second.close()


def test_a_lost_claim_connection_is_one_clear_error_and_the_next_claim_reconnects(
    pg_rt: Runtime,
) -> None:
    ids = spool_some(pg_rt, 2)
    locks = ClaimLocks(pg_rt.engine, SPOOL)
    try:
        assert claimed_ids(pg_rt, locks, 1) == ids[:1]
        kill_connection(pg_rt, locks)
        with pytest.raises(DatabaseUnavailable, match="claim connection failed"):
            claimed_ids(pg_rt, locks)
        assert locks.held == set()  # its locks went with its session
        assert claimed_ids(pg_rt, locks) == ids
    finally:
        locks.close()


def test_a_row_finished_by_another_daemon_is_not_claimed(pg_rt: Runtime) -> None:
    raw = mail()
    spool_id = spool.accept(pg_rt.engine, raw, source="smtp")
    first, second = ClaimLocks(pg_rt.engine, SPOOL), ClaimLocks(pg_rt.engine, SPOOL)
    try:
        assert claimed_ids(pg_rt, first) == [spool_id]
        pipeline.ingest(pg_rt, raw, "smtp", spool_id=spool_id)  # done, before letting go
        first.unlock_all()
        assert claimed_ids(pg_rt, second) == []
    finally:
        first.close()
        second.close()


def test_a_spool_row_two_daemons_both_had_is_processed_once(pg_rt: Runtime) -> None:
    raw = mail(message_id=new_msgid())
    spool_id = spool.accept(pg_rt.engine, raw, source="smtp")

    first = pipeline.ingest(pg_rt, raw, "smtp", spool_id=spool_id)
    again = pipeline.ingest(pg_rt, raw, "smtp", spool_id=spool_id)

    assert first.result == "created"
    assert (again.result, again.reason) == ("duplicate", "processed by another daemon")
    with session_scope(pg_rt.engine) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == 1


def test_two_concurrent_workers_process_every_spooled_message_exactly_once(
    pg_rt: Runtime, tmp_path: Path
) -> None:
    ids = spool_some(pg_rt, 60)
    other = second_runtime(tmp_path, pg_rt)
    done: list[list[int]] = [[], []]

    def worker(rt: Runtime, mine: list[int]) -> None:
        locks = ClaimLocks(rt.engine, SPOOL)
        try:
            while rows := spool.claim(rt.engine, 4, locks=locks):
                items = []
                with session_scope(rt.engine) as session:
                    for row in rows:
                        raw = pipeline.store.load_raw(session, row.raw_sha256)
                        assert raw is not None and row.id is not None
                        items.append(pipeline.Incoming(raw, "smtp", (), row.id))
                for item, result in zip(items, pipeline.ingest_batch(rt, items), strict=True):
                    if result.result == "created":
                        mine.append(int(item.spool_id or 0))
                locks.unlock_all()
        finally:
            locks.close()

    threads = [
        threading.Thread(target=worker, args=(rt, mine))
        for rt, mine in zip((pg_rt, other), done, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    other.engine.dispose()

    assert sorted(done[0] + done[1]) == ids
    with session_scope(pg_rt.engine) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 60
        pending = select(func.count()).select_from(Inbound).where(Inbound.state == "pending")
        assert session.exec(pending).one() == 0


def one_queued_mail(rt: Runtime) -> int:
    """A new ticket's acknowledgement, alone in the queue (the agents' notices dropped)."""
    pipeline.ingest(rt, mail(message_id=new_msgid()), "smtp")
    with session_scope(rt.engine) as session:
        first = session.exec(select(func.min(Outbound.id))).one()
        session.execute(delete(Outbound).where(col(Outbound.id) != first))
    return int(first or 0)


def test_a_mail_being_sent_is_skipped_and_a_dead_senders_mail_is_taken_at_once(
    pg_rt: Runtime,
) -> None:
    row_id = one_queued_mail(pg_rt)
    first, second = ClaimLocks(pg_rt.engine, OUTBOUND), ClaimLocks(pg_rt.engine, OUTBOUND)
    try:
        [claimed] = sender.claim_due(pg_rt.engine, locks=first)
        assert claimed.id == row_id
        assert sender.claim_due(pg_rt.engine, locks=second) == []

        kill_connection(pg_rt, first)  # killed during the send: it may have gone out

        [again] = wait_until(lambda: sender.claim_due(pg_rt.engine, locks=second))
        assert (again.id, again.last_error) == (row_id, sender.INTERRUPTED)
    finally:
        first.close()
        second.close()


def test_a_mail_whose_outcome_is_recorded_is_not_claimed_again(pg_rt: Runtime) -> None:
    row_id = one_queued_mail(pg_rt)
    cfg = pg_rt.config
    first, second = ClaimLocks(pg_rt.engine, OUTBOUND), ClaimLocks(pg_rt.engine, OUTBOUND)
    try:
        assert sender.deliver_due(cfg, pg_rt.engine, locks=first) == 1  # file mode
        assert first.held == set()
        assert sender.claim_due(pg_rt.engine, locks=second) == []
        with session_scope(pg_rt.engine) as session:
            row = session.get(Outbound, row_id)
            assert row is not None
            assert (row.status, row.claimed_until) == ("sent", None)
    finally:
        first.close()
        second.close()


def race(*calls: object) -> list[pipeline.IngestResult]:
    """Run ingest calls on threads released together."""
    start = threading.Barrier(len(calls))
    results: list[pipeline.IngestResult | None] = [None] * len(calls)

    def run(index: int, rt: Runtime, raw: bytes) -> None:
        start.wait()
        results[index] = pipeline.ingest(rt, raw, "smtp", spool_id=None)

    threads = [
        threading.Thread(target=run, args=(i, *call))  # type: ignore[misc]
        for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_one_message_arriving_at_two_daemons_at_once_is_stored_once(
    pg_rt: Runtime, tmp_path: Path
) -> None:
    other = second_runtime(tmp_path, pg_rt)
    try:
        for i in range(5):
            raw = mail(sender=f"twice{i}@example.org", message_id=new_msgid())
            copy = b"Received: from mx2.example.org\r\n" + raw
            results = race((pg_rt, raw), (other, copy))
            assert sorted(r.result for r in results) == ["created", "duplicate"]
    finally:
        other.engine.dispose()
    with session_scope(pg_rt.engine) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == 5


def test_a_reply_and_its_parent_arriving_at_two_daemons_at_once_make_one_ticket(
    pg_rt: Runtime, tmp_path: Path
) -> None:
    other = second_runtime(tmp_path, pg_rt)
    try:
        for i in range(5):
            parent_id = new_msgid()
            who = f"Dana <dana{i}@example.org>"
            parent = mail(sender=who, message_id=parent_id, subject=f"Printer {i}")
            reply = mail(
                sender=who,
                subject=f"Re: Printer {i}",
                in_reply_to=parent_id,
                references=parent_id,
                body="Also, it is on fire.\n",
            )
            results = race((pg_rt, parent), (other, reply))
            assert len({r.ticket for r in results}) == 1, results
    finally:
        other.engine.dispose()
