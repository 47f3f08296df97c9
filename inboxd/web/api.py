"""api.py: the REST API under /api/v1 (SPEC §4 "Web and API"). A thin shell: every route
calls the same core functions as the CLI (queries, operations), with the same JSON.

Authentication is `Authorization: Bearer TOKEN` with a token from `inboxd agents token`;
the token's agent is the actor of everything done through it. Errors are JSON objects
of one shape (ErrorOut: a `detail` sentence and the refused `errors`), never a traceback.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AliasChoices, BaseModel, Field

from inboxd.agents import directory, operations
from inboxd.agents import new_ticket as logged
from inboxd.db import session_scope
from inboxd.errors import InvalidValue
from inboxd.models import MAX_TICKET_ID, utcnow
from inboxd.runtime import Runtime
from inboxd.tickets import queries
from inboxd.workflow import reports


class CommandsIn(BaseModel):
    commands: str = Field(description="Command tags, one per line (SPEC §6).", max_length=20_000)


class ReplyIn(BaseModel):
    text: str = Field(description="The reply's text.", min_length=1, max_length=200_000)
    note: bool = Field(default=False, description="An internal note instead of a public reply.")


class NewTicketIn(BaseModel):
    """A ticket on a customer's behalf (SPEC §10.7): a call, a chat, a visit."""

    requester: str = Field(
        validation_alias=AliasChoices("for", "requester"),
        serialization_alias="for",
        description="The customer's email address; they are the requester.",
        max_length=320,
    )
    subject: str = Field(description="What the customer asked about.", max_length=500)
    text: str = Field(
        default="", description="The request as taken down (public).", max_length=200_000
    )
    note: str = Field(
        default="", description="An internal note instead of text.", max_length=200_000
    )
    name: str = Field(
        default="", description="The customer's name, if none is known.", max_length=200
    )
    channel: Literal["phone", "email", "web", "chat", "walk-in", "other"] = "phone"
    notify: bool = Field(default=False, description="Mail the customer once; else nothing.")


class ErrorItem(BaseModel):
    """One refused thing: a field of the request, or a line of a command block."""

    field: str | None = Field(default=None, description="e.g. query.status, body.text")
    line: str | None = Field(default=None, description="The command line refused")
    error: str = Field(description="Why, with the allowed values where there is a list")


class ErrorOut(BaseModel):
    """Every error has this one shape: a sentence, and for 422 each refused field or line."""

    detail: str = Field(description="What went wrong.")
    errors: list[ErrorItem] = Field(default_factory=list)


def error_body(detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """An ErrorOut as JSON (app.py answers every error under /api with it)."""
    return ErrorOut(detail=detail, errors=[ErrorItem(**e) for e in errors or []]).model_dump(
        exclude_none=True
    )


_BEARER = HTTPBearer(auto_error=False, description="A token from `inboxd agents token EMAIL`.")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API token, or an unknown or revoked one"},
    404: {"model": ErrorOut, "description": "No such ticket"},
    422: {"model": ErrorOut, "description": "Invalid input, or commands refused (nothing applied)"},
}


def current_agent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
) -> str:
    """The email of the agent whose API token came with the request (else 401)."""
    rt: Runtime = request.app.state.rt
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(401, "send Authorization: Bearer TOKEN (inboxd agents token EMAIL)")
    with session_scope(rt.engine) as session:
        agent = directory.agent_for_token(session, credentials.credentials.strip())
        if agent is None:
            raise HTTPException(401, "unknown or revoked API token")
        return agent.email


Agent = Annotated[str, Depends(current_agent)]
TicketId = Annotated[int, Path(ge=1, le=MAX_TICKET_ID, description="The ticket's number")]


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=_ERRORS)

    @router.get("/tickets", summary="List tickets, newest activity first")
    def list_tickets(
        email: Agent,
        status: str | None = None,
        assignee: Annotated[str | None, Query(description="An agent, or none")] = None,
        priority: str | None = None,
        tag: str | None = None,
        requester: str | None = None,
        team: str | None = None,
        q: Annotated[str | None, Query(description="Full-text search", max_length=500)] = None,
        sort: Annotated[
            Literal["updated", "created", "priority", "id", "due"], Query()
        ] = "updated",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        flt = queries.TicketFilter(
            status, assignee, priority, tag, requester, limit, team, q, sort, offset
        )
        with session_scope(rt.engine) as session:
            try:
                flt = queries.checked_filter(session, flt, email, rt.config.team_names)
            except InvalidValue as exc:
                refused = [{"field": f"query.{exc.field}", "error": exc.reason}]
                raise HTTPException(422, error_body(str(exc), refused)) from None
            return queries.tickets_json(session, queries.list_tickets(session, flt))

    @router.post(
        "/tickets", status_code=201, summary="Open a ticket on a customer's behalf (a call)"
    )
    def new_ticket(body: NewTicketIn, email: Agent) -> dict[str, Any]:
        request = logged.NewTicket(
            body.requester, body.subject, body.text, body.note, body.name, body.channel, body.notify
        )
        return logged.open_for_customer(rt, request, email, "api")

    @router.get("/tickets/{ticket_id}", summary="One ticket with its messages and events")
    def get_ticket(ticket_id: TicketId, _: Agent) -> dict[str, Any]:
        with session_scope(rt.engine) as session:
            return queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)

    @router.post("/tickets/{ticket_id}/commands", summary="Run command tags as the token's agent")
    def run_commands(ticket_id: TicketId, body: CommandsIn, email: Agent) -> dict[str, Any]:
        try:
            outcome = operations.run_commands(rt, ticket_id, body.commands, email, "api")
        except operations.InvalidCommands as exc:
            refused = [{"line": line, "error": why} for line, why in exc.errors]
            raise HTTPException(
                422, error_body("commands refused; nothing was applied", refused)
            ) from None
        return outcome.ticket

    @router.post("/tickets/{ticket_id}/replies", summary="Post a public reply or an internal note")
    def post_reply(ticket_id: TicketId, body: ReplyIn, email: Agent) -> dict[str, Any]:
        return operations.post_reply(rt, ticket_id, email, body.text, note=body.note, source="api")

    @router.get("/report", summary="Service figures for a period (SPEC §10.5)")
    def report(
        _: Agent,
        since: Annotated[str | None, Query(description="30d, 12h, 2w; default 30d")] = None,
        from_: Annotated[date | None, Query(alias="from", description="First day")] = None,
        to: Annotated[date | None, Query(description="Last day, included")] = None,
        by: Annotated[Literal["agent", "team", "tag", "channel"] | None, Query()] = None,
        calendar: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        try:
            with session_scope(rt.engine) as session:
                return reports.run_report(
                    session,
                    rt.config,
                    utcnow(),
                    since=since,
                    from_date=from_,
                    to_date=to,
                    by=by,
                    calendar=calendar,
                )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    return router


def install(app: FastAPI, rt: Runtime) -> None:
    """Mount the API (app.py turns inboxd's errors into JSON answers under /api)."""
    app.state.rt = rt
    app.include_router(build_router(rt))
