"""notify_files.py: which of a customer's files an agent's notification carries.

Attached while they fit together in `[outbound] notify_attachments_bytes`, oldest first;
the rest are named with their size, so a 40 MB scan never bounces a notification off the
agent's mailbox and nobody is left unaware that it exists.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from inboxd.models import Attachment, Message
from inboxd.queues.outbox import FilePart
from inboxd.render import size_text
from inboxd.runtime import Runtime
from inboxd.tickets.store import attachment_path


def message_files(
    session: Session, rt: Runtime, message: Message | None
) -> tuple[list[FilePart], list[str]]:
    """The message's files to attach to a notification, oldest first while they fit in
    `[outbound] notify_attachments_bytes` together, and the names of those that did not
    (the notification names them with the ticket's link)."""
    if message is None or message.id is None:
        return [], []
    rows = session.exec(
        select(Attachment).where(Attachment.message_pk == message.id).order_by(col(Attachment.id))
    ).all()
    room = rt.config.outbound.notify_attachments_bytes
    files: list[FilePart] = []
    left_out: list[str] = []
    for row in rows:
        path = attachment_path(rt.attachments_dir, row.sha256)
        if not path.exists():
            continue
        if row.size > room:
            left_out.append(f"{row.filename or '(no name)'} ({size_text(row.size)})")
            continue
        room -= row.size
        files.append(FilePart(row.filename, row.content_type, path.read_bytes()))
    return files, left_out
