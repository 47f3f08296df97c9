"""status_page.py: the customer's view of their request, reached by the signed link in
every mail inboxd sends them (links.py). No login: the link is the key.

It shows the subject, the status and the public conversation only: never internal
notes, held or automatic mail, and never an agent's own address. A reply written here is
turned into an ordinary mail from the requester to the ticket's reply address and
spooled like one received by SMTP, so it takes the same ingest path as an email reply.
"""

from __future__ import annotations

from email.message import Message as MimeMessage
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from inboxd.agents.replies import scrub_agent_address
from inboxd.customers import profiles
from inboxd.db import session_scope
from inboxd.models import Agent, Message, Ticket, utcnow
from inboxd.queues import spool
from inboxd.queues.outbox import compose, new_message_id
from inboxd.render import variant_for, variants
from inboxd.runtime import Runtime
from inboxd.tickets import links, queries
from inboxd.tickets.tokens import make_token, token_address
from inboxd.web.security import check_form
from inboxd.web.views import Wakeups, browser_language, page

PUBLIC_KINDS = ("customer", "reply")
WORDS = "web/_customer_words.html"  # and its variants, one per language


def customer_words(
    session: Session, rt: Runtime, request: Request, requester: str
) -> dict[str, str]:
    """What a customer's page needs to speak their language (SPEC §10.8): their profile's
    language, else their browser's; the words template of that language, and its tag."""
    wanted = profiles.language_of(session, requester) or browser_language(request)
    folder = rt.config.inboxd.templates_dir
    language = variant_for(WORDS, wanted, folder)
    return {"page_lang": language, "words": variants(WORDS, folder)[language]}


def build_router(rt: Runtime, wake: Wakeups) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def ticket_for(token: str) -> int | None:
        ticket_id = links.read_status_token(rt.secret_key, token)
        if ticket_id is None:
            return None
        with session_scope(rt.engine) as session:
            ticket = session.get(Ticket, ticket_id)
            while ticket is not None and ticket.merged_into:
                ticket = session.get(Ticket, ticket.merged_into)
            return ticket.id if ticket is not None and not ticket.spam else None

    def show(request: Request, token: str, ticket_id: int, **extra: Any) -> Response:
        with session_scope(rt.engine) as session:
            ticket = queries.get_ticket(session, ticket_id)
            agents = list(session.exec(select(Agent)))
            conversation = [
                _public_view(m, agents, rt.config.inboxd.support_address)
                for m in queries.messages_of(session, ticket_id)
                if m.kind in PUBLIC_KINDS
            ]
            subject, status = ticket.subject, ticket.status
            words = customer_words(session, rt, request, ticket.requester)
        return page(
            request,
            rt,
            "status.html",
            extra.pop("status_code", 200),
            agent=None,
            token=token,
            subject=subject,
            status=status,
            closed=status == "closed",
            conversation=conversation,
            **words,
            **extra,
        )

    @router.get("/status/{token}", response_class=HTMLResponse)
    def status_page(request: Request, token: str) -> Response:
        ticket_id = ticket_for(token)
        if ticket_id is None:
            return _unknown(request, rt)
        return show(request, token, ticket_id, sent=request.query_params.get("sent") == "1")

    @router.post("/status/{token}/reply", response_class=HTMLResponse)
    def status_reply(
        request: Request,
        token: str,
        csrf: Annotated[str, Form()],
        text: Annotated[str, Form(max_length=100_000)] = "",
    ) -> Response:
        check_form(request, rt, csrf)
        ticket_id = ticket_for(token)
        if ticket_id is None:
            return _unknown(request, rt)
        if not text.strip():
            return show(request, token, ticket_id, status_code=422, error="empty")
        with session_scope(rt.engine) as session:
            ticket = queries.get_ticket(session, ticket_id)
            raw = _as_mail(rt, ticket, _last_public_msgid(session, ticket_id), text)
        spool.accept(rt.engine, raw, source="web:status", write_lock=rt.write_lock)
        wake.mail_spooled()
        return Response(status_code=303, headers={"Location": f"/status/{token}?sent=1"})

    return router


def _unknown(
    request: Request,
    rt: Runtime,
    message: str = "This link is not valid. Use the link in the latest mail about your request.",
) -> Response:
    """The 404 page of a customer's link (status page, survey)."""
    return page(request, rt, "error.html", 404, agent=None, message=message)


unknown_link = _unknown


def _public_view(message: Message, agents: list[Agent], support_address: str) -> dict[str, Any]:
    text = message.text or message.body
    for agent in agents:
        text = scrub_agent_address(text, agent, support_address)
    ours = message.direction == "out"
    return {
        "ours": ours,
        "who": "Support" if ours else (message.from_name or message.from_email),
        "date": queries.iso(message.date or message.received_at),
        "text": text,
    }


def _last_public_msgid(session: Any, ticket_id: int) -> str | None:
    return session.exec(
        select(Message.message_id)
        .where(
            Message.ticket_id == ticket_id,
            col(Message.kind).in_(PUBLIC_KINDS),
            col(Message.message_id).is_not(None),
        )
        .order_by(col(Message.id).desc())
        .limit(1)
    ).first()


def _as_mail(rt: Runtime, ticket: Ticket, parent: str | None, text: str) -> bytes:
    """The reply as the mail the customer would have sent: from the requester, to the
    ticket's reply address, continuing the thread."""
    assert ticket.id is not None
    cfg = rt.config.inboxd
    to = cfg.support_address
    if cfg.plus_addressing:
        to = token_address(cfg.support_address, make_token(rt.secret_key, ticket.id))
    tag = cfg.subject_tag.replace("{id}", str(ticket.id))
    headers = [
        ("From", ticket.requester),
        ("To", to),
        ("Subject", f"Re: {ticket.subject} {tag}".strip()),
        ("Date", format_datetime(utcnow())),
        ("Message-ID", new_message_id(cfg.support_address.rpartition("@")[2] or "localhost")),
    ]
    if parent:
        headers += [("In-Reply-To", parent), ("References", parent)]
    # Written down as the customer's own message, never sent: the plain text alone.
    message: MimeMessage = compose(headers, text, cfg=None)
    return message.as_bytes()
