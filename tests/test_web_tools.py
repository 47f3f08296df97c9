"""The web's everyday tools (issue 16 item 9), over HTTP against the real app: bulk
actions on the list, the macro picker, CC and attachments in the reply box, split and
move of one message, a confirmation after each command, and releasing held agent mail.
The browser tests (test_browser_tools.py) click the same forms in Chromium.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message as MailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mailbuilder import mail, plain_text
from sqlmodel import col, select
from test_web import BASE, new_ticket, signed_in

from inboxd import pipeline
from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Attachment, Message, Outbound, Participant
from inboxd.runtime import Runtime
from inboxd.tickets.queries import get_ticket
from inboxd.web.app import create_app
from inboxd.web.flash import FLASH_COOKIE
from inboxd.web.macro_picker import with_macro


def client(rt: Runtime) -> TestClient:
    """A browser that stops at each redirect, so the next GET is the page that shows the
    confirmation (the followed redirect would show it, and spend it, itself)."""
    return TestClient(create_app(rt, Metrics()), base_url=BASE, follow_redirects=False)


@pytest.fixture
def web(rt: Runtime) -> TestClient:
    return client(rt)


def status_of(rt: Runtime, ticket: int) -> str:
    with session_scope(rt.engine) as session:
        return get_ticket(session, ticket).status


def flash_lines(html: str) -> list[str]:
    found = re.search(r'<section class="flash".*?</section>', html, re.S)
    if not found:
        return []
    return [re.sub(r"<[^>]+>", "", li).strip() for li in re.findall(r"<li.*?</li>", found[0], re.S)]


def mails_to(rt: Runtime, address: str, purpose: str = "reply") -> list[MailMessage]:
    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(Outbound).where(Outbound.purpose == purpose).order_by(col(Outbound.id))
        ).all()
    return [message_from_bytes(r.raw) for r in rows if address in r.rcpt_to]


# --- bulk actions ----------------------------------------------------------------------


def test_bulk_runs_one_block_on_each_selected_ticket_and_reports_each(
    web: TestClient, rt: Runtime
) -> None:
    first, second, untouched = (new_ticket(rt, subject=f"Order {n}") for n in (1, 2, 3))
    token = signed_in(web, rt)
    answer = web.post(
        "/tickets/bulk",
        data={"csrf": token, "ids": [str(first), str(second)], "typed": "#status pending\n#tag b"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    lines = flash_lines(web.get("/").text)
    assert lines[0].endswith("2 of 2 tickets done.")
    assert any(line.startswith(f"#{first}: ") and "pending" in line for line in lines)
    assert any(line.startswith(f"#{second}: ") and "pending" in line for line in lines)
    assert [status_of(rt, t) for t in (first, second, untouched)] == ["pending", "pending", "new"]
    assert flash_lines(web.get("/").text) == []  # shown once


def test_bulk_is_atomic_per_ticket_a_refusing_ticket_keeps_its_state(
    web: TestClient, rt: Runtime
) -> None:
    """SPEC §6 atomic, per ticket: #merge into itself refuses on that ticket only."""
    target, other = new_ticket(rt, subject="Target"), new_ticket(rt, subject="Other")
    token = signed_in(web, rt)
    web.post(
        "/tickets/bulk",
        data={"csrf": token, "ids": [str(target), str(other)], "typed": f"#high\n#merge {target}"},
    )
    lines = flash_lines(web.get("/").text)
    assert lines[0].endswith("1 of 2 tickets done.")
    refused = next(line for line in lines if line.startswith(f"#{target}: not changed"))
    assert f"#merge {target}" in refused
    with session_scope(rt.engine) as session:
        assert get_ticket(session, target).priority == "normal"  # nothing of its block
        assert get_ticket(session, other).merged_into == target


