"""clock.py: one pass of the daemon's clock — rules, surveys, SLA targets, `#sla`.

Each pass reads the events added since the last one (the watermark in `clock_state`),
runs the event rules on them (rule_engine.py), re-arms the time rules and fires those that
fell due, sends the satisfaction surveys that fell due (csat.py), recomputes the SLA
targets of every ticket that changed or whose next instant has come (sla_clock.py), and
answers `#sla` requests. Each part is exactly-once on its own ledger, so a pass that is
retried, interrupted or run by two daemons at once does no harm; the watermark only
saves work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from inboxd.models import Event
from inboxd.runtime import Runtime
from inboxd.workflow import csat, rule_engine, sla_clock

WATERMARK = "clock.last_event_id"
BATCH = 5000  # events per pass; the rest wait for the next pass, moments later


@dataclass
class TickResult:
    sla: list[sla_clock.Fired] = field(default_factory=list)
    rules: list[tuple[str, int]] = field(default_factory=list)
    answered: int = 0
    surveys: int = 0

    @property
    def count(self) -> int:
        """How much happened (anything may have queued mail)."""
        return len(self.sla) + len(self.rules) + self.answered + self.surveys


def tick(rt: Runtime, session: Session, now: datetime) -> TickResult:
    watermark = int(sla_clock.state(session, WATERMARK) or 0)
    events = list(
        session.exec(
            select(Event).where(col(Event.id) > watermark).order_by(col(Event.id)).limit(BATCH)
        )
    )
    result = TickResult()
    by_events = rule_engine.on_events(session, rt, events, now)
    changed = {e.ticket_id for e in events} | by_events.touched
    rule_engine.arm(session, rt, changed)
    by_time = rule_engine.fire_due(session, rt, now)
    changed |= by_time.touched
    rule_engine.arm(session, rt, by_time.touched)
    result.rules = by_events.fired + by_time.fired
    csat.arm(session, rt, changed)
    result.surveys = csat.send_due(session, rt, now)
    result.sla = sla_clock.refresh_tickets(session, rt, changed, now)
    result.answered = sla_clock.answer_requests(session, rt, events, now)
    if events:
        sla_clock.set_state(session, WATERMARK, str(max(e.id or 0 for e in events)))
    return result
