"""csat_page.py: the survey's fallback link, in two steps that link scanners cannot take.

GET /csat/TOKEN?r=good shows the rating preselected and a comment box and records
nothing. Only this page's own POST records a rating, and only with the page's nonce and
not within MIN_SECONDS of the page being served: a scanner opens every link and sometimes
posts the forms it finds within moments, so such a post is recorded as `csat_suspect`
(visible in the history and the reports) and not counted. Each page's nonce votes once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from inboxd.db import session_scope
from inboxd.models import Event, Message, Ticket
from inboxd.runtime import Runtime
from inboxd.tickets import links, store
from inboxd.web.security import check_form, page_nonce, page_nonce_age
from inboxd.web.status_page import customer_words, unknown_link
from inboxd.web.views import page
from inboxd.workflow import csat

MIN_SECONDS = 10
MAX_SECONDS = 86_400
PURPOSE = "csat-page"


def build_router(rt: Runtime, clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def ratings() -> list[str]:
        return ["5", "4", "3", "2", "1"] if rt.config.csat.scale == "1-5" else ["good", "bad"]

    def surveyed_ticket(token: str) -> int | None:
        ticket_id = links.read_status_token(rt.secret_key, token)
        if ticket_id is None or not rt.config.csat.enabled:
            return None
        with session_scope(rt.engine) as session:
            sent = session.exec(
                select(Event.id).where(Event.ticket_id == ticket_id, Event.type == "csat_sent")
            ).first()
            return ticket_id if sent is not None else None

    def form(
        request: Request,
        token: str,
        ticket_id: int,
        chosen: str,
        status_code: int = 200,
        **extra: object,
    ) -> Response:
        """The survey page of `ticket_id` (surveyed_ticket read it from `token`)."""
        with session_scope(rt.engine) as session:
            ticket = session.get(Ticket, ticket_id)
            words = customer_words(session, rt, request, ticket.requester if ticket else "")
        return page(
            request,
            rt,
            "csat.html",
            status_code,
            agent=None,
            token=token,
            ratings=ratings(),
            chosen=chosen,
            nonce=page_nonce(rt, PURPOSE, token, int(clock())),
            **words,
            **extra,
        )

    @router.get("/csat/{token}", response_class=HTMLResponse)
    def survey(request: Request, token: str, r: str = "") -> Response:
        ticket_id = surveyed_ticket(token)
        if ticket_id is None:
            return _unknown(request, rt)
        return form(
            request,
            token,
            ticket_id,
            r if r in ratings() else "",
            done=request.query_params.get("done") == "1",
        )

    @router.post("/csat/{token}", response_class=HTMLResponse)
    def vote(
        request: Request,
        token: str,
        csrf: Annotated[str, Form()] = "",
        nonce: Annotated[str, Form(max_length=80)] = "",
        rating: Annotated[str, Form(max_length=10)] = "",
        comment: Annotated[str, Form(max_length=10_000)] = "",
    ) -> Response:
        ticket_id = surveyed_ticket(token)
        try:
            check_form(request, rt, csrf)
        except HTTPException:
            if ticket_id is not None:
                _suspect(rt, ticket_id, "posted without the page's security token")
            raise
        if ticket_id is None:
            return _unknown(request, rt)
        age = page_nonce_age(rt, PURPOSE, token, nonce, int(clock()))
        if age is None or not MIN_SECONDS <= age <= MAX_SECONDS:
            why = (
                "posted without this page's nonce"
                if age is None
                else f"posted {age} s after the page was served"
            )
            _suspect(rt, ticket_id, why)
            return form(request, token, ticket_id, rating, 422, error="csat_retry")
        if rating not in ratings():
            return form(request, token, ticket_id, "", 422, error="csat_choose")
        page_id = hashlib.sha256(nonce.encode()).hexdigest()[:40]
        with rt.write_lock, session_scope(rt.engine) as session:
            used = select(Event.id).where(Event.block == page_id, Event.type == "csat")
            if session.exec(used).first() is None:  # each page votes once
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None
                pk = _comment(session, ticket, comment)
                csat.record_vote(
                    session, rt, ticket, rating, ticket.requester, message_pk=pk, page=page_id
                )
        return Response(status_code=303, headers={"Location": f"/csat/{token}?done=1"})

    return router


def _comment(session: Session, ticket: Ticket, text: str) -> int | None:
    """The comment, as a message on the ticket (agents read it like any other)."""
    text = text.replace("\x00", "").strip()
    if not text:
        return None
    digest = hashlib.sha256(f"csat:{ticket.id}:{time.time()}:{text}".encode()).hexdigest()
    message = Message(
        ticket_id=ticket.id,
        direction="in",
        kind="csat",
        threaded_by="web",
        fingerprint=digest,
        source="web:csat",
        from_email=ticket.requester,
        subject=ticket.subject,
        body=text,
        text=text,
    )
    session.add(message)
    session.flush()
    return message.id


def _suspect(rt: Runtime, ticket_id: int, why: str) -> None:
    with rt.write_lock, session_scope(rt.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:
            store.record_event(session, ticket, "csat", "csat_suspect", None, why)


def _unknown(request: Request, rt: Runtime) -> Response:
    return unknown_link(
        request, rt, "This survey link is not valid, or no survey was sent for this request."
    )
