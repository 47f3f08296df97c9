"""notices.py: the notifications one action has queued so far, so that notify.py sends
each agent one mail per action (SPEC §10.9), never two.

An action is one database session (one message of an ingest batch, one CLI, web or API
request, one clock tick per ticket); the notifications live in the session's `info`.
Replacing one is safe: it was queued in this same transaction and nobody has seen it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import Session

from inboxd.agents import digest
from inboxd.models import Message, Outbound

_NOTICES = "inboxd.notices"
_OUTBOUND = Outbound.__table__  # type: ignore[attr-defined]


@dataclass
class Notice:
    """The notification an agent got about a ticket in this action."""

    message_id: str
    purpose: str
    headlines: list[str]
    message: Message | None


def begin_action(session: Session) -> None:
    """Start a new action in this session: notifications are no longer merged with the
    ones queued before (the pipeline calls it for each message of a batch)."""
    session.info.pop(_NOTICES, None)


def action_notices(session: Session) -> dict[tuple[int, str], Notice]:
    """(ticket id, agent email) -> the notification queued in this action."""
    notices: dict[tuple[int, str], Notice] = session.info.setdefault(_NOTICES, {})
    return notices


def drop_queued(session: Session, message_id: str) -> None:
    """Take back a notification queued earlier in this transaction."""
    session.connection().execute(
        delete(_OUTBOUND).where(
            _OUTBOUND.c.message_id == message_id,
            _OUTBOUND.c.status.in_(("queued", digest.HELD)),
        )
    )


def cautious(first: str, second: str, public: Mapping[str, bool]) -> str:
    """Of two purposes merged into one mail, the one whose reply is not public by default
    (SPEC §6 "Defaults"), so an "ok, on it" never reaches the customer by accident."""
    if public.get(first, False) and not public.get(second, False):
        return second
    return first
