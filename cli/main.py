"""The `inboxd` command: mounts each command area; the commands are SPEC §4's."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli import admin, agents, customers, kb, macro, mail, report, rules, sla, ticket, tickets
from cli.common import ROOT_CONFIG, ConfigOption
from inboxd import __version__

app = typer.Typer(
    name="inboxd",
    help="inboxd: a shared inbox and helpdesk that agents run from their mail client.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"inboxd {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config: ConfigOption = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """inboxd: a shared inbox and helpdesk that agents run from their mail client.

    `--config FILE` may come before the command or after it.
    """
    ROOT_CONFIG.set(config)


admin.register(app)
mail.register(app)
tickets.register(app)
agents.register(app)
report.register(app)
sla.register(app)
rules.register(app)
kb.register(app)
customers.register(app)
ticket.register(app)
macro.register(app)


def main() -> None:
    """Console-script entry point. A bug prints one line, never a traceback."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # pragma: no cover - last line of defence
        typer.echo(f"inboxd: internal error: {type(exc).__name__}: {exc}", err=True)
        typer.echo("inboxd: details are in data_dir/inboxd.log", err=True)
        import logging

        logging.getLogger("inboxd").exception("unhandled error")
        sys.exit(1)


if __name__ == "__main__":
    main()
