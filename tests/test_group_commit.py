"""Group commit at the SMTP door (SPEC §8, issue 18 item 1).

Messages that arrive while a spool commit is in flight share the next commit, and a
session's 250 comes only after the commit that holds its message: a commit that fails
answers 451 to every session in its group, and nothing of it is spooled.
"""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import daemon_harness
import pytest
from daemon_harness import listening, wait_until
from mailbuilder import mail, new_msgid
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from inboxd.daemon.group_commit import LOOP_BYTES, GroupCommit
from inboxd.db import make_engine, migrate, session_scope
from inboxd.errors import DatabaseUnavailable
from inboxd.models import Inbound, Message
from inboxd.queues import spool
from inboxd.write_lock import WriteLock

database_url = daemon_harness.database_url

SUPPORT = "support@example.com"
CAROL = "carol@example.org"


def arrival(n: int) -> spool.Arrival:
    return spool.Arrival(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode(), source="test")


class GatedCommit:
    """A stand-in commit that records each group and holds the first until released."""

    def __init__(self, fail_first: bool = False) -> None:
        self.groups: list[int] = []
        self.gate = threading.Event()
        self.fail_first = fail_first
        self.next_id = 1

    def __call__(self, engine: Any, arrivals: Sequence[spool.Arrival], lock: Any) -> list[int]:
        first = not self.groups
        self.groups.append(len(arrivals))
        if first:
            self.gate.wait(5)
            if self.fail_first:
                raise DatabaseUnavailable("disk I/O error")
        ids = list(range(self.next_id, self.next_id + len(arrivals)))
        self.next_id += len(arrivals)
        return ids


