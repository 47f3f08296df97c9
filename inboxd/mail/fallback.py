"""fallback.py: read a message field by field, so one bad field never loses the message.

A bug in decoding one header (a subject, a display name, a filename) used to raise out
of the parser, and the pipeline quarantined the whole message as an "internal error":
real mail that never became a ticket. Each field is now read through `Fallbacks.read`;
when the careful reading raises, a degraded one is used instead (the raw header with
its 8-bit bytes read as UTF-8 or Latin-1, no encoded words decoded), and the field, the
error and the raw value are recorded. The pipeline stores that record in the message's
flags, where `degraded` says how often the fallback was needed. Limits (ParseRejected)
still reject the message: they are decisions, not bugs. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from inboxd.errors import ParseRejected

T = TypeVar("T")

# A recorded raw value is for an admin to look at, not a copy of the message (the raw
# bytes are stored anyway): this much of it is enough to see what was wrong.
MAX_RECORDED_CHARS = 300


class Fallbacks:
    """The fields of one message that needed the degraded reading, with why."""

    def __init__(self) -> None:
        self.used: dict[str, str] = {}

    def read(self, name: str, raw: object, reader: Callable[[], T], degraded: Callable[[], T]) -> T:
        """`reader()`, or `degraded()` (recorded under `name`) when reader raises."""
        try:
            return reader()
        except ParseRejected:
            raise
        except Exception as exc:
            if name not in self.used:
                self.used[name] = f"{type(exc).__name__}: {exc}"[:100] + f"; raw: {escaped(raw)}"
            return degraded()


def escaped(value: object) -> str:
    """`value` as printable ASCII: 8-bit bytes (surrogate escapes) as \\xNN."""
    text = str(value)
    data = text.encode("utf-8", "surrogateescape")
    return data.decode("ascii", "backslashreplace")[:MAX_RECORDED_CHARS]


def plain_header(value: str) -> str:
    """A header value read without any cleverness: bytes as UTF-8, else Latin-1."""
    data = str(value).encode("utf-8", "surrogateescape")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
