"""reply_context.py: what goes below an agent's words in a relayed reply.

A customer reading an answer should not have to dig out what they asked (issue 16.3):
the agent's signature from their profile, then the customer's last public message quoted
under an attribution line in the customer's language. Only the customer's own mail is
quoted: never an internal note, another agent's reply, an out-of-office, or a message
the agent's reply came after.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from inboxd import languages
from inboxd.customers.profiles import customer_for
from inboxd.models import Agent, Message, Ticket
from inboxd.runtime import Runtime, reading_zone

# How much of the customer's message is quoted; the rest is on the ticket.
QUOTE_LINES = 40
SIGNATURE_SEPARATOR = "-- "

# "On DATE, NAME wrote:" as mail clients write it in the languages inboxd ships.
ATTRIBUTION = {
    "en": "On {date}, {name} wrote:",
    "de": "Am {date} schrieb {name}:",
    "fr": "Le {date}, {name} a écrit :",
    "es": "El {date}, {name} escribió:",
    "ja": "{date}、{name} さんは書きました:",
    "zh-Hans": "{name} 在 {date} 写道：",
    "zh-Hant": "{name} 於 {date} 寫道：",
}


def signature_part(agent: Agent) -> str:
    """The agent's signature after a blank line, or '' when they have none."""
    return "\n\n" + signature(agent) if agent.signature.strip() else ""


def quote_part(session: Session, rt: Runtime, ticket: Ticket, reply: Message | None) -> str:
    """The customer's last message before `reply`, quoted after a blank line ('' if the
    customer has written nothing to quote)."""
    last = last_customer_message(session, ticket, before=reply)
    return "\n\n" + quoted(session, rt, last) if last is not None else ""


def signature(agent: Agent) -> str:
    """The agent's signature under the usual `-- ` line, unless it brings its own."""
    text = agent.signature.strip("\n")
    if text.lstrip().startswith("--"):
        return text
    return f"{SIGNATURE_SEPARATOR}\n{text}"


def last_customer_message(
    session: Session, ticket: Ticket, before: Message | None = None
) -> Message | None:
    """The newest mail from the customer side on the ticket (before `before`), skipping
    automatic mail (out-of-office, bounces) and anything without text."""
    query = (
        select(Message)
        .where(
            Message.ticket_id == ticket.id,
            Message.kind == "customer",
            Message.direction == "in",
        )
        .order_by(col(Message.id).desc())
        .limit(20)
    )
    if before is not None and before.id is not None:
        query = query.where(col(Message.id) < before.id)
    for message in session.exec(query):
        if message.flags.get("automatic") or not (message.text or message.body).strip():
            continue
        return message
    return None


def quoted(session: Session, rt: Runtime, message: Message) -> str:
    """`message` as a quote: an attribution line, then its new text with `> ` before each
    line, cut after QUOTE_LINES lines."""
    customer = customer_for(session, message.from_email)
    language = languages.variant(customer.language if customer else None, ATTRIBUTION)
    name = message.from_name or (customer.name if customer else "") or message.from_email
    when = _when(message.date or message.received_at, reading_zone(rt))
    return ATTRIBUTION[language].format(date=when, name=name) + "\n" + quoted_text(message)


def quoted_text(message: Message) -> str:
    """The message's new text with `> ` before each line, cut after QUOTE_LINES lines."""
    lines = (message.text or message.body).strip("\n").splitlines()
    if len(lines) > QUOTE_LINES:
        lines = [*lines[:QUOTE_LINES], "[…]"]
    return "\n".join(f"> {line}" if line else ">" for line in lines)


def _when(at: datetime, zone: ZoneInfo) -> str:
    aware = at if at.tzinfo else at.replace(tzinfo=ZoneInfo("UTC"))
    local = aware.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
