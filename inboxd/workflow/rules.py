"""rules.py: business rules as data (SPEC §10.3) — what a rule listens to, what it checks,
the command tags it runs. Pure: parsing, validation and matching; the engine that runs
them against the event log is rule_engine.py.

A rule's `run` is command tags, checked at start-up against the one registry (an unknown
command or a bad value stops inboxd with the rule named), so rules need no action
language of their own and can do nothing an agent's reply could not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from inboxd.config import Config, RuleEntry, parse_duration
from inboxd.errors import ConfigError
from inboxd.mail.command_tags import CommandCall, extract_tags
from inboxd.tickets.blocks import CommandError
from inboxd.tickets.commands import resolve
from inboxd.workflow.calendars import Calendar
from inboxd.workflow.conditions import Condition, Facts, parse_all
from inboxd.workflow.sla import once_per_config, service_levels

MAX_DEPTH = 5  # a chain of rule firings stops here (SPEC §10.3)


@dataclass(frozen=True)
class Rule:
    name: str
    on: str  # event name ("" for a time rule)
    after: timedelta | None
    since: str
    calendar: Calendar | None
    when: tuple[Condition, ...]
    any: tuple[Condition, ...]
    calls: tuple[CommandCall, ...]
    text: str  # what `run` holds besides commands: sent to the customer
    max_runs: int

    @property
    def actor(self) -> str:
        return f"rule:{self.name}"

    @property
    def is_time_rule(self) -> bool:
        return self.after is not None

    def holds(self, facts: Facts) -> bool:
        """`when` all hold, and at least one of `any` if there are any."""
        if not all(c.holds(facts) for c in self.when):
            return False
        return not self.any or any(c.holds(facts) for c in self.any)

    def due(self, since_at: datetime) -> datetime:
        assert self.after is not None
        if self.calendar is None:
            return since_at + self.after
        return self.calendar.add(since_at, self.after)


@once_per_config
def load_rules(cfg: Config) -> tuple[Rule, ...]:
    """The config's rules, checked once; ConfigError names the rule, the key, the problem."""
    calendars = service_levels(cfg).calendars
    rules = []
    seen: set[str] = set()
    for entry in cfg.rules:
        if entry.name in seen:
            raise ConfigError(f"{cfg.source}: [[rules]] {entry.name!r} is defined twice")
        seen.add(entry.name)
        rules.append(_rule(cfg, entry, calendars))
    return tuple(rules)


def _rule(cfg: Config, entry: RuleEntry, calendars: dict[str, Calendar]) -> Rule:
    where = f"{cfg.source}: [[rules]] {entry.name!r}"
    if entry.calendar and entry.calendar not in calendars:
        known = ", ".join(calendars) or "none is configured"
        raise ConfigError(f"{where}: calendar = {entry.calendar!r}: no such calendar ({known})")
    try:
        when = parse_all(entry.when)
        any_ = parse_all(entry.any)
    except ValueError as exc:
        raise ConfigError(f"{where}: when/any: {exc}") from None
    calls, text = extract_tags(entry.run.strip() + "\n")
    if not calls and not text.strip():
        raise ConfigError(f"{where}: run is empty")
    for call in calls:
        try:
            resolve(call)
        except CommandError as exc:
            raise ConfigError(f"{where}: run: {call.line}: {exc}") from None
    return Rule(
        name=entry.name,
        on=entry.on,
        after=timedelta(minutes=parse_duration(entry.after)) if entry.after else None,
        since=entry.since,
        calendar=calendars.get(entry.calendar) if entry.calendar else None,
        when=when,
        any=any_,
        calls=tuple(calls),
        text=text.strip(),
        max_runs=entry.max_runs,
    )


def event_names(type_: str, old: str | None, new: str | None) -> tuple[str, ...]:
    """The `on`/`since` names an event of the log answers to (SPEC §10.3)."""
    if type_ == "created":
        return ("created",)
    if type_ == "message" and new == "customer":
        return ("customer-message",)
    if type_ == "reply":
        return ("agent-reply",)
    if type_ == "note":
        return ("note",)
    if type_ == "status" and new:
        return (f"status:{new}",)
    if type_ == "priority" and new:
        return (f"priority:{new}",)
    if type_ == "assignee" and new:
        return ("assigned",)
    if type_ == "sla_warning":
        return ("sla-warning",)
    if type_ == "sla_breach":
        return ("sla-breach",)
    if type_ == "csat":
        return ("csat",)
    return ()
