"""commands.py: THE command registry (SPEC §6). Email, `inboxd run`, the web and rules
all parse their input into CommandCalls (command_tags.py) and call `run_block()` here.

A block is checked whole before anything is applied: an unknown command, a bad value or
an unknown agent on any line means nothing is applied and every bad line is reported.
Each change is an event carrying the block's id, which is what `#undo` reverts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from inboxd.mail.command_tags import CommandCall, extract_tags
from inboxd.models import Ticket
from inboxd.tickets import customer_commands, handlers, macros
from inboxd.tickets.blocks import Actor, Block, BlockResult, CommandError
from inboxd.tickets.store import savepoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """One command: its names, how to read its arguments, and what it does."""

    name: str
    aliases: dict[str, tuple[str, ...]]  # alias -> implied arguments
    usage: str
    summary: str
    parse: Callable[[Block, tuple[str, ...]], Any]
    apply: Callable[[Block, Any], None]
    # The ticket's requester may run it too, by replying to inboxd's mail (SPEC §6: a
    # customer's `#` lines are text, but for these).
    requester: bool = False


# --- #kb: a knowledge-base article's title, summary and link in the reply -------------


def _kb_parse(block: Block, args: tuple[str, ...]) -> str:
    if not 1 <= len(args) <= 2:
        raise CommandError("expects an article's slug, and optionally a language")
    if block.kb is None:
        raise CommandError("the knowledge base is not available here")
    text = block.kb(args[0].lower(), args[1] if len(args) > 1 else None, block.ticket.subject)
    if text is None:
        raise CommandError(f"no public article {args[0]!r} (inboxd kb list)")
    return text


def _kb_apply(block: Block, text: str) -> None:
    block.inserted_text.append(text)
    block.changes.append("article inserted")


# --- macros: canned replies that may hold commands of the registry themselves ---------


@dataclass(frozen=True)
class _Macro:
    commands: list[tuple[Command, Any]]  # the macro's own command block, checked
    text: str  # its placeholders filled in (tickets/macros.py)


def check_macro(block: Block, name: str, language: str | None = None) -> macros.Rendered:
    """Macro `name` made ready for the block's ticket with every command line checked,
    applying nothing: what `#macro` would do, for `inboxd macro preview` and the web."""
    return _load_macro(block, name, language)[1]


def _load_macro(
    block: Block, name: str, language: str | None = None
) -> tuple[_Macro, macros.Rendered]:
    rendered = macros.prepare(block, name, language)
    checked = []
    for call in rendered.calls:
        command, inner_args = resolve(call)
        if command.name == "macro":
            raise CommandError(f"macro {name!r} uses #macro itself")
        try:
            checked.append((command, command.parse(block, inner_args)))
        except CommandError as exc:
            raise CommandError(f"macro {name!r}: {call.line}: {exc}") from None
    return _Macro(checked, rendered.text), rendered


def _macro_parse(block: Block, args: tuple[str, ...]) -> _Macro:
    # Placeholders are checked and filled here, before anything of the block is applied:
    # a misspelt one refuses the whole block like an invalid command (SPEC §10.8, §6).
    return _load_macro(block, handlers.one(args, "macro name").lower())[0]


def _macro_apply(block: Block, macro: _Macro) -> None:
    # A macro may hold commands itself (SPEC §6); they run as part of this block.
    for command, value in macro.commands:
        command.apply(block, value)
    if macro.text.strip():
        block.inserted_text.append(macro.text.rstrip("\n"))
        block.changes.append("macro inserted")


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
            handlers.status_parse,
            handlers.status_apply,
        ),
        Command(
            "assign",
            {"assignee": (), "owner": (), "take": ("me",)},
            "#assign WHO",
            "an agent's email or name, me, or none",
            handlers.assign_parse,
            handlers.assign_apply,
        ),
        Command(
            "priority",
            {"low": ("low",), "normal": ("normal",), "high": ("high",), "urgent": ("urgent",)},
            "#priority P",
            "low, normal, high or urgent",
            handlers.priority_parse,
            handlers.priority_apply,
        ),
        Command(
            "tag",
            {},
            "#tag T...",
            "adds tags (lowercase words)",
            handlers.tags_parse,
            handlers.tag_apply,
        ),
        Command(
            "untag", {}, "#untag T...", "removes tags", handlers.tags_parse, handlers.untag_apply
        ),
        Command(
            "note",
            {"internal": ()},
            "#note",
            "the reply is an internal note: never sent to the customer",
            handlers.no_args,
            handlers.note_apply,
        ),
        Command(
            "cc",
            {},
            "#cc ADDR...",
            "adds customer-side CCs",
            handlers.addresses_parse,
            handlers.cc_apply,
        ),
        Command(
            "uncc",
            {},
            "#uncc ADDR...",
            "removes customer-side CCs",
            handlers.addresses_parse,
            handlers.uncc_apply,
            requester=True,
        ),
        Command(
            "merge",
            {},
            "#merge N",
            "merges this ticket into ticket N",
            handlers.merge_parse,
            handlers.merge_apply,
        ),
        Command(
            "spam", {}, "#spam", "marks as spam and closes", handlers.no_args, handlers.spam_apply
        ),
        Command(
            "subject",
            {},
            "#subject TEXT",
            "renames the ticket",
            handlers.subject_parse,
            handlers.subject_apply,
        ),
        Command(
            "team",
            {},
            "#team NAME",
            "moves the ticket to a team's queue",
            handlers.team_parse,
            handlers.team_apply,
        ),
        Command(
            "due",
            {"snooze": ()},
            "#due WHEN",
            "pending until a date (2026-12-01) or a delay (3d, 4h)",
            handlers.due_parse,
            handlers.due_apply,
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
            "kb",
            {},
            "#kb SLUG",
            "inserts the knowledge-base article's title, summary and link",
            _kb_parse,
            _kb_apply,
        ),
        Command(
            "split",
            {},
            "#split",
            "moves the message you reply to into a new ticket",
            handlers.split_parse,
            handlers.split_apply,
        ),
        Command(
            "move",
            {},
            "#move N",
            "moves the message you reply to onto ticket N",
            handlers.move_parse,
            handlers.move_apply,
        ),
        Command(
            "undo",
            {},
            "#undo",
            "reverts your previous command block on this ticket",
            handlers.no_args,
            handlers.undo_apply,
        ),
        Command(
            "public",
            {},
            "#public",
            "sends the reply to the customer where it would be a note",
            handlers.no_args,
            handlers.public_apply,
        ),
        Command(
            "sla",
            {},
            "#sla",
            "mails you the ticket's deadlines and how they were counted",
            handlers.no_args,
            handlers.sla_apply,
        ),
        # Customer profiles (SPEC §10.7): tickets/customer_commands.py.
        Command(
            "customer-merge",
            {},
            "#customer-merge OTHER",
            "joins the profile of OTHER (an address or customer id) to the requester's",
            customer_commands.merge_parse,
            customer_commands.merge_apply,
        ),
        Command(
            "customer-unmerge",
            {},
            "#customer-unmerge [ADDR]",
            "undoes the requester's profile merge (or the one that joined ADDR) exactly",
            customer_commands.unmerge_parse,
            customer_commands.unmerge_apply,
        ),
        Command(
            "language",
            {"lang": ()},
            "#language TAG",
            "sets the customer's language (en, zh-Hans, zh-Hant, ja, de, fr, es, ...) for "
            "the mail inboxd sends them",
            customer_commands.language_parse,
            customer_commands.language_apply,
        ),
        Command("help", {}, "#help", "mails you this table", handlers.no_args, handlers.help_apply),
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
    kb: Callable[[str, str | None, str], str | None] | None = None,
    teams: tuple[str, ...] = (),
    support: macros.Support | None = None,
) -> BlockResult:
    """Check every call, then apply them all in order; or apply nothing and say why.
    `kb` gives `#kb` its article text (Runtime.kb_article_text); `teams` are the ones
    `#team` accepts (Config.team_names; none configured: any lowercase word); `support`
    fills a macro's {{ support.* }} and {{ ticket.status_url }} (macros.support_of)."""
    block = Block(session, ticket, actor, source, about_message_pk, macros_dir, kb, teams, support)
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


