"""Threading: which ticket a message joins, as SPEC §5 promises it.

The rules, first match wins: 1. a reply token (customer tokens only from participants),
2. In-Reply-To/References, 3. the subject tag [#N] from a participant, 4. a new ticket.
Then the guarantees: strangers cannot reach somebody else's ticket, only mail that
proves it received ours adds participants, merged and closed tickets redirect, the same
message is stored once, arrival order does not matter, reply prefixes are ignored.

Every test goes through `pipeline.ingest`, the one path SMTP, IMAP and the CLI share,
and reads the result back as SPEC §4's `show` JSON; each runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import itertools
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, require
from mailbuilder import NO_MESSAGE_ID, SUPPORT, mail, new_msgid, with_transport_headers
from sqlmodel import select

from inboxd.db import session_scope
from inboxd.mail.subjects import clean_subject, subject_tag_pattern
from inboxd.models import Agent, Message, Ticket
from inboxd.pipeline import IngestResult, ingest
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import store
from inboxd.tickets.queries import get_ticket, ticket_json
from inboxd.tickets.tokens import make_token, token_address

GEN_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "tools" / "gen_corpus.py"

CAROL = "Carol Customer <carol@example.org>"  # the requester in most tests
DAVE = "dave@example.org"  # a colleague of Carol's
MALLORY = "Mallory <mallory@evil.test>"  # a stranger
BOB = "Bob <bob@example.com>"  # an agent (tests/conftest.py's make_config)


# --- helpers ------------------------------------------------------------------------


def deliver(rt: Runtime, raw: bytes, envelope_to: Iterable[str] = ()) -> IngestResult:
    """Ingest one message as the SMTP listener would."""
    return ingest(rt, raw, "test", tuple(envelope_to))


def open_ticket(rt: Runtime, **fields: Any) -> tuple[int, str]:
    """A new ticket from Carol (unless `sender` says otherwise): (ticket id, Message-ID)."""
    msgid = fields.pop("message_id", None) or new_msgid()
    result = deliver(rt, mail(message_id=msgid, **fields))
    assert result.result == "created", result
    assert result.ticket is not None
    return result.ticket, msgid


def show(rt: Runtime, ticket_id: int) -> dict[str, Any]:
    """`inboxd show N --json`."""
    with session_scope(rt.engine) as session:
        return ticket_json(session, get_ticket(session, ticket_id), full=True)


def message_ids(rt: Runtime, ticket_id: int) -> list[str]:
    return [m["message_id"] for m in show(rt, ticket_id)["messages"]]


def last_message(rt: Runtime, ticket_id: int) -> dict[str, Any]:
    return show(rt, ticket_id)["messages"][-1]


def update_ticket(rt: Runtime, ticket_id: int, **values: Any) -> None:
    """Change a ticket's columns directly, as an earlier command would have."""
    with session_scope(rt.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        for name, value in values.items():
            setattr(ticket, name, value)
        session.add(ticket)


def agent_id(rt: Runtime, email: str) -> int:
    with session_scope(rt.engine) as session:
        agent = session.exec(select(Agent).where(Agent.email == email)).one()
        assert agent.id is not None
        return agent.id


def customer_token_address(rt: Runtime, ticket_id: int) -> str:
    return token_address(SUPPORT, make_token(rt.secret_key, ticket_id))


def agent_token_address(rt: Runtime, ticket_id: int, email: str) -> str:
    return token_address(SUPPORT, make_token(rt.secret_key, ticket_id, agent_id(rt, email)))


def remember_own(rt: Runtime, ticket_id: int, msgid: str) -> None:
    """Record `msgid` as one inboxd generated for mail it sent on the ticket."""
    with session_scope(rt.engine) as session:
        store.remember_msgids(session, ticket_id, {msgid: "own"})


def partition(placement: dict[str, int | None]) -> set[frozenset[str]]:
    """Message-IDs grouped by the ticket they landed on (ticket numbers forgotten)."""
    groups: dict[int | None, set[str]] = defaultdict(set)
    for msgid, ticket in placement.items():
        groups[ticket].add(msgid)
    return {frozenset(g) for g in groups.values()}


# --- rule 1: reply tokens --------------------------------------------------------------


def test_agent_token_joins_the_ticket_it_names(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt)
    result = deliver(
        rt,
        mail(
            sender=BOB,
            to=agent_token_address(rt, ticket, "bob@example.com"),
            subject="unrelated subject",
        ),
    )
    assert (result.result, result.ticket) == ("appended", ticket)
    message = last_message(rt, ticket)
    assert message["threaded_by"] == "token"
    # Came to Bob's own token with Bob's From: verified agent mail, relayed as a reply.
    assert message["kind"] == "reply"


def test_customer_token_from_the_requester_joins_the_ticket(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt)
    result = deliver(rt, mail(to=customer_token_address(rt, ticket), subject="more details"))
    assert (result.result, result.ticket) == ("appended", ticket)
    assert last_message(rt, ticket)["threaded_by"] == "token"


def test_customer_token_from_a_cc_of_the_ticket_joins_it(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt, cc=[DAVE])
    result = deliver(rt, mail(sender=DAVE, to=customer_token_address(rt, ticket), subject="x"))
    assert (result.result, result.ticket) == ("appended", ticket)


def test_customer_token_from_a_stranger_opens_a_new_ticket(rt: Runtime) -> None:
    # The "ticket trick": Mallory signs up somewhere with Carol's token address; the
    # service's verification mail must not appear on Carol's ticket.
    ticket, _ = open_ticket(rt)
    result = deliver(
        rt,
        mail(
            sender="Some Service <no-reply@service.test>",
            to=customer_token_address(rt, ticket),
            subject="Confirm your email address",
            body="Your code is 123-456.\n",
        ),
    )
    assert result.result == "created"
    assert result.ticket != ticket
    assert show(rt, result.ticket)["requester"] == "no-reply@service.test"
    assert len(show(rt, ticket)["messages"]) == 1


BAD_TOKEN_KINDS = (
    "garbled",
    "truncated",
    "other-secret",
    "for-a-ticket-that-does-not-exist",
    "ticket-number-as-plus-address",
    "not-our-domain",
)


def _bad_token_addresses(rt: Runtime, ticket: int) -> dict[str, str]:
    token = make_token(rt.secret_key, ticket)
    flipped = token[:5] + ("a" if token[5] != "a" else "b") + token[6:]
    return {
        "garbled": f"support+{flipped}@example.com",
        "truncated": f"support+{token[:-1]}@example.com",
        "other-secret": token_address(SUPPORT, make_token(b"not our secret key at all", ticket)),
        "for-a-ticket-that-does-not-exist": token_address(
            SUPPORT, make_token(rt.secret_key, ticket + 1000)
        ),
        "ticket-number-as-plus-address": f"support+{ticket}@example.com",
        "not-our-domain": f"support+{token}@example.net",
    }


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_a_token_that_does_not_verify_is_ignored(rt: Runtime, kind: str) -> None:
    ticket, _ = open_ticket(rt)
    address = _bad_token_addresses(rt, ticket)[kind]
    result = deliver(rt, mail(to=[SUPPORT, address], subject="guessing"))
    assert result.result == "created"
    assert result.ticket != ticket


@pytest.mark.parametrize("where", ["cc", "envelope"])
def test_a_token_in_cc_or_in_the_smtp_envelope_also_counts(rt: Runtime, where: str) -> None:
    ticket, _ = open_ticket(rt)
    address = customer_token_address(rt, ticket)
    if where == "cc":
        result = deliver(rt, mail(to=SUPPORT, cc=[address], subject="x"))
    else:
        # A Bcc, or a list expansion: the token is only in the SMTP RCPT.
        result = deliver(rt, mail(to="team@example.org", subject="x"), envelope_to=[address])
    assert (result.result, result.ticket) == ("appended", ticket)
    assert last_message(rt, ticket)["threaded_by"] == "token"


def test_reply_token_outranks_headers_and_subject_tag(rt: Runtime) -> None:
    first, first_msgid = open_ticket(rt, subject="first")
    second, _ = open_ticket(rt, subject="second")
    result = deliver(
        rt,
        mail(
            to=customer_token_address(rt, second),
            subject=f"Re: [#{first}] first",
            in_reply_to=first_msgid,
            references=[first_msgid],
        ),
    )
    assert result.ticket == second
    assert last_message(rt, second)["threaded_by"] == "token"


# --- rule 2: In-Reply-To and References -------------------------------------------------


def test_in_reply_to_a_stored_message_joins_its_ticket(rt: Runtime) -> None:
    ticket, msgid = open_ticket(rt, subject="Order 1042 not delivered")
    result = deliver(rt, mail(subject="something else entirely", in_reply_to=msgid))
    assert (result.result, result.ticket) == ("appended", ticket)
    assert last_message(rt, ticket)["threaded_by"] == "references"


def test_references_alone_join_the_ticket(rt: Runtime) -> None:
    ticket, msgid = open_ticket(rt)
    refs = ["<unknown.1@elsewhere.test>", msgid, "<unknown.2@elsewhere.test>"]
    result = deliver(rt, mail(subject="no tag here", references=refs))
    assert (result.result, result.ticket) == ("appended", ticket)
    assert last_message(rt, ticket)["threaded_by"] == "references"


def test_headers_outrank_the_subject_tag(rt: Runtime) -> None:
    first, _ = open_ticket(rt, subject="first")
    second, second_msgid = open_ticket(rt, subject="second")
    result = deliver(rt, mail(subject=f"Re: [#{first}] first", in_reply_to=second_msgid))
    assert result.ticket == second
    assert last_message(rt, second)["threaded_by"] == "references"


def test_a_reply_that_arrives_before_its_parent_meets_it_on_one_ticket(rt: Runtime) -> None:
    parent = new_msgid()
    reply = deliver(rt, mail(subject="Re: printer", in_reply_to=parent, references=[parent]))
    assert reply.result == "created"
    # A sibling reply, also early, finds the ticket through the parent it names...
    sibling = deliver(rt, mail(sender=DAVE, subject="Re: printer", in_reply_to=parent))
    assert (sibling.result, sibling.ticket) == ("appended", reply.ticket)
    # ...and the delayed parent joins them when it finally arrives.
    late = deliver(rt, mail(message_id=parent, subject="printer"))
    assert (late.result, late.ticket) == ("appended", reply.ticket)
    assert set(message_ids(rt, reply.ticket)) == {reply.message_id, sibling.message_id, parent}


def _conversations() -> dict[str, list[bytes]]:
    """Three customers' threads as real clients write them: References carry the chain."""
    threads: dict[str, list[bytes]] = {}

    # Carol: a straight chain of four, each reply naming the whole chain so far.
    chain = [f"<carol.{i}@mail.example.org>" for i in range(4)]
    threads["carol"] = [
        mail(
            subject="Re: " * min(i, 1) + "Invoice charged twice",
            message_id=m,
            in_reply_to=chain[i - 1] if i else None,
            references=chain[:i],
        )
        for i, m in enumerate(chain)
    ]

    # Erin's request, answered by two colleagues on Cc, one of them replying to the other.
    e = [f"<erin.{i}@corp.example.net>" for i in range(4)]
    erin = "Erin <erin@corp.example.net>"
    threads["erin"] = [
        mail(sender=erin, cc=["frank@corp.example.net"], subject="VPN down", message_id=e[0]),
        mail(
            sender="frank@corp.example.net",
            subject="Re: VPN down",
            message_id=e[1],
            in_reply_to=e[0],
            references=[e[0]],
        ),
        mail(
            sender="gina@corp.example.net",
            subject="Re: VPN down",
            message_id=e[2],
            in_reply_to=e[0],
            references=[e[0]],
        ),
        mail(
            sender=erin,
            subject="Re: Re: VPN down",
            message_id=e[3],
            in_reply_to=e[1],
            references=e[:2],
        ),
    ]

    # Hank writes twice about the same thing without replying: two separate tickets.
    threads["hank-1"] = [
        mail(sender="hank@example.net", subject="Refund", message_id="<hank.1@example.net>")
    ]
    threads["hank-2"] = [
        mail(
            sender="hank@example.net",
            subject="Refund",
            message_id="<hank.2@example.net>",
            body="Writing again.\n",
        )
    ]
    return threads


def _place(rt: Runtime, order: list[bytes], run: int) -> dict[str, int | None]:
    """Ingest `order` and say where each Message-ID is once all have arrived.

    Each run's Message-IDs get their own suffix, so several runs share one database. The
    ticket is read back at the end: a late message may join two tickets into one.
    """
    arrived = []
    for raw in order:
        result = deliver(rt, raw.replace(b"@", f".run{run}@".encode()))
        assert result.result in ("created", "appended"), result
        assert result.message_id is not None
        arrived.append(result.message_id)
    with session_scope(rt.engine) as session:
        return {
            msgid.replace(f".run{run}@", "@"): session.exec(
                select(Message.ticket_id).where(Message.message_id == msgid)
            ).one()
            for msgid in arrived
        }


def test_arrival_order_does_not_change_where_messages_land(rt: Runtime) -> None:
    threads = _conversations()
    expected = {
        frozenset(msgid.decode() for raw in msgs for msgid in _msgid_of(raw))
        for msgs in threads.values()
    }
    messages = [raw for msgs in threads.values() for raw in msgs]
    rng = random.Random(20261123)
    orders = [list(messages), list(reversed(messages))]
    orders += [rng.sample(messages, len(messages)) for _ in range(6)]
    for run, order in enumerate(orders):
        assert partition(_place(rt, order, run)) == expected, f"order {run}"


def test_arrival_order_does_not_matter_when_replies_carry_only_in_reply_to(
    rt: Runtime,
) -> None:
    # Some mailers write In-Reply-To but no References (RFC 5322 only says SHOULD).
    # When the middle message of A <- B <- C arrives last, it alone links A and C.
    a, b, c = "<a@mail.example.org>", "<b@mail.example.org>", "<c@mail.example.org>"
    chain = {
        "A": mail(message_id=a, subject="Backup failed"),
        "B": mail(message_id=b, in_reply_to=a, subject="Re: Backup failed"),
        "C": mail(message_id=c, in_reply_to=b, subject="Re: Backup failed"),
    }
    results = {}
    for run, order in enumerate(itertools.permutations("ABC")):
        placed = partition(_place(rt, [chain[k] for k in order], run))
        results["".join(order)] = sorted(sorted(group) for group in placed)
    assert results == {order: [[a, b, c]] for order in results}


def test_a_forged_message_id_cannot_pull_a_waiting_ticket_onto_a_strangers(rt: Runtime) -> None:
    # Carol's reply names <lost@...>, which never arrived; her ticket waits for it.
    carol = deliver(rt, mail(in_reply_to="<lost@mail.example.org>", subject="Re: contract"))
    mallory = deliver(rt, mail(sender="mallory@evil.test", subject="hello"))
    # Mallory forges the lost message's Message-ID, as a reply to her own ticket.
    forged = deliver(
        rt,
        mail(
            sender="mallory@evil.test",
            message_id="<lost@mail.example.org>",
            in_reply_to=mallory.message_id,
            subject="Re: hello",
        ),
    )
    assert forged.ticket == mallory.ticket
    with session_scope(rt.engine) as session:
        carol_ticket = session.get(Ticket, carol.ticket)
        assert carol_ticket is not None and carol_ticket.merged_into is None
        mine = session.exec(select(Message).where(Message.ticket_id == carol.ticket)).all()
        assert [m.from_email for m in mine] == ["carol@example.org"]


LIST = "dev@lists.example.org"
LIST_ID = {"List-Id": "Developers <dev.lists.example.org>"}


def _late_chain(on_list: bool, c_to_parent: bool = True) -> dict[str, bytes]:
    """A <- B <- C by three people, the replies carrying In-Reply-To only.

    On a list every post goes to the list and carries its List-Id; in private mail each
    reply goes to everybody of the message it answers (reply-all). Erin, B's author,
    is no participant of anything when B arrives last: only the replies' headers say
    whom they answered.
    """
    a, b, c = "<la@mail.example.org>", "<lb@mail.example.org>", "<lc@mail.example.org>"
    erin, frank = "Erin <erin@example.net>", "Frank <frank@example.net>"
    if on_list:
        to_a = to_b = to_c = [LIST]
        cc_a: list[str] = []
        cc_c: list[str] = []
        extra = LIST_ID
    else:
        to_a, cc_a = [SUPPORT], [erin]
        to_b = [SUPPORT, CAROL, frank]
        to_c, cc_c = [SUPPORT, CAROL], [erin] if c_to_parent else []
        extra = {}
    return {
        "A": mail(to=to_a, cc=cc_a, message_id=a, subject="Build", headers=extra),
        "B": mail(
            sender=erin, to=to_b, message_id=b, in_reply_to=a, subject="Re: Build", headers=extra
        ),
        "C": mail(
            sender=frank,
            to=to_c,
            cc=cc_c,
            message_id=c,
            in_reply_to=b,
            subject="Re: Build",
            headers=extra,
        ),
    }


@pytest.mark.parametrize("on_list", [True, False], ids=["list-posts", "private-reply-all"])
def test_late_replies_from_people_new_to_the_thread_meet_their_parent(
    rt: Runtime, on_list: bool
) -> None:
    # Issue #10, class 7: B arrives after C, and B's author (Erin) takes part in neither
    # ticket. C was written to Erin, or posted to B's list: C answers B, and everybody
    # on C's ticket was reached by B.
    chain = _late_chain(on_list)
    for run, order in enumerate(itertools.permutations("ABC")):
        placed = partition(_place(rt, [chain[k] for k in order], run))
        assert len(placed) == 1, "".join(order)


def test_late_replies_written_to_nobody_of_the_parent_stay_apart(rt: Runtime) -> None:
    # Without a list and without writing to B's author, nothing says C answers this B.
    chain = _late_chain(on_list=False, c_to_parent=False)
    placed = partition(_place(rt, [chain["A"], chain["C"], chain["B"]], 0))
    assert len(placed) == 2


def test_a_forged_parent_on_another_list_cannot_pull_a_waiting_list_post(rt: Runtime) -> None:
    carol = deliver(
        rt,
        mail(to=LIST, in_reply_to="<lost@mail.example.org>", subject="Re: x", headers=LIST_ID),
    )
    mallory = deliver(rt, mail(sender=MALLORY, subject="hello"))
    forged = deliver(
        rt,
        mail(
            sender=MALLORY,
            to="other@lists.example.org",
            message_id="<lost@mail.example.org>",
            in_reply_to=mallory.message_id,
            subject="Re: hello",
            headers={"List-Id": "Other <other.lists.example.org>"},
        ),
    )
    assert forged.ticket == mallory.ticket != carol.ticket
    with session_scope(rt.engine) as session:
        carol_ticket = session.get(Ticket, carol.ticket)
        assert carol_ticket is not None and carol_ticket.merged_into is None


def test_an_early_fake_reply_cannot_make_a_stranger_a_participant_when_the_parent_comes(
    rt: Runtime,
) -> None:
    # Dave's mail to support is late; Mallory, who somehow knows its Message-ID, sends a
    # "reply" to it written to Carol and Dave first. When Dave's mail arrives on
    # Carol's ticket (it answers her), Mallory's ticket must not be merged into it.
    ticket, carol_msgid = open_ticket(rt, subject="contract")
    dave_msgid = "<dave-late@example.org>"
    fake = deliver(
        rt,
        mail(
            sender=MALLORY,
            to=[SUPPORT, CAROL],
            cc=DAVE,
            in_reply_to=dave_msgid,
            subject="Re: contract",
        ),
    )
    late = deliver(
        rt,
        mail(sender=DAVE, message_id=dave_msgid, in_reply_to=carol_msgid, subject="Re: contract"),
    )
    assert late.ticket == ticket != fake.ticket
    data = show(rt, ticket)
    assert "mallory@evil.test" not in [data["requester"], *data["cc"]]


def _msgid_of(raw: bytes) -> list[bytes]:
    return [
        line.split(b":", 1)[1].strip()
        for line in raw.split(b"\r\n")
        if line.lower().startswith(b"message-id:")
    ]


def _generate_corpus(directory: Path) -> list[tuple[Path, str, str]]:
    """gen_corpus.py's 300 messages: (file, Message-ID, conversation) in send order."""
    subprocess.run(
        [sys.executable, str(GEN_CORPUS), "300", str(directory), "--seed", "7"],
        check=True,
        capture_output=True,
    )
    with (directory / "manifest.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(directory / r["file"], r["message_id"], r["conv"]) for r in rows]


def _misplaced(placement: dict[str, int | None], conversation: dict[str, str]) -> int:
    """Messages not on their conversation's main ticket, plus tickets that mix conversations."""
    home: dict[str, int | None] = {}
    by_conv: dict[str, list[int | None]] = defaultdict(list)
    for msgid, ticket in placement.items():
        by_conv[conversation[msgid]].append(ticket)
    for conv, tickets in by_conv.items():
        home[conv] = max(set(tickets), key=tickets.count)
    wrong = sum(1 for m, t in placement.items() if t != home[conversation[m]])
    owners: dict[int | None, set[str]] = defaultdict(set)
    for m, t in placement.items():
        owners[t].add(conversation[m])
    return wrong + sum(len(c) - 1 for c in owners.values())


def test_generated_corpus_lands_by_conversation_in_any_order(tmp_path: Path) -> None:
    # SQLite only: three fresh databases of 300 messages each; the rules themselves
    # are exercised on PostgreSQL by the tests above.
    require(GEN_CORPUS.exists(), f"corpus generator not found at {GEN_CORPUS}")
    corpus = _generate_corpus(tmp_path / "corpus")
    conversation = {msgid: conv for _, msgid, conv in corpus}
    expected = partition({msgid: int(conv) for msgid, conv in conversation.items()})
    shuffled = random.Random(7).sample(corpus, len(corpus))
    orders = {"in order": corpus, "shuffled": shuffled, "reversed": corpus[::-1]}
    report = {}
    for name, order in orders.items():
        base = tmp_path / name.replace(" ", "-")
        base.mkdir()
        runtime = open_runtime(
            make_config(base, inboxd={"support_address": "support@helpdesk.example"})
        )
        try:
            placement = {}
            for path, msgid, _ in order:
                result = deliver(runtime, path.read_bytes())
                assert result.result in ("created", "appended"), (path.name, result)
                placement[msgid] = result.ticket
        finally:
            runtime.engine.dispose()
        report[name] = (_misplaced(placement, conversation), partition(placement) == expected)
    assert all(same for _, same in report.values()), f"misplaced messages: {report}"


# --- rule 3: the subject tag --------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        pytest.param(CAROL, id="requester"),
        pytest.param("CAROL@EXAMPLE.ORG", id="requester-in-capitals"),
        pytest.param(DAVE, id="cc"),
        pytest.param(BOB, id="agent"),
    ],
)
def test_subject_tag_from_a_participant_joins_the_ticket(rt: Runtime, sender: str) -> None:
    ticket, _ = open_ticket(rt, cc=[DAVE], subject="Order late")
    result = deliver(rt, mail(sender=sender, subject=f"Re: [#{ticket}] Order late"))
    assert (result.result, result.ticket) == ("appended", ticket)
    assert last_message(rt, ticket)["threaded_by"] == "subject"


