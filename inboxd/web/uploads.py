"""uploads.py: files an agent attaches in the web's reply box, read within a size cap.

The cap (`[web] max_upload_bytes`, all files of one reply together) keeps a reply below
what relays accept; a reply over it is refused whole, with the sizes, before anything is
stored or sent. The browser's filename is a display name only (the file is stored under
its SHA-256, store.py), cut to its last path part and stripped of control characters.
"""

from __future__ import annotations

import mimetypes
import re

from fastapi import UploadFile

from inboxd.errors import InboxdError
from inboxd.queues.outbox import FilePart
from inboxd.render import size_text

MAX_FILES = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def read_uploads(files: list[UploadFile | str], cap: int) -> list[FilePart]:
    """The non-empty files of a form, or InboxdError saying which limit they break."""
    parts: list[FilePart] = []
    total = 0
    for upload in files:
        if isinstance(upload, str) or not upload.filename:
            continue  # a file field left empty still sends a nameless, empty part
        if len(parts) == MAX_FILES:
            raise InboxdError(f"at most {MAX_FILES} attachments per reply")
        data = upload.file.read(cap - total + 1)
        total += len(data)
        if total > cap:
            raise InboxdError(
                f"attachments are too large: {upload.filename!r} brings them over the "
                f"limit of {size_text(cap)} per reply ([web] max_upload_bytes); nothing was sent"
            )
        name = _CONTROL.sub("", upload.filename.replace("\\", "/").rsplit("/", 1)[-1])[:200]
        guessed = mimetypes.guess_type(name)[0]
        kind = upload.content_type or guessed or "application/octet-stream"
        if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", kind):
            kind = guessed or "application/octet-stream"
        parts.append(FilePart(name or "attachment", kind, data))
    return parts
