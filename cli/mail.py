"""inboxd ingest / quarantine: mail in, and what could not be processed."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table
from inboxd import pipeline, queries
from inboxd.db import session_scope
from inboxd.errors import NotFound
from inboxd.sources import iter_messages

quarantine_app = typer.Typer(invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.add_typer(quarantine_app, name="quarantine")


def ingest(
    paths: Annotated[
        list[str], typer.Argument(help=".eml files, mbox files, Maildir folders or -")
    ],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Process raw messages exactly as if they had arrived by SMTP; one result per message.

    Example: inboxd ingest mail.eml archive.mbox ~/Maildir
    """
    with errors():
        rt = open_rt(config)
        counts: dict[str, int] = {}
        for source, raw in iter_messages(paths):
            result = pipeline.ingest(rt, raw, source)
            counts[result.result] = counts.get(result.result, 0) + 1
            if json:
                print_json(result.to_json())
            else:
                ticket = f"#{result.ticket}" if result.ticket else "-"
                note = (
                    f" ({result.reason})" if result.result in ("quarantined", "duplicate") else ""
                )
                typer.echo(f"{result.result:<11} {ticket:<8} {source}{note}")
        if not json:
            summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no messages"
            typer.echo(summary, err=True)


@quarantine_app.callback()
def quarantine_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    json: JsonOption = False,
    all_: Annotated[bool, typer.Option("--all", help="Include released entries.")] = False,
) -> None:
    """List quarantined messages with the reason each could not be processed.

    Example: inboxd quarantine --json
    """
    if ctx.invoked_subcommand is not None:
        # `inboxd quarantine --config X retry 3`: the subcommand uses the group's options.
        ctx.obj = {"config": config, "json": json}
        return
    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            rows = queries.list_quarantine(session, include_released=all_)
            if json:
                print_json([queries.quarantine_json(r) for r in rows])
                return
            table(
                ["ID", "WHEN", "TRIES", "SOURCE", "REASON"],
                [(r.id, queries.iso(r.created_at), r.attempts, r.source, r.reason) for r in rows],
                [5, 20, 5, 30, 60],
            )


@quarantine_app.command("retry")
def quarantine_retry(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Quarantine entry ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every entry.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Run quarantined messages through the pipeline again (after a fix or config change).

    Example: inboxd quarantine retry 3   |   inboxd quarantine retry --all
    """
    group = ctx.obj or {}
    config = config or group.get("config")
    json = json or group.get("json", False)
    with errors():
        if not ids and not all_:
            raise typer.BadParameter("give quarantine ids, or --all")
        rt = open_rt(config)
        if all_:
            with session_scope(rt.engine) as session:
                ids = [r.id for r in queries.list_quarantine(session) if r.id is not None]
        failed = False
        for qid in ids or []:
            try:
                result = pipeline.retry_quarantined(rt, qid)
            except NotFound as exc:
                typer.echo(f"inboxd: {exc}", err=True)
                failed = True
                continue
            if json:
                print_json({"quarantine": qid, **result.to_json()})
            else:
                ticket = f"#{result.ticket}" if result.ticket else "-"
                typer.echo(f"{qid}: {result.result} {ticket} {result.reason}".rstrip())
            failed = failed or result.result == "quarantined"
        if failed:
            raise typer.Exit(1)
