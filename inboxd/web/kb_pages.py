"""kb_pages.py: the public help centre, `/kb` and `/kb/{slug}` (SPEC §10.6).

No login: anyone may search and read the public articles; a signed-in agent also sees
the internal ones (to anyone else they do not exist: 404). Pages are server-rendered
with no script, under the same headers as every page (security.py). An article's
Markdown is rendered with raw HTML off and then sanitized as mail HTML is.

An article page opened from an acknowledgement's link carries a token naming the ticket
(kb_suggest.solve_token) and offers "this answered my question". As with the survey's
links (SPEC §10.4) it takes two steps: the GET records nothing, only the page's own POST
does, with a nonce from that page that is refused within `MIN_SECONDS` of the page being
served, because link scanners open every link and sometimes post its forms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from inboxd import languages
from inboxd.db import session_scope
from inboxd.runtime import Runtime
from inboxd.web.sanitize import clean_html
from inboxd.web.security import check_form, page_nonce, page_nonce_age
from inboxd.web.views import NotSignedIn, SignedIn, browser_language, current_agent, page
from inboxd.workflow.kb_articles import Article, render_markdown
from inboxd.workflow.kb_search import KbIndex, pick_translation
from inboxd.workflow.kb_suggest import (
    CHECK_SECONDS,
    kb_index,
    read_solve_token,
    solved_on_page,
)

MIN_SECONDS = 10
MAX_SECONDS = 86_400
_QUERY_CHARS = 200


def build_router(rt: Runtime, clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def index() -> KbIndex:
        return kb_index(rt.config, max_age=CHECK_SECONDS)

    @router.get("/kb", response_class=HTMLResponse)
    def home(request: Request, q: str = "", lang: str = "") -> Response:
        if not rt.config.kb.enabled:
            return _missing(request, rt)
        agent = _agent_or_none(request)
        kb = index()
        q, lang = q.strip()[:_QUERY_CHARS], lang.strip()[:20]
        browser = browser_language(request)
        if q:
            hits = kb.search(q, limit=50, public_only=agent is None)
            # A question in Chinese or Japanese is answered in its own script.
            wanted = lang or languages.script_language(q) or ""
            found = _one_per_slug(kb, [h.article for h in hits], wanted, agent)
        else:
            by_title = sorted(kb.articles, key=lambda a: a.title.casefold())
            found = _one_per_slug(kb, by_title, lang or browser, agent)
        return page(
            request,
            rt,
            "kb.html",
            agent=agent,
            q=q,
            lang=lang,
            languages=kb.languages,
            articles=[_card(a) for a in found[:50]],
        )

    @router.get("/kb/{slug}", response_class=HTMLResponse)
    def article(request: Request, slug: str, lang: str = "", t: str = "") -> Response:
        if not rt.config.kb.enabled:
            return _missing(request, rt)
        agent = _agent_or_none(request)
        kb = index()
        visible = [a for a in kb.translations(slug) if a.public or agent is not None]
        shown = pick_translation(visible, lang.strip()[:20] or browser_language(request))
        if shown is None:
            return _missing(request, rt)
        ticket_id = read_solve_token(rt.secret_key, t, slug) if t else None
        return page(
            request,
            rt,
            "kb_article.html",
            agent=agent,
            article=_card(shown),
            html=clean_html(render_markdown(shown.body)),
            translations=[_card(a) for a in visible if a is not shown],
            token=t if ticket_id is not None else "",
            nonce=page_nonce(rt, "kb-page", t, int(clock())) if ticket_id is not None else "",
            answered=request.query_params.get("answered") == "1",
            error="",
        )

    @router.post("/kb/{slug}/answered", response_class=HTMLResponse)
    def answered(
        request: Request,
        slug: str,
        csrf: Annotated[str, Form()],
        t: Annotated[str, Form(max_length=64)] = "",
        nonce: Annotated[str, Form(max_length=80)] = "",
        lang: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        check_form(request, rt, csrf)
        ticket_id = read_solve_token(rt.secret_key, t, slug)
        if ticket_id is None or not rt.config.kb.enabled:
            return _missing(request, rt)
        age = page_nonce_age(rt, "kb-page", t, nonce, int(clock()))
        if age is None or not MIN_SECONDS <= age <= MAX_SECONDS:
            # Too soon after the page was served (a scanner), too late, or not this page's:
            # nothing is recorded; a person confirms on a fresh page.
            back = f"/kb/{quote(slug)}?lang={quote(lang)}&t={quote(t)}"
            return Response(status_code=303, headers={"Location": back})
        with rt.write_lock, session_scope(rt.engine) as session:
            solved_on_page(session, ticket_id, slug)
        done = f"/kb/{quote(slug)}?lang={quote(lang)}&answered=1"
        return Response(status_code=303, headers={"Location": done})

    return router


# Browsers name Chinese by region; the articles by script.


def _agent_or_none(request: Request) -> SignedIn | None:
    try:
        return current_agent(request)
    except NotSignedIn:
        return None


def _one_per_slug(
    kb: KbIndex, articles: list[Article], lang: str, agent: SignedIn | None
) -> list[Article]:
    """Each article once, in the order given, in the reader's language where it exists."""
    chosen, seen = [], set()
    for a in articles:
        if a.slug in seen or (not a.public and agent is None):
            continue
        seen.add(a.slug)
        visible = [t for t in kb.translations(a.slug) if t.public or agent is not None]
        chosen.append(pick_translation(visible, lang or a.language) or a)
    return chosen


def _card(a: Article) -> dict[str, Any]:
    return {
        "slug": a.slug,
        "language": a.language,
        "title": a.title,
        "summary": a.summary,
        "tags": a.tags,
        "internal": not a.public,
        "url": f"/kb/{quote(a.slug)}?lang={quote(a.language)}",
    }


def _missing(request: Request, rt: Runtime) -> HTMLResponse:
    return page(request, rt, "error.html", 404, message="There is no such article.")
