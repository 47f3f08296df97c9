"""ticket_tools.py: the web's everyday tools beyond one ticket's command box (issue 16).

- Bulk actions: the list's checkboxes post ticket numbers and one command text; it runs
  on each ticket through the same registry as a reply by mail (operations.run_bulk), each
  ticket all or nothing, and the next page lists what each ticket became.
- Split and move of one message: the `#split` / `#move N` commands of SPEC §6, with the
  message named by the form instead of by the notification a mail answers.
- Release of an agent's mail held as unverified, by that agent or an admin.

Plain forms, no script, CSRF-checked like every other form (security.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.errors import InboxdError, NotFound
from inboxd.models import MAX_ROW_ID, Message
from inboxd.runtime import Runtime
from inboxd.web.flash import FlashLine
from inboxd.web.security import check_form
from inboxd.web.views import (
    Csrf,
    Me,
    RowId,
    Wakeups,
    changes_flash,
    done,
    safe_next,
)

MAX_BULK = 200  # a page of the list is 50; a hand-made post may not ask for more


def build_router(rt: Runtime, wake: Wakeups) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/tickets/bulk")
    def bulk(
        request: Request,
        me: Me,
        csrf: Csrf,
        ids: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies it)
        typed: Annotated[str, Form(max_length=20_000)] = "",
        quick: Annotated[str, Form(max_length=200)] = "",
        back: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        check_form(request, rt, csrf)
        where = safe_next(back)
        numbers = [int(i) for i in ids if i.isdigit() and 1 <= int(i) <= MAX_ROW_ID]
        commands = quick or typed
        if not numbers:
            return done(request, rt, where, [FlashLine("Select at least one ticket.", ok=False)])
        if len(numbers) > MAX_BULK:
            refusal = f"At most {MAX_BULK} tickets at once; nothing was changed."
            return done(request, rt, where, [FlashLine(refusal, ok=False)])
        if not commands.strip():
            refusal = "Type the commands to run (e.g. #status pending) or press a button."
            return done(request, rt, where, [FlashLine(refusal, ok=False)])
        outcomes = operations.run_bulk(rt, numbers, commands, me.email, "web")
        wake.mail_queued()
        changed = sum(1 for o in outcomes if o.changes)
        lines = [
            FlashLine(
                f"{commands.strip().splitlines()[0][:80]}"
                f"{' …' if len(commands.strip().splitlines()) > 1 else ''}: "
                f"{changed} of {len(outcomes)} ticket{'s' if len(outcomes) != 1 else ''} done.",
                ok=changed == len(outcomes),
            )
        ]
        for o in outcomes:
            if o.changes:
                text = f"#{o.ticket_id}: " + "; ".join(o.changes)
            else:
                why = "; ".join(f"{line}: {e}" if line else e for line, e in o.errors)
                text = f"#{o.ticket_id}: not changed: {why}"
            lines.append(FlashLine(text, ok=bool(o.changes), link=f"/tickets/{o.ticket_id}"))
        return done(request, rt, where, lines)

    def message_command(
        request: Request, ticket_id: int, message_pk: int, me_email: str, text: str
    ) -> Response:
        with session_scope(rt.engine) as session:
            _message_on(session, ticket_id, message_pk)
        try:
            outcome = operations.run_commands(
                rt, ticket_id, text, me_email, "web", about_message_pk=message_pk
            )
        except operations.InvalidCommands as exc:
            refusal = [FlashLine(f"{line}: {why}", ok=False) for line, why in exc.errors]
            return done(request, rt, f"/tickets/{ticket_id}#m{message_pk}", refusal)
        wake.mail_queued()
        lines = changes_flash(outcome.result.changes)
        with session_scope(rt.engine) as session:
            moved_to = session.get(Message, message_pk)
            target = moved_to.ticket_id if moved_to else ticket_id
        lines.append(FlashLine(f"Open #{target}", link=f"/tickets/{target}#m{message_pk}"))
        return done(request, rt, f"/tickets/{ticket_id}", lines)

    @router.post("/tickets/{ticket_id}/messages/{message_pk}/split")
    def split(
        request: Request, ticket_id: RowId, message_pk: RowId, me: Me, csrf: Csrf
    ) -> Response:
        check_form(request, rt, csrf)
        return message_command(request, ticket_id, message_pk, me.email, "#split")

    @router.post("/tickets/{ticket_id}/messages/{message_pk}/move")
    def move(
        request: Request,
        ticket_id: RowId,
        message_pk: RowId,
        me: Me,
        csrf: Csrf,
        to: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        check_form(request, rt, csrf)
        target = to.strip().lstrip("#")
        if not target.isdigit():
            refusal = [FlashLine("Give the number of the ticket to move it to.", ok=False)]
            return done(request, rt, f"/tickets/{ticket_id}#m{message_pk}", refusal)
        return message_command(request, ticket_id, message_pk, me.email, f"#move {target}")

    @router.post("/tickets/{ticket_id}/messages/{message_pk}/release")
    def release(
        request: Request, ticket_id: RowId, message_pk: RowId, me: Me, csrf: Csrf
    ) -> Response:
        check_form(request, rt, csrf)
        with session_scope(rt.engine) as session:
            _message_on(session, ticket_id, message_pk)
        try:
            operations.release_held(rt, message_pk, me.email)
        except NotFound:
            raise
        except InboxdError as exc:
            refusal = [FlashLine(f"Not released: {exc}", ok=False)]
            return done(request, rt, f"/tickets/{ticket_id}#m{message_pk}", refusal)
        wake.mail_queued()
        line = FlashLine("Held mail released: its commands ran and its text went on as by mail.")
        return done(request, rt, f"/tickets/{ticket_id}#m{message_pk}", [line])

    return router


def _message_on(session: Session, ticket_id: int, message_pk: int) -> Message:
    message = session.get(Message, message_pk)
    if message is None or message.ticket_id != ticket_id:
        raise NotFound(f"no message {message_pk} on ticket #{ticket_id}")
    return message
