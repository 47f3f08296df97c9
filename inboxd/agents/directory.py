"""directory.py: the people who answer tickets: add, list, remove, API tokens.

Agents come from `[[agents]]` in the config (added at start-up, never removed by it) and
from `inboxd agents`. Removing an agent deactivates it: its name stays on the events it
caused, and its reply tokens stop running commands.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from inboxd.agents.audience import PREFERENCES
from inboxd.errors import Forbidden, InboxdError, InvalidValue, NotFound
from inboxd.languages import normalized_tag
from inboxd.models import Agent, Ticket
from inboxd.tickets import actions

ROLES = ("admin", "agent")
MAX_SIGNATURE = 2000
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
# Statuses in which a ticket still needs its assignee.
OPEN_STATUSES = ("new", "open", "pending", "on-hold")


@dataclass(frozen=True)
class Preferences:
    """What `inboxd agents set` (and the web's settings page) may change; None = keep."""

    notify: str | None = None
    receipts: bool | None = None
    language: str | None = None
    signature: str | None = None
    name: str | None = None
    role: str | None = None
    team: str | None = None  # "" = no team


def add_agent(
    session: Session,
    email: str,
    name: str,
    role: str,
    team: str | None,
    prefs: Preferences | None = None,
    teams: tuple[str, ...] = (),
) -> Agent:
    """Add an agent, or reactivate and update one that exists."""
    email = email.strip().lower()
    if "@" not in email or " " in email:
        raise InvalidValue("email", f"{email!r} is not an email address")
    agent = session.exec(select(Agent).where(Agent.email == email)).first()
    if agent is None:
        agent = Agent(email=email, name=name)
    elif agent.role == "admin" and role != "admin":
        _keep_an_admin(session, agent)
    agent.active = True
    wanted = prefs or Preferences()
    apply_preferences(
        agent,
        Preferences(
            wanted.notify,
            wanted.receipts,
            wanted.language,
            wanted.signature,
            name or None,
            role,
            team if team is not None else wanted.team,
        ),
        teams,
    )
    session.add(agent)
    session.flush()
    return agent


def apply_preferences(agent: Agent, prefs: Preferences, teams: tuple[str, ...] = ()) -> Agent:
    """Check every value first, then change the agent (all or nothing). `teams` are the
    configured ones a --team must name (none configured: any lowercase word)."""
    checked: dict[str, Any] = {}
    if prefs.notify is not None:
        checked["notify"] = _choice("notify", prefs.notify, PREFERENCES)
    if prefs.role is not None:
        checked["role"] = _choice("role", prefs.role, ROLES)
    if prefs.receipts is not None:
        checked["receipts"] = prefs.receipts
    if prefs.language is not None:
        checked["language"] = normalized_tag(prefs.language)
    if prefs.signature is not None:
        checked["signature"] = _signature(prefs.signature)
    if prefs.name is not None:
        checked["name"] = prefs.name.strip()[:200]
    if prefs.team is not None:
        checked["team"] = _team(prefs.team, teams)
    for key, value in checked.items():
        setattr(agent, key, value)
    return agent


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise InvalidValue(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _signature(value: str) -> str:
    text = value.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if len(text) > MAX_SIGNATURE:
        raise InvalidValue("signature", f"{len(text)} characters; at most {MAX_SIGNATURE}")
    if any(not (c.isprintable() or c in "\n\t") for c in text):
        raise InvalidValue("signature", "holds control characters; plain text only")
    return text


def _team(value: str, teams: tuple[str, ...]) -> str | None:
    team = value.strip().lower()
    if not team or team == "none":
        return None
    if teams and team not in teams:
        raise InvalidValue("team", f"no team {team!r}; teams are {', '.join(teams)}")
    if not _TEAM.match(team):
        raise InvalidValue("team", f"{team!r} is not a team name: expected a lowercase word")
    return team


def set_preferences(
    session: Session, email: str, prefs: Preferences, teams: tuple[str, ...] = ()
) -> Agent:
    """Change an agent's preferences (SPEC §10.9); the last admin keeps the admin role."""
    agent = get_agent(session, email)
    if prefs.role == "agent" and agent.role == "admin" and agent.active:
        _keep_an_admin(session, agent)
    apply_preferences(agent, prefs, teams)
    session.add(agent)
    session.flush()
    return agent


def require_admin(actor: Agent, what: str) -> None:
    """Refuse (Forbidden) unless the acting agent is an active admin (SPEC §10.9 roles)."""
    if actor.role != "admin" or not actor.active:
        raise Forbidden(f"only an admin may {what}; {actor.email} is an {actor.role}")


def update_agent(
    session: Session, actor: Agent, email: str, prefs: Preferences, teams: tuple[str, ...] = ()
) -> Agent:
    """Preferences changed from the web or the API: an agent changes their own
    notifications, receipts, language, signature and name; only an admin changes someone
    else's, or anyone's role or team (SPEC §10.9)."""
    target = get_agent(session, email)
    if target.id != actor.id:
        require_admin(actor, "change another agent's settings")
    team = prefs.team.strip().lower() if prefs.team is not None else None
    if (prefs.role is not None and prefs.role != target.role) or (
        team is not None and (None if team in ("", "none") else team) != target.team
    ):
        require_admin(actor, "change an agent's role or team")
    return set_preferences(session, email, prefs, teams)


def agent_json(agent: Agent, teams: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An agent as `agents list/show --json` and the API print it. `teams`: every team
    the agent works in ([[teams]] agents, and their own team)."""
    return {
        "email": agent.email,
        "name": agent.name,
        "role": agent.role,
        "team": agent.team,
        "teams": sorted(teams | ({agent.team} if agent.team else set())),
        "active": agent.active,
        "notify": agent.notify,
        "receipts": agent.receipts,
        "language": agent.language,
        "signature": agent.signature,
    }


class HasOpenTickets(InboxdError):
    """An agent to be removed still owns open tickets; `tickets` lists them."""

    def __init__(self, email: str, tickets: list[Ticket]) -> None:
        shown = ", ".join(f"#{t.id} ({t.status}) {t.subject[:60]}" for t in tickets[:20])
        more = f" and {len(tickets) - 20} more" if len(tickets) > 20 else ""
        super().__init__(
            f"{email} is assigned {len(tickets)} open ticket(s): {shown}{more}; "
            "reassign them, or remove with --force to unassign them"
        )
        self.tickets = tickets


def list_agents(session: Session, include_inactive: bool = False) -> list[Agent]:
    query = select(Agent)
    if not include_inactive:
        query = query.where(Agent.active)
    return list(session.exec(query.order_by(col(Agent.email))))


def get_agent(session: Session, email: str) -> Agent:
    agent = session.exec(select(Agent).where(Agent.email == email.strip().lower())).first()
    if agent is None:
        raise NotFound(f"no agent {email}")
    return agent


def open_tickets_of(session: Session, agent: Agent) -> list[Ticket]:
    """The tickets assigned to the agent that are not solved, closed, merged or spam."""
    query = (
        select(Ticket)
        .where(Ticket.assignee_id == agent.id, col(Ticket.status).in_(OPEN_STATUSES))
        .where(col(Ticket.merged_into).is_(None))
        .order_by(col(Ticket.id))
    )
    return [t for t in session.exec(query) if not t.spam]


def remove_agent(session: Session, email: str, *, force: bool = False, actor: str = "") -> Agent:
    """Deactivate an agent (history keeps its name); the last admin cannot go. An agent
    who owns open tickets is refused (HasOpenTickets) unless `force`: then each is
    unassigned, with an event by `actor`, and goes back to its queue."""
    agent = get_agent(session, email)
    if agent.role == "admin":
        _keep_an_admin(session, agent)
    owned = open_tickets_of(session, agent)
    if owned and not force:
        raise HasOpenTickets(agent.email, owned)
    for ticket in owned:
        actions.set_assignee(session, ticket, None, actor or "system")
    agent.active = False
    agent.api_token_hash = None
    session.add(agent)
    return agent


def _keep_an_admin(session: Session, agent: Agent) -> None:
    admins = [a for a in list_agents(session) if a.role == "admin"]
    if agent.active and len(admins) <= 1:
        raise InboxdError(f"{agent.email} is the last admin; add another admin first")


def issue_api_token(session: Session, email: str) -> str:
    """A new API token for the agent (the old one stops working); only its hash is kept."""
    agent = get_agent(session, email)
    if not agent.active:
        raise InboxdError(f"{agent.email} is not an active agent")
    token = "ibx_" + secrets.token_urlsafe(32)
    agent.api_token_hash = token_hash(token)
    session.add(agent)
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def agent_for_token(session: Session, token: str) -> Agent | None:
    """The active agent an API token belongs to."""
    if not token.startswith("ibx_"):
        return None
    query = select(Agent).where(Agent.api_token_hash == token_hash(token), Agent.active)
    return session.exec(query).first()


def first_admin(session: Session) -> Agent:
    admins = [a for a in list_agents(session) if a.role == "admin"]
    if not admins:
        raise InboxdError("no admin agent: add one with `inboxd agents add EMAIL --role admin`")
    return min(admins, key=lambda a: a.id or 0)
