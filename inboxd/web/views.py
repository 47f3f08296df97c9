"""views.py: the agents' web pages: sign-in, the ticket list, a ticket.

Server-rendered jinja2 pages and plain HTML forms, no script. Every change goes through
operations.py, the code the CLI, the API and email use: the command box posts SPEC §6
command text, and its buttons are forms that post command text too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from inboxd import languages
from inboxd.agents import directory, operations
from inboxd.agents.macro_preview import MacroRefused, preview_macro
from inboxd.customers.context import context_for
from inboxd.db import session_scope
from inboxd.errors import InboxdError, NotFound
from inboxd.models import MAX_ROW_ID, PRIORITIES, STATUSES, Attachment, Message, utcnow
from inboxd.render import environment
from inboxd.runtime import Runtime, reading_zone
from inboxd.tickets import history, queries
from inboxd.tickets.macro_files import macro_names
from inboxd.tickets.store import attachment_path
from inboxd.web import signin
from inboxd.web.flash import FLASH_COOKIE, FlashLine, forget_flash, set_flash, take_flash
from inboxd.web.macro_picker import with_macro
from inboxd.web.message_view import message_view
from inboxd.web.sanitize import clean_html
from inboxd.web.security import (
    FILE_CSP,
    MAIL_CSP,
    SESSION_COOKIE,
    check_form,
    csrf_token,
    session_cookie_args,
)
from inboxd.web.uploads import read_uploads
from inboxd.workflow.sla_explain import sla_json

PAGE_SIZE = 50
QUICK_COMMANDS = (
    ("Assign to me", "#assign me"),
    ("Pending", "#status pending"),
    ("On hold", "#status on-hold"),
    ("Solved", "#status solved"),
    ("Urgent", "#priority urgent"),
)

# The list's bulk buttons: what agents do to many tickets at once in a morning's triage.
BULK_COMMANDS = (
    ("Assign to me", "#assign me"),
    ("Pending", "#status pending"),
    ("Solved", "#status solved"),
    ("Closed", "#status closed"),
)


@dataclass(frozen=True)
class Wakeups:
    """What the web tells the daemon's workers: new mail spooled, new mail to send."""

    ingest: Callable[[], None] | None = None
    outbound: Callable[[], None] | None = None

    def mail_queued(self) -> None:
        if self.outbound:
            self.outbound()

    def mail_spooled(self) -> None:
        if self.ingest:
            self.ingest()


class NotSignedIn(Exception):
    """Raised by a page for agents when nobody is signed in: sends them to sign in."""


def safe_next(value: str | None) -> str:
    """Where to go after signing in: one of our own pages, else the list. Never another
    site (`//host`, `/\\host`, a scheme), so the parameter cannot be an open redirect."""
    if (
        value
        and len(value) <= 500
        and value.startswith(("/tickets/", "/?"))
        and value.isprintable()
        and "\\" not in value
    ):
        return value
    return "/"


@dataclass(frozen=True)
class SignedIn:
    id: int
    email: str
    name: str
    role: str


