"""The IMAP poller, against a real Dovecot: nothing lost, nothing doubled, nothing \\Seen early.

Each test starts its own Dovecot (tests/dovecot.py), runs `run_poller` in a thread as the
daemon does, and runs the pipeline over the spool to see which tickets came out.
"""

from __future__ import annotations

import imaplib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import make_config
from dovecot import Dovecot, dovecot_server  # noqa: F401 - the fixture
from sqlmodel import select

from inboxd import pipeline
from inboxd.daemon import imap, leader
from inboxd.db import session_scope
from inboxd.errors import DatabaseUnavailable, InboxdError
from inboxd.models import ImapState, Inbound, Message, Ticket
from inboxd.queues import spool
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import store

SEEN = b"\\Seen"


def mail(n: int, subject: str = "", sender: str = "") -> bytes:
    """A distinct customer message numbered n, with Message-ID <n@customers.example>."""
    return (
        f"From: {sender or f'customer{n}@customers.example'}\r\n"
        "To: support@example.com\r\n"
        f"Subject: {subject or f'Request number {n}'}\r\n"
        f"Message-ID: <{n}@customers.example>\r\n"
        f"Date: Mon, 23 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        "\r\n"
        f"Please help with problem {n}.\r\n"
    ).encode()


_opened: list[Runtime] = []


def runtime_for(
    tmp_path: Path, server: Dovecot, database_url: str = "", **imap_keys: object
) -> Runtime:
    """A runtime (one inboxd process) whose [imap] section points at `server`."""
    cfg = make_config(tmp_path, database_url, imap=server.imap_config(**imap_keys))
    _opened.append(open_runtime(cfg))
    return _opened[-1]


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().engine.dispose()


@contextmanager
def polling(rt: Runtime, wake: Callable[[], None] = lambda: None) -> Iterator[threading.Thread]:
    """Run the poller in a thread, as the daemon does; stop it (within 2 s) on leaving."""
    stop = threading.Event()
    thread = threading.Thread(target=imap.run_poller, args=(rt, stop, wake), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        began = time.monotonic()
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the poller did not stop"
        assert time.monotonic() - began < 2.5, "the poller took too long to stop"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition.__name__}")
        time.sleep(0.05)


def spooled(rt: Runtime) -> list[Inbound]:
    with session_scope(rt.engine) as session:
        return list(session.exec(select(Inbound).order_by(Inbound.id)))


def process_spool(rt: Runtime) -> None:
    """What the daemon's ingest worker does: run the pipeline over every pending row."""
    while rows := spool.claim(rt.engine, limit=100):
        for row in rows:
            with session_scope(rt.engine) as session:
                raw = store.load_raw(session, row.raw_sha256)
            assert raw is not None
            pipeline.ingest(rt, raw, row.source, tuple(row.rcpt_to), spool_id=row.id)


def message_ids(rt: Runtime) -> Counter[str]:
    """How many times each Message-ID is stored on a ticket."""
    with session_scope(rt.engine) as session:
        return Counter(m.message_id or "" for m in session.exec(select(Message)))


def expected(*numbers: int) -> Counter[str]:
    return Counter(f"<{n}@customers.example>" for n in numbers)


# --- 1. new mail becomes tickets, and nothing is \Seen before it is stored -------------