def test_subject_tag_from_a_stranger_opens_a_new_ticket(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt, subject="Order late")
    result = deliver(rt, mail(sender=MALLORY, subject=f"Re: [#{ticket}] Order late"))
    assert result.result == "created"
    assert result.ticket != ticket
    assert len(show(rt, ticket)["messages"]) == 1


def test_subject_tag_for_a_ticket_that_does_not_exist_opens_a_new_ticket(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt)
    result = deliver(rt, mail(subject=f"Re: [#{ticket + 41}] guessed"))
    assert result.result == "created"
    assert result.ticket != ticket
    assert show(rt, result.ticket)["messages"][0]["threaded_by"] == "new"


def test_subject_tag_from_an_ambiguous_sender_does_not_match(rt: Runtime) -> None:
    # The display name shows Carol's address; the mailbox is Mallory's.
    ticket, _ = open_ticket(rt)
    forged = '"carol@example.org" <mallory@evil.test>'
    result = deliver(rt, mail(sender=forged, subject=f"Re: [#{ticket}] Help needed"))
    assert result.result == "created"
    assert result.ticket != ticket
    assert len(show(rt, ticket)["messages"]) == 1


def test_subject_tag_trusts_an_agents_from_for_routing_only(rt: Runtime) -> None:
    # Anyone can write "From: bob@example.com"; routed by subject, it is held, not run.
    ticket, _ = open_ticket(rt)
    result = deliver(rt, mail(sender=BOB, subject=f"[#{ticket}] #status closed", body="#close\n"))
    assert result.ticket == ticket
    data = show(rt, ticket)
    assert data["messages"][-1]["kind"] == "held"
    assert data["status"] != "closed"


