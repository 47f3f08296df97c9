"""inboxd tickets / show / search: read tickets (commands come with `inboxd run`)."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table
from inboxd.errors import InvalidValue

if TYPE_CHECKING:
    from sqlmodel import Session

    from inboxd.models import Ticket

# Each command imports what it uses (cli/common.py says why).


def register(app: typer.Typer) -> None:
    app.command("tickets")(tickets)
    app.command("show")(show)
    app.command("run")(run)
    app.command("reply")(reply)
    app.command("search")(search)


def tickets(
    status: Annotated[
        str | None, typer.Option(help="new, open, pending, on-hold, solved, closed")
    ] = None,
    assignee: Annotated[
        str | None, typer.Option(help="An agent's email or name, me (see --as), or none.")
    ] = None,
    priority: Annotated[str | None, typer.Option(help="low, normal, high, urgent")] = None,
    tag: Annotated[str | None, typer.Option(help="Only tickets with this tag.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's queue.")] = None,
    requester: Annotated[str | None, typer.Option(help="Only this requester's tickets.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many tickets (1 or more).")] = 50,
    sort: Annotated[
        str, typer.Option(help="updated, created, priority, id, or due (SLA deadline soonest).")
    ] = "updated",
    due: Annotated[
        str | None, typer.Option(help="any: with an SLA deadline; overdue: past it.")
    ] = None,
    as_: Annotated[
        str | None, typer.Option("--as", help="Who `--assignee me` is (default: the first admin).")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List tickets, newest activity first (or by `--sort`).

    Example: inboxd tickets --status open --assignee none --sort due
    """
    from inboxd.db import session_scope
    from inboxd.models import utcnow
    from inboxd.tickets import queries

    with errors():
        typed = queries.TicketFilter(
            status, assignee, priority, tag, requester, limit, team, sort=sort, due=due
        )
        try:
            # What can be checked without a database is, so a typo needs no config.
            typed = queries.checked_values(typed)
            rt = open_rt(config)
            with session_scope(rt.engine) as session:
                me = _acting_agent(session, as_) if typed.assignee == "me" else None
                flt = queries.checked_filter(session, typed, me, rt.config.team_names)
                found = queries.list_tickets(session, replace(flt, now=utcnow()))
                _print_tickets(session, found, json)
        except InvalidValue as exc:
            raise typer.BadParameter(exc.reason, param_hint=f"--{exc.field}") from None


def _acting_agent(session: Session, as_: str | None) -> str:
    from inboxd.agents import operations  # the reply path's imports: only for `--assignee me`

    return operations.acting_agent(session, as_)


