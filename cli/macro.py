"""inboxd macro list / preview: the canned replies, and one filled in for a ticket."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, load_config, open_rt, print_json

# Each command imports what it uses (cli/common.py says why).

app = typer.Typer(no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="macro",
        help="Canned replies (#macro NAME): list them, or preview one for a ticket.\n\n"
        "Example: inboxd macro preview thanks --ticket 42",
    )


@app.command("list")
def list_macros(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Every macro, once, with its language variants (the admin's folder first).

    Example: inboxd macro list
    """
    from inboxd.tickets.macro_files import macro_languages, macro_names

    with errors():
        cfg = load_config(config)
        folder = cfg.inboxd.templates_dir
        where = str(cfg.path(folder) / "macros") if folder else ""
        rows = [
            {"macro": name, "variants": [v or "base" for v in macro_languages(where, name)]}
            for name in macro_names(where)
        ]
        if json:
            print_json(rows)
            return
        for row in rows:
            typer.echo(f"{row['macro']:<28} {' '.join(row['variants'])}")


@app.command("preview")
def preview(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The macro's name.")],
    ticket: Annotated[int, typer.Option("--ticket", help="The ticket to fill it in for.")],
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="Preview as for a customer of this language (zh-TW, de)."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="As this agent (default: the first admin).")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """A macro filled in for a ticket, with the commands it would run; runs and sends nothing.

    Example: inboxd macro preview refund --ticket 42 --lang zh-TW
    """
    from inboxd.agents.macro_preview import preview_macro

    with errors():
        rt = open_rt(config)
        shown = preview_macro(rt, name, ticket, language=lang, agent_email=agent)
        if json:
            print_json(shown.as_json())
            return
        typer.echo(f"macro {shown.name} ({shown.file}) for ticket #{shown.ticket_id}")
        typer.echo("commands: " + (" ".join(shown.commands) or "none"))
        typer.echo("")
        typer.echo(shown.text.rstrip("\n"))
