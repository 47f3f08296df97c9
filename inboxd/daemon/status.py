"""status.py: `inboxd status` — how a running daemon is doing, from outside it.

Whether it answers (/healthz on `[web]`), and from the database it writes: what waits
in the spool and the outbox, when mail last came in and went out, and how far the clock
(rules, surveys, SLA) lags behind the event log. Read-only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlmodel import col, func, select

from inboxd.daemon.checks import healthz
from inboxd.db import session_scope
from inboxd.metrics import queue_gauges
from inboxd.models import Event, Message, Outbound
from inboxd.runtime import Runtime
from inboxd.tickets.queries import iso
from inboxd.workflow.clock import WATERMARK
from inboxd.workflow.sla_clock import state


@dataclass(frozen=True)
class Status:
    daemon: str  # "running" | "unhealthy" | "not running"
    detail: str
    spool_pending: int
    outbound_queued: int
    outbound_failed: int
    quarantined: int
    last_message_in: datetime | None
    last_mail_out: datetime | None
    clock_events_behind: int
    clock_lag_seconds: float  # age of the oldest event the clock has not seen; 0 if none

    @property
    def healthy(self) -> bool:
        return self.daemon == "running"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("last_message_in", "last_mail_out"):
            data[key] = iso(data[key])
        return data


def gather(rt: Runtime, now: datetime) -> Status:
    """The daemon's answer (if any) and the queues' state at `now` (the caller's clock)."""
    cfg = rt.config
    where = f"http://{cfg.web.host}:{cfg.web.port}/healthz"
    health = healthz(cfg)
    if health is None:
        daemon = "not running"
        detail = f"no answer at {where}" if cfg.web.enabled else "[web] is off: nothing to ask"
    elif health.get("status") == "ok":
        daemon, detail = "running", f"{where} answered ok"
    else:
        daemon, detail = "unhealthy", f"{where}: {health.get('database') or health}"
    gauges = {name: value for name, _, value in queue_gauges(rt.engine)}
    with session_scope(rt.engine) as session:
        last_in = session.exec(
            select(func.max(Message.received_at)).where(Message.direction == "in")
        ).one()
        last_out = session.exec(select(func.max(Outbound.sent_at))).one()
        seen = int(state(session, WATERMARK) or 0)
        behind, oldest = session.exec(
            select(func.count(), func.min(Event.at)).where(col(Event.id) > seen)
        ).one()
    return Status(
        daemon=daemon,
        detail=detail,
        spool_pending=gauges["spool_pending"],
        outbound_queued=gauges["outbound_queued"],
        outbound_failed=gauges["outbound_failed"],
        quarantined=gauges["quarantined"],
        last_message_in=last_in,
        last_mail_out=last_out,
        clock_events_behind=int(behind),
        clock_lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
    )
