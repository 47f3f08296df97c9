"""metrics.py: counters of one running daemon, rendered as Prometheus text.

Counters live in memory (they restart at zero with the process, as Prometheus expects);
queue depths are read from the database when scraped, so every process of a
PostgreSQL deployment reports the shared queue.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import func, select

from inboxd.db import session_scope
from inboxd.models import Inbound, Outbound, Quarantine


@dataclass
class Metrics:
    """Thread-safe counters: SMTP sessions run on the event loop, ingest in a thread."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inc(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[name] += amount

    def get(self, name: str) -> int:
        with self.lock:
            return self.counts[name]

    def render(self, engine: Engine) -> str:
        """The Prometheus text exposition of counters and queue gauges."""
        with self.lock:
            counts = dict(self.counts)
        lines: list[str] = []
        for name, help_text in _COUNTERS.items():
            lines.append(f"# HELP inboxd_{name} {help_text}")
            lines.append(f"# TYPE inboxd_{name} counter")
            matching = {k: v for k, v in counts.items() if k == name or k.startswith(name + "{")}
            if not matching:
                lines.append(f"inboxd_{name} 0")
            for key, value in sorted(matching.items()):
                lines.append(f"inboxd_{key} {value}")
        for name, help_text, value in queue_gauges(engine):
            lines.append(f"# HELP inboxd_{name} {help_text}")
            lines.append(f"# TYPE inboxd_{name} gauge")
            lines.append(f"inboxd_{name} {value}")
        return "\n".join(lines) + "\n"


_COUNTERS = {
    "smtp_connections_total": "SMTP connections opened.",
    "smtp_accepted_total": "Messages accepted with 250 (durably spooled).",
    "smtp_rejected_total": "Commands answered with a 5xx reply.",
    "smtp_temp_failures_total": "Messages answered with 4xx because storage failed.",
    "imap_fetched_total": "Messages fetched from IMAP and spooled.",
    "ingested_total": "Messages run through the pipeline, by result.",
    "outbound_sent_total": "Mails handed to the relay (or outbox folder).",
    "outbound_failures_total": "Failed send attempts (retried or failed for good).",
}


def queue_gauges(engine: Engine) -> list[tuple[str, str, int]]:
    """(name, help, value) of each queue's depth, read now (also `inboxd status`'s)."""
    with session_scope(engine) as session:
        pending = session.exec(
            select(func.count()).select_from(Inbound).where(Inbound.state == "pending")
        ).one()
        queued = session.exec(
            select(func.count()).select_from(Outbound).where(Outbound.status == "queued")
        ).one()
        failed = session.exec(
            select(func.count()).select_from(Outbound).where(Outbound.status == "failed")
        ).one()
        quarantined = session.exec(
            select(func.count()).select_from(Quarantine).where(Quarantine.released_at == None)  # noqa: E711
        ).one()
    return [
        ("spool_pending", "Received messages waiting for the pipeline.", int(pending)),
        ("outbound_queued", "Mails waiting to be sent.", int(queued)),
        ("outbound_failed", "Mails that failed for good.", int(failed)),
        ("quarantined", "Messages in quarantine.", int(quarantined)),
    ]