async def _accept_while_first_commit_runs(
    door: GroupCommit, commit: GatedCommit, later: int
) -> list[int | BaseException]:
    first = asyncio.create_task(door.accept(arrival(0)))
    while not commit.groups:  # the first commit is in flight, holding one message
        await asyncio.sleep(0.001)
    rest = [asyncio.create_task(door.accept(arrival(n))) for n in range(1, later + 1)]
    while len(door._waiting) < later:  # every later message waits for the next commit
        await asyncio.sleep(0.001)
    commit.gate.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def run_in_own_thread(coroutine: Any) -> Any:
    """asyncio.run on a thread of its own.

    Playwright's sync API (the session's browser fixture) leaves its event loop marked as
    running on the main thread, where asyncio.run then refuses to start; whether it does
    depends on the test order, so every test here runs its loop elsewhere."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    worker.start()
    worker.join(30)
    assert result, "the event loop did not finish within 30 s"
    return result[0]


def test_messages_arriving_during_a_commit_share_the_next_one() -> None:
    commit = GatedCommit()
    door = GroupCommit(engine=None, commit=commit)  # type: ignore[arg-type]
    ids = run_in_own_thread(_accept_while_first_commit_runs(door, commit, later=10))
    assert commit.groups == [1, 10]
    assert door.commits == 2
    assert ids == list(range(1, 12))  # each session gets its own row's id


def test_a_failed_commit_fails_every_session_in_its_group_and_only_those() -> None:
    commit = GatedCommit(fail_first=True)
    door = GroupCommit(engine=None, commit=commit)  # type: ignore[arg-type]
    outcome = run_in_own_thread(_accept_while_first_commit_runs(door, commit, later=3))
    assert isinstance(outcome[0], DatabaseUnavailable)
    assert outcome[1:] == [1, 2, 3]
    assert door.commits == 1


def _commits(engine: Engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine, "commit", lambda _conn: seen.append(1))
    return seen


def test_accept_many_stores_a_group_in_one_transaction(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'inboxd.db'}")
    migrate(engine)
    commits = _commits(engine)
    ids = spool.accept_many(engine, [arrival(n) for n in range(5)])
    assert len(commits) == 1
    assert len(set(ids)) == 5
    with session_scope(engine) as session:
        rows = session.exec(select(Inbound).order_by(Inbound.id)).all()  # type: ignore[arg-type]
    assert [row.id for row in rows] == ids
    assert {row.state for row in rows} == {"pending"}


# --- over SMTP -------------------------------------------------------------------------


def test_a_message_whose_commit_failed_gets_451_and_is_not_spooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kw: Any) -> list[int]:
        raise DatabaseUnavailable("cannot store the message: disk I/O error")

    monkeypatch.setattr(spool, "store_arrivals", broken)  # on the event loop or a thread
    with listening(tmp_path) as (rt, daemon):
        host, port = daemon.smtp_address
        with (
            smtplib.SMTP(host, port, timeout=30) as smtp,
            pytest.raises(smtplib.SMTPDataError) as refused,
        ):
            smtp.sendmail(CAROL, [SUPPORT], mail(message_id=new_msgid()))
        assert refused.value.smtp_code == 451
        assert spool.pending_count(rt.engine) == 0


def test_concurrent_sessions_share_commits_and_every_250_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    real = spool.store_arrivals
    groups: list[int] = []

    def slow_commit(session: Session, arrivals: Sequence[spool.Arrival]) -> list[int]:
        groups.append(len(arrivals))
        ids = real(session, arrivals)
        threading.Event().wait(0.2)  # a slow disk: the others queue for the next commit
        return ids

    # Every group is stored by store_arrivals, on the event loop or in a thread.
    monkeypatch.setattr(spool, "store_arrivals", slow_commit)
    sessions = 8
    msgids = [new_msgid() for _ in range(sessions)]
    replies: list[int] = []
    with listening(tmp_path, database_url=database_url) as (rt, daemon):
        host, port = daemon.smtp_address
        start = threading.Barrier(sessions)

        def deliver(msgid: str) -> None:
            with smtplib.SMTP(host, port, timeout=30) as smtp:
                smtp.ehlo()
                smtp.mail(CAROL)
                smtp.rcpt(SUPPORT)
                start.wait()
                code, _ = smtp.data(mail(message_id=msgid))
                replies.append(code)

        threads = [threading.Thread(target=deliver, args=(m,)) for m in msgids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        def stored() -> int:
            with session_scope(rt.engine) as session:
                query = select(func.count()).select_from(Message)
                return int(session.exec(query).one())

        wait_until(lambda: stored() == sessions, what="every accepted message on a ticket")
    assert replies == [250] * sessions
    assert sum(groups) == sessions
    assert len(groups) < sessions  # some sessions shared a commit


def test_the_doors_commit_goes_before_other_waiting_writers() -> None:
    lock = WriteLock()
    order: list[str] = []
    lock.__enter__()  # a pipeline transaction in progress
    worker = threading.Thread(target=lambda: _take(lock, order, "ingest"))
    worker.start()
    time.sleep(0.05)  # the ingest worker waits for its next transaction
    door = threading.Thread(target=lambda: _take(lock.first(), order, "door"))
    door.start()
    time.sleep(0.05)
    lock.__exit__()
    worker.join(5)
    door.join(5)
    assert order == ["door", "ingest"]


def _take(lock: Any, order: list[str], name: str) -> None:
    with lock:
        order.append(name)


# --- on the event loop, when nothing needs waiting for ----------------------------------
# In a worker thread every SQLite step gives the GIL back, and the event loop, busy
# reading DATA, kept it for up to the switch interval each time: a 1 ms commit took 3-5
# ms, and every 250 waited for it. So a group that need not wait for a lock is committed
# on the loop; one that would wait goes to the thread, and the loop never waits.


def test_the_lock_is_taken_at_once_only_when_nobody_holds_or_awaits_it() -> None:
    lock = WriteLock()
    assert lock.try_first()
    assert not lock.try_first()  # held
    lock.__exit__()
    waiting = threading.Thread(target=lambda: _take(lock.first(), [], "door"))
    lock.__enter__()
    waiting.start()
    time.sleep(0.05)  # a commit waits for the lock, ahead of everyone
    lock.__exit__()
    waiting.join(5)
    assert lock.try_first()
    lock.__exit__()


def test_a_group_is_committed_on_the_loop_when_it_can_be_and_in_a_thread_otherwise() -> None:
    thread_commit = GatedCommit()
    thread_commit.gate.set()
    free = [True, False, True]

    def now(arrivals: Sequence[spool.Arrival]) -> list[int] | None:
        return [100 + len(free)] * len(arrivals) if free.pop(0) else None

    door = GroupCommit(engine=None, commit=thread_commit, commit_now=now)  # type: ignore[arg-type]

    async def three() -> list[int]:
        return [await door.accept(arrival(n)) for n in range(3)]

    assert run_in_own_thread(three()) == [102, 1, 100]
    assert thread_commit.groups == [1]  # only the one whose lock was taken
    assert door.commits == 3

    big = spool.Arrival(b"x" * (LOOP_BYTES + 1), source="test")
    assert run_in_own_thread(door.accept(big)) == 2  # too big to write on the loop
    assert thread_commit.groups == [1, 1]


def test_a_commit_on_the_loop_gives_up_at_once_when_another_process_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inboxd.db"
    migrate(make_engine(f"sqlite:///{path}"))
    loop_engine = make_engine(f"sqlite:///{path}", 0.001, checkpoints=False)
    lock = WriteLock()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    began = time.monotonic()
    assert spool.accept_now(loop_engine, [arrival(1)], lock) is None
    assert time.monotonic() - began < 1  # not the usual 30 s busy timeout
    assert lock.try_first()  # and it let go of this process's lock
    assert spool.accept_now(loop_engine, [arrival(2)], lock) is None  # held here now
    lock.__exit__()
    other.execute("COMMIT")
    (spool_id,) = spool.accept_now(loop_engine, [arrival(3)], lock) or [None]
    assert spool_id is not None and spool.pending_count(loop_engine) == 1


def test_while_another_process_writes_the_loop_still_answers_and_the_mail_waits(
    tmp_path: Path,
) -> None:
    with listening(tmp_path) as (rt, daemon):
        host, port = daemon.smtp_address
        other = sqlite3.connect(rt.config.database_url.split(":///", 1)[1], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # `inboxd run` in another process, say
        refused: list[dict[str, Any]] = []

        def deliver() -> None:
            with smtplib.SMTP(host, port, timeout=30) as smtp:
                refused.append(smtp.sendmail(CAROL, [SUPPORT], mail(message_id=new_msgid())))

        sender = threading.Thread(target=deliver)
        sender.start()
        time.sleep(0.5)  # its commit waits for the other writer, in a thread
        with smtplib.SMTP(host, port, timeout=5) as smtp:  # meanwhile the door answers
            assert smtp.noop()[0] == 250
        assert refused == []  # and that mail has no 250 yet
        other.execute("COMMIT")
        other.close()
        sender.join(30)
        assert refused == [{}]  # accepted for its one recipient
        with session_scope(rt.engine) as session:
            assert session.exec(select(func.count()).select_from(Inbound)).one() == 1
