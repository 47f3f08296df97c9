"""SMTP abuse from a red-team run (issue 19, findings 2 and 3), on real sockets, kept fixed.

The daemon runs in a thread with its listener on a free port of 127.0.0.1. The attacker
connects from 127.0.0.1; the legitimate client from 127.0.0.2 (another address of the
loopback network), so a per-address limit tells them apart as it would two hosts.
Every wait is bounded by a socket timeout; nothing here measures how fast anything is.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from daemon_harness import DaemonThread, listening, wait_until
from mailbuilder import mail
from sqlmodel import select

from inboxd.daemon import smtp
from inboxd.db import session_scope
from inboxd.models import Message, Outbound
from inboxd.queues import spool

SUPPORT = "support@example.com"


def connect(daemon: DaemonThread, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(daemon.smtp_address, timeout=30, source_address=(source, 0))
    return sock


def first_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server still says until it hangs up (the socket timeout bounds it)."""
    said = b""
    while chunk := sock.recv(65536):
        said += chunk
    return said


@contextmanager
def slowloris(daemon: DaemonThread, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections from one address, each sending one byte of a command and no
    more: what a client trickling a byte a second looks like to the server."""
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(connect(daemon))
            sock.sendall(b"E")
            socks.append(sock)
        yield socks


def test_a_one_address_slowloris_leaves_another_client_its_220(tmp_path: Path) -> None:
    # The red-team run's setting: max_connections = 100, every slot taken by one client,
    # every probe answered 421 for the whole minute.
    limits = {"max_connections": 100}
    with listening(tmp_path, smtp=limits) as (_, daemon), slowloris(daemon, 150) as attackers:
        with connect(daemon, "127.0.0.2") as probe:
            assert first_line(probe).startswith(b"220")
        greetings = [first_line(s) for s in attackers]
    assert sum(g.startswith(b"220") for g in greetings) == 20  # max_connections_per_ip
    assert all(g.startswith(b"421 4.7.0") for g in greetings if not g.startswith(b"220"))


def test_a_legitimate_client_still_delivers_during_the_slowloris(tmp_path: Path) -> None:
    with listening(tmp_path) as (rt, daemon), slowloris(daemon, 150):
        host, port = daemon.smtp_address
        with smtplib.SMTP(host, port, timeout=30, source_address=("127.0.0.2", 0)) as client:
            client.sendmail("carol@example.org", [SUPPORT], mail(message_id="<legit@x.example>"))
        wait_until(lambda: spool.pending_count(rt.engine) == 0, what="the spool to drain")
        with session_scope(rt.engine) as session:
            found = session.exec(select(Message.message_id)).all()
    assert found == ["<legit@x.example>"]


def test_a_client_that_never_reaches_data_is_closed_after_command_seconds(tmp_path: Path) -> None:
    limits = {"command_seconds": 1, "idle_seconds": 600}
    with listening(tmp_path, smtp=limits) as (_, daemon), connect(daemon) as sock:
        assert first_line(sock).startswith(b"220")
        # Half a command and then silence: aiosmtpd's idle timer (600 s) would wait.
        sock.sendall(b"EHLO slow.exa")
        assert b"421 4.4.2 Too slow" in closed_by_server(sock)


def test_data_that_trickles_in_is_closed_at_the_minimum_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "DATA_RATE_GRACE_SECONDS", 0.5)
    with listening(tmp_path, smtp={"min_data_bytes_per_second": 1000}) as (rt, daemon):
        with connect(daemon) as sock:
            assert first_line(sock).startswith(b"220")
            for command in ("HELO x", "MAIL FROM:<carol@example.org>", f"RCPT TO:<{SUPPORT}>"):
                sock.sendall(command.encode() + b"\r\n")
                assert first_line(sock).startswith(b"250")
            sock.sendall(b"DATA\r\n")
            assert first_line(sock).startswith(b"354")
            sock.sendall(b"Subject: slow\r\n")  # and then nothing more
            assert b"421 4.4.2 Data arriving too slowly" in closed_by_server(sock)
        assert spool.pending_count(rt.engine) == 0


def test_a_null_envelope_sender_over_smtp_is_stored_and_never_answered(tmp_path: Path) -> None:
    with listening(tmp_path) as (rt, daemon):
        host, port = daemon.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail("", [SUPPORT], mail(message_id="<null@x.example>"))
        wait_until(lambda: spool.pending_count(rt.engine) == 0, what="the spool to drain")
        with session_scope(rt.engine) as session:
            stored = session.exec(select(Message.message_id)).all()
            acks = session.exec(select(Outbound).where(Outbound.purpose == "ack")).all()
    assert stored == ["<null@x.example>"]
    assert acks == []