# --- participants: who may add CCs -------------------------------------------------------


def test_first_message_cc_and_extra_to_become_the_tickets_ccs(rt: Runtime) -> None:
    ticket, _ = open_ticket(
        rt,
        to=[f"Support <{SUPPORT}>", "Dave <dave@example.org>"],
        cc=["erin@example.org", SUPPORT.upper()],
    )
    data = show(rt, ticket)
    assert data["requester"] == "carol@example.org"
    assert data["cc"] == ["dave@example.org", "erin@example.org"]


def test_cc_of_a_message_routed_by_subject_tag_is_not_added(rt: Runtime) -> None:
    # The 2024 Zendesk CC takeover: a forged From: of the requester plus the ticket
    # number, with the attacker on Cc, must not subscribe the attacker.
    ticket, _ = open_ticket(rt, subject="Password reset")
    result = deliver(
        rt,
        mail(subject=f"Re: [#{ticket}] Password reset", cc=["mallory@evil.test"]),
    )
    assert result.ticket == ticket
    assert last_message(rt, ticket)["threaded_by"] == "subject"
    assert show(rt, ticket)["cc"] == []


def test_cc_of_a_message_routed_by_a_customers_own_message_id_is_not_added(
    rt: Runtime,
) -> None:
    # Carol's Message-ID travelled in her mail; it proves nothing about who writes now.
    ticket, msgid = open_ticket(rt)
    result = deliver(rt, mail(in_reply_to=msgid, references=[msgid], cc=["mallory@evil.test"]))
    assert result.ticket == ticket
    assert last_message(rt, ticket)["threaded_by"] == "references"
    assert show(rt, ticket)["cc"] == []


