"""history.py: a ticket's event log as people read it (`inboxd show`, the web's History).

The log keeps raw values for scripts and reports (UTC ISO instants, a message's kind as it
arrived); read as they are they mislead: an agent's relayed reply showed as
`message: — → held` (it is stored held until its commands are checked), a due date as
`2026-12-06T07:12:58.551039+00:00`, and the changes `#undo` made as ordinary changes.
Here each event becomes one line: its real kind, the time to the minute in the reader's
zone, and the words of the change. `show --json` keeps the raw events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from inboxd.models import Event, Message
from inboxd.tickets.queries import events_of

# What a stored mail is, by its kind now (not as it arrived).
_MAIL_KINDS = {
    "customer": "mail from the customer",
    "held": "agent mail held",
    "auto": "automatic mail",
    "csat": "survey answer",
    "reply": "agent reply",
    "note": "internal note",
}
# Events whose values are instants.
_INSTANTS = {"due"}


@dataclass(frozen=True)
class HistoryLine:
    """One event as read: `when` in the reader's zone, `kind` its type, `text` the change."""

    at: datetime  # aware, UTC: for <time datetime="...">
    when: str  # "2026-12-03 15:05 CET"
    actor: str
    kind: str
    text: str


def local_zone() -> tzinfo:
    """The terminal's zone, with its daylight-saving rules: $TZ, else /etc/localtime."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as data:
            return ZoneInfo.from_file(data, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return datetime.now().astimezone().tzinfo or UTC


def minute(at: datetime, zone: tzinfo) -> str:
    """An instant to the minute in `zone`, with the zone's abbreviation."""
    local = _aware(at).astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def history(session: Session, ticket_id: int, zone: tzinfo) -> list[HistoryLine]:
    """The ticket's events, oldest first, as lines in `zone`."""
    events = events_of(session, ticket_id)
    pks = {e.message_pk for e in events if e.message_pk is not None}
    kinds: dict[int, str] = {}
    if pks:
        rows = session.exec(select(Message.id, Message.kind).where(col(Message.id).in_(pks)))
        kinds = {pk: kind for pk, kind in rows if pk is not None}
    return lines(events, kinds, zone)


def lines(events: list[Event], kinds: dict[int, str], zone: tzinfo) -> list[HistoryLine]:
    """The pure part of history(): `kinds` is each message's kind now, by primary key."""
    undo_blocks = {e.block for e in events if e.type == "undo" and e.block}
    told = {
        e.message_pk for e in events if e.type in ("reply", "note", "logged_text") and e.message_pk
    }
    out: list[HistoryLine] = []
    for event in events:
        text = _text(event, kinds, undo_blocks, told, zone)
        if text is None:
            continue
        out.append(
            HistoryLine(_aware(event.at), minute(event.at, zone), event.actor, event.type, text)
        )
    return out


def _text(
    event: Event, kinds: dict[int, str], undo_blocks: set[str], told: set[int], zone: tzinfo
) -> str | None:
    old, new = event.from_value, event.to_value
    if event.type == "undo":
        return None  # the marker; the changes it made follow as "undone: …"
    if event.type == "message":
        kind = kinds.get(event.message_pk or 0, new or "")
        if kind in ("reply", "note") and event.message_pk in told:
            return None  # its "reply" or "note" line says it
        return _MAIL_KINDS.get(kind, f"{kind or 'mail'} received")
    if event.type == "reply":
        return f"public reply sent (by {new or 'email'})"
    if event.type == "note":
        return f"internal note added (by {new or 'email'})"
    if event.type == "created":
        return "ticket opened"
    if event.type == "held_released":
        return "held agent mail released: run as verified"
    if event.type == "logged":
        return f"opened on the customer's behalf ({new or 'other'})"
    if event.type == "logged_text":
        return f"the customer's request written down, not sent (by {new or 'cli'})"
    if event.type in _INSTANTS:
        old, new = _instant(old, zone), _instant(new, zone)
    change = f"{old or '—'} → {new or '—'}" if old or new else ""
    if event.block in undo_blocks:
        return f"undone: {change}"
    return change


def _instant(value: str | None, zone: tzinfo) -> str | None:
    if not value:
        return value
    try:
        return minute(datetime.fromisoformat(value.replace("Z", "+00:00")), zone)
    except ValueError:
        return value


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
