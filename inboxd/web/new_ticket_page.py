"""new_ticket_page.py: the web's "New ticket" form, for a ticket an agent opens on a
customer's behalf (a phone call, a visit; SPEC §10.7). The same core as `inboxd ticket
new` and `POST /api/v1/tickets` (agents/new_ticket.py). Installed before the ticket
pages, so /tickets/new is never read as a ticket number.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from inboxd.agents import new_ticket
from inboxd.errors import InboxdError
from inboxd.runtime import Runtime
from inboxd.web.security import check_form
from inboxd.web.views import Csrf, Me, Wakeups, page


def build_router(rt: Runtime, wake: Wakeups) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def new_ticket_form(
        request: Request, status_code: int = 200, error: str = "", **values: Any
    ) -> Response:
        form = {"requester": "", "name": "", "subject": "", "text": "", "channel": "phone"}
        return page(
            request,
            rt,
            "new_ticket.html",
            status_code,
            form={**form, **values},
            channels=new_ticket.CHANNELS,
            error=error,
        )

    @router.get("/tickets/new", response_class=HTMLResponse)
    def new_ticket_page(request: Request, me: Me) -> Response:
        return new_ticket_form(request)

    @router.post("/tickets/new")
    def open_new_ticket(
        request: Request,
        me: Me,
        csrf: Csrf,
        requester: Annotated[str, Form(max_length=320)] = "",
        subject: Annotated[str, Form(max_length=500)] = "",
        text: Annotated[str, Form(max_length=200_000)] = "",
        name: Annotated[str, Form(max_length=200)] = "",
        channel: Annotated[str, Form(max_length=16)] = "phone",
        note: Annotated[bool, Form()] = False,
        notify: Annotated[bool, Form()] = False,
    ) -> Response:
        check_form(request, rt, csrf)
        typed = {"requester": requester, "subject": subject, "text": text, "name": name}
        wanted = new_ticket.NewTicket(
            requester, subject, "" if note else text, text if note else "", name, channel, notify
        )
        try:
            data = new_ticket.open_for_customer(rt, wanted, me.email, "web")
        except InboxdError as exc:
            return new_ticket_form(request, 422, str(exc), **typed, channel=channel)
        wake.mail_queued()
        return RedirectResponse(f"/tickets/{data['id']}", status_code=303)

    return router
