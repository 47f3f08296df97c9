"""Tickets on a customer's behalf (SPEC §10.7): `inboxd ticket new`, the web's "New
ticket", `POST /api/v1/tickets`. The customer is the requester and gets every reply; the
agent is the submitter; `--notify` sends one mail that threads the customer's answer
onto the ticket, and without it nothing is sent; the first reply time of such a ticket
starts at the customer's own first message."""

from __future__ import annotations

import json
import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_harness import listening, wait_until
from fastapi.testclient import TestClient
from mailbuilder import mail, new_msgid
from relay import CaptureRelay
from sqlmodel import Session, col, select
from test_web import BASE, signed_in
from typer.testing import CliRunner

from cli.main import app
from inboxd.agents import directory, new_ticket, operations
from inboxd.customers.profiles import customer_for
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Message, Outbound, Ticket
from inboxd.runtime import Runtime
from inboxd.tickets import queries
from inboxd.web.app import create_app
from inboxd.workflow import reports, sla
from inboxd.workflow.periods import Period
from inboxd.workflow.timelines import Timeline

CAROL = "carol@example.org"


def _call(rt: Runtime, *, notify: bool, **kw: str) -> dict[str, object]:
    request = new_ticket.NewTicket(
        kw.get("requester", CAROL),
        kw.get("subject", "Refund for order 1234"),
        kw.get("text", "Parcel arrived broken; wants a refund."),
        kw.get("note", ""),
        kw.get("name", "Carol Lee"),
        kw.get("channel", "phone"),
        notify,
    )
    return new_ticket.open_for_customer(rt, request, "alice@example.com", "cli")


def _mail_to(rt: Runtime, address: str) -> list[Outbound]:
    with Session(rt.engine) as session:
        rows = session.exec(select(Outbound).order_by(col(Outbound.id))).all()
        return [r for r in rows if address in r.rcpt_to]


def test_a_logged_call_records_requester_submitter_and_channel(sqlite_rt: Runtime) -> None:
    data = _call(sqlite_rt, notify=False)
    assert data["requester"] == CAROL and data["submitter"] == "alice@example.com"
    assert data["channel"] == "phone" and data["notified"] is None
    (message,) = data["messages"]  # type: ignore[misc]
    assert message["from"] == "alice@example.com" and message["kind"] == "reply"
    with Session(sqlite_rt.engine) as session:
        carol = customer_for(session, CAROL)
        assert carol is not None and carol.name == "Carol Lee"
        assert carol.name_source == "agent"
        history = [e.type for e in queries.events_of(session, int(data["id"]))]  # type: ignore[call-overload]
    assert history[:2] == ["created", "logged"]


def test_without_notify_nothing_reaches_the_customer_and_with_it_exactly_one_mail(
    sqlite_rt: Runtime,
) -> None:
    quiet = _call(sqlite_rt, notify=False)
    assert _mail_to(sqlite_rt, CAROL) == []
    told = _call(sqlite_rt, notify=True, subject="Second call")
    (sent,) = _mail_to(sqlite_rt, CAROL)
    assert sent.ticket_id == told["id"] and sent.purpose == "logged_call"
    assert sent.message_id == told["notified"]
    assert quiet["id"] != told["id"]
    text = sent.raw.decode("utf-8", "replace")
    assert "Hello Carol Lee," in text and "thank you for your call" in text
    assert f"ticket #{told['id']}" in text and "/status/" in text
    assert "Reply-To: " in text and "support+" in text


def test_the_logged_call_mail_never_says_hi_comma_to_a_nameless_customer(
    sqlite_rt: Runtime,
) -> None:
    _call(sqlite_rt, notify=True, name="", requester="anon@example.net", channel="walk-in")
    (sent,) = _mail_to(sqlite_rt, "anon@example.net")
    text = sent.raw.decode("utf-8", "replace")
    assert "Hello," in text and "Hello ," not in text and "your visit" in text


def test_replies_on_a_caller_ticket_go_to_the_requester_never_the_submitter(
    sqlite_rt: Runtime,
) -> None:
    data = _call(sqlite_rt, notify=False)
    operations.post_reply(
        sqlite_rt,
        int(data["id"]),
        "bob@example.com",
        "Refund sent.",
        note=False,
        source="cli",  # type: ignore[call-overload]
    )
    with Session(sqlite_rt.engine) as session:
        (reply,) = session.exec(select(Outbound).where(Outbound.purpose == "reply")).all()
    assert reply.rcpt_to == [CAROL]
    assert "alice@example.com" not in reply.rcpt_to


@pytest.mark.parametrize(
    ("args", "flag", "allowed"),
    [
        (["--channel", "fax"], "--channel", "phone, email, web, chat, walk-in, other"),
        (["--for", "not-an-address"], "--for", "customer's email address"),
    ],
)
def test_ticket_new_refuses_bad_values_with_exit_2_naming_the_allowed_ones(
    tmp_path: Path, args: list[str], flag: str, allowed: str
) -> None:
    base = [
        "ticket",
        "new",
        "--for",
        CAROL,
        "--subject",
        "x",
        "--config",
        str(tmp_path / "no.toml"),
    ]
    result = CliRunner().invoke(app, [*base, *args])
    assert result.exit_code == 2
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())  # typer's box, unwrapped
    assert flag in said and allowed in said