def test_new_messages_become_tickets_and_are_marked_seen_only_after_spooling(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.append("INBOX", mail(1), mail(2), mail(3))
    rt = runtime_for(tmp_path, dovecot, idle=False)
    unseen_at_spooling: list[bool] = []
    real_accept = spool.accept

    def accept_and_look(engine, raw, **kw):  # type: ignore[no-untyped-def]
        spool_id = real_accept(engine, raw, **kw)
        # A second connection sees the message's flags right after it is stored.
        msgid = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0]
        unseen_at_spooling.append(SEEN not in dovecot.flags()[msgid])
        return spool_id

    monkeypatch.setattr(spool, "accept", accept_and_look)
    with polling(rt):
        wait_for(lambda: all(SEEN in f for f in dovecot.flags().values()))

    assert unseen_at_spooling == [True, True, True]
    assert [row.source.rsplit(":", 1)[1] for row in spooled(rt)] == ["1", "2", "3"]
    assert spooled(rt)[0].source.startswith("imap:INBOX:")
    process_spool(rt)
    assert message_ids(rt) == expected(1, 2, 3)
    with session_scope(rt.engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 3
        (state,) = session.exec(select(ImapState)).all()
    assert state.account == f"{dovecot.user}@127.0.0.1:{dovecot.port}"
    assert (state.folder, state.last_uid) == ("INBOX", 3)


def test_a_message_that_cannot_be_stored_stays_unseen_and_is_fetched_again(
    tmp_path: Path,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap, "BACKOFF_FIRST", 0.2)
    dovecot.append("INBOX", mail(1))
    rt = runtime_for(tmp_path, dovecot, idle=False)
    real_accept = spool.accept
    refusals = []

    def database_down_twice(engine, raw, **kw):  # type: ignore[no-untyped-def]
        if len(refusals) < 2:
            refusals.append(SEEN in dovecot.flags()[b"<1@customers.example>"])
            raise DatabaseUnavailable("cannot store the message: database is locked")
        return real_accept(engine, raw, **kw)

    monkeypatch.setattr(spool, "accept", database_down_twice)
    with caplog.at_level(logging.WARNING, logger="inboxd.imap"), polling(rt):
        wait_for(lambda: len(spooled(rt)) == 1)
        wait_for(lambda: SEEN in dovecot.flags()[b"<1@customers.example>"])

    assert refusals == [False, False]  # still unseen on the server after each refusal
    failures = [r.getMessage() for r in caplog.records if "database is locked" in r.getMessage()]
    assert len(failures) == 2
    assert all("retrying in" in line and "\n" not in line for line in failures)


# --- 2. after_ingest -------------------------------------------------------------------


def test_move_mode_moves_stored_messages_to_the_named_folder(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    dovecot.append("INBOX", mail(1), mail(2))
    rt = runtime_for(tmp_path, dovecot, idle=False, after_ingest="move:Processed")
    with polling(rt):
        wait_for(lambda: not dovecot.flags("INBOX"))
    assert set(dovecot.flags("Processed")) == {b"<1@customers.example>", b"<2@customers.example>"}
    assert len(spooled(rt)) == 2


def test_delete_mode_removes_stored_messages_from_the_server(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    dovecot.append("INBOX", mail(1), mail(2))
    rt = runtime_for(tmp_path, dovecot, idle=False, after_ingest="delete")
    with polling(rt):
        wait_for(lambda: not dovecot.flags("INBOX"))
        dovecot.append("INBOX", mail(3))
        wait_for(lambda: not dovecot.flags("INBOX"))
    process_spool(rt)
    assert message_ids(rt) == expected(1, 2, 3)


# --- 3. IDLE ---------------------------------------------------------------------------


def test_mail_arriving_while_idling_is_spooled_within_seconds(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    # With polling an hour apart, only IDLE can bring the second message in quickly.
    rt = runtime_for(tmp_path, dovecot, idle=True, poll_seconds=3600)
    woken = threading.Event()
    dovecot.append("INBOX", mail(1))
    with polling(rt, wake=woken.set):
        wait_for(lambda: len(spooled(rt)) == 1)
        assert woken.wait(5)
        time.sleep(0.5)  # let it settle into IDLE
        woken.clear()
        began = time.monotonic()
        dovecot.append("INBOX", mail(2))
        wait_for(lambda: len(spooled(rt)) == 2, timeout=5)
        assert time.monotonic() - began < 3
        assert woken.wait(5)


def test_mail_landing_between_a_sync_and_idle_is_not_left_waiting(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    # Dovecot 2.3 reports such mail only when the IDLE ends, 25 minutes later.
    rt = runtime_for(tmp_path, dovecot, idle=True, poll_seconds=3600)
    landed = []

    def deliver_once() -> None:  # runs after the sync's SEARCH, before IDLE begins
        if not landed:
            landed.append(True)
            dovecot.append("INBOX", mail(2))

    dovecot.append("INBOX", mail(1))
    with polling(rt, wake=deliver_once):
        wait_for(lambda: len(spooled(rt)) == 2, timeout=5)


def test_every_configured_folder_is_fetched_while_idle_watches_the_first(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    dovecot.append("Support", mail(1))
    rt = runtime_for(tmp_path, dovecot, idle=True, poll_seconds=1, folders=["INBOX", "Support"])
    with polling(rt):
        wait_for(lambda: len(spooled(rt)) == 1)
        dovecot.append("INBOX", mail(2))
        dovecot.append("Support", mail(3))
        wait_for(lambda: len(spooled(rt)) == 3, timeout=5)
    assert sorted(row.source.split(":")[1] for row in spooled(rt)) == [
        "INBOX",
        "Support",
        "Support",
    ]


# --- 4. a server that goes away ---------------------------------------------------------


def test_a_server_that_is_down_is_retried_until_it_is_back(
    tmp_path: Path,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap, "BACKOFF_FIRST", 0.1)
    dovecot.append("INBOX", mail(1))
    dovecot.stop()
    rt = runtime_for(tmp_path, dovecot, idle=True)
    with caplog.at_level(logging.INFO, logger="inboxd.imap"), polling(rt):
        wait_for(lambda: sum("retrying in" in r.getMessage() for r in caplog.records) >= 3)
        dovecot.start()
        wait_for(lambda: len(spooled(rt)) == 1)
    failures = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert all("connection refused" in line for line in failures)
    assert any("connected" in r.getMessage() for r in caplog.records)


def test_server_restart_mid_fetch_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap, "BACKOFF_FIRST", 0.2)
    numbers = range(1, 121)  # three batches of 50
    dovecot.append("INBOX", *(mail(n) for n in numbers))
    rt = runtime_for(tmp_path, dovecot, idle=True)
    real_accept = spool.accept
    calls = []

    def restart_after_the_tenth(engine, raw, **kw):  # type: ignore[no-untyped-def]
        spool_id = real_accept(engine, raw, **kw)
        calls.append(spool_id)
        if len(calls) in (10, 75):
            # Stored, not yet flagged: the worst moment for the connection to drop.
            dovecot.restart()
        return spool_id

    monkeypatch.setattr(spool, "accept", restart_after_the_tenth)
    with caplog.at_level(logging.WARNING, logger="inboxd.imap"), polling(rt):
        wait_for(lambda: all_seen_meanwhile(dovecot), timeout=20)
        dovecot.append("INBOX", mail(999))  # and it still receives new mail after that
        wait_for(lambda: len({r.raw_sha256 for r in spooled(rt)}) == 121, timeout=10)

    assert sum("retrying in" in r.getMessage() for r in caplog.records) >= 2
    assert len(spooled(rt)) > 121  # the interrupted batches were fetched again ...
    process_spool(rt)
    assert message_ids(rt) == expected(*numbers, 999)  # ... and stored once each


def all_seen_meanwhile(server: Dovecot) -> bool:
    """Whether every message is \\Seen, or False while the server is restarting."""
    try:
        return all(SEEN in f for f in server.flags().values())
    except (OSError, imaplib.IMAP4.error):
        return False


# --- 5. UIDVALIDITY --------------------------------------------------------------------


def test_a_recreated_folder_is_rescanned_without_importing_anything_twice(
    tmp_path: Path,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imap, "BACKOFF_FIRST", 0.2)
    dovecot.append("Support", mail(1), mail(2), mail(3))
    rt = runtime_for(tmp_path, dovecot, idle=False, folders=["Support"])
    with caplog.at_level(logging.WARNING, logger="inboxd.imap"), polling(rt):
        wait_for(lambda: len(spooled(rt)) == 3)
        wait_for(lambda: _state(rt) is not None)  # saved once the first scan is complete
        before = _state(rt).uidvalidity
        # The mailbox is rebuilt: same messages, new UIDVALIDITY (and they are unread again).
        with dovecot.client() as client:
            client.delete_folder("Support")
        dovecot.append("Support", mail(1), mail(2), mail(3), mail(4))
        wait_for(lambda: getattr(_state(rt), "uidvalidity", before) != before)
        wait_for(lambda: len(spooled(rt)) == 7)
        wait_for(lambda: all(SEEN in f for f in dovecot.flags("Support").values()))

    assert any("UIDVALIDITY of Support changed" in r.getMessage() for r in caplog.records)
    assert len(dovecot.flags("Support")) == 4  # a re-scan deletes nothing
    process_spool(rt)
    assert message_ids(rt) == expected(1, 2, 3, 4)
    results = Counter(row.result for row in spooled(rt))
    assert results == {"created": 4, "duplicate": 3}


def _state(rt: Runtime) -> ImapState | None:
    with session_scope(rt.engine) as session:
        return session.exec(select(ImapState)).one_or_none()


def test_first_contact_in_seen_mode_skips_mail_already_read(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    dovecot.append("INBOX", mail(1), flags=(SEEN,))  # history, read before inboxd came
    dovecot.append("INBOX", mail(2))
    rt = runtime_for(tmp_path, dovecot, idle=False)
    with polling(rt):
        wait_for(lambda: len(spooled(rt)) == 1)
        dovecot.append("INBOX", mail(3), flags=(SEEN,))  # read by a person before the poll
        wait_for(lambda: len(spooled(rt)) == 2)
    process_spool(rt)
    assert message_ids(rt) == expected(2, 3)


# --- 6. one poller at a time -------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_pollers_take_turns_and_import_nothing_twice(
    backend: str,
    tmp_path: Path,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setattr(imap, "LOCK_RETRY_SECONDS", 0.2)
    if backend == "sqlite":
        # Two processes on one machine, one data dir: the flock on data_dir/imap.lock.
        first = runtime_for(tmp_path, dovecot, idle=True)
        second = runtime_for(tmp_path, dovecot, idle=True)
    else:
        # Two hosts sharing PostgreSQL, each with its own data dir: the advisory lock.
        url = request.getfixturevalue("pg_url")
        first = runtime_for(tmp_path / "host1", dovecot, url, idle=True)
        second = runtime_for(tmp_path / "host2", dovecot, url, idle=True)
    dovecot.append("INBOX", *(mail(n) for n in range(1, 21)))
    with caplog.at_level(logging.INFO, logger="inboxd.imap"):
        with polling(first), polling(second):
            wait_for(lambda: len(spooled(first)) == 20)
            time.sleep(0.5)
            leaders = [r for r in caplog.records if "holds the poller lock" in r.getMessage()]
            waiting = [r for r in caplog.records if "another inboxd process" in r.getMessage()]
            assert len(leaders) == 1 and len(waiting) == 1
            assert leaders[0].threadName != waiting[0].threadName
        # Leader gone: the other one takes over and carries on from the same state.
        with polling(second):
            dovecot.append("INBOX", mail(21))
            wait_for(lambda: len(spooled(second)) == 21)
    process_spool(first)
    assert message_ids(first) == expected(*range(1, 22))


def test_the_leader_lock_is_held_by_one_holder_at_a_time(rt: Runtime) -> None:
    one, two = leader.LeaderLock(rt, "a@host:993"), leader.LeaderLock(rt, "a@host:993")
    assert one.acquire()
    assert not two.acquire()
    assert one.held()
    one.release()
    assert two.acquire()
    two.release()


# --- 7. inboxd check -----------------------------------------------------------------------


def test_check_login_says_what_works(tmp_path: Path, dovecot: Dovecot) -> None:
    dovecot.append("INBOX", mail(1))
    cfg = make_config(tmp_path, imap=dovecot.imap_config(after_ingest="move:Done"))
    line = imap.check_login(cfg)
    assert "logged in" in line and "INBOX (1 messages)" in line and "IDLE" in line
    assert "Done will be created" in line


def test_check_login_names_the_fix_for_a_wrong_password(tmp_path: Path, dovecot: Dovecot) -> None:
    cfg = make_config(tmp_path, imap=dovecot.imap_config(password="wrong"))
    with pytest.raises(InboxdError, match="password") as err:
        imap.check_login(cfg)
    assert "wrong" not in str(err.value)  # never echo a secret


def test_check_login_names_the_fix_for_a_closed_port(tmp_path: Path, dovecot: Dovecot) -> None:
    dovecot.stop()
    cfg = make_config(tmp_path, imap=dovecot.imap_config())
    with pytest.raises(InboxdError, match=r"connection refused.*host and port"):
        imap.check_login(cfg)


def test_check_login_names_a_missing_folder(tmp_path: Path, dovecot: Dovecot) -> None:
    cfg = make_config(tmp_path, imap=dovecot.imap_config(folders=["INBOX", "Helpdesk"]))
    with pytest.raises(InboxdError, match="'Helpdesk' does not exist"):
        imap.check_login(cfg)


def test_backoff_doubles_up_to_five_minutes_with_jitter() -> None:
    import random

    rng = random.Random(7)
    delays = [imap.backoff_delay(n, rng) for n in range(12)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 4 <= delays[3] <= 8
    assert all(150 <= d <= 300 for d in delays[9:])
    assert len({round(d, 3) for d in delays[9:]}) == 3  # jittered, not in lockstep
