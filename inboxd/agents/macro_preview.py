"""macro_preview.py: a macro as it would be for one ticket, without running or sending it.

`inboxd macro preview` and the web's macro picker both show this, so an admin sees the
filled-in text and the command lines before a customer does, and a misspelt placeholder
is found here rather than by the agent's error mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from inboxd.agents import directory
from inboxd.agents.operations import desk_options
from inboxd.errors import InboxdError
from inboxd.languages import normalized_tag
from inboxd.runtime import Runtime
from inboxd.tickets import queries
from inboxd.tickets.blocks import Actor, Block, CommandError
from inboxd.tickets.commands import check_macro


class MacroRefused(InboxdError):
    """The macro cannot be used on this ticket (unknown placeholder, missing file, ...)."""


@dataclass(frozen=True)
class MacroPreview:
    name: str
    ticket_id: int
    file: str
    language: str  # the variant used, "" = the base file
    commands: list[str]  # the macro's command lines, as written
    text: str  # its text with the placeholders filled in

    def as_json(self) -> dict[str, Any]:
        return {
            "macro": self.name,
            "ticket": self.ticket_id,
            "file": self.file,
            "language": self.language or None,
            "commands": self.commands,
            "text": self.text,
        }

    def as_draft(self) -> str:
        """What the web's reply box gets: the command lines, then the text."""
        block = "\n".join(self.commands)
        return f"{block}\n\n{self.text}" if block else self.text


def preview_macro(
    rt: Runtime,
    name: str,
    ticket_id: int,
    *,
    language: str | None = None,
    agent_email: str | None = None,
) -> MacroPreview:
    """Macro `name` for ticket `ticket_id` as agent `agent_email` (default: the first
    admin) would insert it; `language` stands in for the customer's. Changes nothing."""
    if language is not None:
        language = normalized_tag(language) or None
    # A plain session that is never committed: a preview writes nothing.
    with Session(rt.engine) as session:
        try:
            ticket = queries.get_ticket(session, ticket_id)
            agent = (
                directory.get_agent(session, agent_email)
                if agent_email
                else directory.first_admin(session)
            )
            actor = Actor(agent.email, agent.id, agent.role)
            block = Block(session, ticket, actor, "cli", **desk_options(rt))
            rendered = check_macro(block, name.strip().lower(), language)
        except CommandError as exc:
            raise MacroRefused(str(exc)) from None
        finally:
            session.rollback()
    return MacroPreview(
        rendered.name,
        ticket_id,
        rendered.filename,
        rendered.language,
        [c.line for c in rendered.calls],
        rendered.text,
    )