def test_cc_of_a_message_routed_by_a_customer_token_is_added(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt)
    result = deliver(rt, mail(to=customer_token_address(rt, ticket), cc=[DAVE], subject="Re: x"))
    assert result.ticket == ticket
    assert show(rt, ticket)["cc"] == [DAVE]


def test_cc_of_a_reply_to_inboxds_own_message_id_is_added(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt)
    ours = "<reply.1.k3j2h4@inboxd>"
    remember_own(rt, ticket, ours)
    result = deliver(rt, mail(in_reply_to=ours, references=[ours], cc=[DAVE], subject="Re: x"))
    assert (result.result, result.ticket) == ("appended", ticket)
    assert last_message(rt, ticket)["threaded_by"] == "references"
    assert DAVE in show(rt, ticket)["cc"]


def test_inboxds_own_mail_coming_back_is_recognised(rt: Runtime) -> None:
    # A relay that loops our outgoing mail back to support@ must not create a ticket.
    ticket, _ = open_ticket(rt)
    ours = "<ack.1.k3j2h4@inboxd>"
    remember_own(rt, ticket, ours)
    result = deliver(rt, mail(sender=f"Example Support <{SUPPORT}>", message_id=ours))
    assert result.result == "duplicate"
    assert len(show(rt, ticket)["messages"]) == 1


