"""The red-team attacks of issue 19, replayed against `inboxd serve`, with their figures.

    python bench/attacks.py [--seconds S] [--keep DIR]

Each attack gets a fresh `inboxd serve` (SQLite, free ports, two agents: alice and bob)
whose outbound mail goes to a capture relay in this process:

  * loop:        alice's and bob's broken out-of-office answer every mail the relay gets
                 for them, with no Auto-Submitted, a new Message-ID and no threading
                 headers, to support@ afresh; for S seconds (default 60), in two styles:
                 a fixed subject ("Automatic reply") and the subject kept (with its [#N]).
                 Before the fix: 417 tickets and 825 mails in 120 s, still going.
  * slowloris:   150 connections from 127.0.0.1 trickling a byte a second for S seconds,
                 while a client from 127.0.0.2 connects every 2 s. Before: every probe 421.
  * backscatter: 100 mails whose From: are 100 third parties, from one envelope sender.
                 Before: 103 acknowledgements to third parties.
  * null sender: MAIL FROM:<> with a normal From:. Before: acknowledged.
  * cc flood:    a stranger's new mail with 2,000 addresses in Cc:. Before: 1,991 CCs.
  * big mails:   eight mails with a 24 MB attachment each; the daemon's RSS. Before:
                 about 1 GB, never given back.

It prints what inboxd sent (or did) in each. A benchmark, not a test: nothing here
passes or fails on a number.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from ingest import inboxd_command, work_dir
from smtp import free_port, stop, wait_listening

SUPPORT = "support@example.com"
AGENTS = ("alice@example.com", "bob@example.com")


class Relay:
    """The outbound relay: records every mail; answers mail for `responders`."""

    def __init__(self) -> None:
        self.mails: list[tuple[tuple[str, ...], bytes]] = []
        self.lock = threading.Lock()
        self.responders: set[str] = set()
        self.keep_subject = False
        self.inboxd_port = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        rcpts = tuple(envelope.rcpt_tos)
        with self.lock:
            self.mails.append((rcpts, raw))
        for rcpt in rcpts:
            if rcpt in self.responders:
                threading.Thread(target=self.answer, args=(rcpt, raw), daemon=True).start()
        return "250 OK"

    def answer(self, agent: str, raw: bytes) -> None:
        subject = "Automatic reply"
        if self.keep_subject:
            found = raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
            subject = f"Automatic reply: {found}"
        mail = (
            f"From: {agent}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
            f"Message-ID: {make_msgid(domain='ooo.example')}\r\n\r\n"
            "I am out of the office until Monday and read no mail.\r\n"
        ).encode()
        send(self.inboxd_port, agent, mail)


def send(port: int, mail_from: str, raw: bytes, source: str = "127.0.0.1") -> None:
    import smtplib

    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
            client.sendmail(mail_from, [SUPPORT], raw)
    except (OSError, smtplib.SMTPException) as exc:
        print(f"  (send failed: {exc})")


class Daemon:
    def __init__(self, work: Path, relay_port: int) -> None:
        work.mkdir(parents=True)
        self.db = work / "data" / "inboxd.db"
        self.smtp_port = free_port()
        self.config = work / "inboxd.toml"
        self.config.write_text(
            f'[inboxd]\nsupport_address = "{SUPPORT}"\ndata_dir = "{(work / "data").as_posix()}"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {self.smtp_port}\n'
            "[web]\nenabled = false\n"
            f'[outbound]\nmode = "smtp"\nhost = "127.0.0.1"\nport = {relay_port}\n'
            "retry_seconds = 1\n"
            '[[agents]]\nemail = "alice@example.com"\nrole = "admin"\n'
            '[[agents]]\nemail = "bob@example.com"\n',
            encoding="utf-8",
        )
        self.log = work / "serve.log"

    def __enter__(self) -> Daemon:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*inboxd_command(), "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_listening(self.proc, self.log, self.smtp_port)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql))

    def settle(self, seconds: float = 3.0) -> None:
        """Until the spool is empty and nothing is queued (or `seconds` without change)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pending = self.query(
                "select (select count(*) from inbound where state = 'pending')"
                " + (select count(*) from outbound where status = 'queued')"
            )[0][0]
            if not pending:
                time.sleep(seconds)
                return
            time.sleep(0.2)


def loop(work: Path, seconds: float, keep_subject: bool) -> None:
    relay = Relay()
    relay.controller.start()
    try:
        with Daemon(work, relay.controller.port) as daemon:
            relay.inboxd_port = daemon.smtp_port
            relay.responders = set(AGENTS)
            relay.keep_subject = keep_subject
            customer = (
                f"From: carol@example.org\r\nTo: {SUPPORT}\r\nSubject: Order 1042 is late\r\n"
                f"Message-ID: {make_msgid(domain='example.org')}\r\n\r\nWhere is it?\r\n"
            ).encode()
            start = time.monotonic()
            send(daemon.smtp_port, "carol@example.org", customer)
            time.sleep(seconds)
            relay.responders = set()
            daemon.settle()
            tickets = daemon.query("select count(*) from ticket")[0][0]
            holds = daemon.query("select address, reason from loop_hold")
            elapsed = time.monotonic() - start
    finally:
        relay.controller.stop()
    to_agents = sum(1 for rcpts, _ in relay.mails if set(rcpts) & set(AGENTS))
    style = "subject kept ([#N] in it)" if keep_subject else "fixed subject"
    print(
        f"loop, {style}: {elapsed:.0f} s, {len(relay.mails)} mails sent "
        f"({to_agents} to agents), {tickets} tickets, holds: {holds or 'none'}"
    )


