"""rule_engine.py: run the rules of rules.py against the event log (SPEC §10.3).

Event rules. Each new event of the log (not one a rule made) starts a chain: the rules
whose `on` it answers to run in file order, each at most once per chain; the events a
firing makes are fed back into the same chain, up to MAX_DEPTH deep, where an overrun stops
the chain and is reported. A rule's commands go through the one command registry as
actor `rule:NAME`, all or nothing (the registry's savepoint); a refusal changes nothing of
that rule, the others still run, and the admins hear of it at most once an hour per rule.

Time rules. A time rule is armed by the latest event of its `since` kind; its due time
(`after` in its calendar's business time) is stored in `rule_due`, so the clock reads only
what fell due. At that time it fires if `when` still holds, else it is skipped with the
reason; a new `since` event re-arms it.

Exactly once: every firing, refusal and skip is a row of `rule_firing`, keyed by rule,
ticket and what armed it (the triggering event, or the arming event for a time rule),
inserted with ON CONFLICT DO NOTHING in the transaction that applies the commands. Every
outcome is also an event of the ticket, with actor `rule:NAME`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, func, select

from inboxd.agents import notify, replies
from inboxd.agents.operations import desk_options
from inboxd.models import Agent, ClockState, Event, Message, RuleDue, RuleFiring, Ticket
from inboxd.runtime import Runtime
from inboxd.tickets.blocks import Actor
from inboxd.tickets.commands import run_block
from inboxd.tickets.store import insert_once, record_event
from inboxd.workflow import sla_clock
from inboxd.workflow.conditions import Facts
from inboxd.workflow.rules import MAX_DEPTH, Rule, event_names, load_rules
from inboxd.workflow.ticket_facts import facts_for

log = logging.getLogger("inboxd.rules")

REFUSAL_MAIL_EVERY = timedelta(hours=1)


@dataclass
class RuleRun:
    """What one pass did: firings (rule, ticket), and the tickets whose state changed."""

    fired: list[tuple[str, int]] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)


def event_facts(session: Session, ticket: Ticket, event: Event | None, now: datetime) -> Facts:
    """The ticket's facts, plus `text`, `from`, `to`, `cc` of the event's message."""
    message = session.get(Message, event.message_pk) if event and event.message_pk else None
    return with_message(facts_for(session, ticket, now), message)


def with_message(facts: Facts, message: Message | None) -> Facts:
    if message is None:
        return facts
    values = {**facts.values, "text": message.text, "from": message.from_email}
    lists = {**facts.lists, "to": tuple(message.to), "cc": tuple(message.cc)}
    return Facts(values, lists, facts.created_at, facts.last_public_at, facts.now)


# -- event rules ---------------------------------------------------------------------------


def on_events(session: Session, rt: Runtime, events: list[Event], now: datetime) -> RuleRun:
    """Run the event rules for `events` (oldest first), each the root of its own chain."""
    rules = [r for r in load_rules(rt.config) if not r.is_time_rule]
    run = RuleRun()
    if not rules:
        return run
    for root in events:
        if root.actor.startswith("rule:"):
            continue  # made inside a chain, which has already run on it
        _chain(session, rt, rules, root, now, run)
    return run


def _chain(
    session: Session, rt: Runtime, rules: list[Rule], root: Event, now: datetime, run: RuleRun
) -> None:
    queue: list[tuple[Event, int]] = [(root, 0)]
    done: set[str] = set()
    while queue:
        event, depth = queue.pop(0)
        names = event_names(event.type, event.from_value, event.to_value)
        for rule in (r for r in rules if r.on in names):
            ticket = session.get(Ticket, event.ticket_id)
            if ticket is None or ticket.merged_into is not None:
                return
            if not rule.holds(event_facts(session, ticket, event, now)):
                continue
            key = f"event:{root.id}"
            if rule.name in done:
                _skip(session, ticket, rule, f"{key}:again", "already ran in this chain of events")
                continue
            if depth >= MAX_DEPTH:
                why = f"the chain of rules is deeper than {MAX_DEPTH}"
                _skip(session, ticket, rule, f"{key}:depth", why)
                log.warning("rules: chain from event %s stopped at depth %s", root.id, depth)
                continue
            made = _fire(session, rt, ticket, rule, key, now, run)
            if made is None:
                continue
            done.add(rule.name)
            queue.extend((e, depth + 1) for e in made)


# -- time rules ----------------------------------------------------------------------------


def arm(session: Session, rt: Runtime, ticket_ids: set[int]) -> None:
    """Store each time rule's due time for the tickets whose history changed."""
    rules = [r for r in load_rules(rt.config) if r.is_time_rule]
    if not rules or not ticket_ids:
        return
    ids = sorted(ticket_ids)
    events = session.exec(
        select(Event).where(col(Event.ticket_id).in_(ids)).order_by(col(Event.id))
    ).all()
    latest: dict[tuple[int, str], Event] = {}
    for event in events:
        for name in event_names(event.type, event.from_value, event.to_value):
            latest[(event.ticket_id, name)] = event
    stored = {
        (d.ticket_id, d.rule): d
        for d in session.exec(select(RuleDue).where(col(RuleDue.ticket_id).in_(ids)))
    }
    # Armings already fired or skipped: never armed again (a time rule fires once per arming).
    spent = set(
        session.exec(
            select(RuleFiring.ticket_id, RuleFiring.rule, RuleFiring.key).where(
                col(RuleFiring.ticket_id).in_(ids), col(RuleFiring.key).startswith("time:")
            )
        ).all()
    )
    for ticket_id in ids:
        for rule in rules:
            since = latest.get((ticket_id, rule.since))
            row = stored.get((ticket_id, rule.name))
            if since is None or since.id is None:
                if row is not None:
                    session.delete(row)
                continue
            if row is not None and row.since_event_id == since.id:
                continue  # armed by the same event: nothing new
            if (ticket_id, rule.name, f"time:{since.id}") in spent:
                if row is not None:
                    session.delete(row)
                continue
            due = rule.due(_aware(since.at))
            if row is None:  # another daemon may insert it at the same moment
                insert_once(session, RuleDue, {
                    "ticket_id": ticket_id, "rule": rule.name,
                    "since_event_id": since.id, "due_at": due,
                })  # fmt: skip
            else:
                row.since_event_id, row.due_at = since.id, due
    session.flush()