# --- merged and closed tickets ------------------------------------------------------------


@pytest.mark.parametrize("route", ["references", "token", "subject"])
def test_a_message_for_a_merged_ticket_lands_on_its_target(rt: Runtime, route: str) -> None:
    source, msgid = open_ticket(rt, subject="Login broken")
    target, _ = open_ticket(rt, sender="Dave <dave@example.org>", subject="Cannot log in")
    update_ticket(rt, source, merged_into=target)
    raw = {
        "references": mail(subject="Re: Login broken", in_reply_to=msgid),
        "token": mail(to=customer_token_address(rt, source), subject="Re: Login broken"),
        "subject": mail(subject=f"Re: [#{source}] Login broken"),
    }[route]
    result = deliver(rt, raw)
    assert (result.result, result.ticket) == ("appended", target)
    assert last_message(rt, target)["threaded_by"] == route
    assert len(show(rt, source)["messages"]) == 1


def test_a_message_follows_a_chain_of_merges(rt: Runtime) -> None:
    first, msgid = open_ticket(rt)
    middle, _ = open_ticket(rt, sender=DAVE)
    last, _ = open_ticket(rt, sender="erin@example.org")
    update_ticket(rt, first, merged_into=middle)
    update_ticket(rt, middle, merged_into=last)
    assert deliver(rt, mail(in_reply_to=msgid)).ticket == last


