"""The ingest pipeline: nothing accepted is lost, bad input is quarantined with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from inboxd import pipeline
from inboxd.db import session_scope
from inboxd.models import Attachment, Message, Quarantine, RawMessage
from inboxd.runtime import Runtime
from inboxd.tickets import queries
from inboxd.tickets.store import attachment_path
from inboxd.tickets.tokens import make_token, token_address

MAIL = Path(__file__).resolve().parent / "data" / "mail"


def mail(*headers: str, body: str = "Hello") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


def show(rt: Runtime, ticket_id: int | None) -> dict:
    assert ticket_id is not None
    with session_scope(rt.engine) as session:
        return queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)


def test_every_message_keeps_its_raw_bytes(rt: Runtime) -> None:
    raw = (MAIL / "gb2312_label_gbk_text.eml").read_bytes()
    result = pipeline.ingest(rt, raw, "test")
    assert result.result == "created"
    with session_scope(rt.engine) as session:
        message = session.exec(select(Message)).one()
        stored = session.get(RawMessage, message.raw_sha256)
        assert stored is not None and bytes(stored.data) == raw


def test_chinese_mail_is_decoded_and_new_text_kept(rt: Runtime) -> None:
    result = pipeline.ingest(rt, (MAIL / "gb2312_label_gbk_text.eml").read_bytes(), "test")
    ticket = show(rt, result.ticket)
    assert ticket["subject"] == "发票抬头错误"
    (message,) = ticket["messages"]
    assert "我是朱镕的同事" in message["text"]
    assert message["from"] == "wangwei@example.cn"


def test_html_only_mail_gets_a_text_version_without_script(rt: Runtime) -> None:
    result = pipeline.ingest(rt, (MAIL / "html_only.eml").read_bytes(), "test")
    (message,) = show(rt, result.ticket)["messages"]
    assert "the reset link says expired every time." in message["text"]
    assert "alert" not in message["text"]


def test_auto_replies_are_stored_as_automatic(rt: Runtime) -> None:
    result = pipeline.ingest(rt, (MAIL / "auto_reply_out_of_office.eml").read_bytes(), "t")
    (message,) = show(rt, result.ticket)["messages"]
    assert message["kind"] == "auto"


def test_attachments_are_stored_under_generated_names(rt: Runtime) -> None:
    raw = mail(
        "From: carol@example.org",
        "To: support@example.com",
        "Subject: file",
        "Message-ID: <att-1@example.org>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"',
        body="--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        '--b\r\nContent-Type: application/octet-stream; name="../../etc/passwd"\r\n'
        'Content-Disposition: attachment; filename="../../etc/passwd"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--",
    )
    result = pipeline.ingest(rt, raw, "t")
    (message,) = show(rt, result.ticket)["messages"]
    assert message["attachments"] == [
        {"filename": "passwd", "content_type": "application/octet-stream", "size": 5}
    ]
    with session_scope(rt.engine) as session:
        row = session.exec(select(Attachment)).one()
    path = attachment_path(rt.attachments_dir, row.sha256)
    assert path.read_bytes() == b"hello"
    assert path.name == row.sha256
    assert not (rt.config.data_dir / "etc").exists()


def test_a_message_over_the_parser_limits_is_quarantined_with_its_raw_bytes(rt: Runtime) -> None:
    raw = b"From: a@example.org\r\nSubject: " + b"x" * (1 << 20) + b"\r\n\r\nhi\r\n"
    result = pipeline.ingest(rt, raw, "huge-header")
    assert result.result == "quarantined"
    assert "header block larger than" in result.reason
    with session_scope(rt.engine) as session:
        entry = session.exec(select(Quarantine)).one()
        assert entry.source == "huge-header"
        stored = session.get(RawMessage, entry.raw_sha256)
        assert stored is not None and bytes(stored.data) == raw


def test_a_bug_quarantines_the_message_and_retry_after_the_fix_releases_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = (MAIL / "new_ticket_plain.eml").read_bytes()

    def broken_stage(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug in a stage")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "classify", broken_stage)
        result = pipeline.ingest(rt, raw, "bug")
    assert result.result == "quarantined"
    assert result.reason == "internal error: RuntimeError: simulated bug in a stage"
    with session_scope(rt.engine) as session:
        assert session.exec(select(Message)).all() == []  # nothing half-stored
        entry = session.exec(select(Quarantine)).one()
    assert entry.id is not None

    retried = pipeline.retry_quarantined(rt, entry.id)
    assert retried.result == "created"
    with session_scope(rt.engine) as session:
        released = session.get(Quarantine, entry.id)
        assert released is not None and released.released_at is not None
        assert released.released_to is not None
        assert queries.list_quarantine(session) == []


def test_agent_mail_to_its_own_token_is_a_reply_and_a_spoof_is_held(rt: Runtime) -> None:
    first = pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "t")
    assert first.ticket is not None
    # Bob is agent id 2 in the test config (Alice, the admin, is 1).
    token = make_token(rt.secret_key, first.ticket, agent_id=2)
    verified = mail(
        "From: Bob <bob@example.com>",
        f"To: {token_address('support@example.com', token)}",
        "Subject: Re: [#1] Order 1042 not delivered",
        "Message-ID: <bob-1@example.com>",
        body="On it.",
    )
    spoofed = mail(
        "From: Bob <bob@example.com>",
        "To: support@example.com",
        f"Subject: Re: [#{first.ticket}] Order 1042 not delivered",
        "Message-ID: <spoof-1@evil.test>",
        body="#status closed",
    )
    assert pipeline.ingest(rt, verified, "t").ticket == first.ticket
    assert pipeline.ingest(rt, spoofed, "t").ticket == first.ticket
    kinds = [m["kind"] for m in show(rt, first.ticket)["messages"]]
    assert kinds == ["customer", "reply", "held"]


def test_mail_without_any_header_is_quarantined_not_ticketed(rt: Runtime) -> None:
    result = pipeline.ingest(rt, b"just some words\n", "t")
    assert result.result == "quarantined"
    assert result.reason == "no header fields: this is not an email message"
