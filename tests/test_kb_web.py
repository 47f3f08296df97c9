"""The help centre, /kb and /kb/{slug} (SPEC §10.6): public, no script, internal articles
for agents only, and "this answered my question" in two steps (as §10.4's links)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config
from fastapi.testclient import TestClient
from mailbuilder import mail
from sqlmodel import select

from inboxd import pipeline
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Event, Ticket
from inboxd.runtime import Runtime, open_runtime
from inboxd.web.app import create_app
from inboxd.web.security import page_nonce
from inboxd.workflow import kb_search
from inboxd.workflow.kb_suggest import solve_token

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "kb"
BASE = "http://127.0.0.1:8025"


@pytest.fixture
def kb_rt(tmp_path: Path) -> Iterator[Runtime]:
    kb_search._CACHE.clear()
    shutil.copytree(SAMPLES, tmp_path / "articles")
    (tmp_path / "articles" / "en" / "hostile.md").write_text(
        "---\ntitle: Hostile <b>title</b>\n---\nHi <script>alert(1)</script>\n\n"
        "[click](javascript:alert(2)) <img src=x onerror=alert(3)>\n",
        encoding="utf-8",
    )
    runtime = open_runtime(make_config(tmp_path, kb={"dir": str(tmp_path / "articles")}))
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def web(kb_rt: Runtime) -> TestClient:
    return TestClient(create_app(kb_rt, Metrics()), base_url=BASE)


def signed_in(client: TestClient, rt: Runtime) -> None:
    from inboxd.agents.directory import get_agent
    from inboxd.web import signin

    with session_scope(rt.engine) as session:
        link = signin.issue_link(session, rt, get_agent(session, "bob@example.com"))  # type: ignore[arg-type]
    path = link.removeprefix(BASE)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert csrf is not None
    assert (
        client.post(path, data={"csrf": csrf.group(1)}, follow_redirects=False).status_code == 303
    )


def test_the_help_centre_lists_public_articles_without_login_or_script(web: TestClient) -> None:
    answer = web.get("/kb")
    assert answer.status_code == 200
    assert "Reset a forgotten password" in answer.text
    assert "Escalating a payment dispute" not in answer.text  # internal
    assert "<script" not in answer.text
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def test_a_language_shows_each_article_in_it(web: TestClient) -> None:
    text = web.get("/kb?lang=zh-Hant").text
    assert "忘記密碼怎麼辦：重設密碼" in text  # the Traditional translation
    assert "开启两步验证" in text  # no Traditional one: the Simplified one, not English


def test_search_in_traditional_finds_the_password_article(web: TestClient) -> None:
    text = web.get("/kb", params={"q": "忘記密碼"}).text
    assert text.index("/kb/reset-password") < text.index("/kb/change-email")


def test_an_article_page_renders_its_markdown_and_links_its_translations(web: TestClient) -> None:
    text = web.get("/kb/reset-password?lang=zh-Hans").text
    assert "<strong>忘记密码？</strong>" in text and "<ol>" in text
    assert 'href="/kb/reset-password?lang=zh-Hant"' in text
    assert "Did this answer your question?" not in text  # no ticket named: nothing to solve


def test_raw_html_in_an_article_is_shown_as_text_never_run(web: TestClient) -> None:
    text = web.get("/kb/hostile").text
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert 'href="javascript:' not in text  # left as text by the Markdown renderer
    assert "Hostile &lt;b&gt;title&lt;/b&gt;" in text


def test_internal_articles_are_for_signed_in_agents_only(web: TestClient, kb_rt: Runtime) -> None:
    assert web.get("/kb/escalation-playbook").status_code == 404
    assert "Escalating a payment dispute" not in web.get("/kb", params={"q": "chargeback"}).text
    signed_in(web, kb_rt)
    assert web.get("/kb/escalation-playbook").status_code == 200
    assert "Escalating a payment dispute" in web.get("/kb", params={"q": "chargeback"}).text


def test_an_unknown_article_is_404(web: TestClient) -> None:
    assert web.get("/kb/no-such-article").status_code == 404


# --- "this answered my question" ---------------------------------------------------------


def suggested_ticket(rt: Runtime) -> int:
    raw = mail(subject="Forgot my password", body="How do I reset my password?")
    result = pipeline.ingest(rt, raw, "test")
    assert result.ticket is not None
    return result.ticket


def state(rt: Runtime, ticket_id: int) -> tuple[str, list[Any]]:
    with session_scope(rt.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        query = select(Event).where(Event.ticket_id == ticket_id, Event.type == "self_service")
        rows = session.exec(query).all()
        return ticket.status, [(e.from_value, e.to_value) for e in rows]


def form_of(text: str) -> dict[str, str]:
    return dict(re.findall(r'name="(csrf|t|nonce|lang)" value="([^"]*)"', text))


def test_answered_takes_two_steps_and_scanners_cast_nothing(
    web: TestClient, kb_rt: Runtime
) -> None:
    number = suggested_ticket(kb_rt)
    token = solve_token(kb_rt.secret_key, number, "reset-password")
    page = web.get(f"/kb/reset-password?lang=en&t={token}")
    assert "Did this answer your question?" in page.text
    assert state(kb_rt, number) == ("new", [])  # opening the link records nothing
    fields = form_of(page.text)
    # Posted at once, as a link scanner would: nothing recorded, back to the page.
    quick = web.post("/kb/reset-password/answered", data=fields, follow_redirects=False)
    assert quick.status_code == 303 and "answered" not in quick.headers["location"]
    assert state(kb_rt, number) == ("new", [])
    # A person, a little later, on the same page.
    fields["nonce"] = page_nonce(kb_rt, "kb-page", token, int(time.time()) - 30)
    done = web.post("/kb/reset-password/answered", data=fields, follow_redirects=False)
    assert done.headers["location"].endswith("answered=1")
    assert state(kb_rt, number) == ("solved", [("page", "reset-password:en")])
    # Once is enough: a second post changes nothing.
    web.post("/kb/reset-password/answered", data=fields, follow_redirects=False)
    assert state(kb_rt, number)[1] == [("page", "reset-password:en")]


def test_a_token_for_another_article_or_forged_solves_nothing(
    web: TestClient, kb_rt: Runtime
) -> None:
    number = suggested_ticket(kb_rt)
    other = solve_token(kb_rt.secret_key, number, "track-order")  # never suggested here
    page = web.get(f"/kb/track-order?t={other}")
    fields = form_of(page.text)
    fields["nonce"] = page_nonce(kb_rt, "kb-page", other, int(time.time()) - 30)
    web.post("/kb/track-order/answered", data=fields, follow_redirects=False)
    assert state(kb_rt, number) == ("new", [])
    forged = {**fields, "t": f"{number}-000000000000000000000000"}
    answer = web.post("/kb/track-order/answered", data=forged, follow_redirects=False)
    assert answer.status_code == 404
    assert "Did this answer" not in web.get(f"/kb/reset-password?t={number}-0").text


def test_the_help_centre_renders_in_chromium_with_script_off(browser: Any, kb_rt: Runtime) -> None:
    from browser import web_server

    with web_server(kb_rt) as base:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(f"{base}/kb")
        page.fill("input[name=q]", "密码")
        page.click("button[type=submit]")
        assert "q=" in page.url
        page.click("a[href^='/kb/reset-password']")
        assert page.locator("h1").inner_text().startswith("忘记密码")
        assert page.locator("script").count() == 0
        context.close()


def test_the_browsers_language_picks_the_translation(web: TestClient) -> None:
    taiwan = web.get("/kb", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"}).text
    assert "忘記密碼怎麼辦：重設密碼" in taiwan
    german = web.get("/kb/reset-password", headers={"Accept-Language": "de-DE,de;q=0.9"}).text
    assert "Vergessenes Passwort zurücksetzen" in german
    chosen = web.get("/kb/reset-password?lang=en", headers={"Accept-Language": "de"}).text
    assert "Reset a forgotten password" in chosen  # an explicit choice wins