def test_a_customer_reply_to_a_closed_ticket_opens_a_linked_followup(rt: Runtime) -> None:
    old, msgid = open_ticket(rt, subject="Order late")
    update_ticket(rt, old, status="closed")
    result = deliver(rt, mail(subject=f"Re: [#{old}] Order late", in_reply_to=msgid))
    assert result.result == "created"
    assert result.ticket != old
    new = show(rt, result.ticket)
    assert new["followup_of"] == old
    assert new["requester"] == "carol@example.org"
    assert new["subject"] == "Order late"
    old_data = show(rt, old)
    assert old_data["status"] == "closed"
    assert len(old_data["messages"]) == 1


@pytest.mark.parametrize("status", ["pending", "solved"])
def test_a_customer_reply_reopens_a_pending_or_solved_ticket(rt: Runtime, status: str) -> None:
    ticket, msgid = open_ticket(rt)
    update_ticket(rt, ticket, status=status)
    result = deliver(rt, mail(in_reply_to=msgid, body="It is still broken.\n"))
    assert (result.result, result.ticket) == ("appended", ticket)
    data = show(rt, ticket)
    assert data["status"] == "open"
    status_events = [e for e in data["events"] if e["type"] == "status"]
    assert status_events[-1]["actor"] == "carol@example.org"
    assert (status_events[-1]["from"], status_events[-1]["to"]) == (status, "open")