def page(
    request: Request, rt: Runtime, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render templates/web/NAME with what every page needs, and the confirmation lines
    the last form left for it (flash.py), once."""
    context.setdefault("agent", getattr(request.state, "agent", None))
    context["csrf"] = csrf_token(request, rt)
    context["support_name"] = rt.config.inboxd.support_name
    context.setdefault("flash", take_flash(request, rt))
    html = environment(rt.config.inboxd.templates_dir).get_template(f"web/{name}").render(context)
    response = HTMLResponse(html, status_code=status_code)
    if FLASH_COOKIE in request.cookies:
        forget_flash(response)
    return response


def browser_language(request: Request) -> str:
    """The reader's first language from Accept-Language as a tag (zh-TW -> zh-Hant, de-AT
    stays), 'en' when none is given."""
    first = request.headers.get("accept-language", "").split(",", 1)[0]
    tag = first.split(";", 1)[0].strip()[:20]
    found = languages.candidates(tag) if tag and tag != "*" else []
    return found[0] if found else languages.DEFAULT


def current_agent(request: Request) -> SignedIn:
    """The signed-in agent of this request, or NotSignedIn."""
    rt: Runtime = request.app.state.rt
    with session_scope(rt.engine) as session:
        agent = signin.session_agent(session, request.cookies.get(SESSION_COOKIE))
        if agent is None or agent.id is None:
            raise NotSignedIn()
        request.state.agent = SignedIn(agent.id, agent.email, agent.name, agent.role)
        return request.state.agent  # type: ignore[no-any-return]


Me = Annotated[SignedIn, Depends(current_agent)]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Csrf = Annotated[str, Form()]


def build_router(rt: Runtime, wake: Wakeups) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    # -- sign-in -------------------------------------------------------------------------

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        try:
            me = current_agent(request)
        except NotSignedIn:
            after = safe_next(request.query_params.get("next"))
            return page(request, rt, "signin.html", sent=False, next=after)
        return ticket_list(request, me)

    @router.post("/login", response_class=HTMLResponse)
    def ask_for_link(
        request: Request,
        csrf: Csrf,
        email: Annotated[str, Form()] = "",
        wanted: Annotated[str, Form(alias="next")] = "/",
    ) -> Response:
        check_form(request, rt, csrf)
        after = safe_next(wanted)
        with rt.write_lock, session_scope(rt.engine) as session:
            queued = signin.mail_link(session, rt, email[:320], after)
        if queued:  # after the commit, or the sender could look before the row is there
            wake.mail_queued()
        return page(request, rt, "signin.html", sent=True, next=after)

    @router.get("/login/{token}", response_class=HTMLResponse)
    def confirm_link(request: Request, token: str) -> Response:
        # A GET never spends the link: mail scanners that open links would otherwise
        # use it up before the agent does. The page asks for one click instead.
        with session_scope(rt.engine) as session:
            try:
                agent = signin.check_link(session, rt, token)
            except signin.SignInRefused as exc:
                return page(request, rt, "error.html", 400, message=str(exc), signin=True)
            after = safe_next(request.query_params.get("next"))
            return page(request, rt, "confirm.html", email=agent.email, token=token, next=after)

    @router.post("/login/{token}")
    def sign_in(
        request: Request, token: str, csrf: Csrf, wanted: Annotated[str, Form(alias="next")] = "/"
    ) -> Response:
        check_form(request, rt, csrf)
        with rt.write_lock, session_scope(rt.engine) as session:
            try:
                agent = signin.spend_link(session, rt, token)
            except signin.SignInRefused as exc:
                return page(request, rt, "error.html", 400, message=str(exc), signin=True)
            cookie = signin.open_session(session, agent)
        response = RedirectResponse(safe_next(wanted), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(signin.SESSION_LIFETIME.total_seconds()),
            **session_cookie_args(request, rt),  # type: ignore[arg-type]
        )
        return response

    @router.post("/logout")
    def sign_out(request: Request, csrf: Csrf) -> Response:
        check_form(request, rt, csrf)
        with rt.write_lock, session_scope(rt.engine) as session:
            signin.close_session(session, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- the list ------------------------------------------------------------------------

    def ticket_list(request: Request, me: SignedIn) -> Response:
        args = request.query_params
        try:
            page_no = max(1, min(int(args.get("page", "1")), 100_000))
        except ValueError:
            page_no = 1
        chosen = {
            name: args.get(name, "").strip()[:200]
            for name in ("status", "assignee", "priority", "team", "tag", "q", "sort", "due")
        }
        assignee = {"mine": me.email, "unassigned": "none"}.get(
            chosen["assignee"], chosen["assignee"]
        )
        sort = chosen["sort"] if chosen["sort"] in queries.SORTS else "updated"
        flt = queries.TicketFilter(
            status=chosen["status"] or None,
            assignee=assignee or None,
            priority=chosen["priority"] or None,
            tag=chosen["tag"] or None,
            team=chosen["team"] or None,
            q=chosen["q"] or None,
            sort=sort,
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
            due=chosen["due"] if chosen["due"] in queries.DUE_FILTERS else None,
        )
        with session_scope(rt.engine) as session:
            tickets = queries.list_tickets(session, flt)
            rows = queries.tickets_json(session, tickets)
            counts = queries.count_by_status(session)
            # Counted to the cap, or to the page after this one when that is further.
            cap = max(queries.COUNT_CAP, flt.offset + 2 * PAGE_SIZE)
            if any(chosen[k] for k in ("assignee", "priority", "team", "tag", "q")):
                total = queries.count_tickets(session, flt, cap=cap)
            else:  # the counts per status say it already: one scan fewer per page
                total = counts.get(flt.status, 0) if flt.status else sum(counts.values())
            agents = directory.list_agents(session)
        more = total > cap  # "1000+ tickets · page 3 of 20+"
        total = min(total, cap)
        pages = max(1, -(-total // PAGE_SIZE))

        def link(**changes: Any) -> str:
            merged = {k: v for k, v in {**chosen, "page": str(page_no), **changes}.items() if v}
            if merged.get("page") == "1":
                merged.pop("page")
            return "/?" + urlencode(merged) if merged else "/"

        return page(
            request,
            rt,
            "list.html",
            rows=rows,
            total=total,
            more=more,
            counts=counts,
            chosen=chosen,
            statuses=STATUSES,
            priorities=PRIORITIES,
            sorts=queries.SORTS,
            agents=[a.email for a in agents],
            quick=BULK_COMMANDS,
            select_all=args.get("select") == "all",
            page_no=page_no,
            pages=pages,
            link=link,
        )

    # -- a ticket ------------------------------------------------------------------------

    @router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
    def show(request: Request, ticket_id: RowId, me: Me) -> Response:
        with session_scope(rt.engine) as session:
            merged_into = queries.get_ticket(session, ticket_id).merged_into
        if merged_into:
            return RedirectResponse(f"/tickets/{merged_into}", status_code=303)
        return ticket_page(request, rt, me, ticket_id)

    @router.post("/tickets/{ticket_id}/commands")
    def run(
        request: Request,
        ticket_id: RowId,
        me: Me,
        csrf: Csrf,
        commands: Annotated[str, Form(max_length=20_000)] = "",
    ) -> Response:
        check_form(request, rt, csrf)
        try:
            outcome = operations.run_commands(rt, ticket_id, commands, me.email, "web")
        except operations.InvalidCommands as exc:
            return ticket_page(request, rt, me, ticket_id, 422, exc.errors, commands=commands)
        except NotFound:
            raise
        except InboxdError as exc:
            errors = [("", str(exc))]
            return ticket_page(request, rt, me, ticket_id, 422, errors, commands=commands)
        wake.mail_queued()
        final = outcome.ticket["id"]
        return done(request, rt, f"/tickets/{final}", changes_flash(outcome.result.changes))

    @router.post("/tickets/{ticket_id}/replies")
    def post_reply(
        request: Request,
        ticket_id: RowId,
        me: Me,
        csrf: Csrf,
        text: Annotated[str, Form(max_length=200_000)] = "",
        note: Annotated[bool, Form()] = False,
        cc: Annotated[str, Form(max_length=5_000)] = "",
        # A file field left empty arrives as an empty string, not as a file.
        files: Annotated[list[UploadFile | str], File()] = [],  # noqa: B006 (copied)
        macro: Annotated[str, Form(max_length=200)] = "",
        insert: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        check_form(request, rt, csrf)
        draft = {"reply": text, "cc": cc, "note": note}
        if insert:  # the macro picker's button: back to the box with the macro in it
            # Filled in for this ticket (placeholders, the customer's language variant),
            # so what the agent edits is what the customer will read.
            name = macro.strip().lower()
            if name not in macro_names(operations.macros_dir(rt)):
                errors = [("", f"no macro {macro[:80]!r}: choose one from the list")]
                return ticket_page(request, rt, me, ticket_id, 422, errors, **draft)
            try:
                ready = preview_macro(rt, name, ticket_id, agent_email=me.email)
            except MacroRefused as exc:
                return ticket_page(request, rt, me, ticket_id, 422, [("", str(exc))], **draft)
            draft["reply"] = with_macro(text, ready.as_draft())
            return ticket_page(request, rt, me, ticket_id, inserted=macro.strip(), **draft)
        try:
            parts = read_uploads(files, rt.config.web.max_upload_bytes)
            data = operations.post_reply(
                rt,
                ticket_id,
                me.email,
                text,
                note=note,
                source="web",
                read_commands=True,
                cc=split_addresses(cc),
                files=parts,
            )
        except operations.InvalidCommands as exc:
            return ticket_page(request, rt, me, ticket_id, 422, exc.errors, **draft)
        except NotFound:
            raise
        except InboxdError as exc:
            return ticket_page(request, rt, me, ticket_id, 422, [("", str(exc))], **draft)
        wake.mail_queued()
        lines = changes_flash(data["changes"])
        if data["posted"] is not None:
            sent = next((m for m in data["messages"] if m["id"] == data["posted"]), None)
            lines.insert(0, FlashLine(_posted_line(sent, len(parts))))
        return done(request, rt, f"/tickets/{data['id']}#latest", lines)

    # -- what a message carries ----------------------------------------------------------

    @router.get("/messages/{message_pk}/html")
    def message_html(request: Request, message_pk: RowId, me: Me, images: int = 0) -> Response:
        with session_scope(rt.engine) as session:
            message = session.get(Message, message_pk)
            if message is None or not message.html:
                raise NotFound(f"no HTML for message {message_pk}")
            html = clean_html(message.html, remote_images=bool(images))
        document = (
            '<!doctype html><html><head><meta charset="utf-8"><base target="_blank">'
            "</head><body>" + html + "</body></html>"
        )
        sources = "data: cid: http: https:" if images else "data:"
        return HTMLResponse(
            document,
            headers={
                "Content-Security-Policy": MAIL_CSP.format(images=sources),
                "X-Frame-Options": "SAMEORIGIN",
            },
        )

    @router.get("/attachments/{attachment_id}")
    def attachment(attachment_id: RowId, me: Me) -> Response:
        with session_scope(rt.engine) as session:
            row = session.get(Attachment, attachment_id)
            if row is None:
                raise NotFound(f"no attachment {attachment_id}")
            path = attachment_path(rt.attachments_dir, row.sha256)
            filename = row.filename or f"attachment-{attachment_id}"
        if not path.exists():
            raise NotFound(f"attachment {attachment_id} is missing from the data folder")
        # Always a download, never rendered: an .html or .svg from a customer must not
        # run as this site (FreeScout GHSA-fffc-phh8-5h4v).
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=filename,
            content_disposition_type="attachment",
            headers={"Content-Security-Policy": FILE_CSP, "X-Content-Type-Options": "nosniff"},
        )

    return router


def ticket_page(
    request: Request,
    rt: Runtime,
    me: SignedIn,
    ticket_id: int,
    status_code: int = 200,
    errors: list[tuple[str, str]] | None = None,
    *,
    commands: str = "",
    reply: str = "",
    cc: str = "",
    note: bool = False,
    inserted: str = "",
) -> Response:
    """The ticket page; with `errors` (and the agent's input kept) after a refusal."""
    with session_scope(rt.engine) as session:
        ticket = queries.get_ticket(session, ticket_id)
        data = queries.ticket_json(session, ticket)
        sla = sla_json(session, rt, ticket, utcnow())
        messages = [
            message_view(session, m, me.email, me.role)
            for m in queries.messages_of(session, ticket_id)
        ]
        events = history.history(session, ticket_id, reading_zone(rt))
        customer = context_for(session, ticket.requester, ticket_id)  # SPEC §10.7
        others = [
            t
            for t in queries.list_tickets(
                session, queries.TicketFilter(requester=ticket.requester, limit=11)
            )
            if t.id != ticket_id
        ][:10]
    return page(
        request,
        rt,
        "ticket.html",
        status_code,
        ticket=data,
        sla=sla,
        messages=messages,
        events=events,
        others=others,
        customer=customer,
        quick=QUICK_COMMANDS,
        errors=errors or [],
        commands=commands,
        reply=reply,
        cc=cc,
        note=note,
        inserted=inserted,
        macros=macro_names(operations.macros_dir(rt)),
        max_upload=rt.config.web.max_upload_bytes,
        iso=queries.iso,
    )


def done(request: Request, rt: Runtime, where: str, lines: list[FlashLine]) -> Response:
    """After a form did something: back to a page (GET), which shows `lines` once."""
    response = RedirectResponse(where, status_code=303)
    if lines:
        set_flash(response, request, rt, lines)
    return response


def changes_flash(changes: list[str]) -> list[FlashLine]:
    """A command block's changes as confirmation lines ("status: new → pending")."""
    return [FlashLine(c) for c in changes]


def split_addresses(text: str) -> list[str]:
    """The CC field: addresses separated by commas, semicolons or spaces (as pasted)."""
    return [a for a in re.split(r"[\s,;]+", text) if a]


def _posted_line(message: dict[str, Any] | None, files: int) -> str:
    attached = f" with {files} attachment{'s' if files != 1 else ''}" if files else ""
    if message is not None and message.get("kind") == "note":
        return f"Internal note added{attached}."
    return f"Reply sent to the customer{attached}."


def install(app: FastAPI, rt: Runtime, wake: Wakeups) -> None:
    app.include_router(build_router(rt, wake))

    @app.exception_handler(NotSignedIn)
    async def to_sign_in(request: Request, _: NotSignedIn) -> Response:
        # Back to the page asked for after signing in (a ticket link from a mail).
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        after = safe_next(wanted) if request.method == "GET" else "/"
        return RedirectResponse("/" if after == "/" else f"/?{urlencode({'next': after})}", 303)
