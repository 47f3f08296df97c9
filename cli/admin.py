"""inboxd init (and, later, check / agents / report)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import ConfigOption, config_path, errors, load_config, log_to_terminal, open_rt
from inboxd import config as config_mod


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("check")(check)


def init(config: ConfigOption = None) -> None:
    """Write a commented inboxd.toml if there is none; create data dir, database, secret key.

    Safe to run again: it never overwrites an existing config, key or database.

    Example: inboxd init
    """
    with errors():
        path = config_mod.find_config_path(config_path(config)) or Path(config_mod.DEFAULT_NAME)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                config_mod.DEFAULT_TEXT_PATH.read_text(encoding="utf-8"), encoding="utf-8"
            )
            typer.echo(f"wrote {path}")
        else:
            typer.echo(f"kept {path}")
        rt = open_rt(path, create=True)
        typer.echo(f"data in {rt.config.data_dir}")
        typer.echo(f"database {rt.engine.url.render_as_string(hide_password=True)}")


def serve(config: ConfigOption = None) -> None:
    """Run the daemon: SMTP listener, IMAP poller, ingest worker, outbound sender, web.

    Logs where it listens; SIGTERM or Ctrl-C stops it cleanly (exit 0).

    Example: inboxd serve --config /etc/inboxd/inboxd.toml
    """
    # Imported here: the web stack costs every other command a third of a second.
    from inboxd.daemon import serve as daemon

    with errors():
        rt = open_rt(config, create=True)
        log_to_terminal(rt)
        raise typer.Exit(daemon.serve(rt))


def check(config: ConfigOption = None) -> None:
    """Validate the config and reach every configured server; say what works and what not.

    Example: inboxd check
    """
    from inboxd.daemon import checks

    with errors():
        cfg = load_config(config)
        typer.echo(f"ok    config {cfg.source}")
        failures = 0
        for line in checks.run_checks(cfg):
            typer.echo(f"{'ok' if line.ok else 'FAIL':<5} {line.what}: {line.detail}")
            if not line.ok:
                failures += 1
                if line.fix:
                    typer.echo(f"      fix: {line.fix}")
        if failures:
            raise typer.Exit(1)
