"""imap_mailbox.py: one IMAP connection, spoken the careful way: the account, login, SELECT,
fetch in bounded batches with BODY.PEEK[], flag/move/delete, IDLE with a stop flag.

It knows nothing of the spool or the database; the poller (imap.py) decides what to
fetch and when a message may be marked done. With imap.py, the only modules that
import imapclient.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import SocketTimeout

from inboxd.config import Config, secret
from inboxd.errors import ConfigError

log = logging.getLogger("inboxd.imap")

# Everything a server or the network can throw at us: imaplib's error/abort (which
# imapclient's exceptions derive from), sockets, TLS and timeouts (OSError subclasses).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (imaplib.IMAP4.error, IMAPClientError, OSError)
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
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
SEEN = b"\\Seen"
DELETED = b"\\Deleted"


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