# --- the same message twice -------------------------------------------------------------


def test_the_same_bytes_twice_are_stored_once(rt: Runtime) -> None:
    raw = mail()
    first = deliver(rt, raw)
    again = deliver(rt, raw)
    assert again.result == "duplicate"
    assert again.ticket == first.ticket
    assert len(show(rt, first.ticket)["messages"]) == 1


@pytest.mark.parametrize("with_message_id", [True, False], ids=["message-id", "no-message-id"])
def test_the_same_message_by_smtp_and_by_imap_is_stored_once(
    rt: Runtime, with_message_id: bool
) -> None:
    # The copies differ only in what the transport added on top.
    raw = mail(message_id=None if with_message_id else NO_MESSAGE_ID)
    by_smtp = with_transport_headers(
        raw,
        "Received: from mx.example.org (mx.example.org [192.0.2.1])"
        "\r\n\tby in.example.com with ESMTPS id 1; Mon, 23 Nov 2026 10:00:02 +0000",
    )
    by_imap = with_transport_headers(
        raw,
        "Return-Path: <carol@example.org>",
        "Delivered-To: support@example.com",
        "Received: from in.example.com by imap.example.com with LMTP id 2;"
        "\r\n\tMon, 23 Nov 2026 10:00:05 +0000",
        "Received: from mx.example.org (mx.example.org [192.0.2.1])"
        "\r\n\tby in.example.com with ESMTPS id 1; Mon, 23 Nov 2026 10:00:02 +0000",
    )
    first = deliver(rt, by_smtp)
    again = deliver(rt, by_imap)
    assert first.result == "created"
    assert (again.result, again.ticket) == ("duplicate", first.ticket)
    assert len(show(rt, first.ticket)["messages"]) == 1


