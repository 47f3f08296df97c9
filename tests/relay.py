"""A capture relay for tests: the SMTP server inboxd's outbound sender talks to.

    relay = CaptureRelay().start()          # aiosmtpd on 127.0.0.1, a free port
    relay.fail_all("451 4.3.0 Try again later")   # every RCPT answers 451 from now on
    relay.fail_recipient("bob@example.net", "550 5.1.1 No such user")
    relay.stop(); relay.start()             # "relay down", then back on the same port
    relay.messages                          # every mail it accepted, in order

Like Mailman's testing/mta.py: it records instead of delivering, and it can be told to
refuse. aiosmtpd's threaded Controller is fine here (it is the daemon that must not use
it). Replies are switchable at RCPT (per recipient or for everyone) and after DATA.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from daemon_harness import free_port


@dataclass(frozen=True)
class Captured:
    """One mail the relay accepted: the envelope and the bytes as they arrived."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", "")).strip()


@dataclass
class _Behaviour:
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    all_rcpt_reply: str | None = None
    data_reply: str | None = None
    # Accept (record) the next N messages, then hang up instead of answering 250: the
    # sender cannot tell whether the mail went through (an "unclear failure").
    drop_after_data: int = 0


class _Handler:
    def __init__(self, relay: CaptureRelay) -> None:
        self.relay = relay

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.relay.lock:
            reply = self.relay.behaviour.rcpt_replies.get(address.lower())
            reply = reply or self.relay.behaviour.all_rcpt_reply
            self.relay.rcpt_attempts.append(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.relay.lock:
            behaviour = self.relay.behaviour
            if behaviour.data_reply:
                return behaviour.data_reply
            self.relay.messages.append(
                Captured(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or b""),
                )
            )
            drop = behaviour.drop_after_data > 0
            if drop:
                behaviour.drop_after_data -= 1
        if drop and server.transport is not None:
            server.transport.abort()
            return "421 4.4.2 connection dropped by the test"
        return "250 2.0.0 OK: captured"


class CaptureRelay:
    """An aiosmtpd server on 127.0.0.1 that records every mail and refuses on request."""

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.behaviour = _Behaviour()
        self.messages: list[Captured] = []
        self.rcpt_attempts: list[str] = []
        self._controller: Controller | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> CaptureRelay:
        """Listen (again) on the same port."""
        if self._controller is None:
            self._controller = Controller(
                _Handler(self), hostname=self.host, port=self.port, ready_timeout=10
            )
            self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused ("relay down")."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> CaptureRelay:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- behaviour ---------------------------------------------------------------------

    def fail_all(self, reply: str | None) -> None:
        """Answer every RCPT with `reply` (e.g. "451 4.3.0 ..."); None to accept again."""
        with self.lock:
            self.behaviour.all_rcpt_reply = reply

    def fail_recipient(self, address: str, reply: str | None) -> None:
        """Answer RCPT for one address with `reply`; None to accept it again."""
        with self.lock:
            if reply is None:
                self.behaviour.rcpt_replies.pop(address.lower(), None)
            else:
                self.behaviour.rcpt_replies[address.lower()] = reply

    def fail_data(self, reply: str | None) -> None:
        """Answer the end of DATA with `reply` instead of accepting the mail."""
        with self.lock:
            self.behaviour.data_reply = reply

    def drop_after_data(self, count: int = 1) -> None:
        """Record the next `count` mails, then hang up without answering 250."""
        with self.lock:
            self.behaviour.drop_after_data = count

    # -- what arrived ------------------------------------------------------------------

    def captured(self) -> list[Captured]:
        with self.lock:
            return list(self.messages)

    def to(self, address: str) -> list[Captured]:
        """Mails whose envelope recipients include `address`."""
        return [m for m in self.captured() if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.captured()]
