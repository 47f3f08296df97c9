"""Satisfaction surveys (SPEC §10.4): sent once after a solve, answered by reply, and a
two-step link that mail scanners cannot vote through."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config
from fastapi.testclient import TestClient
from mailbuilder import mail
from sqlmodel import select

from inboxd import pipeline
from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Event, Outbound, utcnow
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import links, queries
from inboxd.web.app import create_app
from inboxd.web.csat_page import PURPOSE
from inboxd.web.security import page_nonce
from inboxd.workflow import clock
from inboxd.workflow.csat import parse_rating

ALICE = "alice@example.com"
CAROL = "carol@example.org"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 太慢了", ("2", "太慢了")),
        ("５\nfast and kind", ("5", "fast and kind")),
        ("4/5 thanks", ("4", "thanks")),
        ("满意\n谢谢你们", ("good", "谢谢你们")),
        ("不满意，等了三天", ("bad", "等了三天")),
        ("不滿意", ("bad", "")),
        ("👍", ("good", "")),
        ("Good job, thank you", ("good", "job, thank you")),
        ("bad: nobody called me back", ("bad", "nobody called me back")),
        ("schlecht", ("bad", "")),
        ("goodbye and thanks", None),
        ("Hello, I have another question", None),
        ("", None),
    ],
)
def test_a_rating_is_read_from_the_first_line_and_the_rest_is_a_comment(
    text: str, expected: tuple[str, str] | None
) -> None:
    assert parse_rating(text) == expected


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(make_config(tmp_path, csat={"enabled": True, "after": "24h"}))
    yield runtime
    runtime.engine.dispose()


def tick(rt: Runtime, later: timedelta = timedelta()) -> clock.TickResult:
    with rt.write_lock, session_scope(rt.engine) as session:
        return clock.tick(rt, session, utcnow() + later)


def solved_ticket(rt: Runtime, subject: str = "订单 1042 还没到") -> int:
    result = pipeline.ingest(
        rt, mail(subject=subject, body="我的订单还没到，请帮忙查一下。"), "test"
    )
    assert result.ticket is not None
    operations.post_reply(rt, result.ticket, ALICE, "It ships today.", note=False, source="api")
    operations.run_commands(rt, result.ticket, "#status solved", ALICE, "cli")
    return result.ticket


def surveys(rt: Runtime) -> list[Outbound]:
    with session_scope(rt.engine) as session:
        return list(session.exec(select(Outbound).where(Outbound.purpose == "csat")))


def events(rt: Runtime, ticket_id: int, kind: str) -> list[Event]:
    with session_scope(rt.engine) as session:
        rows = session.exec(select(Event).where(Event.ticket_id == ticket_id, Event.type == kind))
        return list(rows)


def test_a_survey_goes_once_after_the_delay_in_the_customers_language(rt: Runtime) -> None:
    ticket_id = solved_ticket(rt)
    tick(rt, timedelta(hours=23))
    assert surveys(rt) == []
    tick(rt, timedelta(hours=25))
    tick(rt, timedelta(hours=26))
    (survey,) = surveys(rt)
    assert survey.rcpt_to == [CAROL]
    msg = message_from_bytes(survey.raw, policy=default_policy)
    assert "您对我们的服务满意吗" in str(msg["Subject"]) and f"[#{ticket_id}]" in str(
        msg["Subject"]
    )
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "第一行写「满意」或「不满意」" in text and "/csat/" in text
    assert str(msg["Auto-Submitted"]) == "auto-generated"
    # SPEC §7: like every mail to a customer, it links the request's status page.
    base = rt.config.inboxd.web_base_url
    assert text.rstrip().endswith(links.status_url(base, rt.secret_key, ticket_id))


def test_a_reopened_ticket_gets_no_survey_and_a_customer_no_second_within_a_week(
    rt: Runtime,
) -> None:
    first = solved_ticket(rt)
    operations.run_commands(rt, first, "#status open", ALICE, "cli")
    tick(rt, timedelta(hours=25))
    assert surveys(rt) == []
    assert [e.to_value for e in events(rt, first, "csat_skipped")] == ["no longer solved"]
    second = solved_ticket(rt, "Another question")
    third = solved_ticket(rt, "And another one")
    tick(rt, timedelta(hours=25))
    assert len(surveys(rt)) == 1
    skipped = events(rt, second, "csat_skipped") + events(rt, third, "csat_skipped")
    assert [e.to_value for e in skipped] == ["the customer had a survey in the last 7 days"]


def reply_to_survey(rt: Runtime, text: str, *, forged: bool = False) -> None:
    survey = message_from_bytes(surveys(rt)[-1].raw, policy=default_policy)
    token = survey["Reply-To"].addresses[0].addr_spec
    to = "support@example.com" if forged else token
    raw = mail(sender=f"Carol <{CAROL}>", to=to, subject=f"Re: {survey['Subject']}", body=text)
    pipeline.ingest(rt, raw, "test", envelope_to=(to,))


def test_a_reply_2_too_slow_records_2_with_the_comment_and_does_not_reopen(rt: Runtime) -> None:
    ticket_id = solved_ticket(rt)
    tick(rt, timedelta(hours=25))
    reply_to_survey(rt, "2 太慢了\n\nCarol")
    (vote,) = events(rt, ticket_id, "csat")
    assert (vote.actor, vote.from_value, vote.to_value) == (CAROL, None, "2")
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)
    assert data["status"] == "solved"
    comment = [m for m in data["messages"] if m["kind"] == "csat"]
    assert len(comment) == 1 and "太慢了" in comment[0]["text"]
    reply_to_survey(rt, "满意 后来很快解决了")
    assert [e.to_value for e in events(rt, ticket_id, "csat")] == ["2", "good"]
    assert events(rt, ticket_id, "csat")[-1].from_value == "2"  # the re-rating replaces


def test_a_forged_from_reply_without_our_token_casts_no_vote(rt: Runtime) -> None:
    ticket_id = solved_ticket(rt)
    tick(rt, timedelta(hours=25))
    reply_to_survey(rt, "bad", forged=True)
    assert events(rt, ticket_id, "csat") == []


def csrf_and_nonce(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="(csrf|nonce)" value="([^"]*)"', page))


def test_a_scanner_opening_and_posting_the_link_records_nothing_countable(rt: Runtime) -> None:
    ticket_id = solved_ticket(rt)
    tick(rt, timedelta(hours=25))
    token = links.status_token(rt.secret_key, ticket_id)
    web = TestClient(create_app(rt, Metrics()), base_url="http://127.0.0.1:8025")
    page = web.get(f"/csat/{token}?r=bad")
    assert page.status_code == 200 and 'value="bad" checked' in page.text
    assert events(rt, ticket_id, "csat") == []  # opening the link writes nothing
    fields = csrf_and_nonce(page.text)
    # A scanner posts the form at once, or without the nonce.
    web.post(f"/csat/{token}", data={**fields, "rating": "bad"})
    web.post(f"/csat/{token}", data={"csrf": fields["csrf"], "rating": "bad"})
    assert events(rt, ticket_id, "csat") == []
    suspect = [e.to_value or "" for e in events(rt, ticket_id, "csat_suspect")]
    assert len(suspect) == 2 and "nonce" in suspect[1]
    # A person reads the page, thinks, and sends it: counted once.
    aged = page_nonce(rt, PURPOSE, token, int(time.time()) - 30)
    data = {"csrf": fields["csrf"], "nonce": aged, "rating": "good", "comment": "Thank you!"}
    assert web.post(f"/csat/{token}", data=data, follow_redirects=False).status_code == 303
    web.post(f"/csat/{token}", data=data, follow_redirects=False)
    assert [e.to_value for e in events(rt, ticket_id, "csat")] == ["good"]


def test_the_survey_page_is_unknown_for_a_ticket_that_got_no_survey(rt: Runtime) -> None:
    ticket_id = solved_ticket(rt)
    token = links.status_token(rt.secret_key, ticket_id)
    web = TestClient(create_app(rt, Metrics()), base_url="http://127.0.0.1:8025")
    assert web.get(f"/csat/{token}?r=good").status_code == 404


def test_a_rule_can_reopen_a_ticket_rated_bad(tmp_path: Path) -> None:
    rules: list[dict[str, Any]] = [
        {
            "name": "bad rating",
            "on": "csat",
            "when": ["csat = bad"],
            "run": "#status open\n#tag bad-rating",
        }
    ]
    rt = open_runtime(make_config(tmp_path, csat={"enabled": True}, rules=rules))
    ticket_id = solved_ticket(rt)
    tick(rt, timedelta(hours=25))
    reply_to_survey(rt, "不满意")
    tick(rt, timedelta(hours=25))
    with session_scope(rt.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, ticket_id))
    assert (data["status"], data["tags"]) == ("open", ["bad-rating"])
    rt.engine.dispose()
