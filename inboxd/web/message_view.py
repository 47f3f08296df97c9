"""message_view.py: one message as the ticket page shows it: its parts, its files, and
what the signed-in reader may do with it (release a held mail)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from inboxd.models import Attachment, Message
from inboxd.tickets import queries


def message_view(session: Session, message: Message, email: str, role: str) -> dict[str, Any]:
    """What the ticket page shows of one message, and what the reader (`email`, `role`)
    may do with it."""
    files = session.exec(
        select(Attachment).where(Attachment.message_pk == message.id).order_by(col(Attachment.id))
    ).all()
    reply_to = [a for a in message.reply_to if a.lower() != message.from_email.lower()]
    return {
        "pk": message.id,
        "kind": message.kind,
        "direction": message.direction,
        "from_email": message.from_email,
        "from_name": message.from_name,
        "to": message.to,
        "cc": message.cc,
        "subject": message.subject,
        "date": queries.iso(message.date or message.received_at),
        "text": message.text or message.body,
        "body": message.body,
        "has_html": bool(message.html),
        "attachments": [
            {"id": f.id, "filename": f.filename or "(no name)", "size": f.size} for f in files
        ],
        "reply_to": reply_to,
        "held": message.flags.get("held") if message.kind == "held" else None,
        "sender_ambiguous": message.sender_ambiguous,
        "sender_problem": message.flags.get("sender_problem"),
        "automatic": message.flags.get("automatic"),
        # agentmail.release_held decides; this only spares others a button that refuses.
        "releasable": message.kind == "held"
        and str(message.flags.get("held", "")).startswith("unverified")
        and (role == "admin" or email.lower() == message.from_email.lower()),
        "released_by": message.flags.get("released_by"),
    }
