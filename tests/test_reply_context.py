"""What a customer reads below an agent's answer (issue 16.3): the agent's signature from
their profile, then the customer's own last message quoted under an attribution line in
the customer's language; never a note, another agent's words or an out-of-office. And
what an agent's notification carries of the customer's files (issue 15.7)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from conftest import make_config
from mailbuilder import mail
from sqlmodel import Session, col, select

from inboxd import pipeline
from inboxd.agents import directory, operations, reply_context
from inboxd.customers.profiles import customer_for
from inboxd.db import session_scope
from inboxd.models import Message, Outbound
from inboxd.runtime import Runtime, open_runtime

CAROL = "Carol Customer <carol@example.org>"


def relayed(rt: Runtime) -> list[str]:
    """The plain text of every reply inboxd queued for the customer, oldest first."""
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Outbound).where(Outbound.purpose == "reply").order_by(col(Outbound.id))
        ).all()
    texts = []
    for row in rows:
        msg = message_from_bytes(row.raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        part = msg.get_body(("plain",))
        assert part is not None
        texts.append(part.get_content().replace("\r\n", "\n"))
    return texts


def open_ticket(rt: Runtime, body: str = "My order 1042 has not arrived.\n") -> int:
    ticket = pipeline.ingest(rt, mail(sender=CAROL, subject="Order 1042", body=body)).ticket
    assert ticket is not None
    return ticket


def test_the_reply_carries_the_agents_signature_then_the_customers_message_quoted(
    sqlite_rt: Runtime,
) -> None:
    with session_scope(sqlite_rt.engine) as session:
        directory.set_preferences(
            session, "bob@example.com", directory.Preferences(signature="Bob\nExample Support")
        )
    ticket = open_ticket(sqlite_rt)
    operations.post_reply(
        sqlite_rt, ticket, "bob@example.com", "It ships today.", note=False, source="web"
    )
    (text,) = relayed(sqlite_rt)
    own, _, rest = text.partition("\n\nOn ")
    assert own == "It ships today.\n\n-- \nBob\nExample Support"
    assert (
        rest.startswith("2026-")
        and ", Carol Customer wrote:\n> My order 1042 has not arrived." in rest
    )
    assert "Where your request stands" in rest.split("> My order 1042 has not arrived.")[1]


def test_notes_and_other_agents_replies_are_never_quoted(sqlite_rt: Runtime) -> None:
    ticket = open_ticket(sqlite_rt)
    operations.post_reply(
        sqlite_rt,
        ticket,
        "alice@example.com",
        "VIP customer, refund at once.",
        note=True,
        source="web",
    )
    operations.post_reply(
        sqlite_rt, ticket, "alice@example.com", "Refund on its way.", note=False, source="web"
    )
    operations.post_reply(
        sqlite_rt, ticket, "bob@example.com", "It is done.", note=False, source="web"
    )
    first, second = relayed(sqlite_rt)
    for text in (first, second):
        assert "VIP customer" not in text
        assert "> My order 1042 has not arrived." in text
    assert "Refund on its way" not in second


def test_the_quote_is_the_customers_latest_mail_and_skips_an_out_of_office(
    sqlite_rt: Runtime,
) -> None:
    ticket = open_ticket(sqlite_rt)
    operations.post_reply(
        sqlite_rt, ticket, "bob@example.com", "Which address?", note=False, source="web"
    )
    answer = mail(
        sender=CAROL, subject=f"Re: [#{ticket}] Order 1042", body="Main Street 5, Berlin.\n"
    )
    assert pipeline.ingest(sqlite_rt, answer).ticket == ticket
    with session_scope(sqlite_rt.engine) as session:
        # An automatic answer (flags.automatic) on the ticket is not what the customer said.
        session.add(
            Message(ticket_id=ticket, kind="customer", direction="in", fingerprint="ooo",
                    from_email="carol@example.org", body="I am away until Monday.",
                    text="I am away until Monday.", flags={"automatic": "out-of-office"})
        )  # fmt: skip
    operations.post_reply(
        sqlite_rt, ticket, "bob@example.com", "Sent there.", note=False, source="web"
    )
    last = relayed(sqlite_rt)[-1]
    assert "> Main Street 5, Berlin." in last
    assert "away until Monday" not in last and "> My order 1042" not in last


def test_a_chinese_customer_reads_a_chinese_attribution(sqlite_rt: Runtime) -> None:
    ticket = pipeline.ingest(
        sqlite_rt,
        mail(sender="李雷 <lilei@example.cn>", subject="发票抬头", body="请修改发票抬头。\n"),
    ).ticket
    assert ticket is not None
    with session_scope(sqlite_rt.engine) as session:
        customer = customer_for(session, "lilei@example.cn")
        assert customer is not None
        customer.language, customer.language_source = "zh-Hans", "agent"
        session.add(customer)
    operations.post_reply(
        sqlite_rt, ticket, "bob@example.com", "已修改。", note=False, source="web"
    )
    (text,) = relayed(sqlite_rt)
    assert "李雷 在 2026-" in text and "写道：\n> 请修改发票抬头。" in text


def test_a_long_message_is_quoted_in_part() -> None:
    lines = "\n".join(f"line {n}" for n in range(100))
    message = Message(ticket_id=1, fingerprint="x", from_email="c@example.org", text=lines)
    quote = reply_context.quoted_text(message)
    assert quote.count("\n") == reply_context.QUOTE_LINES
    assert quote.endswith("> […]")


def test_a_notification_attaches_the_customers_files_up_to_the_cap_and_names_the_rest(
    tmp_path: Path,
) -> None:
    rt = open_runtime(make_config(tmp_path, outbound={"notify_attachments_bytes": 4000}))
    customer = EmailMessage()
    customer["From"], customer["To"] = CAROL, "support@example.com"
    customer["Subject"], customer["Message-ID"] = "Photos of the parcel", "<p1@example.org>"
    customer.set_content("The box arrived crushed.\n")
    customer.add_attachment(b"x" * 3000, maintype="image", subtype="jpeg", filename="small.jpg")
    customer.add_attachment(b"y" * 9000, maintype="image", subtype="jpeg", filename="scan.jpg")
    assert pipeline.ingest(rt, customer.as_bytes()).ticket is not None
    with Session(rt.engine) as session:
        rows = session.exec(select(Outbound)).all()
    notes = [r for r in rows if r.rcpt_to == ["alice@example.com"]]
    assert notes, [r.rcpt_to for r in rows]
    msg = message_from_bytes(notes[0].raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    attached = [part.get_filename() for part in msg.iter_attachments()]
    assert attached == ["small.jpg"]
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Not attached (over the size limit), on the ticket page: scan.jpg (8 KB)" in text
    assert "/tickets/" in text
    rt.engine.dispose()