def test_bulk_buttons_post_their_command_and_enter_runs_the_typed_text(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    page = web.get("/").text
    form = page[page.index('id="bulk"') : page.index("</form>", page.index('id="bulk"'))]
    # The first submit button is Run, so Enter in the field never presses "Assign to me".
    assert form.index('id="bulk-run"') < form.index('name="quick"')
    assert f'value="{ticket}" form="bulk"' in page
    web.post("/tickets/bulk", data={"csrf": token, "ids": [str(ticket)], "quick": "#assign me"})
    with session_scope(rt.engine) as session:
        assert get_ticket(session, ticket).assignee_id is not None


def test_bulk_without_selection_or_commands_changes_nothing_and_says_so(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    web.post("/tickets/bulk", data={"csrf": token, "typed": "#status solved"})
    assert flash_lines(web.get("/").text) == ["Select at least one ticket."]
    web.post("/tickets/bulk", data={"csrf": token, "ids": [str(ticket)], "typed": " "})
    assert "Type the commands" in flash_lines(web.get("/").text)[0]
    web.post("/tickets/bulk", data={"csrf": token, "ids": [str(ticket)], "typed": "#stauts x"})
    assert "unknown command #stauts" in " ".join(flash_lines(web.get("/").text))
    assert status_of(rt, ticket) == "new"


def test_bulk_returns_to_the_filtered_list_never_elsewhere(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    for back, expected in (("/?status=new", "/?status=new"), ("//evil.example", "/")):
        answer = web.post(
            "/tickets/bulk",
            data={"csrf": token, "ids": [str(ticket)], "typed": "#tag x", "back": back},
            follow_redirects=False,
        )
        assert answer.headers["location"] == expected


def test_select_all_checks_every_row_of_the_page(web: TestClient, rt: Runtime) -> None:
    for n in range(3):
        new_ticket(rt, subject=f"T{n}")
    signed_in(web, rt)
    assert web.get("/").text.count('form="bulk" ') == 3
    page = web.get("/?select=all").text
    assert len(re.findall(r'form="bulk"[^>]*checked', page)) == 3
    assert 'id="select-none"' in page


# --- the flash confirmation ------------------------------------------------------------


def test_a_command_from_the_ticket_page_confirms_what_changed(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/commands",
        data={"csrf": token, "commands": "#status pending\n#priority high"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert FLASH_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = web.get(f"/tickets/{ticket}").text
    lines = flash_lines(page)
    assert any("pending" in line for line in lines) and any("high" in line for line in lines)


def test_a_forged_or_foreign_flash_cookie_shows_nothing(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    web.post(f"/tickets/{ticket}/commands", data={"csrf": token, "commands": "#tag a"})
    genuine = web.cookies.get(FLASH_COOKIE)
    assert genuine
    payload, _, mac = genuine.rpartition(".")
    web.cookies.set(FLASH_COOKIE, payload[:-4] + "AAAA." + mac)
    assert flash_lines(web.get("/").text) == []
    # Another browser (another sign-in session) cannot replay it either.
    other = client(rt)
    signed_in(other, rt, "alice@example.com")
    other.cookies.set(FLASH_COOKIE, genuine)
    assert flash_lines(other.get("/").text) == []


def test_flash_text_is_escaped(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    web.post(
        f"/tickets/{ticket}/commands",
        data={"csrf": token, "commands": '#subject "<img src=x onerror=alert(1)>"'},
    )
    page = web.get(f"/tickets/{ticket}").text
    assert "<img src=x" not in page and "&lt;img src=x" in page


# --- the reply box: macros, CC, attachments --------------------------------------------


def test_the_macro_picker_lists_bundled_and_configured_macros(tmp_path: Path) -> None:
    from conftest import make_config

    from inboxd.runtime import open_runtime

    (tmp_path / "tpl" / "macros").mkdir(parents=True)
    (tmp_path / "tpl" / "macros" / "refund-sent.txt").write_text(
        "#status solved\n#tag refund\nYour refund is on its way.\n", encoding="utf-8"
    )
    rt = open_runtime(make_config(tmp_path, inboxd={"templates_dir": str(tmp_path / "tpl")}))
    web = client(rt)
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    page = web.get(f"/tickets/{ticket}").text
    assert 'value="refund-sent"' in page and 'value="thanks"' in page
    draft = web.post(
        f"/tickets/{ticket}/replies",
        data={
            "csrf": token,
            "insert": "1",
            "macro": "refund-sent",
            "text": "Hi Carol,",
            "cc": "d@example.org",
        },
    )
    assert draft.status_code == 200
    box = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', draft.text, re.S)
    assert box is not None
    assert box[1] == "#status solved\n#tag refund\n\nHi Carol,\n\nYour refund is on its way."
    assert 'value="d@example.org"' in draft.text  # the rest of the draft is kept
    assert status_of(rt, ticket) == "new" and not mails_to(rt, "carol@example.org")
    # Sending the draft runs its command lines and sends the text, as a reply by mail does.
    web.post(
        f"/tickets/{ticket}/replies", data={"csrf": token, "text": box[1].replace("&#34;", '"')}
    )
    assert status_of(rt, ticket) == "solved"
    (sent,) = mails_to(rt, "carol@example.org")
    body = plain_text(sent)
    assert "Your refund is on its way." in body and "#status" not in body


def test_an_unknown_macro_is_a_clear_refusal(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/replies",
        data={"csrf": token, "insert": "1", "macro": "../../etc/passwd", "text": "kept"},
    )
    assert answer.status_code == 422 and "choose one from the list" in answer.text
    assert ">kept</textarea>" in answer.text


def test_with_macro_puts_every_command_line_at_the_top() -> None:
    assert with_macro("", "Thanks!") == "Thanks!"
    assert with_macro("#high\nHello", "#tag x\nThanks!") == "#high\n#tag x\n\nHello\n\nThanks!"


def test_a_refused_command_line_in_the_reply_sends_nothing(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/replies",
        data={
            "csrf": token,
            "text": "#status pending\n#assign nobody-here\nHello",
            "cc": "x@y.org",
        },
    )
    assert answer.status_code == 422 and "nobody-here" in answer.text
    assert "Hello</textarea>" in answer.text and 'value="x@y.org"' in answer.text
    assert status_of(rt, ticket) == "new" and not mails_to(rt, "carol@example.org")


def test_cc_and_attachments_go_out_on_the_relayed_reply(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/replies",
        data={"csrf": token, "text": "Invoice attached.", "cc": "dan@example.net; eve@example.org"},
        files=[
            ("files", ("invoice 1042.pdf", b"%PDF-1.4 fake", "application/pdf")),
            ("files", ("../../notes.txt", "Grüße".encode(), "text/plain")),
        ],
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    (sent,) = mails_to(rt, "carol@example.org")
    assert "dan@example.net" in sent["Cc"] and "eve@example.org" in sent["Cc"]
    files = {p.get_filename(): p.get_payload(decode=True) for p in sent.walk() if p.get_filename()}
    assert files == {"invoice 1042.pdf": b"%PDF-1.4 fake", "notes.txt": "Grüße".encode()}
    with session_scope(rt.engine) as session:
        stored = session.exec(select(Attachment)).all()
        assert sorted(a.filename for a in stored) == ["invoice 1042.pdf", "notes.txt"]
        ccs = session.exec(
            select(Participant.email).where(
                Participant.ticket_id == ticket, Participant.role == "cc"
            )
        ).all()
        assert set(ccs) == {"dan@example.net", "eve@example.org"}  # the ticket's CCs now
    page = web.get(f"/tickets/{ticket}").text
    assert "Reply sent to the customer with 2 attachments." in flash_lines(page)
    assert "invoice 1042.pdf" in page  # listed on the message, downloadable


def test_attachments_over_the_cap_are_refused_whole_with_the_limit(tmp_path: Path) -> None:
    from conftest import make_config

    from inboxd.runtime import open_runtime

    rt = open_runtime(make_config(tmp_path, web={"max_upload_bytes": 1000}))
    web = client(rt)
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    answer = web.post(
        f"/tickets/{ticket}/replies",
        data={"csrf": token, "text": "Two files."},
        files=[("files", ("a.bin", b"a" * 600, "application/octet-stream")),
               ("files", ("b.bin", b"b" * 600, "application/octet-stream"))],
    )  # fmt: skip
    assert answer.status_code == 422
    assert (
        "too large" in answer.text and "b.bin" in answer.text and "max_upload_bytes" in answer.text
    )
    assert ">Two files.</textarea>" in answer.text
    assert not mails_to(rt, "carol@example.org")
    with session_scope(rt.engine) as session:
        assert not session.exec(select(Message).where(Message.kind == "reply")).all()


def test_an_empty_file_field_is_no_attachment(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    token = signed_in(web, rt)
    web.post(
        f"/tickets/{ticket}/replies",
        data={"csrf": token, "text": "No file."},
        files=[("files", ("", b"", "application/octet-stream"))],
    )
    (sent,) = mails_to(rt, "carol@example.org")
    assert not [part for part in sent.walk() if part.get_filename() is not None]
    assert "No file." in plain_text(sent)


# --- split and move ----------------------------------------------------------------------


def two_message_ticket(rt: Runtime) -> tuple[int, int]:
    """A ticket whose second message is really a new question; returns (ticket, its pk)."""
    first = mail(subject="Order 1042", message_id="<a@example.org>", body="Where is it?")
    ticket = pipeline.ingest(rt, first).ticket
    assert ticket is not None
    second = mail(
        subject="Re: Order 1042",
        in_reply_to="<a@example.org>",
        message_id="<b@example.org>",
        body="Also: my invoice has the wrong VAT number.",
    )
    assert pipeline.ingest(rt, second).ticket == ticket
    with session_scope(rt.engine) as session:
        pk = session.exec(select(Message.id).where(Message.message_id == "<b@example.org>")).one()
    assert pk is not None
    return ticket, pk


def test_split_from_the_web_moves_the_message_into_a_new_ticket(
    web: TestClient, rt: Runtime
) -> None:
    ticket, pk = two_message_ticket(rt)
    token = signed_in(web, rt)
    assert f"/tickets/{ticket}/messages/{pk}/split" in web.get(f"/tickets/{ticket}").text
    web.post(f"/tickets/{ticket}/messages/{pk}/split", data={"csrf": token})
    with session_scope(rt.engine) as session:
        moved = session.get(Message, pk)
        assert moved is not None and moved.ticket_id != ticket
        new = get_ticket(session, moved.ticket_id)
        assert new.requester == "carol@example.org"
    page = web.get(f"/tickets/{ticket}").text
    assert any(f"split out into #{new.id}" in line for line in flash_lines(page))
    assert "wrong VAT number" not in page.split('id="flash"')[-1]
    # A later reply to the moved message follows it (SPEC §6 #split, as by mail).
    reply = mail(subject="Re: Order 1042", in_reply_to="<b@example.org>", body="VAT is DE1.")
    assert pipeline.ingest(rt, reply).ticket == new.id


def test_move_from_the_web_and_its_refusals(web: TestClient, rt: Runtime) -> None:
    ticket, pk = two_message_ticket(rt)
    other = new_ticket(rt, subject="Invoice VAT", sender="Carol <carol@example.org>")
    token = signed_in(web, rt)
    web.post(f"/tickets/{ticket}/messages/{pk}/move", data={"csrf": token, "to": "abc"})
    assert "Give the number" in flash_lines(web.get(f"/tickets/{ticket}").text)[0]
    web.post(f"/tickets/{ticket}/messages/{pk}/move", data={"csrf": token, "to": "999999"})
    assert flash_lines(web.get(f"/tickets/{ticket}").text)[0].startswith("#move 999999:")
    web.post(f"/tickets/{ticket}/messages/{pk}/move", data={"csrf": token, "to": f"#{other}"})
    with session_scope(rt.engine) as session:
        assert session.get(Message, pk).ticket_id == other  # type: ignore[union-attr]
    # The message is named together with its ticket: another ticket's message is a 404.
    answer = web.post(f"/tickets/{ticket}/messages/{pk}/split", data={"csrf": token})
    assert answer.status_code == 404


# --- held agent mail ---------------------------------------------------------------------


def held_reply(rt: Runtime, ticket: int, sender: str = "Bob <bob@example.com>") -> int:
    """Bob answers by mail without his reply token: held as unverified (SPEC §6 Trust)."""
    raw = mail(
        sender=sender,
        subject=f"Re: [#{ticket}] Help needed",
        body="#status pending\n\nWe are looking into it, Carol.\n",
    )
    assert pipeline.ingest(rt, raw).ticket == ticket
    with session_scope(rt.engine) as session:
        held = session.exec(select(Message).where(Message.kind == "held")).one()
    assert str(held.flags["held"]).startswith("unverified")
    assert held.id is not None
    return held.id


def test_the_agent_releases_their_held_mail_and_it_runs_as_by_mail(
    web: TestClient, rt: Runtime
) -> None:
    ticket = new_ticket(rt)
    pk = held_reply(rt, ticket)
    token = signed_in(web, rt, "bob@example.com")
    page = web.get(f"/tickets/{ticket}").text
    assert f"/tickets/{ticket}/messages/{pk}/release" in page
    web.post(f"/tickets/{ticket}/messages/{pk}/release", data={"csrf": token})
    assert status_of(rt, ticket) == "pending"
    (sent,) = mails_to(rt, "carol@example.org")
    assert "We are looking into it" in plain_text(sent)
    page = web.get(f"/tickets/{ticket}").text
    assert any("released" in line for line in flash_lines(page))
    assert "Released by bob@example.com" in page and "held agent mail released" in page
    # Released once: the button is gone and a second post changes nothing.
    assert f"/messages/{pk}/release" not in page
    web.post(f"/tickets/{ticket}/messages/{pk}/release", data={"csrf": token})
    assert "Not released" in flash_lines(web.get(f"/tickets/{ticket}").text)[0]
    assert len(mails_to(rt, "carol@example.org")) == 1


def test_only_that_agent_or_an_admin_may_release_held_mail(tmp_path: Path) -> None:
    from conftest import make_config

    from inboxd.runtime import open_runtime

    agents = [
        {"email": "alice@example.com", "name": "Alice", "role": "admin"},
        {"email": "bob@example.com", "name": "Bob", "role": "agent"},
        {"email": "cleo@example.com", "name": "Cleo", "role": "agent"},
    ]
    rt = open_runtime(make_config(tmp_path, agents=agents))  # type: ignore[arg-type]
    ticket = new_ticket(rt)
    pk = held_reply(rt, ticket)
    cleo = client(rt)
    token = signed_in(cleo, rt, "cleo@example.com")
    assert "/release" not in cleo.get(f"/tickets/{ticket}").text
    cleo.post(f"/tickets/{ticket}/messages/{pk}/release", data={"csrf": token})
    assert (
        "only the agent the mail is from, or an admin"
        in flash_lines(cleo.get(f"/tickets/{ticket}").text)[0]
    )
    assert status_of(rt, ticket) == "new"
    alice = client(rt)
    token = signed_in(alice, rt, "alice@example.com")
    assert "/release" in alice.get(f"/tickets/{ticket}").text
    alice.post(f"/tickets/{ticket}/messages/{pk}/release", data={"csrf": token})
    assert status_of(rt, ticket) == "pending"


def test_mail_held_for_invalid_commands_is_not_releasable(web: TestClient, rt: Runtime) -> None:
    ticket = new_ticket(rt)
    with session_scope(rt.engine) as session:
        session.add(
            Message(
                ticket_id=ticket,
                kind="held",
                fingerprint="e" * 64,
                from_email="bob@example.com",
                text="#stauts pending",
                flags={"held": "invalid command block"},
            )
        )
    token = signed_in(web, rt, "bob@example.com")
    assert "/release" not in web.get(f"/tickets/{ticket}").text
    with session_scope(rt.engine) as session:
        pk = session.exec(select(Message.id).where(Message.kind == "held")).one()
    web.post(f"/tickets/{ticket}/messages/{pk}/release", data={"csrf": token})
    assert "only a mail held as unverified" in flash_lines(web.get(f"/tickets/{ticket}").text)[0]


def test_run_bulk_reports_an_unknown_ticket_without_stopping(rt: Runtime) -> None:
    ticket = new_ticket(rt)
    outcomes = operations.run_bulk(rt, [999_999, ticket], "#tag x", "bob@example.com", "web")
    assert outcomes[0].errors and not outcomes[0].changes
    assert outcomes[1].changes and not outcomes[1].errors
