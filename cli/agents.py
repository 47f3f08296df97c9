"""inboxd agents add / set / list / show / remove / token / login-link."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table

if TYPE_CHECKING:
    from inboxd.agents.directory import Preferences
    from inboxd.models import Agent
    from inboxd.runtime import Runtime

app = typer.Typer(no_args_is_help=True)


class Notify(StrEnum):
    """Which notifications reach the agent (SPEC §10.9)."""

    all = "all"
    team = "team"
    assigned = "assigned"
    none = "none"


class OnOff(StrEnum):
    on = "on"
    off = "off"


class Role(StrEnum):
    agent = "agent"
    admin = "admin"


NotifyOption = Annotated[
    Notify | None,
    typer.Option(
        help="all: every new ticket (of the team, when it has one); team: only the agent's"
        " teams' tickets; assigned: only tickets assigned to the agent; none: no"
        " notifications.",
        case_sensitive=False,
    ),
]
ReceiptsOption = Annotated[
    OnOff | None, typer.Option(help="A receipt mail after every command block by mail.")
]
LanguageOption = Annotated[
    str | None, typer.Option(help="The language of mail to the agent: en, de, fr, zh-Hans ...")
]
SignatureOption = Annotated[
    str | None,
    typer.Option(help="Added below the agent's replies to customers; '-' reads it from stdin."),
]


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="agents",
        help="Manage the agents who answer tickets.\n\nExample: inboxd agents list",
    )


def _prefs(
    notify: Notify | None,
    receipts: OnOff | None,
    language: str | None,
    signature: str | None,
    **more: Any,
) -> Preferences:
    from inboxd.agents.directory import Preferences

    if signature == "-":
        signature = sys.stdin.read()
    return Preferences(
        notify=notify.value if notify else None,
        receipts=None if receipts is None else receipts is OnOff.on,
        language=language,
        signature=signature,
        **more,
    )


def _json(rt: Runtime, agent: Agent) -> dict[str, Any]:
    from inboxd.agents import directory, teams

    return directory.agent_json(agent, teams.teams_of(rt.config, agent))


@app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The agent's own mail address.")],
    name: Annotated[str, typer.Option(help="Shown to customers as 'NAME via Support'.")] = "",
    role: Annotated[
        Role, typer.Option(help="agent works tickets; admin also manages.")
    ] = Role.agent,
    team: Annotated[str | None, typer.Option(help="A team whose queue the agent works.")] = None,
    notify: NotifyOption = None,
    receipts: ReceiptsOption = None,
    language: LanguageOption = None,
    signature: SignatureOption = None,
    config: ConfigOption = None,
) -> None:
    """Add an agent (or update and reactivate one), with their preferences.

    Example: inboxd agents add bob@example.com --name Bob --role agent --notify assigned
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config, create=True)
        prefs = _prefs(notify, receipts, language, signature)
        with session_scope(rt.engine) as session:
            agent = directory.add_agent(
                session, email, name, role.value, team, prefs, rt.config.team_names
            )
            typer.echo(f"agent {agent.email} ({agent.role}) is active, notify {agent.notify}")


