"""quarantine.py: what an admin does with a message that could not be processed.

The pipeline puts a message here (with its raw bytes) when the parser refuses it, when it
hits a bug, or when its sender was marked as spam; `retry` and `release` run it through
the pipeline again (pipeline.retry_quarantined). This module reads and drops entries:
with the sender and subject each one claims, a safe view of one, and deletion.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from inboxd.errors import NotFound
from inboxd.mail.peek import peek, text_view
from inboxd.models import MAX_ROW_ID, Quarantine
from inboxd.tickets import queries, store


def get(session: Session, quarantine_id: int) -> Quarantine:
    row = session.get(Quarantine, quarantine_id) if 0 < quarantine_id <= MAX_ROW_ID else None
    if row is None:
        raise NotFound(f"no quarantined message {quarantine_id}")
    return row


def entries(session: Session, include_released: bool = False) -> list[dict[str, Any]]:
    """The list of `inboxd quarantine`: each entry with its sender and subject."""
    return [entry_json(session, r) for r in queries.list_quarantine(session, include_released)]


def entry_json(session: Session, row: Quarantine) -> dict[str, Any]:
    seen = peek(store.load_raw(session, row.raw_sha256) or b"")
    return {**queries.quarantine_json(row), "from": seen.sender, "subject": seen.subject}


def show(session: Session, quarantine_id: int) -> dict[str, Any]:
    """One entry with its header fields and its text, safe to print on a terminal."""
    row = get(session, quarantine_id)
    raw = store.load_raw(session, row.raw_sha256) or b""
    seen = peek(raw)
    return {
        **queries.quarantine_json(row),
        "from": seen.sender,
        "subject": seen.subject,
        "size": len(raw),
        "headers": [{"name": n, "value": v} for n, v in seen.headers],
        "text": text_view(raw),
    }


def delete(session: Session, quarantine_id: int) -> None:
    """Drop an entry for good. Its raw bytes stay in the raw store, as every message's do,
    so the same mail sent again is ingested afresh rather than found quarantined."""
    session.delete(get(session, quarantine_id))