def fire_due(session: Session, rt: Runtime, now: datetime) -> RuleRun:
    """Fire (or skip, with the reason) every time rule that fell due."""
    run = RuleRun()
    rules = {r.name: r for r in load_rules(rt.config) if r.is_time_rule}
    if not rules:
        return run
    due = session.exec(
        select(RuleDue).where(col(RuleDue.due_at) <= now, col(RuleDue.rule).in_(list(rules)))
    ).all()
    for row in due:
        rule = rules.get(row.rule)
        ticket = session.get(Ticket, row.ticket_id)
        session.delete(row)
        if rule is None or ticket is None or ticket.merged_into is not None:
            continue
        key = f"time:{row.since_event_id}"
        if not rule.holds(event_facts(session, ticket, None, now)):
            _skip(session, ticket, rule, key, "its conditions no longer hold")
            continue
        _fire(session, rt, ticket, rule, key, now, run)
    session.flush()
    return run


# -- one firing -----------------------------------------------------------------------------


def _fire(
    session: Session, rt: Runtime, ticket: Ticket, rule: Rule, key: str, now: datetime, run: RuleRun
) -> list[Event] | None:
    """Apply the rule's commands (all or nothing) and its text; the events it made, or
    None when it did not run (another daemon had it, max_runs, a refusal)."""
    assert ticket.id is not None
    if rule.max_runs and _runs(session, rule, ticket.id) >= rule.max_runs:
        _skip(session, ticket, rule, key, f"it ran {rule.max_runs} times on this ticket (max_runs)")
        return None
    if not _claim(session, rule, ticket.id, key, "fired"):
        return None
    actor = Actor(email=rule.actor, agent_id=None, role="admin")
    calls = list(rule.calls)
    result = run_block(
        session,
        ticket,
        actor,
        calls,
        source="rule",
        **desk_options(rt),
    )
    if not result.ok:
        _outcome(session, rule, ticket.id, key, "refused")
        why = "; ".join(f"{line}: {error}" for line, error in result.errors)
        record_event(session, ticket, rule.actor, "rule_refused", None, why[:500])
        _tell_admins(session, rt, ticket, rule, why, now)
        return None
    record_event(session, ticket, rule.actor, "rule_fired", None, rule.name, block=result.block_id)
    notify.after_commands(session, rt, ticket, rule.actor, result.block_id)
    text = "\n\n".join(t for t in (result.inserted_text, rule.text) if t.strip())
    if text.strip() and not result.note:
        replies.send_automatic(session, rt, ticket, text, rule.actor)
    session.flush()
    run.fired.append((rule.name, ticket.id))
    run.touched.add(ticket.id)
    made = session.exec(
        select(Event).where(Event.block == result.block_id, Event.type != "rule_fired")
    ).all()
    return list(made)


def _runs(session: Session, rule: Rule, ticket_id: int) -> int:
    query = (
        select(func.count())
        .select_from(RuleFiring)
        .where(
            RuleFiring.rule == rule.name,
            RuleFiring.ticket_id == ticket_id,
            RuleFiring.outcome == "fired",
        )
    )
    return int(session.exec(query).one())


def _claim(session: Session, rule: Rule, ticket_id: int, key: str, outcome: str) -> bool:
    row = {
        "rule": rule.name,
        "ticket_id": ticket_id,
        "key": key,
        "outcome": outcome,
        "at": datetime.now(UTC),
    }
    return insert_once(session, RuleFiring, row)


def _outcome(session: Session, rule: Rule, ticket_id: int, key: str, outcome: str) -> None:
    row = session.get(RuleFiring, (rule.name, ticket_id, key))
    if row is not None:
        row.outcome = outcome


def _skip(session: Session, ticket: Ticket, rule: Rule, key: str, why: str) -> None:
    """A skip is recorded once per rule and trigger, as an event with the reason."""
    assert ticket.id is not None
    if _claim(session, rule, ticket.id, key, "skipped"):
        record_event(session, ticket, rule.actor, "rule_skipped", None, why)


def _tell_admins(
    session: Session, rt: Runtime, ticket: Ticket, rule: Rule, why: str, now: datetime
) -> None:
    """At most one mail per rule per hour about its refused commands."""
    key = f"rule.refused_mail.{rule.name}"[:64]
    row = session.get(ClockState, key)
    if (
        row is not None
        and row.value
        and now - datetime.fromisoformat(row.value) < REFUSAL_MAIL_EVERY
    ):
        return
    sla_clock.set_state(session, key, now.isoformat())
    admins = session.exec(select(Agent).where(Agent.active, Agent.role == "admin")).all()
    for admin in admins:
        notify.mail_agent(
            session,
            rt,
            ticket,
            admin.email,
            f"Rule {rule.name!r} was refused",
            "email/rule_refused.txt.j2",
            {"rule": rule.name, "why": why, "ticket_id": ticket.id},
            "receipt:rule",
        )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
