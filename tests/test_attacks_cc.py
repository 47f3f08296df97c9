"""CC amplification (issue 19, finding 4), kept fixed.

One stranger's new mail with 2,000 addresses in `Cc:` gave a ticket with 1,991 CCs, and
the next public agent reply went to 1,990 people. Now a customer's mail adds at most
`[inboxd] max_ccs_per_message`; the rest are recorded on the ticket. The requester is
told in the next mail who else now receives the conversation, and can remove them by
replying `#uncc ADDR`.
"""

from __future__ import annotations

from mailbuilder import mail
from sqlmodel import col, select

from inboxd import pipeline
from inboxd.db import session_scope
from inboxd.models import Agent, Event, Outbound, Participant
from inboxd.runtime import Runtime
from inboxd.tickets.tokens import make_token, token_address

SUPPORT = "support@example.com"
CAROL = "carol@example.org"


def ccs(rt: Runtime, ticket_id: int) -> list[str]:
    with session_scope(rt.engine) as session:
        query = select(Participant.email).where(
            Participant.ticket_id == ticket_id, Participant.role == "cc"
        )
        return sorted(session.exec(query))


def agent_reply(rt: Runtime, ticket_id: int, text: str) -> None:
    """Alice answers the notification from her mail client, to her own reply token."""
    with session_scope(rt.engine) as session:
        alice = session.exec(select(Agent).where(Agent.email == "alice@example.com")).one()
    address = token_address(SUPPORT, make_token(rt.secret_key, ticket_id, alice.id))
    pipeline.ingest(rt, mail(sender="Alice <alice@example.com>", to=address, body=text), "test")


def replies(rt: Runtime) -> list[Outbound]:
    with session_scope(rt.engine) as session:
        query = select(Outbound).where(Outbound.purpose == "reply").order_by(col(Outbound.id))
        return list(session.exec(query))


def test_two_thousand_ccs_on_a_new_mail_add_twenty_and_record_the_rest(rt: Runtime) -> None:
    crowd = [f"person{n}@crowd.example" for n in range(2000)]
    ticket = pipeline.ingest(rt, mail(sender="stranger@spam.example", cc=crowd), "test").ticket
    assert ticket is not None
    assert len(ccs(rt, ticket)) == 20
    with session_scope(rt.engine) as session:
        recorded = session.exec(select(Event).where(Event.type == "cc_not_added")).one()
    # The parser kept the first 1,000 addresses (test_attacks_parse.py); 980 of those are
    # over the CC cap.
    assert recorded.to_value is not None and recorded.to_value.startswith("980 over the cap")
    agent_reply(rt, ticket, "We are looking into it.\n")
    [reply] = replies(rt)
    assert len(reply.rcpt_to) == 21  # the requester and the twenty


def test_the_requester_learns_of_a_new_cc_and_removes_it_by_replying_uncc(rt: Runtime) -> None:
    ticket = pipeline.ingest(rt, mail(sender=CAROL), "test").ticket
    assert ticket is not None
    agent_reply(rt, ticket, "#cc dave@example.net\n\nI have asked Dave to help.\n")
    assert ccs(rt, ticket) == ["dave@example.net"]
    [told] = replies(rt)
    assert b"Now also receiving this conversation: dave@example.net." in told.raw
    assert b"#uncc ADDRESS" in told.raw
    # Carol answers the agent's reply (to her own token): the block runs for her.
    token = token_address(SUPPORT, make_token(rt.secret_key, ticket))
    pipeline.ingest(rt, mail(sender=CAROL, to=token, body="#uncc dave@example.net\n"), "test")
    assert ccs(rt, ticket) == []
    # The next reply says nothing more about CCs.
    agent_reply(rt, ticket, "Understood.\n")
    assert b"Now also receiving" not in replies(rt)[-1].raw


def test_a_requester_cannot_run_agent_commands_or_uncc_without_the_token(rt: Runtime) -> None:
    ticket = pipeline.ingest(rt, mail(sender=CAROL, subject="Help"), "test").ticket
    assert ticket is not None
    agent_reply(rt, ticket, "#cc dave@example.net\n\nDave joins.\n")
    token = token_address(SUPPORT, make_token(rt.secret_key, ticket))
    # A block with any other command is only text.
    mixed = "#uncc dave@example.net\n#status closed\n"
    pipeline.ingest(rt, mail(sender=CAROL, to=token, body=mixed), "test")
    # Without the token (by the subject tag only), `#uncc` is only text too.
    tagged = f"Re: [#{ticket}] Help"
    pipeline.ingest(rt, mail(sender=CAROL, subject=tagged, body="#uncc dave@example.net\n"), "test")
    assert ccs(rt, ticket) == ["dave@example.net"]
