"""sla_clock.py: fire each SLA warning and breach once, within a minute of its time.

Each tick reads two short lists: tickets with events newer than the last one the clock
saw (their targets may have changed: a reply, a new priority, a pause), and `sla_due` rows
whose `next_at` has come. For those tickets alone the targets are computed afresh from
the event log (workflow/sla.py) and what fell due is fired. A firing is a row of the
`sla_firing` ledger, keyed by ticket, target, clock start and kind and inserted with ON
CONFLICT DO NOTHING in the same transaction as its event, tag and mails: a retry, a
restart or a second daemon on the same PostgreSQL can neither double nor lose one. A
daemon that was down fires what fell due at its next tick; a target whose breach fell due
too leaves its warning unsent (a warning after the fact helps nobody).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from inboxd.agents import notify
from inboxd.models import Agent, ClockState, Event, SlaDue, SlaFiring, Ticket
from inboxd.render import span_text, when_text
from inboxd.runtime import Runtime
from inboxd.tickets import actions
from inboxd.tickets.store import insert_once, record_event
from inboxd.workflow.sla import Policy, TargetState, next_due
from inboxd.workflow.sla_explain import sla_json, sla_text
from inboxd.workflow.ticket_facts import evaluate_many
from inboxd.workflow.timelines import RESOLVED

log = logging.getLogger("inboxd.sla")

ACTOR = "sla"
BREACH_TAG = "sla-breached"
_FINGERPRINT = "sla.fingerprint"


@dataclass(frozen=True)
class Fired:
    ticket_id: int
    target: str
    kind: str  # warning | breach | achieved
    at: datetime


def refresh(
    session: Session, rt: Runtime, ticket: Ticket, now: datetime, *, quiet: bool = False
) -> list[Fired]:
    """Compute the ticket's targets, fire what fell due, and store when to look again."""
    return refresh_many(session, rt, [ticket], now, quiet=quiet)


def refresh_many(
    session: Session, rt: Runtime, tickets: list[Ticket], now: datetime, *, quiet: bool = False
) -> list[Fired]:
    """refresh() for a batch of tickets, reading their history in a few queries. `quiet`
    records what fires but mails nobody (the first pass after a policy edit)."""
    live = [t for t in tickets if t.merged_into is None]
    evaluated = evaluate_many(session, rt, live, now) if live else {}
    ids = [t.id for t in tickets if t.id is not None]
    stored = {
        d.ticket_id: d for d in session.exec(select(SlaDue).where(col(SlaDue.ticket_id).in_(ids)))
    }
    fired: list[Fired] = []
    for ticket in tickets:
        assert ticket.id is not None
        policy, states = evaluated.get(ticket.id, (None, []))
        # Stored first, so the warning and breach mails show the deadline as it is now.
        _store_due(session, ticket.id, stored.get(ticket.id), policy, states, now)
        for state in states:
            fired.extend(_fire(session, rt, ticket, policy, state, now, quiet))  # type: ignore[arg-type]
    session.flush()  # the mails queued next read the due rows
    return fired


def _fire(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    policy: Policy,
    s: TargetState,
    now: datetime,
    quiet: bool,
) -> list[Fired]:
    """Fire what this target's state calls for, if nobody has yet."""
    assert ticket.id is not None
    if s.state == "achieved" and s.achieved_at is not None:
        kind, at = "achieved", s.achieved_at
    elif s.breached_at is not None:
        kind, at = "breach", s.breached_at
    elif s.state == "active" and s.warn_at is not None and s.warn_at <= now:
        kind, at = "warning", s.warn_at
    else:
        return []
    if not _claim(session, ticket.id, s, kind, at, policy):
        return []
    if kind == "achieved":
        record_event(session, ticket, ACTOR, "sla_achieved", policy.name, s.target, at=at)
    elif kind == "breach":
        record_event(session, ticket, ACTOR, "sla_breach", policy.name, s.target, at=at)
        actions.add_tag(session, ticket, BREACH_TAG, ACTOR)
        if not quiet:
            _mail_breach(session, rt, ticket, policy, s, now)
    else:
        record_event(session, ticket, ACTOR, "sla_warning", policy.name, s.target)
        if not quiet:
            _mail_warning(session, rt, ticket, policy, s, now)
    return [Fired(ticket.id, s.target, kind, at)]


def _claim(
    session: Session, ticket_id: int, s: TargetState, kind: str, due: datetime, policy: Policy
) -> bool:
    row = {
        "ticket_id": ticket_id,
        "target": s.target,
        "cycle_at": s.cycle,
        "kind": kind,
        "due_at": due,
        "policy": policy.name,
        "fired_at": datetime.now(UTC),
    }
    return insert_once(session, SlaFiring, row)


def _store_due(
    session: Session,
    ticket_id: int,
    row: SlaDue | None,
    policy: Policy | None,
    states: list[TargetState],
    now: datetime,
) -> None:
    upcoming = next_due(states, now)
    active = [s for s in states if s.state == "active" and s.due_at is not None]
    nearest = min(active, key=lambda s: s.due_at) if active else None  # type: ignore[arg-type, return-value]
    if policy is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        # Two daemons may store the same ticket's row at once: insert-or-nothing, then update.
        insert_once(session, SlaDue, {"ticket_id": ticket_id, "computed_at": now})
        row = session.get(SlaDue, ticket_id)
        assert row is not None
    row.policy = policy.name
    row.zone = policy.zone
    row.next_at = upcoming[0] if upcoming else None
    row.due_at = nearest.due_at if nearest else None
    row.due_target = nearest.target if nearest else None
    row.computed_at = now


