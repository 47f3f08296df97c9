"""Attacks through the mail path, as a red-team run found them (issue 19), kept fixed.

Mail goes in as the SMTP worker hands it over: spooled first (so it counts as received
live), then through `pipeline.ingest` with its envelope sender. What inboxd would send is
read from the outbox. No clock thresholds: the loops run round by round, and each round
answers everything inboxd queued in the round before.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import make_config
from mailbuilder import mail, new_msgid
from sqlmodel import col, select
from typer.testing import CliRunner

from cli.main import app
from inboxd import pipeline
from inboxd.agents import digest
from inboxd.db import session_scope
from inboxd.models import LoopHold, Message, Outbound, Ticket, utcnow
from inboxd.queues import spool
from inboxd.runtime import Runtime, open_runtime

SUPPORT = "support@example.com"
AGENTS = ("alice@example.com", "bob@example.com")


def live(rt: Runtime, raw: bytes, envelope_from: str | None = None) -> pipeline.IngestResult:
    """One message as it arrives by SMTP: spooled, then ingested with its envelope."""
    spool_id = spool.accept(rt.engine, raw, source="smtp:127.0.0.1", mail_from=envelope_from or "")
    return pipeline.ingest(
        rt, raw, "smtp:127.0.0.1", (SUPPORT,), spool_id=spool_id, envelope_from=envelope_from
    )


def outbox(rt: Runtime, after: int = 0) -> list[Outbound]:
    with session_scope(rt.engine) as session:
        query = select(Outbound).where(col(Outbound.id) > after).order_by(col(Outbound.id))
        return list(session.exec(query))


def acks(rt: Runtime) -> list[tuple[str, ...]]:
    return [tuple(o.rcpt_to) for o in outbox(rt) if o.purpose == "ack"]


def tickets(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return len(session.exec(select(Ticket.id)).all())


# --- finding 1: an autoresponder loop that sends no loop headers ---------------------------


def out_of_office(to_agent: str, subject: str) -> bytes:
    """What a badly set-up responder sends back: no Auto-Submitted, no threading headers,
    a new Message-ID, to support@ afresh (it answers the From: of what it received)."""
    # No "Out of office:" prefix either: mail/classify.py knows those (issue 16), and the
    # loop breaker must hold what nothing about the mail gives away.
    return mail(
        sender=f"Agent <{to_agent}>",
        subject=f"{subject} (I am away)",
        body="I am out of the office until Monday 7 December and read no mail.\n",
    )


def run_responders(
    rt: Runtime, responders: set[str], rounds: int, keeps_subject: bool
) -> list[Outbound]:
    """Every mail inboxd queues to a responder's address is answered; returns all of it.
    A responder that keeps the subject keeps its `[#N]` tag too; one that does not
    ("Automatic reply") opens a new ticket each time."""
    seen = 0
    for _ in range(rounds):
        new = outbox(rt, seen)
        if not new:
            break
        seen = new[-1].id or seen
        for row in new:
            for rcpt in row.rcpt_to:
                if rcpt in responders:
                    subject = row.raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                    subject = subject if keeps_subject else "Automatic reply"
                    live(rt, out_of_office(rcpt, subject), rcpt)
    return outbox(rt)


def test_two_agents_out_of_office_answering_every_notification_stops_within_a_handful(
    rt: Runtime,
) -> None:
    live(rt, mail(message_id=new_msgid()), "carol@example.org")
    sent = run_responders(rt, set(AGENTS), rounds=300, keeps_subject=False)
    # Before the fix: 417 tickets and 825 mails in two minutes, still going at the end.
    assert len(sent) <= 12, [(o.purpose, o.rcpt_to) for o in sent]
    assert tickets(rt) <= 7
    with session_scope(rt.engine) as session:
        held = {h.address for h in session.exec(select(LoopHold))}
        warnings = session.exec(select(Outbound).where(Outbound.purpose == "warn:loop")).all()
    assert held == set(AGENTS)
    # One "possible mail loop" mail per hold, to the other agent, never to the looper.
    assert sorted(w.rcpt_to[0] for w in warnings) == sorted(AGENTS)


def test_a_responder_that_keeps_the_subject_tag_gets_one_spoof_warning_not_a_loop(
    rt: Runtime,
) -> None:
    """Its answers thread by `[#1]` as mail in an agent's name that nothing verifies: held
    as notes, and the agent warned once an hour, not once per answer."""
    live(rt, mail(message_id=new_msgid()), "carol@example.org")
    sent = run_responders(rt, set(AGENTS), rounds=300, keeps_subject=True)
    assert sorted(o.purpose for o in sent) == ["ack", *["notify:new"] * 2, *["warn:spoof"] * 2]
    assert tickets(rt) == 1


def test_a_customer_responder_answering_acknowledgements_is_held_after_a_few(rt: Runtime) -> None:
    """The same text again and again from one customer, each a new ticket."""
    for _ in range(30):
        live(rt, out_of_office("robot@customer.example", "hello"), "robot@customer.example")
    assert tickets(rt) <= 5
    with session_scope(rt.engine) as session:
        kinds = [m.kind for m in session.exec(select(Message).order_by(col(Message.id)))]
    assert kinds.count("auto") >= 25
    assert len(acks(rt)) <= 3


def test_ordinary_customers_are_never_held(rt: Runtime) -> None:
    """Several customers writing several different messages each, as a busy day brings."""
    for n in range(4):
        for who in ("carol@example.org", "dave@example.org", "erin@example.net"):
            live(rt, mail(sender=who, subject=f"Problem {n}", body=f"Problem {n} again, {who}"))
    assert tickets(rt) == 12
    with session_scope(rt.engine) as session:
        assert session.exec(select(LoopHold)).all() == []


def test_mail_given_to_inboxd_ingest_is_never_held(rt: Runtime) -> None:
    """An archive import cannot be half of a loop: only live mail is counted."""
    for _ in range(10):
        pipeline.ingest(rt, out_of_office("robot@customer.example", "import"), "archive.mbox")
    assert tickets(rt) == 10


def test_the_admin_lists_and_lifts_a_hold_and_mail_flows_again(tmp_path: Path) -> None:
    config = tmp_path / "inboxd.toml"
    config.write_text(
        f'[inboxd]\nsupport_address = "{SUPPORT}"\ndata_dir = "data"\n'
        "[loops]\nmax_new_tickets_per_sender = 2\n",
        encoding="utf-8",
    )
    rt = open_runtime(make_config(tmp_path, loops={"max_new_tickets_per_sender": 2}))
    try:
        for n in range(4):
            live(rt, mail(sender="dan@example.net", subject=f"n{n}", body=f"text {n}"))
        assert tickets(rt) == 2
        runner = CliRunner()
        listed = runner.invoke(app, ["loops", "--config", str(config)])
        assert listed.exit_code == 0, listed.output
        assert "dan@example.net" in listed.output and "3 new tickets in 10 minutes" in listed.output
        lifted = runner.invoke(app, ["loops", "lift", "dan@example.net", "--config", str(config)])
        assert lifted.exit_code == 0 and "2 messages were held" in lifted.output
        again = runner.invoke(app, ["loops", "lift", "dan@example.net", "--config", str(config)])
        assert again.exit_code == 1 and "no mail from dan@example.net is held" in again.output
        # Counting starts afresh at the lift.
        live(rt, mail(sender="dan@example.net", subject="after", body="fixed now"))
        assert tickets(rt) == 3
    finally:
        rt.engine.dispose()


def test_notifications_past_the_per_minute_cap_go_out_as_one_digest(tmp_path: Path) -> None:
    rt = open_runtime(make_config(tmp_path, loops={"max_notifications_per_agent_per_minute": 2}))
    try:
        for n in range(5):
            live(rt, mail(sender=f"c{n}@customers.example", subject=f"Order {n} is late"))
        to_alice = [o for o in outbox(rt) if o.rcpt_to == ["alice@example.com"]]
        assert [o.status for o in to_alice] == ["queued"] * 2 + ["digest"] * 3
        with session_scope(rt.engine) as session:
            assert digest.send_digests(session, rt) == 0  # the minute is not over yet
            later = utcnow() + timedelta(minutes=2)
            assert digest.send_digests(session, rt, later) == 2  # alice and bob
        mails = [o for o in outbox(rt) if o.rcpt_to == ["alice@example.com"]]
    finally:
        rt.engine.dispose()
    [alices] = [o for o in mails if o.purpose == "notify:digest"]
    assert alices.status == "queued"
    for n in (2, 3, 4):
        assert f"Order {n} is late".encode() in alices.raw
    assert [o.status for o in mails if o.purpose != "notify:digest"][2:] == ["digested"] * 3


# --- finding 2: the null envelope sender was acknowledged ---------------------------------


def test_a_null_envelope_sender_is_never_acknowledged(rt: Runtime) -> None:
    result = live(rt, mail(sender="Carol <carol@example.org>"), "<>")
    assert result.result == "created"
    assert acks(rt) == []


# --- finding 5: backscatter to forged From: addresses ------------------------------------


def test_forged_from_lines_get_their_acknowledgements_at_the_envelope_sender(rt: Runtime) -> None:
    for n in range(100):
        live(rt, mail(sender=f"victim{n}@victims.example"), "spammer@bulk.example")
    # Before: 103 acknowledgements to 100 third parties. Now: the one real sender, capped.
    assert acks(rt) == [("spammer@bulk.example",)] * 3


def test_a_from_that_matches_the_envelope_or_its_domain_is_answered_there(rt: Runtime) -> None:
    live(rt, mail(sender="carol@example.org"), "carol@example.org")
    live(rt, mail(sender="dave@example.com"), "bounces+x1@mail.example.com")
    live(rt, mail(sender="erin@example.net"))  # no envelope known: From
    assert acks(rt) == [("carol@example.org",), ("dave@example.com",), ("erin@example.net",)]


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ("mx.example.com; dmarc=pass header.from=shop.example", "anna@shop.example"),
        ("mx.example.com; dkim=pass header.d=shop.example", "anna@shop.example"),
        ("mx.example.com; spf=pass smtp.mailfrom=relay.example", "srs0=ab@relay.example"),
        ("evil.example; dmarc=pass header.from=shop.example", "srs0=ab@relay.example"),
    ],
)
def test_a_trusted_dmarc_pass_lets_the_from_address_be_answered(
    tmp_path: Path, results: str, expected: str
) -> None:
    rt = open_runtime(make_config(tmp_path, trust={"trusted_authserv_ids": ["mx.example.com"]}))
    try:
        # Topmost, where our MX prepends it.
        raw = (
            b"Authentication-Results: "
            + results.encode()
            + b"\r\n"
            + mail(sender="anna@shop.example")
        )
        live(rt, raw, "SRS0=ab@relay.example")
        assert acks(rt) == [(expected,)]
    finally:
        rt.engine.dispose()
