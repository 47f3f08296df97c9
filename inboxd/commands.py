"""commands.py: THE command registry (SPEC §6). Email, `inboxd run`, the web and rules
all parse their input into CommandCalls (command_tags.py) and call `run_block()` here.

A block is checked whole before anything is applied: an unknown command, a bad value or
an unknown agent on any line means nothing is applied and every bad line is reported.
Each change is an event carrying the block's id, which is what `#undo` reverts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from inboxd import actions
from inboxd.command_tags import CommandCall, extract_tags
from inboxd.errors import NotFound
from inboxd.models import (
    PRIORITIES,
    STATUSES,
    Agent,
    Event,
    Message,
    ThreadKey,
    Ticket,
    utcnow,
)
from inboxd.queries import get_ticket
from inboxd.render import BUNDLED
from inboxd.store import open_ticket, record_event, savepoint

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,99}$")
_DELAY = re.compile(r"^(\d{1,4})([mhdw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class CommandError(Exception):
    """A line of a block is not valid; the message says why, for the agent to read."""


@dataclass(frozen=True)
class Actor:
    """Who runs a block: an agent (email path, CLI --as, web, API) or "system" (rules)."""

    email: str
    agent_id: int | None = None
    role: str = "agent"


@dataclass
class Block:
    """The state of one command block while it runs."""

    session: Session
    ticket: Ticket
    actor: Actor
    source: str  # email | cli | web | api | rule
    about_message_pk: int | None = None  # the message the agent replied to (#split, #move)
    macros_dir: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    note: bool = False
    public: bool = False
    wants_help: bool = False
    inserted_text: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notable: bool = False  # merged, split, moved or spam: the agent gets a receipt


@dataclass(frozen=True)
class Command:
    """One command: its names, how to read its arguments, and what it does."""

    name: str
    aliases: dict[str, tuple[str, ...]]  # alias -> implied arguments
    usage: str
    summary: str
    parse: Callable[[Block, tuple[str, ...]], Any]
    apply: Callable[[Block, Any], None]


@dataclass(frozen=True)
class BlockResult:
    ok: bool
    errors: list[tuple[str, str]]  # (line as typed, why)
    changes: list[str]
    note: bool
    public: bool
    wants_help: bool
    inserted_text: str
    notable: bool
    block_id: str


# --- argument readers -------------------------------------------------------------------


def _one(args: tuple[str, ...], what: str) -> str:
    if len(args) != 1:
        raise CommandError(f"expects one {what}")
    return args[0]


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    value = value.lower().replace("_", "-")
    value = {"onhold": "on-hold", "hold": "on-hold", "solve": "solved", "close": "closed"}.get(
        value, value
    )
    if value not in choices:
        raise CommandError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return value


def find_agent(session: Session, who: str, actor: Actor) -> Agent | None:
    """An active agent by email or name; `me` is the actor. None when nobody matches."""
    who = who.strip()
    if who.lower() == "me":
        return session.get(Agent, actor.agent_id) if actor.agent_id else None
    agents = session.exec(select(Agent).where(Agent.active)).all()
    by_email = [a for a in agents if a.email == who.lower()]
    if by_email:
        return by_email[0]
    by_name = [a for a in agents if a.name.lower() == who.lower()]
    if len(by_name) == 1:
        return by_name[0]
    by_local = [a for a in agents if a.email.split("@")[0] == who.lower()]
    return by_local[0] if len(by_local) == 1 else None


# --- commands ---------------------------------------------------------------------------


def _status_parse(block: Block, args: tuple[str, ...]) -> str:
    return _choice(_one(args, "status"), STATUSES, "status")


def _status_apply(block: Block, status: str) -> None:
    if actions.set_status(block.session, block.ticket, status, block.actor.email, block.id):
        block.changes.append(f"status -> {status}")


def _assign_parse(block: Block, args: tuple[str, ...]) -> Agent | None:
    who = " ".join(args).strip()
    if not who:
        raise CommandError("expects an agent's email or name, me, or none")
    if who.lower() == "none":
        return None
    agent = find_agent(block.session, who, block.actor)
    if agent is None:
        raise CommandError(f"no active agent {who!r}")
    return agent


def _assign_apply(block: Block, agent: Agent | None) -> None:
    if actions.set_assignee(block.session, block.ticket, agent, block.actor.email, block.id):
        block.changes.append(f"assignee -> {agent.email if agent else 'none'}")


def _priority_parse(block: Block, args: tuple[str, ...]) -> str:
    return _choice(_one(args, "priority"), PRIORITIES, "priority")


def _priority_apply(block: Block, priority: str) -> None:
    if actions.set_priority(block.session, block.ticket, priority, block.actor.email, block.id):
        block.changes.append(f"priority -> {priority}")


def _tags_parse(block: Block, args: tuple[str, ...]) -> list[str]:
    if not args:
        raise CommandError("expects one or more tags")
    tags = [a.lower().lstrip("#") for a in args]
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        raise CommandError(f"tags are lowercase words; not {', '.join(bad)}")
    return tags


def _tag_apply(block: Block, tags: list[str]) -> None:
    for tag in tags:
        if actions.add_tag(block.session, block.ticket, tag, block.actor.email, block.id):
            block.changes.append(f"tag +{tag}")


def _untag_apply(block: Block, tags: list[str]) -> None:
    for tag in tags:
        if actions.remove_tag(block.session, block.ticket, tag, block.actor.email, block.id):
            block.changes.append(f"tag -{tag}")


def _no_args(block: Block, args: tuple[str, ...]) -> None:
    if args:
        raise CommandError("takes no arguments")


def _note_apply(block: Block, _: None) -> None:
    block.note = True


def _public_apply(block: Block, _: None) -> None:
    block.public = True


def _help_apply(block: Block, _: None) -> None:
    block.wants_help = True


def _addresses_parse(block: Block, args: tuple[str, ...]) -> list[str]:
    if not args:
        raise CommandError("expects one or more email addresses")
    emails = [a.strip("<>,;").lower() for a in args]
    bad = [e for e in emails if not _ADDRESS.match(e)]
    if bad:
        raise CommandError(f"not an email address: {', '.join(bad)}")
    return emails


def _cc_apply(block: Block, emails: list[str]) -> None:
    for email in emails:
        if actions.add_cc(block.session, block.ticket, email, block.actor.email, block.id):
            block.changes.append(f"cc +{email}")


def _uncc_apply(block: Block, emails: list[str]) -> None:
    for email in emails:
        if actions.remove_cc(block.session, block.ticket, email, block.actor.email, block.id):
            block.changes.append(f"cc -{email}")


def _ticket_arg(block: Block, args: tuple[str, ...]) -> Ticket:
    raw = _one(args, "ticket number").lstrip("#")
    if not raw.isdigit():
        raise CommandError(f"expects a ticket number, not {raw!r}")
    try:
        target = get_ticket(block.session, int(raw))
    except NotFound:
        raise CommandError(f"no ticket {raw}") from None
    if target.id == block.ticket.id:
        raise CommandError("is this very ticket")
    return target


def _merge_parse(block: Block, args: tuple[str, ...]) -> Ticket:
    target = _ticket_arg(block, args)
    if target.merged_into is not None:
        raise CommandError(f"ticket {target.id} was itself merged into {target.merged_into}")
    return target


def _merge_apply(block: Block, target: Ticket) -> None:
    actions.merge_tickets(block.session, block.ticket, target, block.actor.email, block.id)
    block.changes.append(f"merged into #{target.id}")
    block.notable = True


def _spam_apply(block: Block, _: None) -> None:
    actions.mark_spam(block.session, block.ticket, block.actor.email, block.id)
    block.changes.append("marked as spam and closed")
    block.notable = True


def _subject_parse(block: Block, args: tuple[str, ...]) -> str:
    subject = " ".join(args).strip()
    if not subject:
        raise CommandError("expects the new subject")
    return subject[:500]


def _subject_apply(block: Block, subject: str) -> None:
    if actions.set_subject(block.session, block.ticket, subject, block.actor.email, block.id):
        block.changes.append(f"subject -> {subject}")


def _team_parse(block: Block, args: tuple[str, ...]) -> str | None:
    team = " ".join(args).strip()
    if not team:
        raise CommandError("expects a team name, or none")
    return None if team.lower() == "none" else team


def _team_apply(block: Block, team: str | None) -> None:
    if actions.set_team(block.session, block.ticket, team, block.actor.email, block.id):
        block.changes.append(f"team -> {team or 'none'}")


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """`2026-12-01` (that day, 09:00 UTC) or a delay `3d`, `4h`, `30m`, `2w`."""
    now = now or utcnow()
    text = text.strip().lower()
    if m := _DELAY.match(text):
        return now + timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(hour=9, tzinfo=UTC)
    except ValueError:
        raise CommandError(
            f"expects a date like 2026-12-01 or a delay like 3d, not {text!r}"
        ) from None
    if day <= now:
        raise CommandError(f"{text} is not in the future")
    return day


def _due_parse(block: Block, args: tuple[str, ...]) -> datetime:
    return parse_when(_one(args, "date or delay"))


def _due_apply(block: Block, when: datetime) -> None:
    session, ticket, who = block.session, block.ticket, block.actor.email
    actions.set_status(session, ticket, "pending", who, block.id)
    if actions.set_due(session, ticket, when, who, block.id):
        block.changes.append(f"pending until {when:%Y-%m-%d %H:%M} UTC")


@dataclass(frozen=True)
class _Macro:
    commands: list[tuple[Command, Any]]  # the macro's own command block, checked
    text: str


def _macro_parse(block: Block, args: tuple[str, ...]) -> _Macro:
    name = _one(args, "macro name").lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise CommandError(f"no macro {name!r}")
    for folder in (block.macros_dir, str(BUNDLED / "macros")):
        if folder and (path := Path(folder) / f"{name}.txt").is_file():
            calls, text = extract_tags(path.read_text(encoding="utf-8"))
            checked = []
            for call in calls:
                command, inner_args = resolve(call)
                if command.name == "macro":
                    raise CommandError(f"macro {name!r} uses #macro itself")
                try:
                    checked.append((command, command.parse(block, inner_args)))
                except CommandError as exc:
                    raise CommandError(f"macro {name!r}: {call.line}: {exc}") from None
            return _Macro(checked, text)
    raise CommandError(f"no macro {name!r} (templates/macros/{name}.txt)")


def _macro_apply(block: Block, macro: _Macro) -> None:
    # A macro may hold commands itself (SPEC §6); they run as part of this block.
    for command, value in macro.commands:
        command.apply(block, value)
    if macro.text.strip():
        block.inserted_text.append(macro.text.rstrip("\n"))
        block.changes.append("macro inserted")


def _message_about(block: Block) -> Message:
    if block.about_message_pk is None:
        raise CommandError("works only in a reply to a notification about a message")
    message = block.session.get(Message, block.about_message_pk)
    if message is None or message.ticket_id != block.ticket.id:
        raise CommandError("the message this reply is about is no longer on this ticket")
    return message


def _split_parse(block: Block, args: tuple[str, ...]) -> Message:
    _no_args(block, args)
    return _message_about(block)


def _split_apply(block: Block, message: Message) -> None:
    new = open_ticket(block.session, message.subject or block.ticket.subject, message.from_email)
    _move(block, message, new)
    block.changes.append(f"message split out into #{new.id}")


def _move_parse(block: Block, args: tuple[str, ...]) -> tuple[Message, Ticket]:
    return _message_about(block), _ticket_arg(block, args)


def _move_apply(block: Block, value: tuple[Message, Ticket]) -> None:
    message, target = value
    _move(block, message, target)
    block.changes.append(f"message moved to #{target.id}")


def _move(block: Block, message: Message, target: Ticket) -> None:
    assert target.id is not None
    record_event(
        block.session,
        block.ticket,
        block.actor.email,
        "moved_out",
        str(message.id),
        str(target.id),
        block=block.id,
    )
    record_event(
        block.session,
        target,
        block.actor.email,
        "moved_in",
        str(block.ticket.id),
        str(message.id),
        block=block.id,
    )
    message.ticket_id = target.id
    block.session.add(message)
    if message.message_id:
        # Replies to the moved message follow it to its new ticket.
        for key in block.session.exec(
            select(ThreadKey).where(
                ThreadKey.msgid == message.message_id, ThreadKey.ticket_id == block.ticket.id
            )
        ):
            key.ticket_id = target.id
            block.session.add(key)
    block.notable = True


def _undo_apply(block: Block, _: None) -> None:
    for line in undo_last_block(block.session, block.ticket, block.actor, block.id):
        block.changes.append(line)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command(
            "status",
            {
                "open": ("open",),
                "pending": ("pending",),
                "hold": ("on-hold",),
                "solve": ("solved",),
                "close": ("closed",),
                "reopen": ("open",),
            },
            "#status S",
            "new, open, pending, on-hold, solved or closed",
            _status_parse,
            _status_apply,
        ),
        Command(
            "assign",
            {"assignee": (), "owner": (), "take": ("me",)},
            "#assign WHO",
            "an agent's email or name, me, or none",
            _assign_parse,
            _assign_apply,
        ),
        Command(
            "priority",
            {"low": ("low",), "normal": ("normal",), "high": ("high",), "urgent": ("urgent",)},
            "#priority P",
            "low, normal, high or urgent",
            _priority_parse,
            _priority_apply,
        ),
        Command("tag", {}, "#tag T...", "adds tags (lowercase words)", _tags_parse, _tag_apply),
        Command("untag", {}, "#untag T...", "removes tags", _tags_parse, _untag_apply),
        Command(
            "note",
            {"internal": ()},
            "#note",
            "the reply is an internal note: never sent to the customer",
            _no_args,
            _note_apply,
        ),
        Command("cc", {}, "#cc ADDR...", "adds customer-side CCs", _addresses_parse, _cc_apply),
        Command(
            "uncc", {}, "#uncc ADDR...", "removes customer-side CCs", _addresses_parse, _uncc_apply
        ),
        Command(
            "merge", {}, "#merge N", "merges this ticket into ticket N", _merge_parse, _merge_apply
        ),
        Command("spam", {}, "#spam", "marks as spam and closes", _no_args, _spam_apply),
        Command(
            "subject", {}, "#subject TEXT", "renames the ticket", _subject_parse, _subject_apply
        ),
        Command(
            "team", {}, "#team NAME", "moves the ticket to a team's queue", _team_parse, _team_apply
        ),
        Command(
            "due",
            {"snooze": ()},
            "#due WHEN",
            "pending until a date (2026-12-01) or a delay (3d, 4h)",
            _due_parse,
            _due_apply,
        ),
        Command(
            "macro",
            {},
            "#macro NAME",
            "inserts the canned reply templates/macros/NAME.txt",
            _macro_parse,
            _macro_apply,
        ),
        Command(
            "split",
            {},
            "#split",
            "moves the message you reply to into a new ticket",
            _split_parse,
            _split_apply,
        ),
        Command(
            "move",
            {},
            "#move N",
            "moves the message you reply to onto ticket N",
            _move_parse,
            _move_apply,
        ),
        Command(
            "undo",
            {},
            "#undo",
            "reverts your previous command block on this ticket",
            _no_args,
            _undo_apply,
        ),
        Command(
            "public",
            {},
            "#public",
            "sends the reply to the customer where it would be a note",
            _no_args,
            _public_apply,
        ),
        Command("help", {}, "#help", "mails you this table", _no_args, _help_apply),
    ]
}
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    alias: (c.name, implied) for c in COMMANDS.values() for alias, implied in c.aliases.items()
}


def resolve(call: CommandCall) -> tuple[Command, tuple[str, ...]]:
    """The command a call names (through an alias) and its full arguments."""
    name = call.name.lower()
    if name in COMMANDS:
        return COMMANDS[name], call.args
    if name in ALIASES:
        target, implied = ALIASES[name]
        return COMMANDS[target], implied + call.args
    raise CommandError(f"unknown command #{name}" if name else "not a command line")


def run_block(
    session: Session,
    ticket: Ticket,
    actor: Actor,
    calls: list[CommandCall],
    *,
    source: str,
    about_message_pk: int | None = None,
    macros_dir: str = "",
) -> BlockResult:
    """Check every call, then apply them all in order; or apply nothing and say why."""
    block = Block(session, ticket, actor, source, about_message_pk, macros_dir)
    parsed: list[tuple[Command, Any]] = []
    errors: list[tuple[str, str]] = []
    for call in calls:
        try:
            command, args = resolve(call)
            parsed.append((command, command.parse(block, args)))
        except CommandError as exc:
            errors.append((call.line, str(exc)))
    if errors:
        return _result(block, ok=False, errors=errors)
    # A command can still refuse while it is applied (#undo with nothing to undo); then
    # the block's earlier commands are rolled back too, so it stays all or nothing.
    line = ""
    try:
        with savepoint(session):
            for (command, value), call in zip(parsed, calls, strict=True):
                line = call.line
                command.apply(block, value)
    except CommandError as exc:
        return _result(block, ok=False, errors=[(line, str(exc))])
    return _result(block, ok=True, errors=[])


def _result(block: Block, *, ok: bool, errors: list[tuple[str, str]]) -> BlockResult:
    return BlockResult(
        ok=ok,
        errors=errors,
        changes=list(block.changes) if ok else [],
        note=block.note,
        public=block.public,
        wants_help=block.wants_help,
        inserted_text="\n\n".join(block.inserted_text),
        notable=block.notable,
        block_id=block.id,
    )


# --- undo -------------------------------------------------------------------------------

# Event type -> how to put the old value back. Merges, splits and moves are not undone
# by #undo: they move messages that others may have answered since.
_REVERSIBLE = {
    "status",
    "priority",
    "assignee",
    "subject",
    "team",
    "due",
    "tag_added",
    "tag_removed",
    "cc_added",
    "cc_removed",
}


def undo_last_block(
    session: Session, ticket: Ticket, actor: Actor, current_block: str
) -> list[str]:
    """Revert the actor's previous block on this ticket, if nothing changed since."""
    assert ticket.id is not None
    events = list(
        session.exec(
            select(Event).where(Event.ticket_id == ticket.id).order_by(col(Event.id).desc())
        )
    )
    last = next(
        (e for e in events if e.block and e.block != current_block and e.actor == actor.email), None
    )
    if last is None:
        raise CommandError("there is no earlier command block of yours on this ticket")
    newer = [e for e in events if e.id is not None and last.id is not None and e.id > last.id]
    if any(e.block != last.block and e.type != "message" for e in newer):
        raise CommandError("the ticket changed since your last block; undo it by hand")
    mine = [e for e in events if e.block == last.block]
    if any(e.type not in _REVERSIBLE for e in mine):
        raise CommandError("your last block merged, split, moved or marked spam; undo by hand")
    done: list[str] = []
    who, block_id = actor.email, current_block
    for event in mine:  # newest first
        old, new = event.from_value, event.to_value
        if event.type == "status" and old:
            actions.set_status(session, ticket, old, who, block_id)
        elif event.type == "priority" and old:
            actions.set_priority(session, ticket, old, who, block_id)
        elif event.type == "assignee":
            agent = session.exec(select(Agent).where(Agent.email == old)).first() if old else None
            actions.set_assignee(session, ticket, agent, who, block_id)
        elif event.type == "subject" and old is not None:
            actions.set_subject(session, ticket, old, who, block_id)
        elif event.type == "team":
            actions.set_team(session, ticket, old, who, block_id)
        elif event.type == "due":
            actions.set_due(
                session, ticket, datetime.fromisoformat(old) if old else None, who, block_id
            )
        elif event.type == "tag_added" and new:
            actions.remove_tag(session, ticket, new, who, block_id)
        elif event.type == "tag_removed" and old:
            actions.add_tag(session, ticket, old, who, block_id)
        elif event.type == "cc_added" and new:
            actions.remove_cc(session, ticket, new, who, block_id)
        elif event.type == "cc_removed" and old:
            actions.add_cc(session, ticket, old, who, block_id)
        done.append(f"undone {event.type}: {old or '-'} -> {new or '-'}")
    return done


def help_table() -> str:
    """The command table, as mailed for #help and shown in every notification's footer."""
    lines = []
    for command in COMMANDS.values():
        aliases = " ".join(f"#{a}" for a in command.aliases)
        lines.append(
            f"{command.usage:<16} {command.summary}" + (f"  (also {aliases})" if aliases else "")
        )
    return "\n".join(lines)
