"""Several `inboxd serve` processes on one PostgreSQL database, for tests and bench/daemons.py.

    cluster = Cluster(base, pg_url, relay, nodes=3).start()
    load = cluster.send_in_background(mails, threads=6)   # SMTP, spread over the nodes
    cluster.nodes[0].kill()                                 # SIGKILL: a crash
    load.join()
    cluster.wait_all_processed(load.accepted)               # every 250'd message stored
    cluster.duplicates_at(relay)                            # outbound sent more than once

Each node has its own data_dir and ports; they share the database, the secret key and
the relay. A message a node does not answer 250 (it was killed during the session) is
sent to the next node, as a real MTA retries; only 250'd messages count as accepted.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon_harness import ServeProcess, serve_config, wait_until
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from inboxd.models import Inbound, Message, Outbound, Ticket

SECRET = "cluster-secret-key-shared-by-every-node"


def node_config(base: Path, database_url: str, relay: Any, **sections: Any) -> dict[str, Any]:
    return serve_config(
        base,
        inboxd={"database_url": database_url, "secret_key": SECRET},
        outbound={"mode": "smtp", "host": relay.host, "port": relay.port},
        **sections,
    )


@dataclass
class Load:
    """Mail being sent over SMTP by a few threads; `accepted` are the 250'd Message-IDs."""

    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def join(self, timeout: float = 600.0) -> Load:
        for thread in self.threads:
            thread.join(timeout)
        return self


class Cluster:
    def __init__(
        self, base: Path, database_url: str, relay: Any, nodes: int = 3, **sections: Any
    ) -> None:
        self.database_url = database_url
        self.nodes = []
        for i in range(nodes):
            home = base / f"node{i}"
            home.mkdir(parents=True, exist_ok=True)
            config = node_config(home, database_url, relay, **sections)
            self.nodes.append(ServeProcess(home, config))
        self.engine: Engine = create_engine(database_url)

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start(timeout=90)
        return self

    def stop(self) -> list[int]:
        codes = [node.stop() for node in self.nodes if node.proc and node.proc.poll() is None]
        self.engine.dispose()
        return codes

    def ensure_stopped(self) -> None:
        for node in self.nodes:
            node.ensure_stopped()
        self.engine.dispose()

    # -- load ---------------------------------------------------------------------------

    def send_in_background(
        self, mails: Sequence[tuple[str, bytes]], threads: int = 6, pace: float = 0.0
    ) -> Load:
        """Send (message_id, raw) pairs from `threads` threads, spread round robin over
        the nodes, each mail moving on to the next node while one refuses or is down."""
        load = Load(first_at=time.monotonic())
        queue = list(enumerate(mails))
        queue.reverse()

        def sender() -> None:
            while True:
                with load.lock:
                    if not queue:
                        return
                    index, (message_id, raw) = queue.pop()
                if self._deliver(index, raw, load):
                    with load.lock:
                        load.accepted.append(message_id)
                        load.last_at = time.monotonic()
                if pace:
                    time.sleep(pace)

        load.threads = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
        for thread in load.threads:
            thread.start()
        return load

    def _deliver(self, index: int, raw: bytes, load: Load) -> bool:
        for attempt in range(60):
            node = self.nodes[(index + attempt) % len(self.nodes)]
            try:
                with smtplib.SMTP("127.0.0.1", node.smtp_port, timeout=30) as client:
                    client.sendmail("sender@example.org", ["support@example.com"], raw)
                return True
            except (OSError, smtplib.SMTPException):
                with load.lock:
                    load.refused += 1
                time.sleep(0.05)
        return False

    # -- what the database says ---------------------------------------------------------

    def scalar(self, query: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one() or 0)

    def stored_ids(self) -> Counter[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Message.message_id)).scalars()
            return Counter(str(r) for r in rows)

    def pending(self) -> int:
        query = select(func.count()).select_from(Inbound).where(Inbound.state == "pending")
        return self.scalar(query)

    def tickets(self) -> int:
        return self.scalar(select(func.count()).select_from(Ticket))

    def queued_outbound(self) -> int:
        query = select(func.count()).select_from(Outbound).where(Outbound.status == "queued")
        return self.scalar(query)

    def sent_outbound(self) -> list[str]:
        with self.engine.connect() as conn:
            query = select(Outbound.message_id).where(Outbound.status == "sent")
            return [str(r) for r in conn.execute(query).scalars()]

    def wait_all_processed(self, accepted: Sequence[str], timeout: float = 300.0) -> float:
        """Wait until every accepted message is stored and the spool is empty; return when
        (time.monotonic()) that was first seen."""

        def done() -> float:
            stored = self.stored_ids()
            if self.pending() == 0 and all(stored[m] for m in accepted):
                return time.monotonic()
            return 0.0

        return wait_until(done, timeout, 0.1, "every accepted message to be stored")

    def wait_outbound_sent(self, relay: Any, timeout: float = 300.0) -> None:
        def done() -> bool:
            return self.queued_outbound() == 0 and len(set(self.sent_outbound())) <= len(
                {c.message_id for c in relay.messages}
            )

        wait_until(done, timeout, 0.2, "every outbound mail to be sent")


def duplicates(relay: Any) -> dict[str, int]:
    """Message-IDs the relay received more than once."""
    counts = Counter(c.message_id for c in relay.messages)
    return {m: n for m, n in counts.items() if n > 1}


def customer_mails(count: int, tag: str, make: Callable[..., bytes]) -> list[tuple[str, bytes]]:
    """`count` new conversations from as many customers (acknowledgements are limited per
    sender per hour, so each has a sender of its own)."""
    out = []
    for i in range(count):
        message_id = f"<{tag}.{i}@customers.example.org>"
        raw = make(
            sender=f"Customer {i} <c{i}.{tag}@customers.example.org>",
            subject=f"Question {i} ({tag})",
            message_id=message_id,
            body=f"Hello,\n\nquestion number {i}.\n\nThanks\n",
        )
        out.append((message_id, raw))
    return out
