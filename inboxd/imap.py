"""imap.py: the IMAP poller. Copies new mail from the configured folders into the spool.

It promises what fetchmail promises (SPEC §8): a message is flagged, moved or deleted on
the server only after `spool.accept()` has committed it. It fetches with `BODY.PEEK[]`,
so reading a message never marks it \\Seen as a side effect, and it remembers, per
folder, the UIDVALIDITY and the last UID it finished (`ImapState`).

It must not parse or process mail (the pipeline does that from the spool), and it is
the only module that imports imapclient: everything else sees `run_poller()` and
`check_login()`.

Which messages are new:
- Normally every message above the folder's last finished UID, read or not (somebody
  may open the shared mailbox in their mail client before we poll).
- On first contact with a folder, and when its UIDVALIDITY changes (the server rebuilt
  its index, or the folder was deleted and recreated), the old UIDs mean nothing, so the
  whole folder is scanned again from UID 1. With after_ingest = "seen", only messages
  without \\Seen are taken in that scan: we flagged everything we stored, and mail that
  was read before inboxd was pointed at the mailbox is history, not new requests
  (fetchmail and FreeScout make the same choice). With "move:" and "delete",
  whatever is still in the folder has not been stored. Either way a message stored
  before is recognised by the pipeline's content-hash dedupe, and a re-scan never
  deletes or moves anything that was not fetched in it.

With `idle = true` the first folder is watched with IDLE (re-issued well before the
29 minutes of RFC 2177), and every folder is synced again at least every `poll_seconds`;
without IDLE (or with `idle = false`) they are polled every `poll_seconds`. Network and
server errors are logged as one line each and retried with capped, jittered backoff.

Only one process polls an account at a time (SPEC §9): the poller holds a leader lock,
a PostgreSQL advisory lock on a dedicated connection, or an flock on data_dir/imap.lock
with SQLite. A process without the lock waits and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import imaplib
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SocketTimeout
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from inboxd import spool
from inboxd.config import Config, secret
from inboxd.db import session_scope
from inboxd.errors import ConfigError, DatabaseUnavailable, ImapError, InboxdError
from inboxd.models import ImapState, utcnow
from inboxd.runtime import Runtime

log = logging.getLogger("inboxd.imap")

# At most this many messages, and about this many bytes, are held in memory at once.
BATCH_UIDS = 50
BATCH_BYTES = 16 * 1024 * 1024
# RFC 2177: a server may drop a client that has been idle for 30 minutes, so IDLE is
# re-issued well before 29 minutes; NAT boxes that forget quiet connections argue for less.
IDLE_RENEW_SECONDS = 25 * 60
# How often a waiting poller looks at its stop flag (the daemon expects a stop within ~2 s).
TICK_SECONDS = 1.0
# How often a long IDLE checks that it still holds the leader lock.
LOCK_CHECK_SECONDS = 30.0
LOCK_RETRY_SECONDS = 5.0
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 300.0
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0

SEEN = b"\\Seen"
DELETED = b"\\Deleted"

# Everything a server or the network can throw at us: imaplib's error/abort (which
# imapclient's exceptions derive from), sockets, TLS and timeouts (OSError subclasses).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (imaplib.IMAP4.error, IMAPClientError, OSError)
# What the poller logs as one line and retries; anything else is a bug and gets a traceback.
RETRYABLE: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, InboxdError)


@dataclass(frozen=True)
class Account:
    """The [imap] section, resolved: password read, folders and action checked."""

    host: str
    port: int
    ssl: bool
    username: str
    password: str
    folders: tuple[str, ...]
    idle: bool
    poll_seconds: int
    after_ingest: str
    max_message_bytes: int

    @property
    def key(self) -> str:
        """The ImapState account key, e.g. support@imap.example.com:993."""
        return f"{self.username}@{self.host}:{self.port}"

    @property
    def move_target(self) -> str | None:
        return self.after_ingest[5:] if self.after_ingest.startswith("move:") else None

    @classmethod
    def from_config(cls, cfg: Config) -> Account:
        """Raise ConfigError when [imap] cannot describe a mailbox to log in to."""
        section = cfg.imap
        if not section.host:
            raise ConfigError("[imap] host is empty: set it to your IMAP server's name")
        if not section.username:
            raise ConfigError("[imap] username is empty: set it to the mailbox's login name")
        if not section.folders:
            raise ConfigError('[imap] folders is empty: list at least one, e.g. ["INBOX"]')
        return cls(
            host=section.host,
            port=section.port,
            ssl=section.ssl,
            username=section.username,
            password=secret(cfg, section, "password"),
            folders=section.folders,
            idle=section.idle,
            poll_seconds=section.poll_seconds,
            after_ingest=section.after_ingest,
            max_message_bytes=cfg.smtp.max_message_bytes,
        )


# --- the connection -------------------------------------------------------------------


class Mailbox:
    """One logged-in IMAP connection: the small interface the poller needs."""

    def __init__(self, client: IMAPClient, account: Account) -> None:
        self.client = client
        self.account = account
        self.can_idle = client.has_capability("IDLE")
        self.can_move = client.has_capability("MOVE")
        self.can_uid_expunge = client.has_capability("UIDPLUS")
        self._skipped_idle = False

    @classmethod
    def open(cls, account: Account) -> Mailbox:
        """Connect and log in; raises one of NETWORK_ERRORS."""
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=account.ssl,
            timeout=SocketTimeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        )
        try:
            # A server that offers STARTTLS on the plain port gets the password encrypted
            # (and its certificate checked), as every mail client does.
            if not account.ssl and client.has_capability("STARTTLS"):
                client.starttls()
            client.login(account.username, account.password)
        except BaseException:
            _close_quietly(client)
            raise
        return cls(client, account)

    def close(self, polite: bool = True) -> None:
        """Log out (`polite`), or just drop the socket of a connection that failed.

        A failed connection may be one that no longer answers; waiting for its LOGOUT
        reply would hold up a daemon that is shutting down.
        """
        if polite:
            try:
                self.client.logout()
                return
            except Exception:
                pass
        _close_quietly(self.client)

    def select(self, folder: str) -> tuple[int, int]:
        """Select `folder` read-write; return its (UIDVALIDITY, UIDNEXT - 1 or 0)."""
        info = self.client.select_folder(folder)
        # RFC 3501 requires UIDVALIDITY; a server that omits it gets one constant value.
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        if b"UIDNEXT" in info:
            top = int(info[b"UIDNEXT"]) - 1
        else:
            # UIDNEXT is optional in RFC 3501's SELECT response; the largest UID will do.
            top = max(self.client.search("ALL"), default=0)
        return uidvalidity, top

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid`, oldest first."""
        # "N:*" always matches the highest UID, even when it is below N (RFC 3501 6.4.8).
        found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def uids_all(self, unseen_only: bool) -> list[int]:
        return sorted(self.client.search(["UNSEEN"] if unseen_only else ["ALL"]))

    def batches(self, uids: Sequence[int]) -> Iterator[list[tuple[int, bytes]]]:
        """Fetch `uids` with BODY.PEEK[] in batches bounded by count and by bytes."""
        for start in range(0, len(uids), BATCH_UIDS):
            chunk = list(uids[start : start + BATCH_UIDS])
            sizes = {
                uid: int(data.get(b"RFC822.SIZE", 0))
                for uid, data in self.client.fetch(chunk, ["RFC822.SIZE"]).items()
            }
            for group in _group_by_size([u for u in chunk if u in sizes], sizes):
                for uid in group:
                    if sizes[uid] > self.account.max_message_bytes:
                        # Nothing is lost: SMTP would refuse it, but here it is already ours.
                        log.warning(
                            "IMAP %s: UID %d is %d bytes, over [smtp] max_message_bytes;"
                            " fetching it anyway",
                            self.account.key,
                            uid,
                            sizes[uid],
                        )
                response = self.client.fetch(group, ["BODY.PEEK[]"])
                # A UID missing from the answer was expunged by someone else meanwhile.
                yield [
                    (uid, bytes(response[uid][b"BODY[]"]))
                    for uid in group
                    if uid in response and b"BODY[]" in response[uid]
                ]

    def mark_done(self, uids: list[int]) -> None:
        """Apply after_ingest to messages that are safely in the spool."""
        if not uids:
            return
        action = self.account.after_ingest
        if action == "seen":
            self.client.add_flags(uids, [SEEN], silent=True)
            return
        target = self.account.move_target
        if target is not None and self.can_move:
            self.client.move(uids, target)
            return
        if target is not None:
            self.client.copy(uids, target)
        self.client.add_flags(uids, [DELETED], silent=True)
        if self.can_uid_expunge:
            self.client.uid_expunge(uids)
        else:
            # Without UIDPLUS, EXPUNGE also removes messages that a person flagged
            # \Deleted in this folder; fetchmail accepts the same on such servers.
            self.client.expunge()

    def ensure_folder(self, folder: str) -> None:
        if not self.client.folder_exists(folder):
            log.info("IMAP %s: creating folder %s for after_ingest", self.account.key, folder)
            self.client.create_folder(folder)

    def wait(self, stop: threading.Event, seconds: float, keep: Callable[[], bool]) -> None:
        """Wait for new mail in the selected folder (IDLE) for at most `seconds`.

        Returns early when `stop` is set, when new mail arrives or when `keep()` says the
        poller should stop (it lost its lock). Raises ConnectionError if the server
        hangs up.
        """
        # Mail that lands between our last SEARCH and the IDLE command is not reported
        # during the IDLE by every server (Dovecot 2.3 tells only at DONE), so ask with a
        # NOOP first. Once only in a row, in case a server reports EXISTS on every NOOP.
        if not self._skipped_idle:
            _, responses = self.client.noop()
            if any(_is_new_mail(r) for r in responses):
                self._skipped_idle = True
                return
        self._skipped_idle = False
        deadline = time.monotonic() + seconds
        next_lock_check = time.monotonic() + LOCK_CHECK_SECONDS
        self.client.idle()
        quick_empty = 0
        while not stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            responses = self.client.idle_check(timeout=TICK_SECONDS)
            if any(_is_bye(r) for r in responses):
                raise ConnectionError("the server said BYE during IDLE")
            if any(_is_new_mail(r) for r in responses):
                break
            # imapclient's idle_check swallows EOF and returns nothing at once; a few
            # immediate empty answers in a row mean the server has closed the socket.
            quick_empty = quick_empty + 1 if not responses and _quick(began) else 0
            if quick_empty >= 3:
                raise ConnectionError("the server closed the connection during IDLE")
            if time.monotonic() >= next_lock_check:
                next_lock_check = time.monotonic() + LOCK_CHECK_SECONDS
                if not keep():
                    break
        self.client.idle_done()