@app.command("set")
def set_(
    email: Annotated[str, typer.Argument(help="The agent's address.")],
    notify: NotifyOption = None,
    receipts: ReceiptsOption = None,
    language: LanguageOption = None,
    signature: SignatureOption = None,
    name: Annotated[str | None, typer.Option(help="The agent's name.")] = None,
    role: Annotated[Role | None, typer.Option(help="agent or admin.")] = None,
    team: Annotated[str | None, typer.Option(help="The agent's team ('none': no team).")] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Change an agent's preferences: which notifications they get, receipts, language,
    signature (SPEC §10.9). Only the options given change.

    Example: inboxd agents set bob@example.com --notify assigned --receipts on
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        role_name = role.value if role else None
        prefs = _prefs(notify, receipts, language, signature, name=name, role=role_name, team=team)
        with session_scope(rt.engine) as session:
            agent = directory.set_preferences(session, email, prefs, rt.config.team_names)
            data = _json(rt, agent)
        if json:
            print_json(data)
            return
        _print_one(data)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include removed agents.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List agents with their role, teams and notification preference.

    Example: inboxd agents list --json
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            rows = directory.list_agents(session, include_inactive=all_)
            data = [_json(rt, a) for a in rows]
        if json:
            print_json(data)
            return
        table(
            ["EMAIL", "NAME", "ROLE", "TEAMS", "NOTIFY", "RECEIPTS", "LANG", "ACTIVE"],
            [
                (
                    d["email"],
                    d["name"],
                    d["role"],
                    ",".join(d["teams"]) or "-",
                    d["notify"],
                    "on" if d["receipts"] else "off",
                    d["language"] or "-",
                    "yes" if d["active"] else "no",
                )
                for d in data
            ],
            [32, 20, 6, 16, 8, 8, 7, 6],
        )


@app.command("show")
def show(
    email: Annotated[str, typer.Argument(help="The agent's address.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One agent: role, teams, preferences, signature, and the open tickets they own.

    Example: inboxd agents show bob@example.com
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            agent = directory.get_agent(session, email)
            data = _json(rt, agent)
            data["open_tickets"] = [t.id for t in directory.open_tickets_of(session, agent)]
        if json:
            print_json(data)
            return
        _print_one(data)
        owned = ", ".join(f"#{n}" for n in data["open_tickets"]) or "none"
        typer.echo(f"{'open tickets':<13} {owned}")


def _print_one(data: dict[str, Any]) -> None:
    rows = [
        ("email", data["email"]),
        ("name", data["name"] or "-"),
        ("role", data["role"]),
        ("teams", ", ".join(data["teams"]) or "-"),
        ("active", "yes" if data["active"] else "no"),
        ("notify", data["notify"]),
        ("receipts", "on" if data["receipts"] else "off"),
        ("language", data["language"] or "- (English)"),
    ]
    for key, value in rows:
        typer.echo(f"{key:<13} {value}")
    signature = data["signature"].replace("\n", "\n" + " " * 14) if data["signature"] else "-"
    typer.echo(f"{'signature':<13} {signature}")


@app.command("remove")
def remove(
    email: Annotated[str, typer.Argument(help="The agent's address.")],
    force: Annotated[
        bool, typer.Option("--force", help="Unassign their open tickets (an event each).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Deactivate an agent: history keeps the name; their tokens stop working.

    An agent who owns open tickets is not removed without --force (at a terminal you are
    asked); with it, each ticket is unassigned and goes back to its queue.
    Example: inboxd agents remove bob@example.com --force
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            agent = directory.get_agent(session, email)
            owned = directory.open_tickets_of(session, agent)
            if owned and not force:
                refusal = directory.HasOpenTickets(agent.email, owned)
                if not sys.stdin.isatty():
                    raise refusal
                typer.echo(str(refusal).partition("; reassign")[0])
                if not typer.confirm("Unassign them and remove the agent?", default=False):
                    raise typer.Exit(1)
            admins = [a for a in directory.list_agents(session) if a.role == "admin"]
            actor = admins[0].email if admins else "system"
            directory.remove_agent(session, email, actor=actor, force=True)
        typer.echo(f"agent {agent.email} removed")
        if owned:
            typer.echo(
                f"{len(owned)} ticket(s) unassigned: " + ", ".join(f"#{t.id}" for t in owned)
            )


@app.command("token")
def token(
    email: Annotated[str, typer.Argument(help="The agent's address.")],
    config: ConfigOption = None,
) -> None:
    """Issue a new API token for an agent (the previous one stops working); printed once.

    Example: inboxd agents token alice@example.com
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            value = directory.issue_api_token(session, email)
        typer.echo(f"API token for {email.lower()} (shown once): {value}")


@app.command("login-link")
def login_link(
    email: Annotated[str, typer.Argument(help="The agent's address.")],
    config: ConfigOption = None,
) -> None:
    """Print a sign-in link for the web view (for a first sign-in, or when mail is down).

    The link works once, within 15 minutes. Example: inboxd agents login-link alice@example.com
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope
    from inboxd.web import signin

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            from inboxd.web import signin

            url = signin.issue_link(session, rt, directory.get_agent(session, email))
        typer.echo(url)
