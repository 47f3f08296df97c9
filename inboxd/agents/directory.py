"""directory.py: the people who answer tickets: add, list, remove, API tokens.

Agents come from `[[agents]]` in the config (added at start-up, never removed by it) and
from `inboxd agents`. Removing an agent deactivates it: its name stays on the events it
caused, and its reply tokens stop running commands.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, col, select

from inboxd.errors import InboxdError, NotFound
from inboxd.models import Agent

ROLES = ("admin", "agent")


def add_agent(session: Session, email: str, name: str, role: str, team: str | None) -> Agent:
    """Add an agent, or reactivate and update one that exists."""
    email = email.strip().lower()
    if "@" not in email or " " in email:
        raise InboxdError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise InboxdError(f"role must be admin or agent, not {role!r}")
    agent = session.exec(select(Agent).where(Agent.email == email)).first()
    if agent is None:
        agent = Agent(email=email, name=name, role=role, team=team)
    else:
        agent.name, agent.role, agent.team, agent.active = name or agent.name, role, team, True
    session.add(agent)
    session.flush()
    return agent


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


def remove_agent(session: Session, email: str) -> Agent:
    """Deactivate an agent (history keeps its name); the last admin cannot go."""
    agent = get_agent(session, email)
    if agent.role == "admin":
        admins = [a for a in list_agents(session) if a.role == "admin"]
        if len(admins) <= 1:
            raise InboxdError(f"{agent.email} is the last admin; add another admin first")
    agent.active = False
    agent.api_token_hash = None
    session.add(agent)
    return agent


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
