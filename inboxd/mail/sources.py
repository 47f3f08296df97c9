"""sources.py: read raw messages from what `inboxd ingest` is given.

A path may be one message (.eml or any file), an mbox file (it starts with "From "), a
Maildir folder (cur/ new/ tmp/), or a folder of message files; "-" is standard input.
Each message comes out as (name, bytes) with the bytes exactly as stored; nothing here
parses MIME.
"""

from __future__ import annotations

import mailbox
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from inboxd.errors import InboxdError


def iter_messages(paths: list[str]) -> Iterator[tuple[str, bytes]]:
    """Yield (source name, raw bytes) for every message under the given paths."""
    for arg in paths:
        if arg == "-":
            yield "-", sys.stdin.buffer.read()
            continue
        path = Path(arg)
        if path.is_dir():
            yield from _directory(path)
        elif path.is_file():
            yield from _file(path)
        else:
            raise InboxdError(f"{arg}: no such file or directory")


def _directory(path: Path) -> Iterator[tuple[str, bytes]]:
    if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.iterkeys()):
            yield f"{path}/{key}", box.get_bytes(key)
        return
    for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        yield from _file(child)


def _file(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as handle:
        head = handle.read(8)
    bom = head.startswith(b"\xef\xbb\xbf")
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not head.startswith(b"From ") or head.startswith(b"From  :"):
        yield str(path), path.read_bytes()
        return
    if not bom:
        yield from _mbox(path, str(path))
        return
    # The mailbox module cannot see the first "From " line behind a byte order mark
    # (MimeKit's unmunged.mbox.txt has one): read a copy without it.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "mbox"
        copy.write_bytes(path.read_bytes()[3:])
        yield from _mbox(copy, str(path))


def _mbox(path: Path, name: str) -> Iterator[tuple[str, bytes]]:
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield f"{name}#{index + 1}", box.get_bytes(key)
    finally:
        box.close()
