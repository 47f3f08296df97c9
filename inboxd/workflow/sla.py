"""sla.py: where each service-level target of a ticket stands (SPEC §10.2). Pure.

Everything is derived from the ticket's history (its Timeline: the event log), the policy
that applies now and a given "now", so a restart, a calendar edit or a second daemon
computes the same deadlines. The ledger of what was already fired lives in sla_clock.py.

Targets: `first_reply` (created → first public agent reply; for a call an agent logged, from
the customer's first message, or none until they write), `next_reply` (the first customer
message after a public reply → the next public reply; one cycle per wait) and
`resolution` (created → solved or closed, paused in `pause_on`). Reply clocks never pause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from inboxd.config import Config, SlaEntry
from inboxd.errors import ConfigError
from inboxd.workflow.calendars import Calendar, Gap, parse_calendar
from inboxd.workflow.conditions import Condition, Facts, all_hold, parse_all
from inboxd.workflow.timelines import RESOLVED, Timeline

TARGETS = ("first_reply", "next_reply", "resolution")
LABELS = {"first_reply": "first reply", "next_reply": "next reply", "resolution": "resolution"}


@dataclass(frozen=True)
class Policy:
    name: str
    conditions: tuple[Condition, ...]
    calendar: Calendar | None  # None: calendar time, 24x7
    limits: dict[str, timedelta]  # only the targets the policy sets
    pause_on: frozenset[str]
    warn_before: timedelta | None

    @property
    def zone(self) -> str:
        return self.calendar.zone.key if self.calendar else "UTC"

    def add(self, start: datetime, amount: timedelta) -> datetime:
        return self.calendar.add(start, amount) if self.calendar else start + amount

    def between(self, start: datetime, end: datetime) -> timedelta:
        if end <= start:
            return timedelta()
        return self.calendar.between(start, end) if self.calendar else end - start


@dataclass(frozen=True)
class ServiceLevels:
    """The configured calendars and policies, checked once."""

    calendars: dict[str, Calendar]
    policies: tuple[Policy, ...]

    def choose(self, facts: Facts) -> Policy | None:
        """The first policy whose conditions hold (SPEC §10.2)."""
        return next((p for p in self.policies if all_hold(p.conditions, facts)), None)


T = TypeVar("T")


def once_per_config(build: Callable[[Config], T]) -> Callable[[Config], T]:
    """`build(cfg)` computed once per Config object (configs are frozen, not hashable)."""
    done: dict[int, tuple[Config, T]] = {}

    def cached(cfg: Config) -> T:
        hit = done.get(id(cfg))
        if hit is None or hit[0] is not cfg:
            hit = done[id(cfg)] = (cfg, build(cfg))
        return hit[1]

    return cached


@once_per_config
def service_levels(cfg: Config) -> ServiceLevels:
    """`[[calendars]]` and `[[sla]]` of a config, built once per config; ConfigError names
    the entry and key that are wrong."""
    calendars: dict[str, Calendar] = {}
    for entry in cfg.calendars:
        if entry.name in calendars:
            raise ConfigError(f"{cfg.source}: [[calendars]] {entry.name!r} is defined twice")
        try:
            calendars[entry.name] = parse_calendar(
                entry.name,
                entry.timezone,
                dict(entry.hours),
                entry.holidays,
                entry.working_days,
                entry.holidays_from,
            )
        except ValueError as exc:
            raise ConfigError(f"{cfg.source}: [[calendars]] {entry.name!r}: {exc}") from None
    policies = tuple(_policy(cfg, entry, calendars) for entry in cfg.sla)
    names = [p.name for p in policies]
    if dup := next((n for n in names if names.count(n) > 1), None):
        raise ConfigError(f"{cfg.source}: [[sla]] {dup!r} is defined twice")
    return ServiceLevels(calendars, policies)


def _policy(cfg: Config, entry: SlaEntry, calendars: dict[str, Calendar]) -> Policy:
    where = f"{cfg.source}: [[sla]] {entry.name!r}"
    if entry.calendar and entry.calendar not in calendars:
        known = ", ".join(calendars) or "none is configured"
        raise ConfigError(f"{where}: calendar = {entry.calendar!r}: no such calendar ({known})")
    try:
        conditions = parse_all(entry.when)
    except ValueError as exc:
        raise ConfigError(f"{where}: when: {exc}") from None
    limits = {t: timedelta(minutes=m) for t in TARGETS if (m := entry.minutes(t))}
    if not limits:
        raise ConfigError(f"{where}: sets no target (first_reply, next_reply or resolution)")
    warn = entry.minutes("warn_before")
    return Policy(
        name=entry.name,
        conditions=conditions,
        calendar=calendars.get(entry.calendar) if entry.calendar else None,
        limits=limits,
        pause_on=frozenset(entry.pause_on),
        warn_before=timedelta(minutes=warn) if warn else None,
    )


# -- where a target stands --------------------------------------------------------------


@dataclass(frozen=True)
class TargetState:
    """One clock of one target. `cycle` (when it started) tells next-reply waits apart."""

    target: str
    cycle: datetime
    limit: timedelta
    due_at: datetime | None  # None while paused
    warn_at: datetime | None
    used: timedelta
    state: str  # active | paused | achieved | breached
    achieved_at: datetime | None
    breached_at: datetime | None
    gaps: tuple[Gap, ...]

    @property
    def left(self) -> timedelta:
        return self.limit - self.used

    @property
    def label(self) -> str:
        return LABELS[self.target]


def targets(
    policy: Policy, t: Timeline, now: datetime, *, explain: bool = False
) -> list[TargetState]:
    """Every clock of the ticket under `policy`, oldest first. `explain` adds the gaps."""
    if t.created_at is None:
        return []
    out: list[TargetState] = []
    # A logged call's reply clocks count from the customer's first message (SPEC §10.7).
    replies = t.counted_replies(sorted(at for at, _agent in t.replies if at <= now))
    first_start = t.first_reply_start()
    if "first_reply" in policy.limits and first_start is not None and first_start <= now:
        out.append(_reply_clock(policy, "first_reply", first_start, replies, now, explain))
    if "next_reply" in policy.limits:
        for start in _waits(t, replies, now):
            out.append(_reply_clock(policy, "next_reply", start, replies, now, explain))
    if "resolution" in policy.limits:
        out.append(_resolution_clock(policy, t, now, explain))
    return out


def _waits(t: Timeline, replies: list[datetime], now: datetime) -> Iterator[datetime]:
    """Each customer wait after a public reply: its first customer message."""
    if not replies:
        return
    waiting = False
    events = sorted(
        [(at, "reply") for at in replies]
        + [(at, "customer") for at in t.customer_messages if at <= now]
    )
    for at, kind in events:
        if kind == "reply":
            waiting = False
        elif not waiting and at > replies[0]:
            waiting = True
            yield at


def _reply_clock(
    policy: Policy,
    target: str,
    start: datetime,
    replies: list[datetime],
    now: datetime,
    explain: bool,
) -> TargetState:
    limit = policy.limits[target]
    achieved = next((r for r in replies if r >= start), None)
    due = policy.add(start, limit)
    end = min(achieved or now, now)
    used = policy.between(start, end)
    late = achieved > due if achieved is not None else now >= due
    breached = due if late else None
    state = "breached" if late else ("achieved" if achieved is not None else "active")
    warn = _warn_at(policy, start, limit)
    gaps = _gaps(policy, start, due) if explain else ()
    return TargetState(target, start, limit, due, warn, used, state, achieved, breached, gaps)


def _warn_at(policy: Policy, start: datetime, limit: timedelta) -> datetime | None:
    if policy.warn_before is None or policy.warn_before >= limit:
        return None
    return policy.add(start, limit - policy.warn_before)


def _gaps(policy: Policy, start: datetime, end: datetime) -> tuple[Gap, ...]:
    if policy.calendar is None or end <= start:
        return ()
    return tuple(policy.calendar.gaps(start, end))


def active_stretches(
    policy: Policy, t: Timeline, now: datetime
) -> tuple[list[tuple[datetime, datetime | None]], list[Gap], bool]:
    """The stretches in which the resolution clock runs (end None: still running), the
    pauses between them, and whether the ticket is resolved now."""
    assert t.created_at is not None
    stretches: list[tuple[datetime, datetime | None]] = []
    pauses: list[Gap] = []
    running_since: datetime | None = t.created_at
    paused_since: tuple[datetime, str] | None = None
    status = "new"
    for at, _old, new, _actor in t.statuses:
        if at > now:
            break
        status = new
        runs = status not in policy.pause_on and status not in RESOLVED
        if runs and running_since is None:
            running_since = at
            if paused_since is not None:
                pauses.append(Gap(paused_since[0], at, f"paused ({paused_since[1]})"))
                paused_since = None
        elif not runs and running_since is not None:
            stretches.append((running_since, at))
            running_since = None
            paused_since = (at, status) if status not in RESOLVED else None
    if running_since is not None:
        stretches.append((running_since, None))
    elif paused_since is not None:
        pauses.append(Gap(paused_since[0], now, f"paused ({paused_since[1]})"))
    return stretches, pauses, status in RESOLVED


def _resolution_clock(policy: Policy, t: Timeline, now: datetime, explain: bool) -> TargetState:
    assert t.created_at is not None
    limit = policy.limits["resolution"]
    stretches, pauses, resolved = active_stretches(policy, t, now)
    used = sum((policy.between(a, b or now) for a, b in stretches), timedelta())
    crossing = _crossing(policy, stretches, limit)
    warn = None
    if policy.warn_before is not None and policy.warn_before < limit:
        warn = _crossing(policy, stretches, limit - policy.warn_before)
    running = bool(stretches) and stretches[-1][1] is None
    breached_at = crossing if crossing is not None and crossing <= now else None
    if breached_at is not None:
        state = "breached"
    elif resolved:
        state = "achieved"
    else:
        state = "active" if running else "paused"
    due = crossing if running or breached_at else None
    achieved_at = t.statuses[-1][0] if resolved and t.statuses else None
    gaps: tuple[Gap, ...] = ()
    if explain:
        horizon = max(due or now, now)
        gaps = tuple(
            sorted((*_gaps(policy, t.created_at, horizon), *pauses), key=lambda g: g.start)
        )
    return TargetState(
        "resolution",
        t.created_at,
        limit,
        due,
        warn,
        used,
        state,
        achieved_at if state == "achieved" else None,
        breached_at,
        gaps,
    )


def _crossing(
    policy: Policy, stretches: list[tuple[datetime, datetime | None]], amount: timedelta
) -> datetime | None:
    """When `amount` of running time has gone by: inside a closed stretch, or ahead in
    the one still running; None if the clock stopped before."""
    used = timedelta()
    for start, end in stretches:
        if end is None:
            return policy.add(start, amount - used)
        span = policy.between(start, end)
        if used + span >= amount:
            return policy.add(start, amount - used)
        used += span
    return None


def next_due(states: Iterable[TargetState], now: datetime) -> tuple[datetime, str] | None:
    """The next instant the clock must look at this ticket, and what falls due then."""
    upcoming: list[tuple[datetime, str]] = []
    for s in states:
        if s.state != "active":
            continue
        if s.warn_at is not None and s.warn_at > now:
            upcoming.append((s.warn_at, f"warning:{s.target}"))
        if s.due_at is not None:
            upcoming.append((s.due_at, s.target))
    return min(upcoming) if upcoming else None
