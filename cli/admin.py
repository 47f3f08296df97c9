"""inboxd init (and, later, check / agents / report)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ConfigOption,
    JsonOption,
    config_path,
    err,
    errors,
    load_config,
    log_to_terminal,
    open_rt,
    print_json,
)
from inboxd import config as config_mod


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("check")(check)
    app.command("status")(status)
    app.command("backup")(backup)
    app.command("restore")(restore)


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
            label = "FAIL" if not line.ok else "WARN" if line.warn else "ok"
            typer.echo(f"{label:<5} {line.what}: {line.detail}")
            failures += not line.ok
            if (not line.ok or line.warn) and line.fix:
                typer.echo(f"      fix: {line.fix}")
        if failures:
            raise typer.Exit(1)


def status(config: ConfigOption = None, json: JsonOption = False) -> None:
    """A running daemon's health: does it answer, what waits in the spool and the outbox,
    when mail last came in and went out, how far the clock (rules, SLA) lags behind.
    Exit 0 when the daemon answers healthy, 1 when it does not.

    Example: inboxd status --json
    """
    from inboxd.daemon.status import gather
    from inboxd.models import utcnow

    with errors():
        rt = open_rt(config)
        found = gather(rt, utcnow())
        if json:
            print_json(found.to_json())
        else:
            data = found.to_json()
            typer.echo(f"daemon           {found.daemon} ({found.detail})")
            typer.echo(f"spool            {found.spool_pending} waiting for the pipeline")
            typer.echo(
                f"outbox           {found.outbound_queued} queued, {found.outbound_failed} failed"
            )
            typer.echo(f"quarantine       {found.quarantined}")
            typer.echo(f"last message in  {data['last_message_in'] or 'never'}")
            typer.echo(f"last mail out    {data['last_mail_out'] or 'never'}")
            typer.echo(
                f"clock            {found.clock_events_behind} events behind"
                f" ({found.clock_lag_seconds:.0f} s)"
            )
        if not found.healthy:
            raise typer.Exit(1)


def backup(
    folder: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """A consistent copy of the database (with the raw mail), the attachments, the secret
    key and the knowledge base's articles, taken while the daemon runs.

    Example: inboxd backup /var/backups/inboxd/2026-12-03
    """
    from inboxd.daemon import backup as backups
    from inboxd.models import utcnow

    with errors():
        cfg = load_config(config, reads_files=True)
        manifest = backups.backup(cfg, folder, utcnow())
        if json:
            print_json(asdict(manifest))
            return
        typer.echo(
            f"backed up {manifest.tickets} tickets, {manifest.messages} messages and"
            f" {manifest.attachments} attachments into {folder}"
        )
        if manifest.missing_attachments:
            err(f"{manifest.missing_attachments} attachment files were missing in data_dir")


def restore(
    folder: Annotated[Path, typer.Argument(help="A folder written by `inboxd backup`.")],
    config: ConfigOption = None,
) -> None:
    """Put a backup into this config's data_dir, which must not hold a database yet (stop
    the daemon and move the old data_dir away first).

    Example: inboxd restore /var/backups/inboxd/2026-12-03 --config /etc/inboxd/inboxd.toml
    """
    from inboxd.daemon import backup as backups

    with errors():
        cfg = load_config(config)
        manifest = backups.restore(cfg, folder)
        rt = open_rt(config)  # brings the schema to this version's migrations
        typer.echo(
            f"restored {manifest.tickets} tickets and {manifest.messages} messages"
            f" (backup of {manifest.created_at}) into {rt.config.data_dir}"
        )
