"""command_tags.py: find the command block at the top of an agent's new text (SPEC §6).

`extract_tags` splits the text an agent newly wrote (after `quotes.strip_quoted`) into the
command lines at its very top and the reply below them. `parse_command_line` reads one line
and `parse_commands` reads a whole command text typed into `inboxd run` or the web view.

Pure: no DB, no I/O, no logging. It does not know which commands exist and does not resolve
aliases; `commands.py` does. It must never raise and runs in linear time whatever the input.

Decisions, each from what agents' keyboards and mail clients really produce:

* The block is the lines at the top that start with `#` and a letter. Blank lines before
  and between them are allowed; the first other line ends the block and starts the reply.
  Only the first `max_lines` lines are scanned (Mailman caps mail commands the same way), so
  a `#` line below that is text.
* `# heading`, `#1` and `#!` are not commands: Markdown headings and numbered notes start
  that way. Any other `#word` is a command line, even `#stauts` or `#status:`; the caller
  rejects those by name rather than letting them slip through to the customer as text.
* Chinese and Japanese input methods type a full-width `＃`, full-width letters and the
  ideographic space, and rich-text editors leave zero-width spaces, BOMs, soft hyphens and
  no-break spaces in what looks like plain ASCII. A command line is read after removing the
  invisible characters and NFKC normalisation, which maps all of those to ASCII.
* Outlook, Apple Mail and phone keyboards turn straight quotes into typographic ones, and
  agents in other countries type their own (`„…“`, `« … »`, `「…」`). Any of them quotes an
  argument, and an unterminated quote takes the rest of the line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

# Characters that no one types on purpose on a command line, removed before reading it:
# zero-width space/non-joiner/joiner, word joiner, BOM (iOS and Outlook start text with
# one), soft hyphen (Word inserts them when it hyphenates). Hebrew and Arabic clients put
# left-to-right and right-to-left marks and embeddings around a Latin `#status`, so those
# go too.
_INVISIBLE: dict[int, None] = dict.fromkeys(
    [
        0x00AD,
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2060,
        0xFEFF,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)

# Which characters may close an argument that starts with a given quote. Clients curl
# only one end of a straight quote pair often enough ("Bob Smith” from Outlook after an
# edit), and languages pair them differently: German „…“, Swedish ”…”, Danish »…«.
_QUOTE_CLOSERS: dict[str, str] = {
    '"': '"“”„‟',
    "“": '”“"',
    "”": '”“"',
    "„": '“”‟"',
    "‟": '”“"',
    "«": "»«",
    "»": "«»",
    "‹": "›‹",
    "›": "‹›",
    "「": "」",
    "『": "』",
    "'": "'‘’",
    "‘": "’‘'",
    "’": "’‘'",
    "‚": "‘’'",
    "‛": "’‘'",
}


@dataclass(frozen=True)
class CommandCall:
    """One command line as the agent wrote it; not yet checked against the registry."""

    name: str  # lowercased, without '#' ("status"); '' when the line is not a command
    args: tuple[str, ...]  # arguments, quotes removed
    line: str  # the line as the agent typed it, stripped (for error mails)
    line_no: int  # 1-based line number within the text


def extract_tags(text: str, max_lines: int = 30) -> tuple[list[CommandCall], str]:
    """Split `text` into (the command block at its top, the rest of the text = the reply).

    When there is no command block, the text comes back unchanged.
    """
    calls: list[CommandCall] = []
    pos = len(text)  # where the reply starts when every line is part of the block
    for line_no, start, line in _lines(text):
        if line_no > max_lines:
            pos = start
            break
        if _is_blank(line):
            continue
        call = parse_command_line(line, line_no)
        if call is None:
            pos = start
            break
        calls.append(call)
    if not calls:
        return [], text
    return calls, _drop_leading_blank_lines(text, pos)


def parse_command_line(line: str, line_no: int = 1) -> CommandCall | None:
    """One line -> CommandCall, or None when it is not a command line."""
    clean = unicodedata.normalize("NFKC", line.translate(_INVISIBLE)).strip()
    if len(clean) < 2 or clean[0] != "#" or not clean[1].isalpha():
        return None
    end = 1
    while end < len(clean) and not clean[end].isspace():
        end += 1
    return CommandCall(
        name=clean[1:end].lower(),
        args=_split_args(clean, end),
        line=line.strip(),
        line_no=line_no,
    )


def parse_commands(text: str) -> list[CommandCall]:
    """Every non-blank line of a command text; a line that is not a command gets name ''."""
    calls: list[CommandCall] = []
    for line_no, _start, line in _lines(text):
        if _is_blank(line):
            continue
        call = parse_command_line(line, line_no)
        calls.append(call or CommandCall(name="", args=(), line=line.strip(), line_no=line_no))
    return calls


def _lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(line number, offset of the line in `text`, the line) for each line, lazily.

    Lines end at "\\n"; a "\\r" before it is whitespace to every reader here, so Windows
    line endings need nothing else.
    """
    pos = 0
    line_no = 0
    while pos < len(text):
        line_no += 1
        newline = text.find("\n", pos)
        end = len(text) if newline < 0 else newline + 1
        yield line_no, pos, text[pos:end]
        pos = end


def _is_blank(line: str) -> bool:
    return not line.translate(_INVISIBLE).strip()


def _drop_leading_blank_lines(text: str, pos: int) -> str:
    for _line_no, start, line in _lines(text[pos:]):
        if not _is_blank(line):
            return text[pos + start :]
    return ""


def _split_args(clean: str, pos: int) -> tuple[str, ...]:
    """Whitespace-separated arguments of a normalised line from `pos`, quotes removed."""
    args: list[str] = []
    n = len(clean)
    while pos < n:
        char = clean[pos]
        if char.isspace():
            pos += 1
            continue
        closers = _QUOTE_CLOSERS.get(char)
        if closers is None:
            end = pos
            while end < n and not clean[end].isspace():
                end += 1
            args.append(clean[pos:end])
            pos = end
            continue
        close = _find_closing_quote(clean, pos + 1, closers)
        # French puts a (no-break) space inside « … »; nobody means an argument to start
        # or end with a space, so those are dropped in every language.
        args.append(clean[pos + 1 : close].strip())
        pos = close + 1
    return tuple(args)


def _find_closing_quote(clean: str, pos: int, closers: str) -> int:
    """Index of the quote that closes an argument starting at `pos`, or len(clean).

    A closing quote followed by a letter or digit is an apostrophe inside a word
    ("‘Bob’s printer’" is one argument), so it does not close.
    """
    n = len(clean)
    while pos < n:
        if clean[pos] in closers and (pos + 1 == n or not clean[pos + 1].isalnum()):
            return pos
        pos += 1
    return n
