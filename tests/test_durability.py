"""Mail that got 250 is never lost and never doubled, even when the server is killed (issue 3).

`inboxd serve` runs as a child process (SQLite, temp data dir, free ports). Four sender
threads deliver gen_corpus.py's 1,000 messages over their own SMTP connections and behave
like a real MTA: a message that did not get 250 (the connection broke, or a 4xx) is sent
again after reconnecting. Meanwhile the server is killed with SIGKILL at moments drawn
from a fixed seed and restarted each time. Afterwards every Message-ID is stored exactly
once, on the ticket of its conversation.
"""

from __future__ import annotations

import contextlib
import csv
import queue
import random
import re
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from conftest import require
from daemon_harness import ServeProcess, serve_config, serving, wait_until
from sqlmodel import func, select

from inboxd.db import make_engine, session_scope
from inboxd.models import Inbound, Message, Quarantine
from inboxd.queues import spool

GEN_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "tools" / "gen_corpus.py"
SUPPORT = "support@helpdesk.example"  # where gen_corpus.py addresses its mail
MESSAGES = 1000
SENDERS = 4
KILLS = 4
SEED = 11


def generate(directory: Path) -> list[tuple[str, bytes, str]]:
    """(Message-ID, raw bytes, conversation) for each generated message, in send order."""
    subprocess.run(
        [sys.executable, str(GEN_CORPUS), str(MESSAGES), str(directory), "--seed", str(SEED)],
        check=True,
        capture_output=True,
    )
    with (directory / "manifest.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    # The files end lines in LF; on the wire every line ends in CRLF.
    return [
        (
            r["message_id"],
            re.sub(rb"\r?\n", b"\r\n", (directory / r["file"]).read_bytes()),
            r["conv"],
        )
        for r in rows
    ]


class Senders:
    """SENDERS threads, each with its own connection, taking messages from one queue."""

    def __init__(self, port: int, messages: list[tuple[str, bytes, str]]) -> None:
        self.port = port
        self.todo: queue.Queue[tuple[str, bytes]] = queue.Queue()
        for msgid, raw, _ in messages:
            self.todo.put((msgid, raw))
        self.lock = threading.Lock()
        self.accepted: list[str] = []  # Message-IDs that got 250, once per 250
        self.refused: list[tuple[str, int, bytes]] = []  # 5xx: must never happen
        self.retries = 0
        self.threads = [
            threading.Thread(target=self._run, name=f"sender-{n}", daemon=True)
            for n in range(SENDERS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "the senders did not finish"

    def count(self) -> int:
        """How many 250s so far; fails at once if anything was refused for good."""
        with self.lock:
            assert not self.refused, f"refused: {self.refused[:3]}"
            return len(self.accepted)

    def _run(self) -> None:
        smtp: smtplib.SMTP | None = None
        while True:
            try:
                msgid, raw = self.todo.get_nowait()
            except queue.Empty:
                break
            while True:
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=60)
                    smtp.sendmail("sender@customers.example.net", [SUPPORT], raw)
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code >= 500:
                        with self.lock:
                            self.refused.append((msgid, exc.smtp_code, exc.smtp_error))
                        break
                except (smtplib.SMTPException, OSError):
                    pass  # connection refused, reset or closed: the server is down
                else:
                    with self.lock:
                        self.accepted.append(msgid)
                    break
                # No 250: like an MTA, reconnect and send the same message again.
                with self.lock:
                    self.retries += 1
                if smtp is not None:
                    with contextlib.suppress(OSError):
                        smtp.close()
                    smtp = None
                time.sleep(0.05)
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def test_every_message_that_got_250_is_stored_once_on_its_ticket_despite_sigkills(
    tmp_path: Path,
) -> None:
    require(GEN_CORPUS.exists(), f"corpus generator not found at {GEN_CORPUS}")
    corpus = generate(tmp_path / "corpus")
    config = serve_config(
        tmp_path,
        inboxd={"support_address": SUPPORT},
        web={"enabled": False},
    )
    rng = random.Random(SEED)
    # Kill after these many 250s (spread over the run), each after a random extra delay.
    kill_after = sorted(rng.sample(range(50, MESSAGES - 100), KILLS))
    with serving(tmp_path, config) as server:
        senders = Senders(server.smtp_port, corpus)
        senders.start()
        for threshold in kill_after:
            wait_until(lambda t=threshold: senders.count() >= t, 120, 0.01, f"{threshold} 250s")
            time.sleep(rng.uniform(0, 0.2))
            server.kill()
            time.sleep(rng.uniform(0, 0.3))  # down for a moment: senders get refused
            server.start()
        senders.join(timeout=180)
        wait_until(lambda: drained(server), 120, 0.2, "the spool to be processed")
        assert server.stop() == 0, server.stderr()

    assert senders.refused == []
    accepted = Counter(senders.accepted)
    conversation = {msgid: conv for msgid, _, conv in corpus}
    assert set(accepted) == set(conversation), "every message was retried until it got 250"

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'inboxd.db'}")
    try:
        with session_scope(engine) as session:
            placed = [(m.message_id, m.ticket_id) for m in session.exec(select(Message))]
            quarantined = session.exec(select(func.count()).select_from(Quarantine)).one()
            states = Counter(row.state for row in session.exec(select(Inbound)))
    finally:
        engine.dispose()

    stored = Counter(msgid for msgid, _ in placed)
    lost = set(accepted) - set(stored)
    doubled = {msgid: n for msgid, n in stored.items() if n > 1}
    assert (len(lost), len(doubled)) == (0, 0), (sorted(lost)[:5], list(doubled.items())[:5])
    assert set(stored) == set(accepted)
    assert quarantined == 0
    assert set(states) == {"done"}

    tickets: dict[int, set[str]] = defaultdict(set)
    for msgid, ticket in placed:
        tickets[ticket].add(msgid or "")
    by_conversation: dict[str, set[str]] = defaultdict(set)
    for msgid, conv in conversation.items():
        by_conversation[conv].add(msgid)
    assert {frozenset(s) for s in tickets.values()} == {
        frozenset(s) for s in by_conversation.values()
    }
    # The run did what it says: kills happened mid-stream and forced MTA-style retries.
    assert server.runs == KILLS + 1
    assert senders.retries > 0


def drained(server: ServeProcess) -> bool:
    """No spooled message is waiting (read from the server's database, as it runs)."""
    engine = make_engine(f"sqlite:///{Path(server.config['inboxd']['data_dir']) / 'inboxd.db'}")
    try:
        return spool.pending_count(engine) == 0
    finally:
        engine.dispose()
