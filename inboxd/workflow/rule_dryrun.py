"""rule_dryrun.py: `inboxd rules test` — what the rules would do, changing nothing.

Over real tickets and their events: for each event in the window, the event rules whose
`on` it answers to and whose conditions hold on the ticket as it is now; for each time
rule, its arming, due time and whether it would fire. Each rule's commands are parsed
against the ticket (an unknown agent or team shows up as a refusal) but never applied:
nothing here writes, so the database is left exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from inboxd.models import Event, Message, Ticket
from inboxd.tickets.blocks import Actor, Block, CommandError, DeskOptions
from inboxd.tickets.commands import resolve
from inboxd.workflow.conditions import Facts
from inboxd.workflow.rule_engine import with_message
from inboxd.workflow.rules import Rule, event_names
from inboxd.workflow.ticket_facts import facts_for_many


@dataclass(frozen=True)
class Would:
    rule: str
    ticket_id: int
    trigger: str  # "event 123 (status:pending)" or "due 2026-12-01T10:00Z (armed by event 99)"
    outcome: str  # "run", "skip: ..." or "refused: ..."
    commands: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "ticket": self.ticket_id,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "commands": list(self.commands),
        }


def dry_run(
    session: Session,
    rules: tuple[Rule, ...],
    now: datetime,
    since: datetime,
    ticket_id: int | None = None,
    *,
    desk: DeskOptions | None = None,
) -> list[Would]:
    """What the rules would do for the events since `since` (and the time rules armed).
    `desk` (operations.desk_options) checks a rule's commands as the real run would:
    its `#macro` against the admin's macros, its `#team` against the configured teams."""
    query = select(Event).where(col(Event.at) >= since).order_by(col(Event.id))
    if ticket_id is not None:
        query = query.where(Event.ticket_id == ticket_id)
    events = [e for e in session.exec(query) if not e.actor.startswith("rule:")]
    facts = _Facts(session, now, {e.ticket_id for e in events})
    facts.desk = desk or DeskOptions(macros_dir="", kb=None, teams=(), support=None)
    out: list[Would] = []
    for event in events:
        names = event_names(event.type, event.from_value, event.to_value)
        for rule in (r for r in rules if not r.is_time_rule and r.on in names):
            ticket = facts.ticket(event.ticket_id)
            if ticket is None or not rule.holds(facts.of(event)):
                continue
            trigger = f"event {event.id} ({rule.on}) at {_iso(event.at)}"
            out.append(_would(facts, ticket, rule, trigger))
    for rule in (r for r in rules if r.is_time_rule):
        out.extend(_time_rule(session, facts, rule, now, events))
    return out


class _Facts:
    """The facts of every ticket concerned, read in batches once, and the messages of
    the events whose rules look at a message (text, from, to, cc)."""

    def __init__(self, session: Session, now: datetime, ticket_ids: set[int]) -> None:
        self.session = session
        self.desk = DeskOptions(macros_dir="", kb=None, teams=(), support=None)
        self.tickets: dict[int, Ticket] = {}
        self.base: dict[int, Facts] = {}
        ids = sorted(ticket_ids)
        for i in range(0, len(ids), 500):
            chunk = [
                t
                for t in session.exec(select(Ticket).where(col(Ticket.id).in_(ids[i : i + 500])))
                if t.merged_into is None
            ]
            self.tickets.update((t.id, t) for t in chunk if t.id is not None)
            self.base.update(facts_for_many(session, chunk, now))

    def ticket(self, ticket_id: int) -> Ticket | None:
        return self.tickets.get(ticket_id)

    def of(self, event: Event | None, ticket_id: int | None = None) -> Facts:
        base = self.base[event.ticket_id if event else ticket_id or 0]
        message = (
            self.session.get(Message, event.message_pk) if event and event.message_pk else None
        )
        return with_message(base, message)


def _time_rule(
    session: Session, facts: _Facts, rule: Rule, now: datetime, events: list[Event]
) -> list[Would]:
    latest: dict[int, Event] = {}
    for event in events:
        if rule.since in event_names(event.type, event.from_value, event.to_value):
            latest[event.ticket_id] = event
    out = []
    for ticket_id, armed in sorted(latest.items()):
        ticket = facts.ticket(ticket_id)
        if ticket is None:
            continue
        due = rule.due(_aware(armed.at))
        trigger = f"due {_iso(due)} (armed by event {armed.id}, {rule.since})"
        if due > now:
            out.append(Would(rule.name, ticket_id, trigger, "waiting", ()))
        elif not rule.holds(facts.of(None, ticket_id)):
            out.append(
                Would(rule.name, ticket_id, trigger, "skip: its conditions no longer hold", ())
            )
        else:
            out.append(_would(facts, ticket, rule, trigger))
    return out


def _would(facts: _Facts, ticket: Ticket, rule: Rule, trigger: str) -> Would:
    """Parse the rule's commands against the ticket, as run_block would before applying."""
    assert ticket.id is not None
    actor = Actor(email=rule.actor, role="admin")
    block = Block(facts.session, ticket, actor, "rule", **facts.desk)
    errors = []
    for call in rule.calls:
        try:
            command, args = resolve(call)
            command.parse(block, args)
        except CommandError as exc:
            errors.append(f"{call.line}: {exc}")
    lines = tuple(c.line for c in rule.calls) + (
        (f"(text to the customer: {len(rule.text)} characters)",) if rule.text else ()
    )
    outcome = "refused: " + "; ".join(errors) if errors else "run"
    return Would(rule.name, ticket.id, trigger, outcome, lines)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _iso(at: datetime) -> str:
    return _aware(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
