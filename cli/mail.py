"""inboxd ingest / quarantine / loops: mail in, what could not be processed, what is held."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table
from inboxd.errors import NotFound

if TYPE_CHECKING:
    from inboxd import pipeline
    from inboxd.models import LoopHold

# Each command imports what it uses (cli/common.py says why).

quarantine_app = typer.Typer(invoke_without_command=True)
outbox_app = typer.Typer(invoke_without_command=True)
loops_app = typer.Typer(invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(loops_app, name="loops")


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
    from inboxd import pipeline
    from inboxd.mail.sources import iter_messages

    with errors():
        rt = open_rt(config, create=True)
        counts: dict[str, int] = {}
        messages = (pipeline.Incoming(raw, source) for source, raw in iter_messages(paths))
        # The files stay on disk, so messages are committed in batches: one fsync per
        # batch, and each result is printed only once its batch is durable.
        for batch, prepared in pipeline.prepare_ahead(_batched(messages, BATCH)):
            for result in pipeline.ingest_batch(rt, batch, prepared):
                counts[result.result] = counts.get(result.result, 0) + 1
                _print_result(result, json)
        if not json:
            summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no messages"
            typer.echo(summary, err=True)


BATCH = 50


def _batched(items: Iterator[pipeline.Incoming], size: int) -> Iterator[list[pipeline.Incoming]]:
    batch: list[pipeline.Incoming] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _print_result(result: pipeline.IngestResult, json: bool) -> None:
    if json:
        print_json(result.to_json())
        return
    ticket = f"#{result.ticket}" if result.ticket else "-"
    note = f" ({result.reason})" if result.result in ("quarantined", "duplicate") else ""
    typer.echo(f"{result.result:<11} {ticket:<8} {result.source}{note}")


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
    from inboxd.db import session_scope
    from inboxd.queues import quarantine

    if ctx.invoked_subcommand is not None:
        # `inboxd quarantine --config X retry 3`: the subcommand uses the group's options.
        ctx.obj = {"config": config, "json": json}
        return
    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            rows = quarantine.entries(session, include_released=all_)
        if json:
            print_json(rows)
            return
        table(
            ["ID", "WHEN", "TRIES", "FROM", "SUBJECT", "REASON"],
            [
                (r["id"], r["created_at"], r["attempts"], r["from"], r["subject"], r["reason"])
                for r in rows
            ],
            [5, 20, 5, 30, 30, 60],
        )


def _group(ctx: typer.Context, config: Path | None, json: bool) -> tuple[Path | None, bool]:
    """A subcommand's --config and --json, or the group's (`inboxd quarantine --json show 3`)."""
    group = ctx.obj or {}
    return config or group.get("config"), json or group.get("json", False)


@quarantine_app.command("show")
def quarantine_show(
    ctx: typer.Context,
    qid: Annotated[int, typer.Argument(metavar="ID", help="Quarantine entry id.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show one quarantined message: why, its header fields and its text, made safe to
    print (no terminal escapes, no bidirectional controls; long text is cut).

    Example: inboxd quarantine show 3
    """
    from inboxd.db import session_scope
    from inboxd.queues import quarantine

    config, json = _group(ctx, config, json)
    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            entry = quarantine.show(session, qid)
        if json:
            print_json(entry)
            return
        typer.echo(f"quarantine {entry['id']}: {entry['reason']}")
        typer.echo(
            f"received {entry['created_at']}, {entry['attempts']} tries, {entry['size']} bytes"
        )
        typer.echo("")
        for header in entry["headers"]:
            typer.echo(f"{header['name']}: {header['value']}")
        typer.echo("")
        typer.echo(entry["text"] or "(no text)")


@quarantine_app.command("delete")
def quarantine_delete(
    ctx: typer.Context,
    qid: Annotated[int, typer.Argument(metavar="ID", help="Quarantine entry id.")],
    config: ConfigOption = None,
) -> None:
    """Drop a quarantined message for good.

    Example: inboxd quarantine delete 3
    """
    from inboxd.db import session_scope
    from inboxd.queues import quarantine

    config, _ = _group(ctx, config, False)
    with errors():
        rt = open_rt(config)
        with rt.write_lock, session_scope(rt.engine) as session:
            quarantine.delete(session, qid)
        typer.echo(f"{qid}: deleted")


