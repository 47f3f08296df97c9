"""threader.py: which ticket a message joins (SPEC §5). Reads the DB; writes nothing.

The rules, in order, the first match winning:
  1. a reply token in a recipient address (customer tokens only for participants);
  2. a Message-ID in In-Reply-To/References (or the message's own Message-ID) known to
     belong to a ticket;
  3. the subject tag [#N], only when the sender is already a participant of N;
  4. otherwise a new ticket.
Then merged tickets lead to their target, and a customer writing to a closed ticket
gets a new ticket that links back to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import NamedTuple

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from inboxd.mail.parse import ParsedMessage
from inboxd.models import Agent, Message, Participant, ThreadKey, Ticket
from inboxd.tickets.tokens import read_token, token_from_address

# A Message-ID inboxd generated outranks one a message on the ticket carries, which
# outranks one that was only referenced; ties go to the oldest ticket.
_KEY_RANK = {"own": 0, "stored": 1, "referenced": 2}
_MAX_MERGE_HOPS = 50


@dataclass(frozen=True)
class ThreadDecision:
    """Where a message goes. `ticket_id` None means: open a new ticket."""

    ticket_id: int | None
    threaded_by: str  # token | references | subject | new
    may_add_participants: bool
    token_agent_id: int | None = None
    followup_of: int | None = None
    reason: str = ""


def find_ticket(
    session: Session,
    msg: ParsedMessage,
    *,
    secret: bytes,
    support_addresses: tuple[str, ...],
    tag: re.Pattern[str],
    envelope_to: tuple[str, ...] = (),
    sender_is_agent: bool = False,
    keys: list[KnownKey] | None = None,
    agents: frozenset[str] | None = None,
) -> ThreadDecision:
    """Apply the rules of SPEC §5 to a parsed message.

    `keys` (from `known_keys`) and `agents` (active agents' addresses) may be passed in
    when the caller has them already; they are looked up otherwise.
    """
    if keys is None:
        keys = known_keys(session, msg)
    if agents is None:
        agents = active_agents(session)
    decision = (
        _by_token(session, msg, secret, support_addresses, envelope_to, agents)
        or _by_references(msg, keys)
        or _by_subject_tag(session, msg, tag, sender_is_agent, agents)
        or ThreadDecision(None, "new", True, reason="no rule matched")
    )
    if decision.ticket_id is None:
        return decision
    ticket = _follow_merges(session, decision.ticket_id)
    if ticket is None:
        return ThreadDecision(None, "new", True, reason=f"ticket {decision.ticket_id} is gone")
    if ticket.status == "closed" and not sender_is_agent:
        return ThreadDecision(
            None, "new", True, followup_of=ticket.id, reason=f"ticket {ticket.id} is closed"
        )
    if ticket.id != decision.ticket_id:
        return ThreadDecision(
            ticket.id,
            decision.threaded_by,
            decision.may_add_participants,
            decision.token_agent_id,
            reason=f"{decision.reason}; ticket {decision.ticket_id} was merged into {ticket.id}",
        )
    return decision


def wanted_msgids(msg: ParsedMessage) -> list[str]:
    """The Message-IDs rule 2 looks for, nearest parent first, then the message's own."""
    wanted = [*msg.in_reply_to, *reversed(msg.references)]
    if msg.message_id:
        # A parent that arrives after its replies finds the ticket they opened.
        wanted.append(msg.message_id)
    return list(dict.fromkeys(wanted))[:200]


class KnownKey(NamedTuple):
    """A thread key as read by `known_keys`: a Message-ID, its ticket and its source."""

    msgid: str
    ticket_id: int
    source: str


_THREAD_KEY = ThreadKey.__table__  # type: ignore[attr-defined]
# Built once; a Core SELECT of plain rows instead of ThreadKey objects.
_KNOWN_KEYS = sa_select(_THREAD_KEY.c.msgid, _THREAD_KEY.c.ticket_id, _THREAD_KEY.c.source).where(
    _THREAD_KEY.c.msgid.in_(bindparam("wanted", expanding=True))
)


def known_keys(session: Session, msg: ParsedMessage) -> list[KnownKey]:
    """Every thread key for the Message-IDs this message names (one query)."""
    wanted = wanted_msgids(msg)
    if not wanted:
        return []
    session.flush()  # as the ORM's autoflush did: keys moved by a merge are read moved
    rows = session.connection().execute(_KNOWN_KEYS, {"wanted": wanted})
    return [KnownKey(msgid, ticket_id, source) for msgid, ticket_id, source in rows]


def active_agents(session: Session) -> frozenset[str]:
    return frozenset(session.exec(select(Agent.email).where(Agent.active)).all())


def tickets_waiting_for(
    session: Session,
    msg: ParsedMessage,
    ticket_id: int,
    keys: list[KnownKey],
    agents: frozenset[str],
) -> list[Ticket]:
    """Other tickets opened by replies to this very message, before it arrived.

    When A <- B <- C carry only In-Reply-To and B arrives last, C has opened a ticket of
    its own; B links the two, and in arrival order they would have been one. Such a
    ticket is joined to B's only when B's sender already takes part in both, or when the
    waiting replies answer B both ways round (`_answered`: written to B's author or to
    B's list, and bringing nobody B's conversation did not reach), so a forged
    Message-ID cannot pull somebody else's ticket onto a stranger's.
    """
    sender = _sender(msg)
    if not msg.message_id or sender is None:
        return []
    waiting_keys = [
        k
        for k in keys
        if k.msgid == msg.message_id and k.source == "referenced" and k.ticket_id != ticket_id
    ]
    if not waiting_keys:
        return []
    in_both = is_participant(session, ticket_id, sender, agents)
    waiting = []
    for key in waiting_keys:
        other = session.get(Ticket, key.ticket_id)
        if other is None or other.merged_into is not None or other.status == "closed":
            continue
        if (in_both and is_participant(session, key.ticket_id, sender, agents)) or _answered(
            session, msg, sender, key.ticket_id, ticket_id, agents
        ):
            waiting.append(other)
    return waiting


def _answered(
    session: Session,
    parent: ParsedMessage,
    sender: str,
    waiting_id: int,
    ticket_id: int,
    agents: frozenset[str],
) -> bool:
    """Whether the late replies on `waiting_id` answer this parent, both ways round.

    The replies reached the parent's author (their To/Cc name the parent's sender, or
    they and the parent were posts to one mailing list: the same List-Id), and they
    bring nobody onto the parent's ticket whom the parent's conversation did not reach:
    each of the waiting ticket's participants is one of the ticket's, one of the
    parent's addressees, or posted the replies to the parent's list. A stranger who
    forges the parent's Message-ID is neither whom the replies were written to nor a
    post to their list, so the tickets stay apart (a list post is public to the list).
    """
    rows = session.exec(
        select(Message.from_email, Message.to, Message.cc, Message.flags).where(
            Message.ticket_id == waiting_id, Message.direction == "in"
        )
    ).all()
    parent_list = _list_id(parent)
    addressed: set[str] = set()
    posted: set[str] = set()  # authors of replies posted to the parent's list
    for author, to, cc, flags in rows:
        addressed.update(_emails([*to, *cc]))
        signals = (flags or {}).get("automatic", [])
        if parent_list and f"list-id: {parent_list}" in signals:
            posted.add(author)
    if sender not in addressed and not posted:
        return False
    reached = {sender, *(a.email for a in (*parent.to, *parent.cc)), *posted}
    people = session.exec(select(Participant.email).where(Participant.ticket_id == waiting_id))
    return all(p in reached or is_participant(session, ticket_id, p, agents) for p in people)


def _list_id(msg: ParsedMessage) -> str:
    # As classify.py records it in the message's flags ("list-id: <value, 60 chars>").
    value = msg.header("list-id")
    return value[:60] if value else ""


def _emails(values: list[str]) -> set[str]:
    return {email.lower() for _, email in getaddresses(values) if "@" in email}


def is_participant(
    session: Session, ticket_id: int, email: str, agents: frozenset[str] | None = None
) -> bool:
    """Requester, CC or agent of that ticket (any active agent counts as an agent)."""
    if agents is None:
        agents = active_agents(session)
    return email in agents or session.get(Participant, (ticket_id, email)) is not None


def _sender(msg: ParsedMessage) -> str | None:
    # An ambiguous sender never matches a participant (parse.py explains when it is).
    return None if msg.sender is None or msg.sender_ambiguous else msg.sender.email


def _by_token(
    session: Session,
    msg: ParsedMessage,
    secret: bytes,
    support_addresses: tuple[str, ...],
    envelope_to: tuple[str, ...],
    agents: frozenset[str],
) -> ThreadDecision | None:
    recipients = [*envelope_to, *(a.email for a in msg.to), *(a.email for a in msg.cc)]
    sender = _sender(msg)
    for address in recipients:
        raw_token = token_from_address(address, support_addresses)
        token = read_token(secret, raw_token) if raw_token else None
        if token is None or session.get(Ticket, token.ticket_id) is None:
            continue
        if token.agent_id is not None:
            # A notification forwarded to someone else and answered by them still lands on
            # the ticket, but proves nothing about its sender: no participants added.
            owner = session.get(Agent, token.agent_id)
            own = owner is not None and sender == owner.email
            return ThreadDecision(
                token.ticket_id, "token", own, token.agent_id, reason="agent reply token"
            )
        # The "ticket trick": a service mails a customer's token address at an attacker's
        # request. Only a participant's own mail may use the customer token (checked on
        # the ticket it was merged into, where its participants now are).
        target = _follow_merges(session, token.ticket_id)
        tickets = {token.ticket_id} | ({target.id} if target and target.id else set())
        if sender and any(is_participant(session, t, sender, agents) for t in tickets):
            return ThreadDecision(token.ticket_id, "token", True, reason="customer reply token")
    return None


def _by_references(msg: ParsedMessage, keys: list[KnownKey]) -> ThreadDecision | None:
    wanted = wanted_msgids(msg)
    rows = [k for k in keys if k.msgid in set(wanted)]
    if not rows:
        return None
    order = {m: i for i, m in enumerate(wanted)}
    best = min(rows, key=lambda r: (order[r.msgid], _KEY_RANK.get(r.source, 9), r.ticket_id))
    return ThreadDecision(
        best.ticket_id,
        "references",
        best.source == "own",
        reason=f"{best.msgid} is {best.source} on ticket {best.ticket_id}",
    )


def _by_subject_tag(
    session: Session,
    msg: ParsedMessage,
    tag: re.Pattern[str],
    sender_is_agent: bool,
    agents: frozenset[str],
) -> ThreadDecision | None:
    sender = _sender(msg)
    if sender is None:
        return None
    for match in tag.finditer(msg.subject):
        ticket_id = int(match.group(1))
        if session.get(Ticket, ticket_id) is None:
            continue
        if sender_is_agent or is_participant(session, ticket_id, sender, agents):
            # Routing only: a subject tag never proves the sender received our mail.
            return ThreadDecision(ticket_id, "subject", False, reason=f"subject tag #{ticket_id}")
    return None


def _follow_merges(session: Session, ticket_id: int) -> Ticket | None:
    ticket = session.get(Ticket, ticket_id)
    hops = 0
    while ticket is not None and ticket.merged_into and hops < _MAX_MERGE_HOPS:
        ticket = session.get(Ticket, ticket.merged_into)
        hops += 1
    return ticket