def run_requester_block(
    session: Session, ticket: Ticket, email: str, text: str
) -> BlockResult | None:
    """Run the top command block of a requester's reply if every line is a command a
    requester may run (`#uncc` a CC someone else added); otherwise it is just text."""
    calls, _ = extract_tags(text)
    if not calls:
        return None
    for call in calls:
        try:
            command, _args = resolve(call)
        except CommandError:
            return None
        if not command.requester:
            return None
    return run_block(session, ticket, Actor(email, None, "requester"), calls, source="email")


def _result(block: Block, *, ok: bool, errors: list[tuple[str, str]]) -> BlockResult:
    fields = {
        "ticket": block.ticket.id,
        "actor": block.actor.email,
        "source": block.source,
        "outcome": "applied" if ok else "refused",
        "changes": "; ".join(block.changes) if ok else "; ".join(e for _, e in errors),
    }
    log.info(
        "ticket %(ticket)s: commands by %(actor)s (%(source)s) %(outcome)s: %(changes)s", fields
    )
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


def help_table() -> str:
    """The command table, as mailed for #help and shown in every notification's footer."""
    lines = []
    for command in COMMANDS.values():
        aliases = " ".join(f"#{a}" for a in command.aliases)
        lines.append(
            f"{command.usage:<16} {command.summary}" + (f"  (also {aliases})" if aliases else "")
        )
    return "\n".join(lines)
