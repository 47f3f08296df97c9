"""inboxd init (and, later, check / agents / report)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import ConfigOption, errors, open_rt
from inboxd import config as config_mod


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(config: ConfigOption = None) -> None:
    """Write a commented inboxd.toml if there is none; create data dir, database, secret key.

    Safe to run again: it never overwrites an existing config, key or database.

    Example: inboxd init
    """
    with errors():
        path = config or config_mod.find_config_path(None) or Path(config_mod.DEFAULT_NAME)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                config_mod.DEFAULT_TEXT_PATH.read_text(encoding="utf-8"), encoding="utf-8"
            )
            typer.echo(f"wrote {path}")
        else:
            typer.echo(f"kept {path}")
        rt = open_rt(path)
        typer.echo(f"data in {rt.config.data_dir}")
        typer.echo(f"database {rt.engine.url.render_as_string(hide_password=True)}")
