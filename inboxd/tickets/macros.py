"""macros.py: a macro's placeholders (`{{ customer.first_name | default("there") }}`),
checked before anything is sent and filled in from the ticket (SPEC §10.8, §6 "Atomic").

Macros are written by admins but filled with what customers wrote (their name), so the
text is rendered in jinja2's sandbox against a fixed schema, and a static read of the
template's syntax tree refuses everything else first: an unknown placeholder (with a
"did you mean"), a filter other than default/upper/lower/title/trim, a call, a loop. A
placeholder whose value is empty for this ticket and has no `| default("...")` refuses
too, so no customer ever gets "Hi ," (the trap of helpdesks that render blanks).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel import Session

from inboxd.customers import profiles
from inboxd.mail.command_tags import CommandCall, extract_tags
from inboxd.models import Agent, Ticket
from inboxd.tickets.blocks import Block, CommandError
from inboxd.tickets.links import status_url
from inboxd.tickets.macro_files import MacroMissing, find

if TYPE_CHECKING:
    from inboxd.runtime import Runtime

# What a placeholder may name: {{ group.field }}.
SCHEMA: dict[str, tuple[str, ...]] = {
    "customer": ("name", "first_name", "email", "organization", "language"),
    "ticket": ("id", "subject", "status", "priority", "team", "status_url"),
    "agent": ("name", "first_name", "email"),
    "support": ("name", "address"),
}
PLACEHOLDERS = frozenset(f"{group}.{f}" for group, fields in SCHEMA.items() for f in fields)
TEXT_FILTERS = ("upper", "lower", "title", "trim")
EXAMPLE = '{{ customer.first_name | default("there") }}'


@dataclass(frozen=True)
class Support:
    """The desk the mail comes from, and what builds a ticket's status link."""

    name: str
    address: str
    web_base_url: str = ""
    secret: bytes = b""

    def status_url(self, ticket_id: int) -> str:
        return status_url(self.web_base_url, self.secret, ticket_id) if self.secret else ""


def support_of(rt: Runtime) -> Support:
    cfg = rt.config.inboxd
    return Support(cfg.support_name, cfg.support_address, cfg.web_base_url, rt.secret_key)


@dataclass(frozen=True)
class Placeholder:
    name: str  # "customer.first_name"
    has_default: bool
    line: int  # in the macro's file


@dataclass(frozen=True)
class Rendered:
    """A macro made ready for one ticket: its command lines and its filled-in text."""

    name: str
    filename: str
    language: str  # the variant used, "" = the base file
    calls: list[CommandCall]
    text: str


# --- first names ------------------------------------------------------------------------

# Han, kana and Hangul: a name written in them is said whole (王小明, 山田 太郎).
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]"
)


def first_name(name: str) -> str:
    """How to greet someone: "Carol Customer" -> Carol, "Doe, Jane" -> Jane; a CJK name
    is never split (王小明 -> 王小明: its first character is the family name)."""
    name = " ".join(name.split()).strip("\"' ")
    if not name or _CJK.search(name):
        return name
    _family, comma, given = name.partition(",")
    if comma and given.strip():
        name = given.strip()
    return name.split()[0]


# --- the static check -------------------------------------------------------------------


def _suggest(wanted: str) -> str:
    """ "; did you mean {{ customer.name }}?" for custmer.name, else what there is."""
    group, _, field = wanted.partition(".")
    if group not in SCHEMA:
        close = difflib.get_close_matches(group, SCHEMA, n=1, cutoff=0.6)
        if not close:
            return "; placeholders are " + ", ".join(f"{g}.*" for g in SCHEMA)
        group = close[0]
    fields = SCHEMA[group]
    if field not in fields:
        # Within the group only: a shared "ticket." prefix would make anything look close.
        close = difflib.get_close_matches(field, fields, n=1, cutoff=0.4) if field else []
        if not close:
            return f"; {group} has " + ", ".join(fields)
        field = close[0]
    return f"; did you mean {{{{ {group}.{field} }}}}?"


def _placeholder(node: nodes.Expr, line_offset: int, has_default: bool) -> Placeholder:
    line = line_offset + node.lineno
    if isinstance(node, nodes.Name):
        if node.name in SCHEMA:
            raise CommandError(
                f"line {line}: {{{{ {node.name} }}}} needs a field, such as "
                f"{{{{ {node.name}.{SCHEMA[node.name][0]} }}}}"
            )
        raise CommandError(
            f"line {line}: unknown placeholder {{{{ {node.name} }}}}" + _suggest(node.name)
        )
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        dotted = f"{node.node.name}.{node.attr}"
        if dotted not in PLACEHOLDERS:
            raise CommandError(
                f"line {line}: unknown placeholder {{{{ {dotted} }}}}" + _suggest(dotted)
            )
        return Placeholder(dotted, has_default, line)
    raise CommandError(
        f"line {line}: only placeholders like {EXAMPLE} are allowed"
        f" ({type(node).__name__.lower()} is not)"
    )