def slowloris(work: Path, seconds: float) -> None:
    with Daemon(work, free_port()) as daemon:
        attackers: list[socket.socket] = []
        for _ in range(150):
            sock = socket.create_connection(("127.0.0.1", daemon.smtp_port), timeout=30)
            attackers.append(sock)
        stopping = threading.Event()

        def trickle() -> None:
            while not stopping.wait(1.0):
                for sock in attackers:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        threading.Thread(target=trickle, daemon=True).start()
        probes: list[tuple[str, float]] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            with socket.create_connection(
                ("127.0.0.1", daemon.smtp_port), timeout=30, source_address=("127.0.0.2", 0)
            ) as probe:
                greeting = probe.recv(1024)[:3].decode()
            probes.append((greeting, time.monotonic() - t))
            time.sleep(2)
        stopping.set()
        greeted = Counter()
        for sock in attackers:
            try:
                sock.settimeout(1)
                greeted[sock.recv(1024)[:3].decode() or "closed"] += 1
            except OSError:
                greeted["closed"] += 1
            sock.close()
    codes = Counter(code for code, _ in probes)
    worst = max((t for _, t in probes), default=0.0)
    print(
        f"slowloris: 150 connections from 127.0.0.1 for {seconds:.0f} s -> attackers got "
        f"{dict(greeted)}; {len(probes)} probes from 127.0.0.2 got {dict(codes)}, "
        f"slowest 220 after {worst * 1000:.0f} ms"
    )


def one_shot_attacks(work: Path) -> None:
    relay = Relay()
    relay.controller.start()
    try:
        with Daemon(work, relay.controller.port) as daemon:
            for n in range(100):
                forged = (
                    f"From: victim{n}@victims.example\r\nTo: {SUPPORT}\r\nSubject: Hello {n}\r\n"
                    f"Message-ID: {make_msgid(domain='spam.example')}\r\n\r\nHi {n}\r\n"
                ).encode()
                send(daemon.smtp_port, "spammer@spam.example", forged)
            null = (
                f"From: dora@example.net\r\nTo: {SUPPORT}\r\nSubject: Null sender\r\n"
                f"Message-ID: {make_msgid(domain='example.net')}\r\n\r\nHi\r\n"
            ).encode()
            send(daemon.smtp_port, "", null)
            crowd = ",\r\n ".join(f"person{n}@crowd.example" for n in range(2000))
            flood = (
                f"From: stranger@elsewhere.example\r\nTo: {SUPPORT}\r\nCc: {crowd}\r\n"
                f"Subject: Flood\r\nMessage-ID: {make_msgid(domain='x.example')}\r\n\r\nHi\r\n"
            ).encode()
            send(daemon.smtp_port, "stranger@elsewhere.example", flood)
            daemon.settle()
            ccs = daemon.query(
                "select count(*) from participant p join ticket t on t.id = p.ticket_id"
                " where t.requester = 'stranger@elsewhere.example' and p.role = 'cc'"
            )[0][0]
    finally:
        relay.controller.stop()
    acks = [rcpts for rcpts, raw in relay.mails if b"Auto-Submitted: auto-replied" in raw]
    to_victims = sum(1 for r in acks if any(a.endswith("@victims.example") for a in r))
    to_spammer = sum(1 for r in acks if "spammer@spam.example" in r)
    to_null = sum(1 for r in acks if "dora@example.net" in r)
    print(
        f"backscatter: 100 forged From: -> {to_victims} acknowledgements to third parties, "
        f"{to_spammer} to the envelope sender"
    )
    print(f"null sender: {to_null} acknowledgements")
    print(f"cc flood: 2,000 addresses in Cc: -> {ccs} CCs on the ticket")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def big_mails(work: Path, count: int = 8, megabytes: int = 24) -> None:
    """`count` mails with a `megabytes` attachment each; the daemon's RSS before and after."""
    import base64
    import os

    blob = base64.encodebytes(os.urandom(megabytes * 1024 * 1024 * 3 // 4 - 4096))
    with Daemon(work, free_port()) as daemon:
        before = rss_mb(daemon.proc.pid)
        for n in range(count):
            raw = (
                (
                    f"From: big{n}@example.org\r\nTo: {SUPPORT}\r\nSubject: Big {n}\r\n"
                    f"Message-ID: {make_msgid(domain='example.org')}\r\nMIME-Version: 1.0\r\n"
                    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
                    "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
                    '--b\r\nContent-Type: application/octet-stream; name="big.bin"\r\n'
                    "Content-Transfer-Encoding: base64\r\n\r\n"
                ).encode()
                + blob.replace(b"\n", b"\r\n")
                + b"\r\n--b--\r\n"
            )
            send(daemon.smtp_port, f"big{n}@example.org", raw)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if daemon.query("select count(*) from message")[0][0] >= count:
                break
            time.sleep(0.5)
        daemon.settle(1.0)
        peak_after = rss_mb(daemon.proc.pid)
        time.sleep(5)
        settled = rss_mb(daemon.proc.pid)
        stored = daemon.query("select count(*) from message")[0][0]
    print(
        f"big mails: {count} x {megabytes} MB -> {stored} stored; RSS {before:.0f} MB before, "
        f"{peak_after:.0f} MB when done, {settled:.0f} MB 5 s later"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, metavar="S")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep everything")
    ap.add_argument("--only", choices=["loop", "slowloris", "one-shot", "big"], default=None)
    args = ap.parse_args()
    with work_dir(args.keep, "inboxd-attacks-") as work:
        if args.only == "big":
            big_mails(work / "big")
            return 0
        loop(work / "loop-fixed", args.seconds, keep_subject=False)
        loop(work / "loop-kept", args.seconds, keep_subject=True)
        slowloris(work / "slowloris", args.seconds)
        one_shot_attacks(work / "one-shot")
        big_mails(work / "big")
    return 0


if __name__ == "__main__":
    sys.exit(main())
