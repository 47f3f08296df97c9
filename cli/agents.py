"""inboxd agents add / list / remove / token."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table

# Each command imports what it uses (cli/common.py says why).

app = typer.Typer(no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="agents",
        help="Manage the agents who answer tickets.\n\nExample: inboxd agents list",
    )


@app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The agent's own mail address.")],
    name: Annotated[str, typer.Option(help="Shown to customers as 'NAME via Support'.")] = "",
    role: Annotated[str, typer.Option(help="agent or admin")] = "agent",
    team: Annotated[str | None, typer.Option(help="A team whose queue the agent works.")] = None,
    config: ConfigOption = None,
) -> None:
    """Add an agent (or update and reactivate one).

    Example: inboxd agents add bob@example.com --name Bob --role agent
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config, create=True)
        with session_scope(rt.engine) as session:
            agent = directory.add_agent(session, email, name, role, team)
            typer.echo(f"agent {agent.email} ({agent.role}) is active")


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include removed agents.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List agents.

    Example: inboxd agents list --json
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            rows = directory.list_agents(session, include_inactive=all_)
            data = [
                {
                    "email": a.email,
                    "name": a.name,
                    "role": a.role,
                    "team": a.team,
                    "active": a.active,
                }
                for a in rows
            ]
        if json:
            print_json(data)
            return
        table(
            ["EMAIL", "NAME", "ROLE", "TEAM", "ACTIVE"],
            [
                (d["email"], d["name"], d["role"], d["team"] or "-", "yes" if d["active"] else "no")
                for d in data
            ],
            [32, 24, 6, 16, 6],
        )


@app.command("remove")
def remove(
    email: Annotated[str, typer.Argument(help="The agent's address.")],
    config: ConfigOption = None,
) -> None:
    """Deactivate an agent: history keeps the name; their tokens stop working.

    Example: inboxd agents remove bob@example.com
    """
    from inboxd.agents import directory
    from inboxd.db import session_scope

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            agent = directory.remove_agent(session, email)
            typer.echo(f"agent {agent.email} removed")


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
            url = signin.issue_link(session, rt, directory.get_agent(session, email))
        typer.echo(url)