def test_ticket_new_from_the_cli_prints_the_number_and_the_json(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.toml"
    assert CliRunner().invoke(app, ["init", "--config", str(path)]).exit_code == 0
    args = ["ticket", "new", "--config", str(path), "--for", CAROL, "--subject", "Call back"]
    done = CliRunner().invoke(
        app, [*args, "--note", "Wants a call at 5.", "--as", "alice@example.com"]
    )
    assert done.exit_code == 0 and done.stdout.startswith("#1 opened for carol@example.org (phone)")
    assert "nothing was sent" in done.stdout
    done = CliRunner().invoke(app, [*args, "--channel", "chat", "--notify", "--json"])
    data = json.loads(done.stdout)
    assert data["channel"] == "chat" and data["notified"]
    done = CliRunner().invoke(app, [*args, "--for", "alice@example.com"])
    assert done.exit_code == 2 and "is an agent" in done.stderr


def test_the_api_and_the_web_form_open_the_same_kind_of_ticket(rt: Runtime) -> None:
    client = TestClient(create_app(rt, Metrics()), base_url=BASE)
    with session_scope(rt.engine) as session:
        token = directory.issue_api_token(session, "bob@example.com")
    body = {
        "for": CAROL,
        "subject": "Chat about invoices",
        "text": "Asked for a copy.",
        "channel": "chat",
    }
    answer = client.post("/api/v1/tickets", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["submitter"] == "bob@example.com" and answer.json()["channel"] == "chat"
    refused = client.post(
        "/api/v1/tickets",
        json={**body, "channel": "fax"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 422
    csrf = signed_in(client, rt)
    assert "New ticket for a customer" in client.get("/tickets/new").text
    form = {
        "csrf": csrf,
        "requester": "dan@example.net",
        "subject": "Walked in",
        "channel": "walk-in",
    }
    posted = client.post("/tickets/new", data={**form, "notify": "true"}, follow_redirects=False)
    assert posted.status_code == 303
    ticket_id = int(posted.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/tickets/{ticket_id}").text
    assert "Logged by" in page and "walk-in" in page
    assert len(_mail_to(rt, "dan@example.net")) == 1
    bad = client.post("/tickets/new", data={**form, "requester": "nobody"}, follow_redirects=False)
    assert bad.status_code == 422 and "customer&#39;s email address" in bad.text


# --- first reply time of a logged call (SPEC §10.7) --------------------------------------

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = sla.Policy("any", (), None, {"first_reply": timedelta(hours=4)}, frozenset(), None)


def _logged(customer_at: list[datetime], replies: list[datetime]) -> Timeline:
    t = Timeline(1, created_at=T0, logged_by="alice@example.com", channel="phone")
    t.customer_messages = customer_at
    t.replies = [(at, "bob@example.com") for at in replies]
    t.statuses = []
    return t


def test_a_logged_calls_first_reply_clock_starts_with_the_customers_first_message() -> None:
    never = _logged([], [T0 + timedelta(minutes=5)])
    assert sla.targets(POLICY, never, T0 + timedelta(days=2)) == []
    wrote = _logged([T0 + timedelta(hours=6)], [T0 + timedelta(minutes=5), T0 + timedelta(hours=7)])
    (clock,) = sla.targets(POLICY, wrote, T0 + timedelta(days=2))
    assert clock.cycle == T0 + timedelta(hours=6) and clock.achieved_at == T0 + timedelta(hours=7)
    assert clock.state == "achieved"


def test_reports_count_a_logged_call_from_the_customers_first_message_or_not_at_all() -> None:
    period = Period(T0 - timedelta(days=1), T0 + timedelta(days=3), "UTC")
    never = _logged([], [T0 + timedelta(minutes=5)])
    wrote = _logged([T0 + timedelta(hours=6)], [T0 + timedelta(minutes=5), T0 + timedelta(hours=7)])
    figures = reports.compute([never, wrote], period)["figures"]["first_reply"]
    assert figures["count"] == 1 and figures["unanswered"] == 0
    assert figures["median_minutes"] == 60
    by = reports.compute_by([never, wrote], period, "channel", None)
    assert set(by) == {"phone"}


# --- end to end: a real daemon, a real relay ---------------------------------------------


@pytest.fixture
def relay() -> Iterator[CaptureRelay]:
    with CaptureRelay() as running:
        yield running


def test_the_customers_answer_to_the_logged_call_mail_threads_onto_the_ticket(
    tmp_path: Path, relay: CaptureRelay
) -> None:
    with listening(tmp_path, relay, outbound={"retry_seconds": 0.2}) as (rt, daemon):
        quiet = _call(rt, notify=False, subject="No mail for this one")
        told = _call(rt, notify=True)
        daemon.wake_outbound()
        # The agents hear of both tickets; the customer of the one with --notify only.
        wait_until(lambda: len(relay.to("bob@example.com")) >= 2, what="notifications to bob")
        (logged_mail,) = wait_until(lambda: relay.to(CAROL), what="the logged-call mail")
        assert f"[#{told['id']}]" in str(logged_mail.message["Subject"])
        reply_to = logged_mail.message["Reply-To"].addresses[0].addr_spec
        answer = mail(
            sender=f"Carol Lee <{CAROL}>",
            to=reply_to,
            subject=f"Re: {logged_mail.message['Subject']}",
            in_reply_to=logged_mail.message_id,
            references=[logged_mail.message_id],
            message_id=new_msgid(),
            body="Thanks! The order number is 1234.\n",
        )
        with smtplib.SMTP(*daemon.smtp_address, timeout=30) as smtp:
            smtp.sendmail(CAROL, [reply_to], answer)

        def threaded() -> list[Message]:
            with Session(rt.engine) as session:
                return list(
                    session.exec(
                        select(Message).where(
                            Message.ticket_id == told["id"], Message.kind == "customer"
                        )
                    )
                )

        (carols,) = wait_until(threaded, what="the customer's answer on the ticket")
        assert carols.threaded_by == "token" and "1234" in carols.text
        with Session(rt.engine) as session:
            assert session.exec(select(Ticket)).all().__len__() == 2
        assert len(relay.to(CAROL)) == 1  # one mail, for the ticket with --notify
        assert quiet["id"] != told["id"]
