"""smtp.py: the inbound SMTP (or LMTP) listener. The edge where mail is accepted.

The promise is Postfix's: `250` only after the message is on stable storage (the spool,
committed with synchronous=FULL; concurrent sessions share that commit, see
group_commit.py), never `250` for mail that could be lost, and never an
open relay. aiosmtpd's defaults are unsafe for an inbound server, so each is overridden
here: exceptions answer `451 4.3.0` without internals (not `500` with the exception
text), recipients are capped and restricted to our addresses, connections are capped
(in total and per client address), idle, pre-DATA and whole-session time is bounded, DATA
must arrive at a minimum average rate, and bare LF line endings are refused (except from
`[smtp] trusted_networks`, loopback by default, where they are made CRLF) so that no
smuggling variant can turn one message into two.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import shutil
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from inboxd.daemon.group_commit import GroupCommit, commit_on_loop
from inboxd.errors import DatabaseUnavailable
from inboxd.metrics import Metrics
from inboxd.queues import spool
from inboxd.runtime import Runtime

log = logging.getLogger(__name__)

# Replies, in one table (RFC 5321 codes, RFC 3463 enhanced codes).
OK = "250 2.1.0 OK"
ERR_RELAY = "550 5.7.1 Relaying denied: not an address of this inbox"
ERR_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
ERR_STORAGE = "452 4.3.1 Insufficient system storage, try again later"
ERR_TEMP = "451 4.3.0 Temporary local problem, try again later"
ERR_BARE_LF = "550 5.6.11 Bare LF line endings are not allowed; use CRLF"
ERR_BUSY = b"421 4.7.0 Too many connections, try again later\r\n"
ERR_BUSY_IP = b"421 4.7.0 Too many connections from your address, try again later\r\n"
ERR_TOO_SLOW = "421 4.4.2 Too slow: no message within the time allowed, closing connection"
ERR_DATA_SLOW = "421 4.4.2 Data arriving too slowly, closing connection"
ERR_TLS_AGAIN = "503 5.5.1 TLS is already active"
ERR_SESSION_TIME = "421 4.4.2 Session time limit exceeded, closing connection"

_LOCAL_TOKEN = re.compile(r"^[a-z0-9]{1,64}$")
_BARE_LF = re.compile(rb"(?<!\r)\n")
# Source routes ("<@relay:user@host>"), quoted local parts and the %-hack or bang paths
# are how open-relay probes try to slip past a domain check; none is ever ours.
_RELAY_TRICK = re.compile(r'<\s*@|"|%|!|\\')


def is_our_address(address: str, ours: tuple[str, ...], plus_addressing: bool) -> bool:
    """The support address, an alias, or their +TOKEN forms; nothing else."""
    local, at, domain = address.lower().rpartition("@")
    if not at or not local or _RELAY_TRICK.search(address):
        return False
    if f"{local}@{domain}" in ours:
        return True
    base, plus, token = local.partition("+")
    return (
        plus_addressing
        and bool(plus)
        and _LOCAL_TOKEN.match(token) is not None
        and (f"{base}@{domain}" in ours)
    )


class InboundHandler:
    """aiosmtpd handler: checks envelopes and spools accepted mail."""

    def __init__(
        self,
        rt: Runtime,
        wake: Callable[[], None],
        metrics: Metrics,
        arriving: Callable[[], None] | None = None,
    ) -> None:
        self.rt = rt
        self.wake = wake  # a message is spooled
        self.arriving = arriving  # a client began one (MAIL FROM): the daemon gives way
        self.metrics = metrics
        cfg = rt.config
        self.ours = cfg.support_addresses
        self.plus = cfg.inboxd.plus_addressing
        self.max_rcpt = cfg.smtp.max_recipients
        self.min_free = cfg.smtp.min_free_disk_mb * 1024 * 1024
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in cfg.smtp.trusted_networks]
        # Sessions' messages share durable commits; each 250 waits for its own commit.
        self.spool = GroupCommit(
            rt.engine,
            rt.write_lock,
            commit_now=commit_on_loop(rt.config.database_url, rt.write_lock),
        )

    def _trusted(self, peer: str) -> bool:
        """Is the client in [smtp] trusted_networks (by default, loopback)?"""
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def _disk_full(self) -> bool:
        try:
            return shutil.disk_usage(self.rt.config.data_dir).free < self.min_free
        except OSError:
            return False

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._disk_full():
            log.warning("refusing mail: less than %s MB free", self.rt.config.smtp.min_free_disk_mb)
            return self._count(ERR_STORAGE)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        if self.arriving is not None:
            self.arriving()
        return OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_rcpt:
            return self._count(ERR_TOO_MANY_RCPT)
        if not is_our_address(address, self.ours, self.plus):
            return self._count(ERR_RELAY)
        envelope.rcpt_tos.append(address.lower())
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        if raw.count(b"\n") != raw.count(b"\r\n"):  # a bare LF (the regex cost 0.2 ms)
            if not self._trusted(peer):
                return self._count(ERR_BARE_LF)
            raw = _BARE_LF.sub(b"\r\n", raw)  # stored as every other mail is: CRLF
        try:
            spool_id = await self.spool.accept(
                spool.Arrival(
                    raw,
                    source=f"smtp:{peer}",
                    # "<>": the null return path, which nothing may answer (RFC 3834, SPEC §7).
                    mail_from=envelope.mail_from or "<>",
                    rcpt_to=tuple(envelope.rcpt_tos),
                )
            )
        except DatabaseUnavailable as exc:
            log.warning("temporary failure storing mail from %s: %s", peer, exc)
            return self._count(ERR_TEMP)
        self.metrics.inc("smtp_accepted_total")
        self.wake()
        reply = f"250 2.0.0 OK: queued as {spool_id}"
        if isinstance(server, LMTP):
            # LMTP answers once per accepted recipient (RFC 2033 4.2).
            return "\r\n".join([reply] * len(envelope.rcpt_tos))
        return reply

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s: %s", type(error).__name__, error)
        return self._count(ERR_TEMP)

    def _count(self, reply: str) -> str:
        if reply.startswith("5"):
            self.metrics.inc("smtp_rejected_total")
        elif reply.startswith("4"):
            self.metrics.inc("smtp_temp_failures_total")
        return reply


# DATA slower than min_data_bytes_per_second is judged on its average after this long
# (a client may stall a moment at the start), then again every few seconds.
DATA_RATE_GRACE_SECONDS = 30.0
DATA_RATE_CHECK_SECONDS = 5.0


class _Limits:
    """Shared by every session of one listener: how many are open now, and from where.

    Issue 19: 150 connections trickling a byte a second from one address held every slot
    for a minute, and every other client got 421. So one address gets a share only.
    """

    def __init__(self, max_connections: int, max_per_ip: int) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.open = 0
        self.per_ip: dict[str, int] = {}

    def admit(self, ip: str) -> bool:
        if self.per_ip.get(ip, 0) >= self.max_per_ip:
            return False
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        self.open += 1
        return True

    def leave(self, ip: str) -> None:
        self.open -= 1
        left = self.per_ip.get(ip, 1) - 1
        if left > 0:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)


def _session_class(base: type[SMTP]) -> type[SMTP]:
    class InboxdSession(base):  # type: ignore[valid-type,misc]
        """aiosmtpd's session with a connection count, a session deadline, relay checks."""

        def __init__(
            self,
            *args: Any,
            limits: _Limits,
            session_seconds: float,
            command_seconds: float,
            min_data_rate: int,
            **kw: Any,
        ):
            super().__init__(*args, **kw)
            self._limits = limits
            self._session_seconds = session_seconds
            self._command_seconds = command_seconds
            self._min_data_rate = min_data_rate
            self._deadline: asyncio.TimerHandle | None = None
            self._pre_data: asyncio.TimerHandle | None = None
            self._rate_check: asyncio.TimerHandle | None = None
            self._data_started: float | None = None
            self._data_bytes = 0
            self._ip = ""
            self._counted = False
            self._refused = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            first = self._deadline is None and not self._counted
            if first:
                peer = transport.get_extra_info("peername")
                self._ip = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
                if not self._limits.admit(self._ip):
                    # Refused before aiosmtpd starts: no 220, no handler task.
                    self._refused = True
                    assert isinstance(transport, asyncio.WriteTransport)
                    transport.write(ERR_BUSY_IP)
                    transport.close()
                    return
            super().connection_made(transport)
            if first:
                self._counted = True
                self._deadline = self.loop.call_later(self._session_seconds, self._expire)
                self._start_pre_data()

        def connection_lost(self, error: Exception | None) -> None:
            if self._refused:
                return
            if self._counted:
                self._limits.leave(self._ip)
                self._counted = False
            for timer in (self._deadline, self._pre_data, self._rate_check):
                if timer is not None:
                    timer.cancel()
            super().connection_lost(error)

        def data_received(self, data: bytes) -> None:
            if self._data_started is not None:
                self._data_bytes += len(data)
            super().data_received(data)

        def _start_pre_data(self) -> None:
            """From the greeting (or the last message) to DATA: at most command_seconds.
            The idle timer alone never fires for a client that trickles a byte at a time."""
            if self._pre_data is not None:
                self._pre_data.cancel()
            self._pre_data = self.loop.call_later(
                self._command_seconds, self._close_with, ERR_TOO_SLOW
            )

        def _check_rate(self) -> None:
            if self._data_started is None:
                return
            elapsed = self.loop.time() - self._data_started
            if self._data_bytes < self._min_data_rate * elapsed:
                self._close_with(ERR_DATA_SLOW)
                return
            self._rate_check = self.loop.call_later(DATA_RATE_CHECK_SECONDS, self._check_rate)

        def _close_with(self, reply: str) -> None:
            if self.transport is not None:
                log.info("closing SMTP session from %s: %s", self._ip, reply)
                self._writer.write(reply.encode() + b"\r\n")
                self.transport.close()

        async def smtp_DATA(self, arg: str) -> None:
            if self._pre_data is not None:
                self._pre_data.cancel()
            self._data_started, self._data_bytes = self.loop.time(), 0
            if self._min_data_rate:
                self._rate_check = self.loop.call_later(DATA_RATE_GRACE_SECONDS, self._check_rate)
            try:
                await super().smtp_DATA(arg)
            finally:
                self._data_started = None
                if self._rate_check is not None:
                    self._rate_check.cancel()
                if self.transport is not None:
                    self._start_pre_data()

        def _expire(self) -> None:
            if self.transport is not None:
                self._writer.write(ERR_SESSION_TIME.encode() + b"\r\n")
                self.transport.close()

        async def smtp_STARTTLS(self, arg: str) -> None:
            # aiosmtpd 1.4.6 accepts STARTTLS again inside TLS and then breaks; once only.
            if self.session is not None and self.session.ssl is not None:
                await self.push(ERR_TLS_AGAIN)
                return
            await super().smtp_STARTTLS(arg)

        async def smtp_RCPT(self, arg: str) -> None:
            path = arg[3:] if arg[:3].upper() == "TO:" else arg
            if self.envelope.mail_from is not None and _RELAY_TRICK.search(path.split(">")[0]):
                await self.push(ERR_RELAY)
                return
            await super().smtp_RCPT(arg)

    return InboxdSession


