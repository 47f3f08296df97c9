"""text_search.py: the SQL of a ticket search: which tickets contain a text.

A search matches a ticket's subject or requester, or any of its messages' subject, sender
or text, as a case-insensitive substring in any script. On SQLite trigram FTS5 tables
(migration 0004) answer it; on PostgreSQL trigram indexes serve ILIKE. queries.py
decides which of these expressions a list or a count runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, column, literal_column, or_, table, union
from sqlmodel import col, select

from inboxd.models import Message, Ticket

# SQLite's trigram FTS5 tables (migration 0004): rowid is the ticket's or message's id.
TICKET_FTS = table("ticket_fts", column("rowid", Integer), column("ticket_fts"))
MESSAGE_FTS = table("message_fts", column("rowid", Integer), column("message_fts"))


def matches(text: str, dialect: str) -> Any:
    """Tickets whose subject, requester, or any message's subject, sender or text
    contains `text` (case-insensitive substring, any script). On SQLite trigram FTS5
    tables answer for 3+ characters; on PostgreSQL trigram indexes serve ILIKE. Either
    way it is one UNION of ticket ids, which the indexes can answer, rather than an OR
    that would be tested against every ticket."""
    if dialect == "sqlite" and len(text) >= 3:
        words = phrase(text)
        by_ticket = select(TICKET_FTS.c.rowid).where(TICKET_FTS.c.ticket_fts.op("MATCH")(words))
        hits = select(MESSAGE_FTS.c.rowid).where(MESSAGE_FTS.c.message_fts.op("MATCH")(words))
        ids = union(by_ticket, select(Message.ticket_id).where(col(Message.id).in_(hits)))
    else:
        # The trigram tokenizer needs three characters; shorter needles scan with LIKE.
        needle = _needle(text)
        ids = union(
            select(Ticket.id).where(_in_ticket(Ticket, needle)),
            select(Message.ticket_id).where(_in_message(needle)),
        )
    return col(Ticket.id).in_(ids)


def phrase(text: str) -> str:
    """`text` as one FTS5 phrase: matched as written, whatever operators it holds."""
    return '"' + text.replace('"', '""') + '"'


def each_matches(ticket: Any, text: str) -> Any:
    """`matches` tested on each row of `ticket` (an alias) rather than as a set of ids."""
    needle = _needle(text)
    # OFFSET 0 keeps the messages' part a test per ticket: without it PostgreSQL may turn
    # it into a hash of every message that matches, the very set this path avoids.
    in_messages = (
        select(literal_column("1"))
        .where(col(Message.ticket_id) == ticket.id, _in_message(needle))
        .offset(0)
        .exists()
    )
    return or_(_in_ticket(ticket, needle), in_messages)


def _in_ticket(ticket: Any, needle: str) -> Any:
    """The needle (a LIKE pattern) in the ticket's own searched columns."""
    return or_(
        ticket.subject.ilike(needle, escape="\\"), ticket.requester.ilike(needle, escape="\\")
    )


def _in_message(needle: str) -> Any:
    """The needle (a LIKE pattern) in a message's searched columns."""
    return or_(
        col(Message.text).ilike(needle, escape="\\"),
        col(Message.subject).ilike(needle, escape="\\"),
        col(Message.from_email).ilike(needle, escape="\\"),
    )


def _needle(text: str) -> str:
    """`text` anywhere, as a LIKE pattern: its own % and _ match only themselves."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
