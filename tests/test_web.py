"""The web view's rules, over HTTP against the real app (no browser needed here; the
browser tests are test_browser.py and test_xss.py).

Sign-in links are signed, expire, work once and are spent only by a click; every form
refuses a request without its CSRF token or from another site; HTML mail is shown only
sanitized under a strict policy; attachments are always downloads; the customer's status
page shows the public conversation only.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mailbuilder import mail, plain_text
from starlette.routing import Route
from typer.testing import CliRunner

from cli.main import app as cli_app
from inboxd import pipeline
from inboxd.agents import operations
from inboxd.agents.directory import get_agent, remove_agent
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Attachment, Message, utcnow
from inboxd.runtime import Runtime
from inboxd.tickets import links
from inboxd.web import signin
from inboxd.web.app import create_app

BASE = "http://127.0.0.1:8025"  # the default web_base_url: links point here


@pytest.fixture
def web(rt: Runtime) -> TestClient:
    return TestClient(create_app(rt, Metrics()), base_url=BASE)


def csrf_of(client: TestClient, path: str = "/") -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def link_for(rt: Runtime, email: str = "bob@example.com", **kw: object) -> str:
    with session_scope(rt.engine) as session:
        return signin.issue_link(session, rt, get_agent(session, email), **kw)  # type: ignore[arg-type]


def signed_in(client: TestClient, rt: Runtime, email: str = "bob@example.com") -> str:
    """Sign the client in through a magic link; returns its CSRF token (which is bound to
    the session, so it is read again once signed in)."""
    path = link_for(rt, email).removeprefix(BASE)
    token = csrf_of(client, path)
    answer = client.post(path, data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return csrf_of(client)


def new_ticket(rt: Runtime, **kw: object) -> int:
    result = pipeline.ingest(rt, mail(**kw), "test")  # type: ignore[arg-type]
    assert result.ticket is not None
    return result.ticket


# --- sign-in -------------------------------------------------------------------------


def test_the_root_is_a_sign_in_page_until_an_agent_signs_in(web: TestClient, rt: Runtime) -> None:
    assert "Mail me a sign-in link" in web.get("/").text
    signed_in(web, rt)
    assert "Mail me a sign-in link" not in web.get("/").text
    assert "tickets" in web.get("/").text


def test_opening_a_link_does_not_spend_it_only_the_button_does(
    web: TestClient, rt: Runtime
) -> None:
    path = link_for(rt).removeprefix(BASE)
    for _ in range(3):  # a mail scanner opening the link, then the agent
        assert web.get(path).status_code == 200
    token = csrf_of(web, path)
    assert web.post(path, data={"csrf": token}, follow_redirects=False).status_code == 303


def test_a_link_works_once(web: TestClient, rt: Runtime) -> None:
    path = link_for(rt).removeprefix(BASE)
    token = csrf_of(web, path)
    assert web.post(path, data={"csrf": token}, follow_redirects=False).status_code == 303
    # Signed in now: the form's token is the new session's.
    again = web.post(path, data={"csrf": csrf_of(web)}, follow_redirects=False)
    assert again.status_code == 400 and "already used" in again.text
    assert "already used" in web.get(path).text


def test_a_tampered_link_is_refused(web: TestClient, rt: Runtime) -> None:
    path = link_for(rt).removeprefix(BASE)
    token = path.rsplit("/", 1)[1]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (flipped, token[:-2], token + "AA", "x", "%00"):
        answer = web.get(f"/login/{bad}")
        assert answer.status_code in (400, 404) and "not valid" in answer.text
        answer = web.post(f"/login/{bad}", data={"csrf": csrf_of(web)}, follow_redirects=False)
        assert answer.status_code in (400, 404) and "inboxd_session" not in answer.headers.get(
            "set-cookie", ""
        )


def test_an_expired_link_is_refused(web: TestClient, rt: Runtime) -> None:
    issued = utcnow() - signin.LINK_LIFETIME - timedelta(seconds=1)
    path = link_for(rt, now=issued).removeprefix(BASE)
    answer = web.get(path)
    assert answer.status_code == 400 and "expired" in answer.text


def test_a_link_stops_working_when_its_agent_is_removed(web: TestClient, rt: Runtime) -> None:
    path = link_for(rt).removeprefix(BASE)
    with session_scope(rt.engine) as session:
        remove_agent(session, "bob@example.com")
    assert web.get(path).status_code == 400


def test_the_session_cookie_is_httponly_and_samesite(web: TestClient, rt: Runtime) -> None:
    path = link_for(rt).removeprefix(BASE)
    answer = web.post(path, data={"csrf": csrf_of(web, path)}, follow_redirects=False)
    cookie = answer.headers["set-cookie"].lower()
    assert "inboxd_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # served over plain http here; see the next test


def test_the_session_cookie_is_secure_when_served_over_https(tmp_path: Path) -> None:
    from conftest import make_config

    from inboxd.runtime import open_runtime

    rt = open_runtime(make_config(tmp_path, inboxd={"web_base_url": "https://help.example.com"}))
    client = TestClient(create_app(rt, Metrics()), base_url="https://help.example.com")
    path = link_for(rt).removeprefix("https://help.example.com")
    answer = client.post(path, data={"csrf": csrf_of(client, path)}, follow_redirects=False)
    assert "secure" in answer.headers["set-cookie"].lower()


def test_signing_out_ends_the_session(web: TestClient, rt: Runtime) -> None:
    token = signed_in(web, rt)
    cookie = web.cookies.get("inboxd_session")
    web.post("/logout", data={"csrf": token})
    web.cookies.set("inboxd_session", cookie or "")  # even a kept copy is dead
    assert "Mail me a sign-in link" in web.get("/").text


def test_asking_for_a_link_says_the_same_for_agents_and_strangers(
    web: TestClient, rt: Runtime
) -> None:
    token = csrf_of(web)
    for email in ("bob@example.com", "mallory@example.net"):
        answer = web.post("/login", data={"csrf": token, "email": email})
        assert "If that address belongs to an agent" in answer.text
    with session_scope(rt.engine) as session:
        from sqlmodel import select

        from inboxd.models import Outbound

        sent = session.exec(select(Outbound).where(Outbound.purpose == "login")).all()
    assert [row.rcpt_to for row in sent] == [["bob@example.com"]]


def test_links_per_agent_are_rate_limited(web: TestClient, rt: Runtime) -> None:
    token = csrf_of(web)
    for _ in range(signin.MAX_LINKS_PER_HOUR + 3):
        web.post("/login", data={"csrf": token, "email": "bob@example.com"})
    with session_scope(rt.engine) as session:
        from sqlmodel import func, select

        from inboxd.models import Outbound

        count = session.exec(
            select(func.count()).select_from(Outbound).where(Outbound.purpose == "login")
        ).one()
    assert count == signin.MAX_LINKS_PER_HOUR


def test_login_link_command_prints_a_working_link(rt: Runtime, web: TestClient) -> None:
    env = {"INBOXD_CONFIG": ""}
    toml = rt.config.base_dir / "inboxd.toml"
    toml.write_text(
        '[inboxd]\nsupport_address = "support@example.com"\n'
        f'database_url = "{rt.config.database_url}"\n'
        '[[agents]]\nemail = "bob@example.com"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli_app, ["agents", "login-link", "bob@example.com", "--config", str(toml)], env=env
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith(f"{BASE}/login/")
    assert web.get(url.removeprefix(BASE)).status_code == 200
    unknown = CliRunner().invoke(
        cli_app, ["agents", "login-link", "nobody@example.com", "--config", str(toml)], env=env
    )
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output


# --- CSRF and origins ------------------------------------------------------------------


def all_routes(routes: list[Any]) -> Iterator[Any]:
    """The app's routes, through included routers (FastAPI nests them since 0.16x)."""
    for route in routes:
        nested = getattr(route, "original_router", None) or getattr(route, "router", None)
        if nested is not None and not isinstance(route, Route):
            yield from all_routes(nested.routes)
        else:
            yield route