@quarantine_app.command("release")
def quarantine_release(
    ctx: typer.Context,
    qid: Annotated[int, typer.Argument(metavar="ID", help="Quarantine entry id.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Accept a quarantined message as a ticket anyway: it goes through the pipeline with
    only the check that held it skipped (a #spam sender's). Mail the parser refused
    cannot be released; `show` it, or `retry` after a fix.

    Example: inboxd quarantine release 3
    """
    from inboxd import pipeline

    config, json = _group(ctx, config, json)
    with errors():
        rt = open_rt(config)
        result = pipeline.retry_quarantined(rt, qid, release=True)
        if json:
            print_json({"quarantine": qid, **result.to_json()})
        else:
            ticket = f"#{result.ticket}" if result.ticket else "-"
            typer.echo(f"{qid}: {result.result} {ticket} {result.reason}".rstrip())
        if result.result == "quarantined":
            raise typer.Exit(1)


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
    from inboxd import pipeline
    from inboxd.db import session_scope
    from inboxd.tickets import queries

    config, json = _group(ctx, config, json)
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


@outbox_app.callback()
def outbox_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    json: JsonOption = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only mail that failed for good.")
    ] = False,
) -> None:
    """List outgoing mail that is queued or failed, with its last error.

    Example: inboxd outbox --failed
    """
    from inboxd.db import session_scope
    from inboxd.queues import outbox
    from inboxd.tickets import queries

    if ctx.invoked_subcommand is not None:
        ctx.obj = {"config": config, "json": json}
        return
    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            rows = outbox.list_outbox(session, failed_only=failed)
            if json:
                print_json([queries.outbound_json(r) for r in rows])
                return
            table(
                ["ID", "STATUS", "TRIES", "TICKET", "TO", "NEXT TRY", "LAST ERROR"],
                [
                    (
                        r.id,
                        r.status,
                        r.attempts,
                        r.ticket_id or "-",
                        ", ".join(r.rcpt_to),
                        queries.iso(r.next_attempt_at) if r.status == "queued" else "-",
                        r.last_error or "",
                    )
                    for r in rows
                ],
                [5, 7, 5, 6, 30, 20, 50],
            )


@outbox_app.command("retry")
def outbox_retry(
    ctx: typer.Context,
    row_id: Annotated[int, typer.Argument(metavar="ID", help="Outbound mail id.")],
    config: ConfigOption = None,
) -> None:
    """Queue a failed or waiting mail again, due now, with fresh attempts.

    Example: inboxd outbox retry 12
    """
    from inboxd.queues import outbox

    config = config or (ctx.obj or {}).get("config")
    with errors():
        rt = open_rt(config)
        row = outbox.retry(rt.engine, row_id)
        typer.echo(f"{row.id}: queued again for {', '.join(row.rcpt_to)}")


@loops_app.callback()
def loops_list(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """List the senders and domains whose mail the loop breaker holds, and why.

    Example: inboxd loops
    """
    from inboxd.agents import loop_guard
    from inboxd.db import session_scope
    from inboxd.tickets import queries

    if ctx.invoked_subcommand is not None:
        ctx.obj = {"config": config}
        return
    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            rows = loop_guard.active_holds(session)
            if json:
                print_json([_hold_json(r) for r in rows])
                return
            table(
                ["ADDRESS", "SINCE", "TICKET", "HELD", "WHY"],
                [
                    (r.address, queries.iso(r.started_at), r.ticket_id, r.held, r.reason)
                    for r in rows
                ],
                [30, 20, 7, 5, 50],
            )


def _hold_json(row: LoopHold) -> dict[str, object]:
    from inboxd.tickets import queries

    return {
        "address": row.address,
        "reason": row.reason,
        "ticket_id": row.ticket_id,
        "held": row.held,
        "started_at": queries.iso(row.started_at),
    }


@loops_app.command("lift")
def loops_lift(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The held address, or @domain.")],
    config: ConfigOption = None,
) -> None:
    """Let a held sender's (or domain's) mail through again, once its loop is fixed.

    Example: inboxd loops lift ooo@example.com
    """
    from inboxd.agents import loop_guard
    from inboxd.db import session_scope

    config = config or (ctx.obj or {}).get("config")
    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            hold = loop_guard.lift(session, address, "cli")
            typer.echo(f"lifted: {hold.address} ({hold.held} messages were held)")