def test_same_message_id_with_different_content_is_stored(rt: Runtime) -> None:
    # Broken mailers reuse Message-IDs; dropping the second message would lose mail.
    msgid = new_msgid()
    first = deliver(rt, mail(message_id=msgid, body="First question.\n"))
    second = deliver(rt, mail(message_id=msgid, body="A different question.\n"))
    assert second.result in ("created", "appended")
    with session_scope(rt.engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == msgid)).all()
    assert sorted(m.text for m in stored) == ["A different question.", "First question."]
    assert first.ticket is not None


def test_messages_without_message_id_are_told_apart_by_content(rt: Runtime) -> None:
    one = deliver(rt, mail(message_id=NO_MESSAGE_ID, subject="Printer", body="It jams.\n"))
    same = deliver(rt, mail(message_id=NO_MESSAGE_ID, subject="Printer", body="It jams.\n"))
    other = deliver(rt, mail(message_id=NO_MESSAGE_ID, subject="Printer", body="Now smokes.\n"))
    assert one.result == "created"
    assert (same.result, same.ticket) == ("duplicate", one.ticket)
    assert other.result == "created"
    assert other.ticket != one.ticket


# --- subjects -----------------------------------------------------------------------------

TAG = subject_tag_pattern("[#{id}]")


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Order late",
        "RE: Order late",
        "re:Order late",
        "Fwd: Order late",
        "FW: Order late",
        "AW: Order late",
        "WG: Order late",
        "SV: Order late",
        "VS: Order late",
        "Antw: Order late",
        "回复: Order late",
        "答复: Order late",
        "转发: Order late",
        "回覆: Order late",
        "回复：Order late",  # full-width colon, as Chinese input methods type it
        "Réf. : Order late",
        "RÉF: Order late",
        "Re[2]: Order late",
        "Re: AW: Fwd: 回复: Order late",
        "Re: [#12] Order late",
        "[#12] Re: Order late",
        "  Re:   Order late  ",
    ],
)
def test_reply_and_forward_prefixes_in_any_language_are_ignored(subject: str) -> None:
    assert clean_subject(subject, TAG) == "Order late"


@pytest.mark.parametrize("subject", ["Order late", "Regarding: Order late", "Reorder late"])
def test_words_that_only_look_like_prefixes_are_kept(subject: str) -> None:
    assert clean_subject(subject, TAG) == subject


def test_a_new_tickets_subject_has_no_prefixes_or_tag(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt, subject="AW: WG: [#999] Lieferung fehlt")
    assert show(rt, ticket)["subject"] == "Lieferung fehlt"


# --- X-Inboxd-* headers from outside -------------------------------------------------------


def test_inbound_x_inboxd_headers_are_stripped_before_threading(rt: Runtime) -> None:
    ticket, _ = open_ticket(rt)
    result = deliver(
        rt,
        mail(
            sender=MALLORY,
            subject="hello",
            headers=[
                ("X-Inboxd-Ticket", str(ticket)),
                ("X-INBOXD-Agent", "alice@example.com"),
            ],
        ),
    )
    assert result.result == "created"
    assert result.ticket != ticket
    with session_scope(rt.engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == result.message_id)).one()
    assert stored.flags.get("stripped_internal_headers") == 2


# --- events -------------------------------------------------------------------------------


def test_threading_decisions_are_recorded_as_events(rt: Runtime) -> None:
    ticket, msgid = open_ticket(rt, cc=[DAVE])
    update_ticket(rt, ticket, status="pending")
    deliver(rt, mail(in_reply_to=msgid, body="Any news?\n"))
    events = show(rt, ticket)["events"]
    for event in events:
        assert set(event) >= {"at", "actor", "type", "from", "to"}
        assert event["at"].endswith("Z")
    seen = [(e["type"], e["actor"], e["from"], e["to"]) for e in events]
    assert ("created", "carol@example.org", None, "new") in seen
    assert ("participant", "carol@example.org", None, DAVE) in seen
    assert ("status", "carol@example.org", "pending", "open") in seen
    assert [e for e in seen if e[0] == "message"] == [
        ("message", "carol@example.org", None, "customer"),
        ("message", "carol@example.org", None, "customer"),
    ]
    assert [e[0] for e in seen].index("created") == 0
