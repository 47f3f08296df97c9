"""audience.py: who hears about what happened to a ticket (SPEC §10.9). Pure: no database.

One decision for every notification inboxd sends agents: a new ticket, a customer's
reply, an agent's reply or note, an assignment, a `#due` that came, an SLA warning or
breach, a bad rating. notify.py turns the database into the plain facts below, calls
`audience()`, and mails whom it names (one mail per agent per action: notify.py merges).

Mail an agent asked for by acting (receipts, command errors, `#help`, `#sla`) is no
notification and is not decided here: it always goes to that agent.

Issue 16: three agents on the old rule ("everyone hears of everything unassigned") got 58
mails for 17 customer mails.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PREFERENCES = ("all", "team", "assigned", "none")
EVENTS = (
    "new",  # a customer opened a ticket
    "customer",  # a customer wrote on a ticket
    "reply",  # an agent's public reply went out (a copy for the others)
    "note",  # an agent added an internal note
    "assign",  # the ticket was assigned to someone
    "team",  # the ticket was moved to a team's queue (by an agent or a rule)
    "due",  # a `#due` time came and the ticket reopened
    "sla-warning",
    "sla-breach",
    "csat-bad",  # the customer rated the ticket bad (1-2 of 5)
)


@dataclass(frozen=True)
class Reader:
    """An active agent as the decision sees them."""

    email: str
    notify: str = "all"  # PREFERENCES
    role: str = "agent"
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TicketFacts:
    """What the decision needs to know of the ticket."""

    assignee: str | None = None
    team: str | None = None
    # Agents who wrote on it (replies, notes); the assignee follows it too.
    followers: frozenset[str] = frozenset()
    lead: str | None = None  # the lead of the ticket's team ([[teams]] lead)


def _queue(ticket: TicketFacts, readers: list[Reader]) -> list[Reader]:
    """Who watches the queue the ticket sits in: its team's agents when it has a team
    somebody works in; else everyone who wants every ticket. `team` means "my team's
    tickets only", so a ticket of no team (or of a team nobody works in) is not theirs."""
    if ticket.team and any(ticket.team in r.teams for r in readers):
        return [r for r in readers if ticket.team in r.teams and r.notify in ("all", "team")]
    return [r for r in readers if r.notify == "all"]


def _assignee(ticket: TicketFacts, readers: list[Reader]) -> list[Reader]:
    return [r for r in readers if r.email == ticket.assignee and r.notify != "none"]


def _followers(ticket: TicketFacts, readers: list[Reader]) -> list[Reader]:
    """Copies of what other agents wrote: to those who follow the ticket, except that
    `assigned` wants only the tickets they own."""
    following = ticket.followers | ({ticket.assignee} if ticket.assignee else set())
    return [
        r
        for r in readers
        if r.email in following
        and (r.notify in ("all", "team") or (r.notify == "assigned" and r.email == ticket.assignee))
    ]


def _admins(readers: list[Reader]) -> list[Reader]:
    return [r for r in readers if r.role == "admin" and r.notify != "none"]


def _lead(ticket: TicketFacts, readers: list[Reader]) -> list[Reader]:
    return [r for r in readers if ticket.lead and r.email == ticket.lead and r.notify != "none"]


def audience(
    event: str, ticket: TicketFacts, readers: Iterable[Reader], *, actor: str = ""
) -> list[str]:
    """The addresses that hear of `event` on `ticket`, in the readers' order; never the
    agent who caused it, never an agent whose preference is `none`."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    everyone = [r for r in readers if r.email != actor]
    owned = ticket.assignee is not None
    chosen: list[Reader]
    if event in ("new", "customer", "due"):
        # SPEC §10.9: a new ticket goes to its team (or to all who want all); a reply on
        # an assigned ticket goes to the assignee only. An unassigned ticket's later mail
        # goes where its first did (nobody owns it yet), and to the agents who wrote on
        # it: they are waiting for this answer.
        if owned:
            chosen = _assignee(ticket, everyone)
        else:
            chosen = _queue(ticket, everyone)
            if event == "customer":
                chosen += _followers(ticket, everyone)
    elif event in ("reply", "note"):
        chosen = _followers(ticket, everyone)
    elif event == "assign":
        chosen = _assignee(ticket, everyone)
    elif event == "team":
        # A rule that routes new tickets runs after their first notification went to the
        # queue of no team: the team's agents hear of it now. An owned ticket stays its
        # owner's business; a team nobody works in tells nobody.
        staffed = ticket.team and any(ticket.team in r.teams for r in everyone)
        chosen = _queue(ticket, everyone) if staffed and not owned else []
    elif event == "sla-warning":
        # SPEC §10.2: the assignee, or the team's agents, or the admins.
        if owned:
            chosen = _assignee(ticket, everyone)
        elif ticket.team and any(ticket.team in r.teams for r in everyone):
            chosen = _queue(ticket, everyone)
        else:
            chosen = _admins(everyone)
    elif event == "sla-breach":
        # SPEC §10.2 and §10.9: the assignee, the admins, and the team's lead.
        chosen = _assignee(ticket, everyone) + _admins(everyone) + _lead(ticket, everyone)
    else:  # csat-bad: the team's lead (SPEC §10.9); a ticket of no team, the admins
        chosen = _lead(ticket, everyone) or _admins(everyone)
    return list(dict.fromkeys(r.email for r in chosen))