class _Busy(asyncio.Protocol):
    """Answers 421 and hangs up: the listener is at its connection limit."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(ERR_BUSY)
        transport.close()


async def start_listener(
    rt: Runtime,
    wake: Callable[[], None],
    metrics: Metrics,
    arriving: Callable[[], None] | None = None,
) -> asyncio.Server:
    """Listen on [smtp] host:port; returns the asyncio server (close() to stop accepting).
    `wake` is called for each message spooled, `arriving` when a client begins one."""
    cfg = rt.config.smtp
    handler = InboundHandler(rt, wake, metrics, arriving)
    limits = _Limits(cfg.max_connections, cfg.max_connections_per_ip)
    session_cls = _session_class(LMTP if cfg.lmtp else SMTP)
    tls = _tls_context(rt)
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.Protocol:
        metrics.inc("smtp_connections_total")
        if limits.open >= limits.max_connections:
            return _Busy()
        return session_cls(  # type: ignore[call-arg,no-any-return]
            handler,
            data_size_limit=cfg.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=rt.config.inboxd.support_address.rpartition("@")[2],
            ident="inboxd",
            tls_context=tls,
            require_starttls=False,
            timeout=cfg.idle_seconds,
            loop=loop,
            limits=limits,
            session_seconds=cfg.session_seconds,
            command_seconds=cfg.command_seconds,
            min_data_rate=cfg.min_data_bytes_per_second,
        )

    return await loop.create_server(factory, host=cfg.host, port=cfg.port)


def _tls_context(rt: Runtime) -> ssl.SSLContext | None:
    cfg = rt.config.smtp
    if not cfg.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(rt.config.path(cfg.tls_cert_file), rt.config.path(cfg.tls_key_file))
    return context