# -- the mail ----------------------------------------------------------------------------


def _mail_warning(
    session: Session, rt: Runtime, ticket: Ticket, policy: Policy, s: TargetState, now: datetime
) -> None:
    recipients = notify.recipients(session, rt, ticket, "sla-warning")
    left = policy.between(now, s.due_at) if s.due_at else s.left
    notify.notify_agents(
        session,
        rt,
        ticket,
        None,
        "notify:sla-warning",
        recipients,
        f"SLA warning: {s.label} on ticket #{ticket.id} is due {when_text(s.due_at, policy.zone)}"
        f" ({span_text(left)} left, policy {policy.name}).",
    )


def _mail_breach(
    session: Session, rt: Runtime, ticket: Ticket, policy: Policy, s: TargetState, now: datetime
) -> None:
    recipients = notify.recipients(session, rt, ticket, "sla-breach")
    late = (
        ""
        if s.breached_at is None or (now - s.breached_at).total_seconds() < 120
        else (
            f" (recorded {span_text(now - s.breached_at)} later: the policy changed"
            " or the clock was down)"
        )
    )
    notify.notify_agents(
        session,
        rt,
        ticket,
        None,
        "notify:sla-breach",
        recipients,
        f"SLA breached: {s.label} on ticket #{ticket.id} was due "
        f"{when_text(s.breached_at, policy.zone)} (policy {policy.name}){late}.",
    )


# -- the tick ----------------------------------------------------------------------------


def refresh_tickets(session: Session, rt: Runtime, changed: set[int], now: datetime) -> list[Fired]:
    """The tickets whose history changed, and those whose next instant has come."""
    due = set(
        session.exec(
            select(SlaDue.ticket_id).where(
                col(SlaDue.next_at).is_not(None), col(SlaDue.next_at) <= now
            )
        )
    )
    fired: list[Fired] = []
    for chunk in _chunks(sorted(changed | due)):
        tickets = list(session.exec(select(Ticket).where(col(Ticket.id).in_(chunk))))
        fired.extend(refresh_many(session, rt, tickets, now))
    return fired


def answer_requests(session: Session, rt: Runtime, events: list[Event], now: datetime) -> int:
    """`#sla` by mail: the agent who asked gets the explanation of `inboxd sla N`."""
    asked = [e for e in events if e.type == "sla_requested"]
    for event in asked:
        ticket = session.get(Ticket, event.ticket_id)
        agent = session.exec(select(Agent).where(Agent.email == event.actor)).first()
        if ticket is None or agent is None or ticket.id is None:
            continue
        text = sla_text(sla_json(session, rt, ticket, now), ticket.id)
        notify.mail_agent(
            session,
            rt,
            ticket,
            agent.email,
            "SLA",
            "email/sla_explain.txt.j2",
            {"text": text},
            "receipt:sla",
        )
    return len(asked)


def fingerprint(rt: Runtime) -> str:
    """Of the calendars and policies: when it changes, every due time is computed anew."""
    data = {
        "calendars": [c.model_dump(mode="json") for c in rt.config.calendars],
        "sla": [p.model_dump(mode="json") for p in rt.config.sla],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def recompute_if_changed(rt: Runtime, session: Session, now: datetime) -> int:
    """At start-up: after a calendar or policy edit, recompute every unresolved ticket."""
    current = fingerprint(rt)
    if state(session, _FINGERPRINT) == current:
        return 0
    count = recompute_all(rt, session, now)
    set_state(session, _FINGERPRINT, current)
    return count


def recompute_all(rt: Runtime, session: Session, now: datetime) -> int:
    """Every unresolved ticket's targets afresh, in batches. What already fell due under
    the new policies is recorded (events, the breach tag) but mailed to nobody: enabling
    or editing a policy must not flood the admins with a mail per old ticket."""
    ids = list(
        session.exec(
            select(Ticket.id).where(
                col(Ticket.status).not_in(tuple(RESOLVED)), col(Ticket.merged_into).is_(None)
            )
        )
    )
    quiet = 0
    for chunk in _chunks([i for i in ids if i is not None]):
        tickets = list(session.exec(select(Ticket).where(col(Ticket.id).in_(chunk))))
        quiet += len(refresh_many(session, rt, tickets, now, quiet=True))
    if quiet:
        log.info(
            "sla: %s targets had already fallen due under the new policies (not mailed)", quiet
        )
    return len(ids)


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def state(session: Session, key: str) -> str | None:
    """A fact the clock keeps between passes (clock_state)."""
    row = session.get(ClockState, key)
    return row.value if row else None


def set_state(session: Session, key: str, value: str) -> None:
    # Two daemons may create the row at once: insert-or-nothing, then update.
    insert_once(session, ClockState, {"key": key, "value": value})
    row = session.get(ClockState, key)
    assert row is not None
    row.value = value