def _expression(node: nodes.Expr, line_offset: int) -> Placeholder:
    """The placeholder of one {{ ... }}: a field, then filters; `default` must come first
    (a later filter would already have failed on the empty value)."""
    chain: list[nodes.Filter] = []
    while isinstance(node, nodes.Filter) and node.node is not None:
        chain.append(node)
        node = node.node
    chain.reverse()  # innermost (applied first) first
    line = line_offset + node.lineno
    for position, flt in enumerate(chain):
        if flt.dyn_args is not None or flt.dyn_kwargs is not None or flt.kwargs:
            raise CommandError(f"line {line}: | {flt.name}(...) takes only a quoted text")
        if flt.name in ("default", "d"):
            if position:
                raise CommandError(f'line {line}: put | default("...") right after the placeholder')
            if len(flt.args) != 1 or not isinstance(flt.args[0], nodes.Const):
                raise CommandError(f'line {line}: write | default("a quoted text")')
            if not isinstance(flt.args[0].value, str):
                raise CommandError(f'line {line}: write | default("a quoted text")')
        elif flt.name in TEXT_FILTERS:
            if flt.args:
                raise CommandError(f"line {line}: | {flt.name} takes no arguments")
        else:
            allowed = ", ".join(("default", *TEXT_FILTERS))
            raise CommandError(f"line {line}: filter | {flt.name} is not allowed (only {allowed})")
    has_default = bool(chain) and chain[0].name in ("default", "d")
    return _placeholder(node, line_offset, has_default)


def check(text: str, line_offset: int = 0) -> list[Placeholder]:
    """Every placeholder of a macro's text, or CommandError saying what is wrong and
    where. `line_offset` is the number of the file's lines before `text`."""
    try:
        tree = _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise CommandError(f"line {line_offset + (exc.lineno or 1)}: {exc.message}") from None
    found: list[Placeholder] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            tag = type(statement).__name__.lower()
            line = line_offset + statement.lineno
            raise CommandError(
                f"line {line}: {{% {tag} %}} is not allowed in a macro; only placeholders"
                f" like {EXAMPLE}"
            )
        for node in statement.nodes:
            if not isinstance(node, nodes.TemplateData):
                found.append(_expression(node, line_offset))
    return found


# --- the values -------------------------------------------------------------------------


def values_for(
    session: Session,
    ticket: Ticket,
    agent: Agent | None,
    support: Support | None,
    language: str | None = None,
) -> dict[str, dict[str, str]]:
    """What each placeholder says for this ticket; "" where nothing is known."""
    customer = profiles.customer_for(session, ticket.requester) if ticket.requester else None
    name = customer.name if customer is not None else ""
    agent_name = agent.name if agent is not None else ""
    assert ticket.id is not None
    return {
        "customer": {
            "name": name,
            "first_name": first_name(name),
            "email": ticket.requester,
            "organization": (customer.organization or "") if customer is not None else "",
            "language": language or ((customer.language or "") if customer is not None else ""),
        },
        "ticket": {
            "id": str(ticket.id),
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "team": ticket.team or "",
            "status_url": support.status_url(ticket.id) if support is not None else "",
        },
        "agent": {
            "name": agent_name,
            "first_name": first_name(agent_name),
            "email": agent.email if agent is not None else "",
        },
        "support": {
            "name": support.name if support is not None else "",
            "address": support.address if support is not None else "",
        },
    }


def render(text: str, values: dict[str, dict[str, str]], line_offset: int = 0) -> str:
    """The macro's text filled in, after `check`; CommandError for a placeholder that is
    empty for this ticket and has no default."""
    placeholders = check(text, line_offset)
    empty = [p for p in placeholders if not p.has_default and not _value(values, p.name)]
    if empty:
        names = ", ".join(dict.fromkeys(f"{{{{ {p.name} }}}}" for p in empty))
        first = empty[0]
        raise CommandError(
            f"line {first.line}: {names} is empty for this ticket; give it a default, as in "
            f'{{{{ {first.name} | default("...") }}}}'
        )
    # An empty value is left out, so `default` replaces it (StrictUndefined otherwise).
    context = {
        group: SimpleNamespace(**{k: v for k, v in fields.items() if v})
        for group, fields in values.items()
    }
    try:
        filled = _ENV.from_string(text).render(context)
    except TemplateError as exc:  # the check above lets nothing through that gets here
        raise CommandError(f"cannot fill in the macro: {exc}") from None
    # A customer named "#close" must not become a command where the text is read again
    # (the web's reply box puts the filled-in text under the block, to be sent from there).
    taken, _ = extract_tags(filled)
    if taken:
        raise CommandError(
            f"once filled in, its text would begin with the command line {taken[0].line!r}"
            " (from what a customer wrote); begin the macro's text with words of its own"
        )
    return filled


def _value(values: dict[str, dict[str, str]], dotted: str) -> str:
    group, _, field = dotted.partition(".")
    return values.get(group, {}).get(field, "")


def prepare(block: Block, name: str, language: str | None = None) -> Rendered:
    """Macro `name` for the block's ticket: the variant for the customer's language (or
    `language`), its command lines, and its text with the placeholders filled in."""
    agent = block.session.get(Agent, block.actor.agent_id) if block.actor.agent_id else None
    values = values_for(block.session, block.ticket, agent, block.support, language)
    try:
        found = find(block.macros_dir, name, values["customer"]["language"] or None)
    except MacroMissing as exc:
        raise CommandError(str(exc)) from None
    calls, text = extract_tags(found.source)
    offset = found.source[: len(found.source) - len(text)].count("\n")
    where = f"macro {name!r} ({found.filename})"
    for call in calls:
        if "{{" in call.line or "{%" in call.line:
            raise CommandError(
                f"{where}: line {call.line_no}: placeholders go in the text, not in command lines"
            )
    try:
        filled = render(text, values, offset)
    except CommandError as exc:
        raise CommandError(f"{where}: {exc}") from None
    return Rendered(name, found.filename, found.language, calls, filled)


# Plain text (no escaping), only the filters the check allows, no globals or tests.
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters = {k: _ENV.filters[k] for k in ("default", "d", *TEXT_FILTERS)}
_ENV.tests = {}
_ENV.globals = {}
