"""agents_api.py: agents and teams in the REST API (SPEC §10.9), with roles enforced.

Any agent may read the agents and teams and change their own preferences; adding,
removing and changing other agents (their role, their team) is for admins: anyone else
gets 403 in the one error shape (api.ErrorOut). The core is agents/directory.py, the same
code as `inboxd agents`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from inboxd.agents import directory, teams
from inboxd.agents.directory import Preferences
from inboxd.db import session_scope
from inboxd.models import Agent
from inboxd.runtime import Runtime
from inboxd.web.api import Agent as Caller
from inboxd.web.api import ErrorOut, error_body

Notify = Literal["all", "team", "assigned", "none"]
Email = Annotated[str, Path(max_length=320, description="The agent's address")]


class PreferencesIn(BaseModel):
    """What to change; fields left out stay as they are."""

    notify: Notify | None = None
    receipts: bool | None = None
    language: str | None = Field(default=None, max_length=16)
    signature: str | None = Field(default=None, max_length=directory.MAX_SIGNATURE)
    name: str | None = Field(default=None, max_length=200)
    role: Literal["admin", "agent"] | None = Field(default=None, description="Admins only")
    team: str | None = Field(default=None, max_length=100, description="Admins only")


class AgentIn(PreferencesIn):
    email: str = Field(max_length=320)


_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "The token's agent is not an admin"},
    409: {"model": ErrorOut, "description": "The agent still owns open tickets"},
}


def _prefs(body: PreferencesIn) -> Preferences:
    return Preferences(**body.model_dump(exclude={"email"}))


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=_ERRORS, tags=["agents"])

    def caller(session: Any, email: str) -> Agent:
        return directory.get_agent(session, email)

    def shown(agent: Agent) -> dict[str, Any]:
        return directory.agent_json(agent, teams.teams_of(rt.config, agent))

    @router.get("/agents", summary="The active agents and their preferences")
    def list_agents(_: Caller) -> list[dict[str, Any]]:
        with session_scope(rt.engine) as session:
            return [shown(a) for a in directory.list_agents(session)]

    @router.get("/agents/{email}", summary="One agent")
    def get_agent(email: Email, _: Caller) -> dict[str, Any]:
        with session_scope(rt.engine) as session:
            return shown(directory.get_agent(session, email))

    @router.post("/agents", summary="Add an agent (admins only)", status_code=201)
    def add_agent(body: AgentIn, me: Caller) -> dict[str, Any]:
        with rt.write_lock, session_scope(rt.engine) as session:
            directory.require_admin(caller(session, me), "add agents")
            agent = directory.add_agent(
                session,
                body.email,
                body.name or "",
                body.role or "agent",
                body.team,
                _prefs(body),
                rt.config.team_names,
            )
            return shown(agent)

    @router.patch("/agents/{email}", summary="Change preferences (yours; anyone's as admin)")
    def update_agent(email: Email, body: PreferencesIn, me: Caller) -> dict[str, Any]:
        with rt.write_lock, session_scope(rt.engine) as session:
            agent = directory.update_agent(
                session, caller(session, me), email, _prefs(body), rt.config.team_names
            )
            return shown(agent)

    @router.delete("/agents/{email}", summary="Remove an agent (admins only)")
    def remove_agent(
        email: Email,
        me: Caller,
        force: Annotated[bool, Query(description="Unassign their open tickets")] = False,
    ) -> dict[str, Any]:
        with rt.write_lock, session_scope(rt.engine) as session:
            admin = caller(session, me)
            directory.require_admin(admin, "remove agents")
            target = directory.get_agent(session, email)
            owned = [t.id for t in directory.open_tickets_of(session, target)]
            try:
                agent = directory.remove_agent(session, email, force=force, actor=admin.email)
            except directory.HasOpenTickets as exc:
                refused = [{"field": "query.force", "error": f"open ticket #{n}"} for n in owned]
                raise HTTPException(409, error_body(str(exc), refused)) from None
            return {**shown(agent), "unassigned": owned}

    @router.get("/teams", summary="The configured teams ([[teams]])")
    def list_teams(_: Caller) -> list[dict[str, Any]]:
        return [t.model_dump() for t in rt.config.teams]

    return router
