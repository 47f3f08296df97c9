"""imap.py: the IMAP poller. Copies new mail from the configured folders into the spool.

It promises what fetchmail promises (SPEC §8): a message is flagged, moved or deleted on
the server only after `spool.accept()` has committed it. It fetches with `BODY.PEEK[]`,
so reading a message never marks it \\Seen as a side effect, and it remembers, per
folder, the UIDVALIDITY and the last UID it finished (`ImapState`).

It must not parse or process mail (the pipeline does that from the spool). The
connection itself is imap_mailbox.py, the leader lock leader.py; everything else sees
`run_poller()` and `check_login()`.

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

import imaplib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable

from imapclient.exceptions import LoginError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from inboxd.config import Config
from inboxd.daemon.imap_mailbox import IDLE_RENEW_SECONDS, NETWORK_ERRORS, Account, Mailbox
from inboxd.daemon.leader import LeaderLock
from inboxd.db import session_scope
from inboxd.errors import DatabaseUnavailable, ImapError, InboxdError
from inboxd.models import ImapState, utcnow
from inboxd.queues import spool
from inboxd.runtime import Runtime

log = logging.getLogger("inboxd.imap")

LOCK_RETRY_SECONDS = 5.0
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 300.0
# What the poller logs as one line and retries; anything else is a bug and gets a traceback.
RETRYABLE: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, InboxdError)


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
