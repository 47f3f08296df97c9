"""inboxd rules list / test: the business rules of SPEC §10.3, and a dry run of them."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table

# Each command imports what it uses (cli/common.py says why).

app = typer.Typer(no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="rules",
        help="Business rules: command tags run on events and after delays.\n\n"
        "Example: inboxd rules test --since 7d",
    )


@app.command("list")
def list_rules(config: ConfigOption = None, json: JsonOption = False) -> None:
    """The rules in file order, with what they listen to and what they run.

    Example: inboxd rules list
    """
    from inboxd.workflow.rules import load_rules

    with errors():
        rt = open_rt(config)
        rules = load_rules(rt.config)
        rows = [
            {
                "name": r.name,
                "on": r.on or f"{r.since} + {r.after}",
                "calendar": r.calendar.name if r.calendar else None,
                "conditions": [c.source for c in (*r.when, *r.any)],
                "run": [c.line for c in r.calls],
                "max_runs": r.max_runs,
            }
            for r in rules
        ]
        if json:
            print_json(rows)
            return
        if not rows:
            typer.echo("no rules ([[rules]] in inboxd.toml or [inboxd] rules_files)")
            return
        table(
            ["RULE", "ON", "WHEN", "RUN"],
            [
                (r["name"], r["on"], " & ".join(r["conditions"]) or "-", " ".join(r["run"]))
                for r in rows
            ],
            [28, 28, 40, 40],
        )


@app.command("test")
def test_rules(
    since: Annotated[
        str, typer.Option(help="Events of this period up to now: 7d, 12h, 2w.")
    ] = "7d",
    ticket: Annotated[int | None, typer.Option(help="Only this ticket.")] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """What the rules would do on real tickets and events; changes nothing, sends nothing.

    Example: inboxd rules test --since 30d --ticket 42
    """
    from sqlmodel import Session

    from inboxd.agents.operations import desk_options
    from inboxd.models import utcnow
    from inboxd.workflow.periods import parse_span
    from inboxd.workflow.rule_dryrun import dry_run
    from inboxd.workflow.rules import load_rules

    with errors():
        try:
            span = parse_span(since)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--since") from None
        rt = open_rt(config)
        rules = load_rules(rt.config)
        now = utcnow()
        # A plain session that is never committed: a dry run writes nothing.
        with Session(rt.engine) as session:
            found = dry_run(session, rules, now, now - span, ticket, desk=desk_options(rt))
            session.rollback()
        if json:
            print_json([w.as_json() for w in found])
            return
        if not found:
            typer.echo(f"no rule would run on the events of the last {since}")
            return
        table(
            ["RULE", "#", "TRIGGER", "OUTCOME", "COMMANDS"],
            [(w.rule, w.ticket_id, w.trigger, w.outcome, " ".join(w.commands)) for w in found],
            [24, 6, 44, 30, 40],
        )
