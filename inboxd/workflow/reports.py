"""reports.py: the service figures of SPEC §10.5, each with its definition.

Everything is computed from the event log up to the period's end (`timelines.py`), so a
period that has ended reports the same numbers after any later change: a ticket
reopened, moved or merged tomorrow changes tomorrow's events, never yesterday's.
Durations are medians and 90th percentiles, never means (one ticket left over a
holiday would dominate a mean), in calendar minutes and in business minutes of a
calendar when one is given.

The choices where the helpdesks we learned from disagree: a solve is a change into
solved or closed from an unresolved status (a merge is not a solve); one-touch counts
solved tickets with exactly one public agent reply, and zero-reply solves apart
(Zendesk counts them as one-touch); a public reply is a mail that reached the
customer, never a note (Freshdesk counts public notes); the backlog is a count of
tickets at the period's end, so it cannot go negative (Zammad's could).

Reads the database; writes nothing. Pure apart from `build_report`'s one query.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from inboxd.config import Config
from inboxd.models import Agent
from inboxd.workflow.periods import (
    BusinessMinutes,
    Period,
    business_clock,
    calendar_name,
    period_from,
    report_zone,
)
from inboxd.workflow.stats import distribution
from inboxd.workflow.timelines import OPEN_STATUSES, RESOLVED, Timeline, read_timelines

DEFINITIONS = {
    "created": "Tickets opened in the period.",
    "solved": (
        "Tickets solved in the period: a change into solved, or into closed from an"
        " unresolved status (each ticket counted once, however often it was solved)."
    ),
    "reopened": "Changes in the period from solved or closed back to an open status.",
    "backlog": (
        "Tickets not solved, closed, merged or marked spam at the end of the period,"
        " by their age then."
    ),
    "first_reply": (
        "For tickets opened in the period (and not merged into another): from opening to"
        " the first public agent reply (a mail that reached the customer: relayed, web, API"
        " or CLI; never a note or an automatic mail). Tickets with no such reply by the"
        " period's end are counted as unanswered. A ticket an agent opened on a customer's"
        " behalf (a logged call) counts from the customer's first message to the next public"
        " reply, and not at all while the customer has not written."
    ),
    "next_reply": (
        "For customer messages in the period that arrived after an agent had replied:"
        " from the first such message to the next public agent reply. Later messages"
        " before that reply wait on the same clock."
    ),
    "full_resolution": (
        "For tickets opened in the period and solved by its end: from opening to the last solve."
    ),
    "one_touch": (
        "Of the tickets solved in the period, those solved with exactly one public agent"
        " reply; tickets solved with no reply at all are counted apart (zero_reply)."
    ),
    "requester_wait": (
        "For tickets solved in the period: time spent waiting on the team (new, open,"
        " on-hold) from opening to the last solve."
    ),
    "agent_wait": (
        "For tickets solved in the period: time spent waiting on the customer (pending)"
        " from opening to the last solve."
    ),
    "sla": (
        "Per SLA target, outcomes recorded in the period: achieved, breached, and targets"
        " still active at its end; attainment = achieved / (achieved + breached)."
    ),
    "csat": (
        "Ratings cast in the period (a re-rating replaces the earlier one): good / (good +"
        " bad), with 1-2 bad and 4-5 good on the five-point scale; responses per survey"
        " sent; votes set aside as suspect (link scanners) are counted apart."
    ),
    "self_service": (
        "Tickets whose acknowledgement suggested articles in the period; of those, solved"
        " by the customer's #solved; of those, not reopened within 7 days (deflected)."
    ),
    "by": (
        "Per agent (public replies, solves, first replies made, ratings credited to the"
        " agent who last replied in public before the vote), or per team, tag or channel"
        " of each ticket at the period's end."
    ),
}
AGE_BUCKETS = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), (">30d", None))
GOOD = {"good", "4", "5"}
BAD = {"bad", "1", "2"}


def run_report(
    session: Session,
    cfg: Config,
    now: datetime,
    *,
    since: str | None = None,
    from_date: date | None = None,
    to_date: date | None = None,
    by: str | None = None,
    calendar: str | None = None,
) -> dict[str, Any]:
    """The report as the CLI, the API and the reports page ask for it: the period and
    the calendar by name. ValueError says what was wrong with the request."""
    if since and (from_date or to_date):
        raise ValueError("give --since or --from/--to, not both")
    period = period_from(
        now,
        since=since,
        from_date=from_date,
        to_date=to_date,
        zone=report_zone(cfg, calendar),
    )
    return build_report(
        session,
        period,
        by=by,
        business=business_clock(cfg, calendar),
        calendar=calendar_name(cfg, calendar),
    )


def build_report(
    session: Session,
    period: Period,
    *,
    by: str | None = None,
    business: BusinessMinutes | None = None,
    calendar: str | None = None,
) -> dict[str, Any]:
    """The report object of SPEC §10.5 for `period`, grouped `by` agent/team/tag/channel."""
    timelines = list(read_timelines(session, period.end))
    report = compute(timelines, period, business)
    report["calendar"] = calendar
    if by is not None:
        agents = set(session.exec(select(Agent.email)).all())
        report["by"] = compute_by(timelines, period, by, business, agents=agents)
    return report


def compute(
    timelines: Iterable[Timeline], period: Period, business: BusinessMinutes | None = None
) -> dict[str, Any]:
    """Every figure over `timelines` (pure: the figures from the events alone)."""
    f = _Figures(period, business)
    for t in timelines:
        f.add(t)
    return {
        "from": _iso(period.start),
        "to": _iso(period.end),
        "figures": f.result(),
        "series": f.series(),
    }


def compute_by(
    timelines: Iterable[Timeline],
    period: Period,
    by: str,
    business: BusinessMinutes | None,
    *,
    agents: set[str] | None = None,
) -> dict[str, Any]:
    """Per-group figures: replies, solved, first_reply and csat of each group (`agents`:
    who counts as an agent when grouping by agent; a customer's own solve is nobody's)."""
    if by not in ("agent", "team", "tag", "channel"):
        raise ValueError(f"--by must be agent, team, tag or channel, not {by!r}")
    groups: dict[str, _Figures] = defaultdict(lambda: _Figures(period, business))
    for t in timelines:
        if by == "agent":
            for agent in _agents_of(t, period, agents):
                groups[agent].add(t, agent=agent)
            continue
        keys = {"team": [t.team or "(none)"], "tag": sorted(t.tags) or ["(none)"]}
        for key in keys.get(by, [t.channel]):
            groups[key].add(t)
    result = {}
    for key in sorted(groups):
        figures = groups[key].result()
        result[key] = {
            "replies": figures["replies"]["value"],
            "solved": figures["solved"]["value"],
            "first_reply": figures["first_reply"],
            "csat": figures["csat"],
        }
    return result


def _agents_of(t: Timeline, period: Period, agents: set[str] | None) -> set[str]:
    """Agents who replied, solved or were rated on this ticket in the period."""
    inside = period.start, period.end
    people = {a for at, a in t.replies if _within(at, *inside)}
    people |= {a for at, a in t.solves() if _within(at, *inside)}
    people |= {a for at, _r, _p in t.ratings if (a := _credited(t, at))}
    return people if agents is None else people & agents


class _Figures:
    """Accumulates the figures ticket by ticket (optionally for one agent's share)."""

    def __init__(self, period: Period, business: BusinessMinutes | None) -> None:
        self.p = period
        self.zone = ZoneInfo(period.zone)
        self.business = business
        self.count: Counter[str] = Counter()
        self.backlog: Counter[str] = Counter()
        self.durations: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
        self.unanswered: Counter[str] = Counter()
        self.sla: dict[str, Counter[str]] = defaultdict(Counter)
        self.daily: dict[str, Counter[date]] = defaultdict(Counter)

    def _inside(self, at: datetime) -> bool:
        return _within(at, self.p.start, self.p.end)

    def _span(self, name: str, start: datetime, end: datetime) -> None:
        minutes = (end - start).total_seconds() / 60
        work = self.business(start, end) if self.business else None
        self.durations[name].append((minutes, work))

    def _day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def add(self, t: Timeline, agent: str | None = None) -> None:
        if t.created_at is None:
            return
        end = self.p.end
        replies = [r for r in t.replies if r[0] < end]
        if agent is not None:
            self.count["replies"] += sum(1 for at, a in replies if a == agent and self._inside(at))
        else:
            self.count["replies"] += sum(1 for at, _ in replies if self._inside(at))
        created_inside = self._inside(t.created_at)
        if created_inside and agent is None:
            self.count["created"] += 1
            self.daily["created"][self._day(t.created_at)] += 1
        solves = [(at, a) for at, a in t.solves() if at < end]
        solves_inside = [(at, a) for at, a in solves if self._inside(at)]
        if agent is not None:
            solves_inside = [(at, a) for at, a in solves_inside if a == agent]
        if solves_inside:
            self.count["solved"] += 1
            self.daily["solved"][self._day(solves_inside[-1][0])] += 1
            self._solved_ticket(t, solves_inside[-1][0], replies)
        if agent is None:
            self.count["reopened"] += sum(1 for at in t.reopens() if self._inside(at))
            self._backlog(t)
        # A logged call counts from the customer's first message, or not at all (§10.7).
        start = t.first_reply_start()
        counted = set(t.counted_replies([at for at, _ in replies]))
        timed = [r for r in replies if r[0] in counted]
        first = timed[0] if timed else None
        # A ticket merged away lives on in its target; it has no reply time of its own.
        measured = created_inside and t.merged_at is None and start is not None and start < end
        if measured and (agent is None or (first is not None and first[1] == agent)):
            assert start is not None
            if first is not None:
                self._span("first_reply", start, first[0])
            else:
                self.unanswered["first_reply"] += 1
        if agent is None:
            self._next_replies(t, timed)
            last_solve = solves[-1][0] if solves else None
            if measured and last_solve is not None and t.status_at(end) in RESOLVED:
                self._span("full_resolution", t.created_at, last_solve)
            self._self_service(t)
            self._sla(t)
        self._csat(t, agent)

    def _solved_ticket(self, t: Timeline, solved_at: datetime, replies: list[Any]) -> None:
        touches = sum(1 for at, _ in replies if at <= solved_at)
        if touches == 1:
            self.count["one_touch"] += 1
        elif touches == 0:
            self.count["zero_reply"] += 1
        waits = _waits(t, solved_at)
        for name, spans in waits.items():
            minutes = sum((b - a).total_seconds() / 60 for a, b in spans)
            work = sum(self.business(a, b) for a, b in spans) if self.business else None
            self.durations[name].append((minutes, work))

    def _backlog(self, t: Timeline) -> None:
        assert t.created_at is not None
        end = self.p.end
        if t.merged_at is not None or t.status_at(end) not in OPEN_STATUSES:
            return
        age_days = (end - t.created_at).total_seconds() / 86400
        for label, limit in AGE_BUCKETS:
            if limit is None or age_days < limit:
                self.backlog[label] += 1
                return

    def _next_replies(self, t: Timeline, replies: list[tuple[datetime, str]]) -> None:
        if not replies:
            return
        waiting_since: datetime | None = None
        events = sorted(
            [(at, "customer") for at in t.customer_messages if at < self.p.end]
            + [(at, "reply") for at, _ in replies]
        )
        answered_once = False
        for at, what in events:
            if what == "reply":
                if waiting_since is not None and self._inside(waiting_since):
                    self._span("next_reply", waiting_since, at)
                waiting_since, answered_once = None, True
            elif answered_once and waiting_since is None:
                waiting_since = at
        if waiting_since is not None and self._inside(waiting_since):
            self.unanswered["next_reply"] += 1

    def _self_service(self, t: Timeline) -> None:
        if t.suggested_at is None or not self._inside(t.suggested_at):
            return
        self.count["suggested"] += 1
        solved = [at for at in t.self_solved if at < self.p.end]
        if not solved:
            return
        self.count["self_solved"] += 1
        week = solved[0] + timedelta(days=7)
        if not any(solved[0] < at <= week and at < self.p.end for at in t.reopens()):
            self.count["deflected"] += 1

    def _sla(self, t: Timeline) -> None:
        for at, target in t.sla_achieved:
            if self._inside(at):
                self.sla[target]["achieved"] += 1
        for at, target in t.sla_breaches:
            if self._inside(at):
                self.sla[target]["breached"] += 1

    def _csat(self, t: Timeline, agent: str | None) -> None:
        vote = None
        for at, rating, _previous in t.ratings:
            if self._inside(at) and (agent is None or _credited(t, at) == agent):
                vote = rating  # a re-rating replaces the earlier vote
        if vote is not None:
            kind = "csat_good" if vote in GOOD else "csat_bad" if vote in BAD else "csat_neutral"
            self.count[kind] += 1
            self.count["csat_responses"] += 1
        if agent is None:
            self.count["csat_surveys"] += sum(1 for at in t.surveys if self._inside(at))
            self.count["csat_suspect"] += sum(1 for at in t.suspect if self._inside(at))

    def result(self) -> dict[str, Any]:
        c = self.count

        def figure(name: str, **values: Any) -> dict[str, Any]:
            return {**values, "definition": DEFINITIONS[name]}

        def timing(name: str) -> dict[str, Any]:
            values = self.durations.get(name, [])
            minutes = distribution([m for m, _ in values])
            work = distribution([w for _, w in values if w is not None])
            out: dict[str, Any] = {
                "count": len(values),
                "median_minutes": minutes.median,
                "p90_minutes": minutes.p90,
                "business_median_minutes": work.median if self.business else None,
                "business_p90_minutes": work.p90 if self.business else None,
            }
            if name in ("first_reply", "next_reply"):
                out["unanswered"] = self.unanswered[name]
            return figure(name, **out)

        good, bad = c["csat_good"], c["csat_bad"]
        sla = {
            target: {
                "achieved": n["achieved"],
                "breached": n["breached"],
                "attainment": _ratio(n["achieved"], n["achieved"] + n["breached"]),
            }
            for target, n in sorted(self.sla.items())
        }
        return {
            "created": figure("created", value=c["created"]),
            "solved": figure("solved", value=c["solved"]),
            "reopened": figure("reopened", value=c["reopened"]),
            "replies": {"value": c["replies"], "definition": "Public agent replies in the period."},
            "backlog": figure(
                "backlog",
                value=sum(self.backlog.values()),
                by_age={label: self.backlog[label] for label, _ in AGE_BUCKETS},
            ),
            "first_reply": timing("first_reply"),
            "next_reply": timing("next_reply"),
            "full_resolution": timing("full_resolution"),
            "requester_wait": timing("requester_wait"),
            "agent_wait": timing("agent_wait"),
            "one_touch": figure(
                "one_touch", value=c["one_touch"], of=c["solved"], zero_reply=c["zero_reply"]
            ),
            "sla": {**sla, "definition": DEFINITIONS["sla"]},
            "csat": figure(
                "csat",
                good=good,
                bad=bad,
                score=_ratio(good, good + bad),
                responses=c["csat_responses"],
                surveys=c["csat_surveys"],
                response_rate=_ratio(c["csat_responses"], c["csat_surveys"]),
                suspect=c["csat_suspect"],
            ),
            "self_service": figure(
                "self_service",
                suggested=c["suggested"],
                solved=c["self_solved"],
                deflected=c["deflected"],
            ),
        }

    def series(self) -> dict[str, Any]:
        """Created and solved per day of the period, in its zone (for the charts)."""
        zone = self.zone
        day, last = self.p.start.astimezone(zone).date(), self.p.end.astimezone(zone).date()
        if self.p.end.astimezone(zone).timetz() == time(tzinfo=zone):
            last -= timedelta(days=1)
        days: list[date] = []
        while day <= last and len(days) < 400:
            days.append(day)
            day += timedelta(days=1)
        return {
            "days": [d.isoformat() for d in days],
            "created": [self.daily["created"][d] for d in days],
            "solved": [self.daily["solved"][d] for d in days],
            "first_reply_minutes": [m for m, _ in self.durations.get("first_reply", [])],
            "full_resolution_minutes": [m for m, _ in self.durations.get("full_resolution", [])],
        }


def _waits(t: Timeline, until: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    """The spans from opening to `until` spent waiting on the team and on the customer."""
    assert t.created_at is not None
    spans: dict[str, list[tuple[datetime, datetime]]] = {"requester_wait": [], "agent_wait": []}
    status, since = "new", t.created_at
    for at, _old, new, _actor in [*t.statuses, (until, "", "", "")]:
        at = min(at, until)
        if at > since:
            if status in ("new", "open", "on-hold"):
                spans["requester_wait"].append((since, at))
            elif status == "pending":
                spans["agent_wait"].append((since, at))
        status, since = new, max(since, at)
        if at >= until:
            break
    return spans


def _credited(t: Timeline, vote_at: datetime) -> str | None:
    """The agent who last replied in public before a vote (SPEC §10.4)."""
    before = [a for at, a in t.replies if at <= vote_at]
    return before[-1] if before else None


def _within(at: datetime, start: datetime, end: datetime) -> bool:
    return start <= at < end


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _iso(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
