"""blocks.py: the state of one command block while it runs, and what it leaves behind.

Shared by the registry (commands.py), the commands themselves (handlers.py) and #undo.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from sqlmodel import Session

from inboxd.models import Ticket

if TYPE_CHECKING:
    from inboxd.tickets.macros import Support


class DeskOptions(TypedDict):
    """What a block needs of the running desk, the same from every edge (mail, CLI, web,
    API, rules, and the dry runs): agents.operations.desk_options(rt) builds it, so a
    command cannot be valid in one place and refused in another."""

    macros_dir: str  # the admin's macros ([inboxd] templates_dir/macros)
    kb: Callable[[str, str | None, str], str | None] | None  # see Runtime
    teams: tuple[str, ...]  # the configured teams ([[teams]]); () = any word
    support: Support | None  # what a macro's {{ support.* }} and status link say


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
    kb: Callable[[str, str | None, str], str | None] | None = None  # see Runtime
    teams: tuple[str, ...] = ()  # the configured teams ([[teams]]); () = any word
    support: Support | None = None  # what a macro's {{ support.* }} and status link say
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    note: bool = False
    public: bool = False
    wants_help: bool = False
    inserted_text: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notable: bool = False  # merged, split, moved or spam: the agent gets a receipt


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