def search(
    query: Annotated[str, typer.Argument(help="Words to look for.")],
    limit: Annotated[int, typer.Option(help="At most this many tickets.")] = 50,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Search tickets' subjects, requesters and message texts.

    Example: inboxd search "invoice 1234"
    """
    from inboxd.db import session_scope
    from inboxd.tickets import queries

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            _print_tickets(session, queries.search(session, query, limit), json)


def _print_tickets(session: Session, found: list[Ticket], json: bool) -> None:
    from inboxd.tickets import queries

    data = queries.tickets_json(session, found)
    if json:
        print_json(data)
        return
    table(
        ["#", "STATUS", "PRIO", "ASSIGNEE", "REQUESTER", "UPDATED", "SLA DUE (UTC)", "SUBJECT"],
        [
            (
                d["id"],
                d["status"],
                d["priority"],
                d["assignee"] or "-",
                d["requester"],
                (d["updated_at"] or "")[:16].replace("T", " "),
                (d["sla_due_at"] or "-")[:16].replace("T", " "),
                d["subject"],
            )
            for d in data
        ],
        [6, 8, 6, 20, 28, 16, 16, 50],
    )


def show(
    ticket_id: Annotated[int, typer.Argument(metavar="N", help="Ticket number.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show one ticket with its messages and events.

    Example: inboxd show 42 --json
    """
    from inboxd.db import session_scope
    from inboxd.models import utcnow
    from inboxd.tickets import history, queries
    from inboxd.workflow.sla_explain import sla_json

    with errors():
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            ticket = queries.get_ticket(session, ticket_id)
            data = queries.ticket_json(session, ticket, full=True)
            data["sla"] = sla_json(session, rt, ticket, utcnow())
            # The reader's zone: the terminal's (TZ), as every other program prints it.
            lines = history.history(session, ticket_id, history.local_zone())
        if json:
            print_json(data)
            return
        typer.echo(f"#{data['id']} {data['subject']}")
        typer.echo(
            f"status {data['status']} · priority {data['priority']} · "
            f"assignee {data['assignee'] or '-'} · requester {data['requester']}"
        )
        if data["cc"]:
            typer.echo(f"cc {', '.join(data['cc'])}")
        _print_customer(data)
        if data["tags"]:
            typer.echo(f"tags {', '.join(data['tags'])}")
        for m in data["messages"]:
            typer.echo("")
            flag = " [sender ambiguous]" if m.get("sender_ambiguous") else ""
            typer.echo(f"--- {m['date']} {m['kind']} from {m['from']}{flag} ({m['threaded_by']})")
            typer.echo(m["text"] or "(no text)")
            for a in m["attachments"]:
                typer.echo(f"[attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes)")
        typer.echo("\nhistory:")
        for line in lines:
            typer.echo(f"  {line.when} {line.actor} {line.kind} {line.text}".rstrip())


def _print_customer(data: dict[str, Any]) -> None:
    """The customer beside the ticket (SPEC §10.7), as notifications show them."""
    if data["submitter"] != data["requester"]:
        typer.echo(f"logged by {data['submitter']} ({data['channel']})")
    customer = data.get("customer")
    if not customer:
        return
    typer.echo(
        f"customer {customer['id']} {customer['name'] or '(no name)'}"
        f" · {customer['organization'] or 'no organisation'}"
        f" · {', '.join(customer['addresses'])}"
    )
    for label, key in (
        ("their other open tickets", "open_tickets"),
        (f"open at {customer['organization']}", "organization_open_tickets"),
        ("recently solved", "recent_solved"),
    ):
        if customer[key]:
            typer.echo(
                f"{label}: " + "; ".join(f"#{t['id']} {t['subject']}" for t in customer[key])
            )


def run(
    ticket_id: Annotated[int, typer.Argument(metavar="N", help="Ticket number.")],
    commands: Annotated[str, typer.Argument(help="Command tags, one per line (SPEC §6).")],
    as_: Annotated[
        str | None, typer.Option("--as", help="Run as this agent (default: the first admin).")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Run command tags on a ticket, exactly as an agent's email would.

    Nothing is applied if any line is invalid; each bad line is named on stderr.

    Example: inboxd run 42 $'#status pending\n#assign bob@example.com'
    """
    from inboxd.agents import operations
    from inboxd.tickets.commands import help_table

    with errors():
        rt = open_rt(config)
        try:
            outcome = operations.run_commands(rt, ticket_id, commands, as_, "cli")
        except operations.InvalidCommands as exc:
            for line, why in exc.errors:
                typer.echo(f"inboxd: {line}: {why}", err=True)
            typer.echo("inboxd: nothing was changed", err=True)
            raise typer.Exit(1) from None
        if json:
            print_json(outcome.ticket)
            return
        for change in outcome.result.changes or ["nothing to change"]:
            typer.echo(change)
        if outcome.result.wants_help:
            typer.echo(help_table())


def reply(
    ticket_id: Annotated[int, typer.Argument(metavar="N", help="Ticket number.")],
    text: Annotated[str, typer.Argument(help="The reply; - reads it from stdin.")],
    note: Annotated[bool, typer.Option("--note", help="An internal note, never sent.")] = False,
    as_: Annotated[
        str | None, typer.Option("--as", help="Reply as this agent (default: the first admin).")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Reply to the customer (or add a note), exactly as the web's reply box does.

    Example: inboxd reply 42 "It ships today." --as alice@example.com
    """
    from inboxd.agents import operations
    from inboxd.db import session_scope

    with errors():
        body = sys.stdin.read() if text == "-" else text
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            agent = operations.acting_agent(session, as_)
        data = operations.post_reply(rt, ticket_id, agent, body, note=note, source="cli")
        if json:
            print_json(data)
            return
        typer.echo(f"#{ticket_id}: {'note added' if note else 'reply queued to the customer'}")
