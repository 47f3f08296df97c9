"""settings_page.py: an agent's own settings (`/settings`) and, for admins, everyone's
(`/agents`, `/settings?agent=EMAIL`) (SPEC §10.9).

The same core as `inboxd agents set` (directory.update_agent): an agent changes their own
notifications, receipts, language, signature and name; an admin also anyone's, and roles
and teams. Anyone else gets the 403 page. Plain forms, no script.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from inboxd.agents import directory, teams
from inboxd.agents.audience import PREFERENCES
from inboxd.agents.directory import Preferences
from inboxd.db import session_scope
from inboxd.errors import InvalidValue
from inboxd.runtime import Runtime
from inboxd.web.security import check_form
from inboxd.web.views import Csrf, Me, SignedIn, page

# What each preference means, as the settings page explains it.
MEANINGS = {
    "all": "every new ticket (of your team, when it has one) and replies on tickets nobody owns",
    "team": "only your teams' tickets",
    "assigned": "only tickets assigned to you",
    "none": "no notifications (you still get receipts and answers to your commands)",
}


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def form(
        request: Request, me: SignedIn, email: str, status: int = 200, error: str = ""
    ) -> Response:
        with session_scope(rt.engine) as session:
            actor = directory.get_agent(session, me.email)
            target = directory.get_agent(session, email)
            if target.id != actor.id:
                directory.require_admin(actor, "see another agent's settings")
            shown = directory.agent_json(target, teams.teams_of(rt.config, target))
        return page(
            request,
            rt,
            "settings.html",
            status,
            who=shown,
            own=email == me.email,
            is_admin=me.role == "admin",
            preferences=[(p, MEANINGS[p]) for p in PREFERENCES],
            team_names=rt.config.team_names,
            saved=request.query_params.get("saved") == "1",
            error=error,
        )

    @router.get("/settings", response_class=HTMLResponse)
    def show(request: Request, me: Me) -> Response:
        return form(request, me, request.query_params.get("agent", me.email)[:320])

    @router.post("/settings")
    def save(
        request: Request,
        me: Me,
        csrf: Csrf,
        agent: Annotated[str, Form(max_length=320)] = "",
        notify: Annotated[str, Form(max_length=16)] = "",
        receipts: Annotated[bool, Form()] = False,
        language: Annotated[str, Form(max_length=16)] = "",
        signature: Annotated[str, Form(max_length=directory.MAX_SIGNATURE)] = "",
        name: Annotated[str, Form(max_length=200)] = "",
        role: Annotated[str | None, Form(max_length=16)] = None,
        team: Annotated[str | None, Form(max_length=100)] = None,
    ) -> Response:
        check_form(request, rt, csrf)
        agent = agent or me.email
        prefs = Preferences(notify, receipts, language, signature, name, role or None, team)
        try:
            with rt.write_lock, session_scope(rt.engine) as session:
                actor = directory.get_agent(session, me.email)
                directory.update_agent(session, actor, agent, prefs, rt.config.team_names)
        except InvalidValue as exc:
            return form(request, me, agent, 422, str(exc))
        query = "" if agent == me.email else f"agent={agent}&"
        return RedirectResponse(f"/settings?{query}saved=1", status_code=303)

    @router.get("/agents", response_class=HTMLResponse)
    def agents(request: Request, me: Me) -> Response:
        with session_scope(rt.engine) as session:
            directory.require_admin(directory.get_agent(session, me.email), "manage agents")
            rows = [
                directory.agent_json(a, teams.teams_of(rt.config, a))
                for a in directory.list_agents(session)
            ]
        return page(request, rt, "agents.html", rows=rows)

    return router