def _quick(began: float) -> bool:
    return time.monotonic() - began < TICK_SECONDS / 4


def _is_new_mail(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 1 and response[0] == b"BYE"


def _group_by_size(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        if group and total + sizes[uid] > BATCH_BYTES:
            yield group
            group, total = [], 0
        group.append(uid)
        total += sizes[uid]
    if group:
        yield group


def _close_quietly(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


# --- the leader lock ------------------------------------------------------------------


class LeaderLock:
    """Held by the one process that polls an account (SPEC §9).

    PostgreSQL: a session advisory lock on a dedicated autocommit connection; it goes
    away with the connection, so a crashed leader frees it. SQLite: an flock on
    data_dir/imap.lock, which the kernel frees when the process dies.
    """

    def __init__(self, rt: Runtime, account_key: str) -> None:
        self.engine: Engine = rt.engine
        self.path = rt.config.data_dir / "imap.lock"
        digest = hashlib.sha256(f"inboxd.imap:{account_key}".encode()).digest()
        self.pg_key = int.from_bytes(digest[:8], "big", signed=True)
        self._fd: int | None = None
        self._conn: Connection | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None or self._conn is not None:
            return True
        if self.is_postgres:
            return self._acquire_pg()
        return self._acquire_file()

    def held(self) -> bool:
        """Whether the lock is still ours (a PostgreSQL connection can be lost)."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("select 1"))
        except Exception:
            log.warning("IMAP leader lock lost: its database connection failed")
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("select pg_advisory_unlock(:k)"), {"k": self.pg_key})
                conn.close()
            except Exception:
                # A connection we cannot talk to must not go back to the pool still
                # holding the lock; invalidating it closes the session.
                conn.invalidate()

    def _acquire_file(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def _acquire_pg(self) -> bool:
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except (OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(f"cannot take the IMAP leader lock: {exc}") from None
        try:
            got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": self.pg_key}).scalar()
        except (OperationalError, PoolTimeout) as exc:
            conn.invalidate()
            raise DatabaseUnavailable(f"cannot take the IMAP leader lock: {exc}") from None
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True


# --- the poller -----------------------------------------------------------------------


def run_poller(rt: Runtime, stop: threading.Event, wake: Callable[[], None] = lambda: None) -> None:
    """Poll every configured folder until `stop` is set; call wake() after spooling messages.

    Raises ConfigError at once for an unusable [imap] section; every other failure is
    logged as one line and retried with backoff, so this returns only when stopped.
    """
    account = Account.from_config(rt.config)
    lock = LeaderLock(rt, account.key)
    waiting_logged = False
    try:
        while not stop.is_set():
            try:
                got = lock.acquire()
            except DatabaseUnavailable as exc:
                log.warning("IMAP %s: %s", account.key, _one_line(exc))
                got = False
            if not got:
                if not waiting_logged:
                    log.info(
                        "IMAP %s: another inboxd process is polling; waiting for its lock",
                        account.key,
                    )
                    waiting_logged = True
                stop.wait(LOCK_RETRY_SECONDS)
                continue
            waiting_logged = False
            log.info("IMAP %s: this process holds the poller lock", account.key)
            Poller(rt, account, wake).run(stop, lock.held)
    finally:
        lock.release()


class Poller:
    """Keeps one account's folders drained into the spool, reconnecting as needed."""

    def __init__(self, rt: Runtime, account: Account, wake: Callable[[], None]) -> None:
        self.rt = rt
        self.account = account
        self.wake = wake
        self.failures = 0
        self.connected_before = False

    def run(self, stop: threading.Event, keep: Callable[[], bool]) -> None:
        """Loop until `stop` is set or `keep()` turns false (the lock was lost)."""
        while not stop.is_set() and keep():
            if self._session(stop, keep) and not stop.is_set():
                # Servers log out clients that stay silent for 30 minutes, so a poller
                # that waits that long between polls waits disconnected.
                stop.wait(self._poll())

    def _session(self, stop: threading.Event, keep: Callable[[], bool]) -> bool:
        """One connection: open, serve, close. True if it ended for a long poll wait."""
        mailbox: Mailbox | None = None
        ok = wait_disconnected = False
        try:
            mailbox = Mailbox.open(self.account)
            if (target := self.account.move_target) is not None:
                mailbox.ensure_folder(target)
            # Routine reconnects between long polls are not news; the first connection
            # and a recovery after failures are.
            level = logging.INFO if self.failures or not self.connected_before else logging.DEBUG
            log.log(
                level,
                "IMAP %s: connected; folders %s; %s",
                self.account.key,
                ", ".join(self.account.folders),
                "IDLE" if self._use_idle(mailbox) else f"polling every {self._poll()} s",
            )
            self.connected_before = True
            wait_disconnected = self._serve(mailbox, stop, keep)
            ok = True
        except RETRYABLE as exc:
            self._back_off(stop, describe_error(exc, self.account))
        except Exception as exc:
            # A bug; the poller thread must survive it, and the traceback says where.
            log.exception("IMAP %s: unexpected error", self.account.key)
            self._back_off(stop, f"unexpected {type(exc).__name__}")
        finally:
            if mailbox is not None:
                mailbox.close(polite=ok)
        return wait_disconnected

    def _serve(self, mailbox: Mailbox, stop: threading.Event, keep: Callable[[], bool]) -> bool:
        """Sync and wait until stopped (False) or until a long poll should wait offline (True)."""
        while not stop.is_set() and keep():
            for folder in self.account.folders:
                if stop.is_set():
                    return False
                self.sync_folder(mailbox, folder, stop)
            self.failures = 0
            if self._use_idle(mailbox):
                # IDLE watches the selected folder only. Every poll_seconds all folders
                # are synced again anyway: the others need it, and a server whose IDLE
                # misses a change (some do) then delays mail by that much at most.
                if len(self.account.folders) > 1:
                    mailbox.client.select_folder(self.account.folders[0])
                mailbox.wait(stop, min(self._poll(), IDLE_RENEW_SECONDS), keep)
            elif self._poll() >= IDLE_RENEW_SECONDS:
                return True
            else:
                stop.wait(self._poll())
        return False

    def sync_folder(self, mailbox: Mailbox, folder: str, stop: threading.Event) -> int:
        """Spool every new message of `folder`, then apply after_ingest; return the count."""
        key = self.account.key
        uidvalidity, top = mailbox.select(folder)
        state = _load_state(self.rt.engine, key, folder)
        rescan = state is None or state.uidvalidity != uidvalidity
        if state is not None and rescan:
            log.warning(
                "IMAP %s: UIDVALIDITY of %s changed from %d to %d; re-scanning it"
                " (messages stored before are recognised and skipped)",
                key,
                folder,
                state.uidvalidity,
                uidvalidity,
            )
        if rescan:
            uids = mailbox.uids_all(unseen_only=self.account.after_ingest == "seen")
        else:
            assert state is not None
            uids = mailbox.uids_after(state.last_uid)
        if uids:
            log.info("IMAP %s: %d new message(s) in %s", key, len(uids), folder)
        done = 0
        for batch in mailbox.batches(uids):
            if stop.is_set():
                break
            for uid, raw in batch:
                spool.accept(
                    self.rt.engine,
                    raw,
                    source=f"imap:{folder}:{uidvalidity}:{uid}",
                    write_lock=self.rt.write_lock,
                )
            # By design the message is flagged only after it is committed to the spool.
            # A crash or a dropped connection between the two leaves it unflagged, so it
            # is fetched and spooled again next time, and the pipeline's dedupe (same raw
            # bytes) turns the second copy into a "duplicate": late, never lost or doubled.
            stored = [uid for uid, _ in batch]
            mailbox.mark_done(stored)
            done += len(stored)
            if not rescan and stored:
                _save_state(self.rt.engine, key, folder, uidvalidity, max(stored))
            if stored:
                self.wake()
        else:
            if rescan:
                # Saved only once the scan is complete: an interrupted scan starts over,
                # and finds flagged or moved messages gone from its search.
                _save_state(self.rt.engine, key, folder, uidvalidity, max([top, *uids]))
        return done

    def _use_idle(self, mailbox: Mailbox) -> bool:
        return self.account.idle and mailbox.can_idle

    def _poll(self) -> int:
        return self.account.poll_seconds

    def _back_off(self, stop: threading.Event, reason: str) -> None:
        delay = backoff_delay(self.failures)
        self.failures += 1
        log.warning("IMAP %s: %s; retrying in %.1f s", self.account.key, reason, delay)
        stop.wait(delay)


def backoff_delay(failures: int, rng: random.Random | None = None) -> float:
    """1 s, 2 s, 4 s ... capped at 5 minutes, each between half and all of that (jitter)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(failures, 20))
    return (rng or random).uniform(ceiling / 2, ceiling)


def _load_state(engine: Engine, account: str, folder: str) -> ImapState | None:
    try:
        with session_scope(engine) as session:
            return session.get(ImapState, (account, folder))
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"cannot read the IMAP state: {exc}") from None


def _save_state(engine: Engine, account: str, folder: str, uidvalidity: int, last: int) -> None:
    try:
        with session_scope(engine) as session:
            row = session.get(ImapState, (account, folder))
            if row is None:
                row = ImapState(account=account, folder=folder)
            row.uidvalidity = uidvalidity
            row.last_uid = last
            row.updated_at = utcnow()
            session.add(row)
    except (OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailable(f"cannot save the IMAP state: {exc}") from None


# --- inboxd check ---------------------------------------------------------------------


def check_login(rt_or_config: Runtime | Config) -> str:
    """Log in, look at the configured folders; return one line, or raise with the fix."""
    cfg = rt_or_config.config if isinstance(rt_or_config, Runtime) else rt_or_config
    account = Account.from_config(cfg)
    try:
        mailbox = Mailbox.open(account)
    except NETWORK_ERRORS as exc:
        raise ImapError(f"IMAP {account.key}: {describe_error(exc, account)}") from None
    try:
        counts = []
        for folder in account.folders:
            if not mailbox.client.folder_exists(folder):
                raise ImapError(
                    f"IMAP {account.key}: folder {folder!r} does not exist;"
                    " check [imap] folders (names are case-sensitive, except INBOX)"
                )
            status = mailbox.client.folder_status(folder, [b"MESSAGES"])
            counts.append(f"{folder} ({int(status[b'MESSAGES'])} messages)")
        target = account.move_target
        note = ""
        if target is not None and not mailbox.client.folder_exists(target):
            note = f"; {target} will be created"
        idle = (
            "IDLE"
            if account.idle and mailbox.can_idle
            else f"polling every {account.poll_seconds} s"
        )
    except NETWORK_ERRORS as exc:
        raise ImapError(f"IMAP {account.key}: {describe_error(exc, account)}") from None
    finally:
        mailbox.close()
    return f"IMAP {account.key}: logged in; {', '.join(counts)}; {idle}{note}"


def describe_error(exc: BaseException, account: Account) -> str:
    """One line saying what failed and which setting to look at (no secrets)."""
    if isinstance(exc, LoginError):
        return (
            f"login as {account.username!r} refused ({_one_line(exc)}); check [imap] username"
            " and password (or password_env / password_file)"
        )
    if isinstance(exc, imaplib.IMAP4.abort):
        return f"connection lost ({_one_line(exc)})"
    if isinstance(exc, ConnectionRefusedError):
        return (
            "connection refused; is the server running, and are [imap] host and port right?"
            " (993 with ssl = true, 143 with ssl = false)"
        )
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror}); check [imap] host"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's certificate is not valid ({exc.verify_message});"
            " check [imap] host against the name in the certificate"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS failed ({exc.reason}); if this port speaks plain IMAP, set [imap]"
            " ssl = false (usually port 143), else use port 993"
        )
    if isinstance(exc, TimeoutError):
        return (
            "the server did not answer in time; check [imap] host, port and ssl (a TLS port"
            " waits silently for a plain client) and any firewall"
        )
    if isinstance(exc, InboxdError):
        return _one_line(exc)
    if isinstance(exc, OSError):
        return exc.strerror or _one_line(exc)
    return f"server error: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    text_ = str(exc)
    if text_.startswith(("b'", 'b"')):
        text_ = text_[2:-1]  # imaplib puts the server's bytes in its messages
    return " ".join(text_.split())[:300] or type(exc).__name__
