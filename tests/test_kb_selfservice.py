"""Self-service (SPEC §10.6): the acknowledgement suggests articles in the customer's
language, and the requester's `#solved` by reply solves the ticket with no agent told.

The first test runs the real path: SMTP in, the pipeline, the outbox, the relay out.
The others call the pipeline directly, for the cases around it.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config
from daemon_harness import listening, wait_until
from mailbuilder import mail, new_msgid
from relay import CaptureRelay
from sqlmodel import col, select

from inboxd import pipeline
from inboxd.db import session_scope
from inboxd.models import Event, Message, Outbound, Ticket
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets.tokens import make_token, token_address
from inboxd.workflow import kb_search

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "kb"
SUPPORT = "support@example.com"
CAROL = "Carol <carol@example.org>"


@pytest.fixture(autouse=True)
def _fresh_index() -> None:
    kb_search._CACHE.clear()


def kb_config(tmp_path: Path) -> dict[str, Any]:
    shutil.copytree(SAMPLES, tmp_path / "articles")
    return {"dir": str(tmp_path / "articles")}


def events(rt: Runtime, ticket_id: int, type_: str) -> list[Event]:
    with session_scope(rt.engine) as session:
        query = select(Event).where(Event.ticket_id == ticket_id, Event.type == type_)
        return list(session.exec(query.order_by(col(Event.id))))


def outbox(rt: Runtime, ticket_id: int) -> list[tuple[str, str]]:
    """(purpose, plain text) of every mail queued for the ticket."""
    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(Outbound).where(Outbound.ticket_id == ticket_id).order_by(col(Outbound.id))
        ).all()
        found = []
        for row in rows:
            msg = email.message_from_bytes(bytes(row.raw), policy=email.policy.default)
            body = msg.get_body(("plain",))
            found.append((row.purpose, body.get_content() if body else ""))  # type: ignore[union-attr]
        return found


def ticket(rt: Runtime, ticket_id: int) -> Ticket:
    with session_scope(rt.engine) as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        session.expunge(found)
        return found


# --- the real path ------------------------------------------------------------------------


def test_a_chinese_question_gets_the_article_and_the_requesters_solved_closes_it(
    tmp_path: Path,
) -> None:
    first = new_msgid()
    with (
        CaptureRelay() as relay,
        listening(tmp_path, relay, kb=kb_config(tmp_path)) as (
            rt,
            daemon,
        ),
    ):
        host, port = daemon.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            raw = mail(sender=CAROL, message_id=first, subject="密码忘了怎么办",
                       body="你好，我登录不了，密码忘了怎么办？\n")  # fmt: skip
            smtp.sendmail("carol@example.org", [SUPPORT], raw)

        def ack() -> Any:
            for item in relay.captured():
                if str(item.message.get("In-Reply-To", "")).strip() == first:
                    return item
            return None

        captured = wait_until(ack, what="the acknowledgement")
        body = captured.message.get_body(("plain",)).get_content()
        assert (
            "忘记密码怎么办：重置密码" in body
        )  # the Simplified translation, for a zh-Hans question
        assert "/kb/reset-password?lang=zh-Hans" in body
        assert "#solved" in body
        reply_to = captured.message["Reply-To"].addresses[0].addr_spec

        with session_scope(rt.engine) as session:
            ticket_id = session.exec(
                select(Message.ticket_id).where(Message.message_id == first)
            ).one()
        suggested = events(rt, ticket_id, "kb_suggested")
        assert suggested[0].to_value.startswith("reset-password:zh-Hans")
        reply = new_msgid()
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            raw = mail(sender=CAROL, to=reply_to, message_id=reply, subject="Re: 密码忘了怎么办",
                       in_reply_to=captured.message_id, body="#solved\n\n谢谢！\n")  # fmt: skip
            smtp.sendmail("carol@example.org", [reply_to], raw)
        wait_until(lambda: events(rt, ticket_id, "self_service"), what="the self-service solve")
        assert ticket(rt, ticket_id).status == "solved"
        solved = events(rt, ticket_id, "self_service")
        assert [(e.actor, e.from_value, e.to_value) for e in solved] == [
            ("carol@example.org", "reply", "reset-password:zh-Hans")
        ]
        purposes = [p for p, _ in outbox(rt, ticket_id)]
        assert "notify:customer" not in purposes  # no agent is told


# --- around it ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def kb_rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with the sample KB, on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""
    runtime = open_runtime(make_config(tmp_path, url, kb=kb_config(tmp_path)))
    yield runtime
    runtime.engine.dispose()


def new_ticket(rt: Runtime, subject: str, body: str, **kw: Any) -> int:
    result = pipeline.ingest(rt, mail(subject=subject, body=body, **kw), "test")
    assert result.result == "created" and result.ticket is not None
    return result.ticket


def ack_text(rt: Runtime, ticket_id: int) -> str:
    return next(text for purpose, text in outbox(rt, ticket_id) if purpose == "ack")


def test_a_traditional_question_gets_the_traditional_translation(kb_rt: Runtime) -> None:
    number = new_ticket(kb_rt, "發票", "請問怎麼下載電子發票？")
    text = ack_text(kb_rt, number)
    assert "下載發票與收據" in text and "lang=zh-Hant" in text
    assert "請回覆本郵件" in text  # the instruction in the customer's script


def test_an_english_question_gets_english_articles_and_words(kb_rt: Runtime) -> None:
    number = new_ticket(kb_rt, "Forgot my password", "I cannot log in, how do I reset it?")
    text = ack_text(kb_rt, number)
    assert "Reset a forgotten password" in text and "reply to this mail with #solved" in text


def test_a_question_the_kb_does_not_answer_gets_a_plain_acknowledgement(kb_rt: Runtime) -> None:
    number = new_ticket(kb_rt, "Zebra", "My zebra escaped from the zoo.")
    assert "#solved" not in ack_text(kb_rt, number)
    assert events(kb_rt, number, "kb_suggested") == []


def test_internal_articles_are_never_suggested(kb_rt: Runtime) -> None:
    number = new_ticket(kb_rt, "Chargeback dispute", "I opened a chargeback dispute.")
    assert "Escalating a payment dispute" not in ack_text(kb_rt, number)


def test_no_suggestions_when_the_kb_is_disabled(tmp_path: Path) -> None:
    config = {**kb_config(tmp_path), "enabled": False}
    rt = open_runtime(make_config(tmp_path, kb=config))
    number = new_ticket(rt, "Forgot my password", "How do I reset my password?")
    assert "#solved" not in ack_text(rt, number)
    rt.engine.dispose()


def _suggested_ticket(rt: Runtime) -> int:
    number = new_ticket(rt, "Forgot my password", "How do I reset my password?")
    assert events(rt, number, "kb_suggested")
    return number


def test_solved_by_reply_to_the_token_address_names_the_chosen_article(kb_rt: Runtime) -> None:
    number = new_ticket(kb_rt, "Invoice and password", "Where do I download an invoice? "
                        "And I forgot my password.")  # fmt: skip
    suggested = events(kb_rt, number, "kb_suggested")[0].to_value.split(",")
    assert len(suggested) >= 2
    to = token_address(SUPPORT, make_token(kb_rt.secret_key, number))
    # A full-width ＃, as a Chinese input method types it, and the second article.
    pipeline.ingest(kb_rt, mail(to=to, subject="Re: hi", body="＃solved 2\nthanks"), "test")
    assert ticket(kb_rt, number).status == "solved"
    assert [e.to_value for e in events(kb_rt, number, "self_service")] == [suggested[1]]


def test_a_forged_from_by_subject_tag_solves_nothing(kb_rt: Runtime) -> None:
    number = _suggested_ticket(kb_rt)
    # From: the requester, but no token and no Message-ID of ours: routed by the tag only.
    result = pipeline.ingest(kb_rt, mail(subject=f"[#{number}] done", body="#solved"), "test")
    assert result.ticket == number
    assert ticket(kb_rt, number).status != "solved"
    assert events(kb_rt, number, "self_service") == []


def test_a_strangers_solved_solves_nothing(kb_rt: Runtime) -> None:
    number = _suggested_ticket(kb_rt)
    to = token_address(SUPPORT, make_token(kb_rt.secret_key, number))
    raw = mail(sender="Mallory <mallory@example.net>", to=to, subject="x", body="#solved")
    result = pipeline.ingest(kb_rt, raw, "test")
    assert result.ticket != number  # the token is not the stranger's: a ticket of their own
    assert ticket(kb_rt, number).status != "solved"


def test_solved_without_suggestions_is_just_text(kb_rt: Runtime) -> None:
    number = new_ticket(kb_rt, "Zebra", "My zebra escaped.")
    to = token_address(SUPPORT, make_token(kb_rt.secret_key, number))
    pipeline.ingest(kb_rt, mail(to=to, subject="Re: Zebra", body="#solved"), "test")
    assert ticket(kb_rt, number).status != "solved"


def test_a_follow_up_of_a_closed_ticket_gets_no_suggestions(kb_rt: Runtime) -> None:
    number = _suggested_ticket(kb_rt)
    with session_scope(kb_rt.engine) as session:
        row = session.get(Ticket, number)
        assert row is not None
        row.status = "closed"
        session.add(row)
    to = token_address(SUPPORT, make_token(kb_rt.secret_key, number))
    raw = mail(to=to, subject="Re: password", body="How do I reset my password again?")
    result = pipeline.ingest(kb_rt, raw, "test")
    assert result.result == "created" and result.ticket != number
    assert ticket(kb_rt, result.ticket).followup_of == number
    assert events(kb_rt, result.ticket, "kb_suggested") == []


def test_after_an_agents_public_reply_solved_is_only_text(kb_rt: Runtime) -> None:
    from inboxd.agents import operations

    number = _suggested_ticket(kb_rt)
    operations.post_reply(kb_rt, number, "bob@example.com", "Try this.", note=False, source="t")
    to = token_address(SUPPORT, make_token(kb_rt.secret_key, number))
    pipeline.ingest(kb_rt, mail(to=to, subject="Re: password", body="#solved"), "test")
    assert ticket(kb_rt, number).status != "solved"
    assert events(kb_rt, number, "self_service") == []
    assert "notify:customer" in [p for p, _ in outbox(kb_rt, number)]  # the agent hears of it


# --- #kb SLUG, for agents -------------------------------------------------------------------


@pytest.fixture
def kb_agent_rt(kb_rt: Runtime) -> Runtime:
    """The runtime as an entry point opens it: `#kb` wired to the knowledge base."""
    from dataclasses import replace

    from inboxd.workflow.kb_suggest import article_text

    return replace(kb_rt, kb_article_text=article_text(kb_rt.config))


def test_kb_inserts_the_articles_title_summary_and_link_into_the_reply(
    kb_agent_rt: Runtime,
) -> None:
    from inboxd.agents import operations

    number = new_ticket(kb_agent_rt, "发票问题", "请问发票在哪里下载？")
    outcome = operations.run_commands(kb_agent_rt, number, "#kb download-invoice", None, "cli")
    assert outcome.result.changes == ["article inserted"]
    reply = [text for purpose, text in outbox(kb_agent_rt, number) if purpose == "reply"]
    assert len(reply) == 1
    # The ticket is in Chinese: the Simplified translation, with its public link.
    assert "下载发票和收据" in reply[0] and "/kb/download-invoice?lang=zh-Hans" in reply[0]


def test_kb_refuses_an_unknown_or_internal_article_and_applies_nothing(
    kb_agent_rt: Runtime,
) -> None:
    from inboxd.agents import operations
    from inboxd.agents.operations import InvalidCommands

    number = new_ticket(kb_agent_rt, "Question", "Hello")
    for slug in ("no-such-article", "escalation-playbook"):
        with pytest.raises(InvalidCommands) as refused:
            operations.run_commands(kb_agent_rt, number, f"#pending\n#kb {slug}", None, "cli")
        assert "no public article" in str(refused.value.errors)
    assert ticket(kb_agent_rt, number).status == "new"


def test_kb_by_mail_from_an_agent_goes_into_the_relayed_reply(kb_agent_rt: Runtime) -> None:
    number = new_ticket(kb_agent_rt, "Forgot my password", "Help, I cannot sign in.")
    with session_scope(kb_agent_rt.engine) as session:
        from inboxd.agents.directory import get_agent

        bob = get_agent(session, "bob@example.com")
        assert bob.id is not None
        token = make_token(kb_agent_rt.secret_key, number, bob.id)
    body = "#kb reset-password\n\nThis should help.\n"
    to = token_address(SUPPORT, token)
    raw = mail(sender="Bob <bob@example.com>", to=to, subject="Re: Forgot my password", body=body)
    pipeline.ingest(kb_agent_rt, raw, "test")
    relayed = [text for purpose, text in outbox(kb_agent_rt, number) if purpose == "reply"]
    assert len(relayed) == 1
    assert "This should help." in relayed[0] and "Reset a forgotten password" in relayed[0]
