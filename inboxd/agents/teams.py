"""teams.py: the teams of `[[teams]]` (SPEC §10.9) as the rest of inboxd needs them.

Who belongs to a team (the config's `agents`, plus an agent's own `team` from `inboxd
agents add --team`), its lead, and the queue a new ticket addressed to a team's own
address lands in. Reads the config and the agents; changes a ticket only in `route`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from inboxd.config import Config
from inboxd.models import Agent, Ticket
from inboxd.tickets import actions
from inboxd.tickets.tokens import is_ours


def teams_of(config: Config, agent: Agent) -> frozenset[str]:
    """The teams an agent works in."""
    named = {t.name for t in config.teams if agent.email in t.agents}
    return frozenset(named | ({agent.team} if agent.team else set()))


def lead_of(config: Config, team: str | None) -> str | None:
    entry = config.team(team)
    return entry.lead or None if entry else None


def team_for_addresses(config: Config, addresses: Iterable[str]) -> str | None:
    """The team whose own address (or its +token form) the mail was sent to, if any."""
    for address in addresses:
        for team in config.teams:
            if team.email and is_ours(address.strip(), (team.email,)):
                return team.name
    return None


def route(session: Session, config: Config, ticket: Ticket, addresses: Iterable[str]) -> str | None:
    """Put a new ticket in the queue of the team it was addressed to; return the team.
    An event records it (actor "system"), so the reports count it as the team's."""
    team = team_for_addresses(config, addresses)
    if team is not None:
        actions.set_team(session, ticket, team, "system")
    return team