def state_changing_routes(client: TestClient, ticket: int, token: str) -> list[str]:
    """Every POST route of the web view (found from the app, so a new one is covered)."""
    rt = client.app.state.rt  # type: ignore[attr-defined]
    status = links.status_token(rt.secret_key, ticket)
    with session_scope(rt.engine) as session:
        from sqlmodel import select

        first_message = session.exec(select(Message.id).where(Message.ticket_id == ticket)).first()
    paths = []
    for route in all_routes(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, Route) and "POST" in (route.methods or set()):
            if route.path.startswith("/api/"):
                continue  # Bearer tokens, no cookies: nothing for another site to ride on
            paths.append(
                route.path.replace("{ticket_id}", str(ticket))
                .replace("{token}", status if "status" in route.path else token)
                .replace("{message_pk}", str(first_message))
            )
    return paths


def test_every_form_refuses_a_missing_or_wrong_csrf_token(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    link = link_for(rt).rsplit("/", 1)[1]
    routes = state_changing_routes(web, ticket, link)
    assert len(routes) >= 6, routes
    for path in routes:
        fields = {"commands": "#status solved", "text": "hi", "email": "bob@example.com"}
        assert web.post(path, data=fields).status_code == 403, path
        assert web.post(path, data={**fields, "csrf": "0" * 64}).status_code == 403, path
    with session_scope(rt.engine) as session:
        from inboxd.tickets.queries import get_ticket

        assert get_ticket(session, ticket).status == "new"
    assert web.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303


def test_every_form_refuses_a_foreign_or_opaque_origin(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    link = link_for(rt).rsplit("/", 1)[1]
    for path in state_changing_routes(web, ticket, link):
        for origin in ("http://evil.example", "null", "http://127.0.0.1:8026"):
            answer = web.post(
                path,
                data={"csrf": token, "commands": "#status solved", "text": "hi"},
                headers={"Origin": origin},
            )
            assert answer.status_code == 403, (path, origin)
        referer = {"Referer": "http://evil.example/page"}
        assert web.post(path, data={"csrf": token}, headers=referer).status_code == 403


def test_a_form_from_our_own_origin_is_accepted(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/commands",
        data={"csrf": token, "commands": "#status pending"},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_pages_send_a_policy_without_script_and_refuse_framing(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt)
    signed_in(web, rt)
    for path in ("/", f"/tickets/{ticket}"):
        headers = web.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_the_stylesheet_is_served_locally_and_nothing_beside_it(web: TestClient) -> None:
    css = web.get("/static/inboxd.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for path in ("/static/../web.py", "/static/%2e%2e/base.html", "/static/nope.css"):
        answer = web.get(path)
        assert answer.status_code == 404 and "no-store" in answer.headers["cache-control"]


def test_pages_for_agents_need_a_session(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    answer = web.get(f"/tickets/{ticket}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/?next=%2Ftickets%2F{ticket}"
    for path in ("/attachments/1", "/messages/1/html"):
        answer = web.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_after_signing_in_the_agent_lands_on_the_ticket_they_followed(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt)
    form = web.get(f"/?next=/tickets/{ticket}").text
    assert f'name="next" value="/tickets/{ticket}"' in form
    web.post(
        "/login",
        data={"csrf": csrf_of(web), "email": "bob@example.com", "next": f"/tickets/{ticket}"},
    )
    with session_scope(rt.engine) as session:
        from sqlmodel import select

        from inboxd.models import Outbound

        raw = session.exec(select(Outbound.raw).where(Outbound.purpose == "login")).one()
    mailed = re.search(r"(/login/\S+)", plain_text(message_from_bytes(raw)))
    assert mailed and mailed.group(1).endswith(f"?next=%2Ftickets%2F{ticket}")
    path = mailed.group(1)
    confirm = web.get(path).text
    assert f'name="next" value="/tickets/{ticket}"' in confirm
    answer = web.post(
        path.split("?")[0],
        data={"csrf": csrf_of(web, path), "next": f"/tickets/{ticket}"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == f"/tickets/{ticket}"


@pytest.mark.parametrize(
    "elsewhere",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "/logout", "/tickets/1\n"],
)
def test_the_page_after_sign_in_is_never_another_site(
    web: TestClient, rt: Runtime, elsewhere: str
) -> None:
    path = link_for(rt).removeprefix(BASE)
    answer = web.post(
        path, data={"csrf": csrf_of(web, path), "next": elsewhere}, follow_redirects=False
    )
    assert answer.headers["location"] == "/"


# --- the list and the ticket page -----------------------------------------------------


def ids_on(client: TestClient, query: str) -> list[int]:
    return [
        int(n)
        for n in re.findall(r'<tr class="ticket" data-id="(\d+)"', client.get("/?" + query).text)
    ]


def test_the_list_filters_searches_sorts_and_counts(web: TestClient, rt: Runtime) -> None:
    printer = new_ticket(rt, subject="Printer on fire", body="Room 4, third floor.")
    invoice = new_ticket(
        rt, subject="Invoice 1042", body="The total is wrong.", sender="dan@example.net"
    )
    chinese = new_ticket(rt, subject="发票问题", body="我的发票金额不对，请核实。")
    operations.run_commands(
        rt, invoice, "#assign bob\n#priority urgent\n#tag billing", None, "test"
    )
    operations.run_commands(rt, printer, "#status pending", None, "test")
    signed_in(web, rt)
    assert ids_on(web, "") == [printer, invoice, chinese]  # latest activity first
    assert ids_on(web, "sort=created") == [chinese, invoice, printer]
    assert ids_on(web, "status=pending") == [printer]
    assert ids_on(web, "assignee=mine") == [invoice]
    assert ids_on(web, "assignee=unassigned") == [printer, chinese]
    assert ids_on(web, "tag=billing") == [invoice]
    assert ids_on(web, "priority=urgent") == [invoice]
    assert ids_on(web, "sort=priority")[0] == invoice
    assert ids_on(web, "sort=id") == [chinese, invoice, printer]
    assert ids_on(web, "q=third+floor") == [printer]  # message text
    assert ids_on(web, "q=dan%40example") == [invoice]  # sender
    assert ids_on(web, "q=金额不对") == [chinese]  # any script, no word splitting
    assert ids_on(web, "q=票") == [chinese]  # shorter than a trigram still matches
    assert ids_on(web, "q=INVOICE") == [invoice]  # case-insensitive
    assert ids_on(web, "q=%25") == []  # LIKE wildcards are literal
    assert ids_on(web, "q=invoice&status=pending") == []
    page = web.get("/").text
    assert re.search(r'data-status="pending">pending <span class="n">1</span>', page)


def test_the_list_pages_through_every_ticket_once(web: TestClient, rt: Runtime) -> None:
    made = [new_ticket(rt, subject=f"Question {n}") for n in range(57)]
    signed_in(web, rt)
    first, second = ids_on(web, ""), ids_on(web, "page=2")
    assert len(first) == 50 and sorted(first + second) == sorted(made)
    assert "page 1 of 2" in web.get("/").text
    assert ids_on(web, "page=99") == [] and ids_on(web, "page=-3") == first
    assert ids_on(web, "page=abc") == first


def test_the_ticket_page_shows_the_thread_notes_apart_and_flags(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(
        rt,
        subject="Refund",
        body="Please refund order 9.",
        headers={"Reply-To": "other@example.net"},
    )
    operations.post_reply(
        rt, ticket, "alice@example.com", "Checking with finance.", note=True, source="test"
    )
    operations.post_reply(
        rt, ticket, "alice@example.com", "Refund is on its way.", note=False, source="test"
    )
    signed_in(web, rt)
    page = web.get(f"/tickets/{ticket}").text
    assert page.index("Please refund order 9.") < page.index("Checking with finance.")
    assert re.search(
        r'class="message k-note"[^>]*>\s*<header>\s*<span class="kind">Internal note', page
    )
    assert 'class="message k-reply out"' in page
    assert "Replies to this mail go to other@example.net, not to the sender" in page
    assert "History" in page and "status" in page


def test_held_agent_mail_is_flagged_on_the_page(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    with session_scope(rt.engine) as session:
        session.add(
            Message(
                ticket_id=ticket,
                kind="held",
                fingerprint="f" * 64,
                from_email="bob@example.com",
                text="#status solved",
                flags={"held": "unverified: no valid reply token"},
            )
        )
    signed_in(web, rt)
    assert (
        "Not applied or sent: unverified: no valid reply token"
        in web.get(f"/tickets/{ticket}").text
    )


def test_invalid_commands_change_nothing_and_say_why(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/commands",
        data={"csrf": token, "commands": "#status pending\n#assign nobody-here"},
    )
    assert answer.status_code == 422
    assert "nobody-here" in answer.text and "#status pending" in answer.text  # kept for editing
    assert 'id="ticket-status">new<' in answer.text


def test_an_empty_reply_is_refused_with_a_message(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(f"/tickets/{ticket}/replies", data={"csrf": token, "text": "  "})
    assert answer.status_code == 422 and "empty" in answer.text


def test_unknown_tickets_are_a_page_not_a_traceback(web: TestClient, rt: Runtime) -> None:
    signed_in(web, rt)
    answer = web.get("/tickets/999999")
    assert answer.status_code == 404 and "no ticket 999999" in answer.text
    assert web.get("/tickets/abc").status_code == 422


# --- HTML mail and attachments ----------------------------------------------------------


def html_mail(html: str) -> bytes:
    return (
        "From: Carol <carol@example.org>\r\nTo: support@example.com\r\nSubject: HTML\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()


def test_html_mail_is_served_sanitized_in_a_sandbox_without_remote_images(
    web: TestClient, rt: Runtime
) -> None:
    result = pipeline.ingest(
        rt,
        html_mail(
            '<p onclick="alert(1)">Hi <b>there</b></p><script>alert(2)</script>'
            '<img src="http://tracker.example/pixel.gif"><a href="javascript:alert(3)">x</a>'
        ),
    )
    signed_in(web, rt)
    with session_scope(rt.engine) as session:
        from sqlmodel import select

        pk = session.exec(select(Message.id).where(Message.ticket_id == result.ticket)).one()
    page = web.get(f"/tickets/{result.ticket}").text
    sandbox = 'sandbox="allow-popups allow-popups-to-escape-sandbox"'
    assert f'<iframe class="mail" {sandbox} src="/messages/{pk}/html"' in page
    frame = web.get(f"/messages/{pk}/html")
    assert "<b>there</b>" in frame.text
    for bad in ("onclick", "<script", "alert(2)", "javascript:", "tracker.example"):
        assert bad not in frame.text
    policy = frame.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src data:;" in policy and "sandbox" in policy
    assert "tracker.example" in web.get(f"/messages/{pk}/html?images=1").text


def test_attachments_are_always_downloads_that_cannot_run(web: TestClient, rt: Runtime) -> None:
    raw = (
        b"From: Carol <carol@example.org>\r\nTo: support@example.com\r\nSubject: files\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: text/html\r\n"
        b'Content-Disposition: attachment; filename="evil.html"\r\n\r\n'
        b"<script>alert(document.cookie)</script>\r\n"
        b"--b\r\nContent-Type: image/svg+xml\r\n"
        b'Content-Disposition: attachment; filename="x.svg"\r\n\r\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>\r\n--b--\r\n'
    )
    pipeline.ingest(rt, raw)
    signed_in(web, rt)
    with session_scope(rt.engine) as session:
        from sqlmodel import select

        files = session.exec(select(Attachment)).all()
    assert {f.filename for f in files} == {"evil.html", "x.svg"}
    for row in files:
        answer = web.get(f"/attachments/{row.id}")
        assert answer.status_code == 200
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert row.filename in answer.headers["content-disposition"]
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in answer.headers["content-security-policy"]


# --- the customer's status page -------------------------------------------------------


def test_the_status_page_shows_the_public_conversation_only(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt, subject="Where is my parcel?", body="Order 77 is late.")
    operations.post_reply(
        rt, ticket, "alice@example.com", "VIP; ask bob@example.com", note=True, source="test"
    )
    operations.post_reply(
        rt,
        ticket,
        "alice@example.com",
        "It ships today. alice@example.com",
        note=False,
        source="test",
    )
    page = web.get(f"/status/{links.status_token(rt.secret_key, ticket)}")
    assert page.status_code == 200
    assert "Where is my parcel?" in page.text and "Order 77 is late." in page.text
    assert "It ships today." in page.text
    assert "VIP" not in page.text
    assert "alice@example.com" not in page.text and "bob@example.com" not in page.text


def test_a_status_link_carries_no_ticket_number_and_cannot_be_forged(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt)
    token = links.status_token(rt.secret_key, ticket)
    assert struct.pack(">I", ticket) not in base64.urlsafe_b64decode(token)
    assert links.read_status_token(rt.secret_key, token) == ticket
    forged = links.status_token(b"another secret key!!", ticket)
    for bad in (forged, token[:-1], token[:-1] + ("A" if token[-1] != "A" else "B"), "1"):
        answer = web.get(f"/status/{bad}")
        assert answer.status_code == 404 and "not valid" in answer.text


def test_a_status_page_reply_takes_the_email_path_onto_the_ticket(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt, subject="Broken zipper", body="The zipper broke.")
    token = links.status_token(rt.secret_key, ticket)
    csrf = csrf_of(web, f"/status/{token}")
    answer = web.post(
        f"/status/{token}/reply",
        data={"csrf": csrf, "text": "Photo to follow."},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    from inboxd.db import session_scope as scope
    from inboxd.queues import spool

    rows = spool.claim(rt.engine)
    assert len(rows) == 1 and rows[0].source == "web:status"
    with scope(rt.engine) as session:
        from inboxd.models import RawMessage

        raw = session.get(RawMessage, rows[0].raw_sha256)
        assert raw is not None
        data = raw.data
    result = pipeline.ingest(rt, data, "web:status", spool_id=rows[0].id)
    assert result.ticket == ticket and result.result == "appended"
    assert "Photo to follow." in web.get(f"/status/{token}").text


# --- reports ---------------------------------------------------------------------------


def test_reports_page_shows_figures_definitions_and_script_free_charts(
    rt: Runtime, web: TestClient
) -> None:
    new_ticket(rt)
    operations.post_reply(rt, 1, "alice@example.com", "On it.", note=False, source="web")
    assert web.get("/reports", follow_redirects=False).status_code == 303  # agents only
    signed_in(web, rt)
    page = web.get("/reports?since=7d")
    assert page.status_code == 200
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert 'id="fig-created"' in page.text and "Tickets opened in the period." in page.text
    images = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page.text)
    assert len(images) >= 6
    assert all(b"<script" not in base64.b64decode(i) for i in images)
    assert "alice@example.com" in page.text  # the per-agent table
    bad = web.get("/reports?since=soon")
    assert bad.status_code == 400 and "a period like 30d" in bad.text


def test_the_ticket_page_shows_each_sla_target_with_its_due_time(tmp_path: Path) -> None:
    from conftest import make_config

    from inboxd.runtime import open_runtime

    rt = open_runtime(make_config(tmp_path, sla=[{"name": "standard", "first_reply": "4h"}]))
    client = TestClient(create_app(rt, Metrics()), base_url=BASE)
    ticket = new_ticket(rt, subject="Where is my parcel?")
    signed_in(client, rt)
    page = client.get(f"/tickets/{ticket}").text
    assert "Service level: standard" in page and "Calendar time (24x7), UTC" in page
    assert 'data-target="first_reply">active · due <time datetime="' in page
    assert "of 240 min used" in page
    rt.engine.dispose()
