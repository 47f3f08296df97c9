"""inboxd report: the service figures of SPEC §10.5 for a period."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from typing import Annotated, Any

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    since: Annotated[
        str | None, typer.Option(help="The period up to now: 30d, 12h, 2w (default 30d).")
    ] = None,
    from_: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day (in the calendar's zone)."),
    ] = None,
    to: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day, included."),
    ] = None,
    by: Annotated[str | None, typer.Option(help="Group by agent, team, tag or channel.")] = None,
    calendar: Annotated[
        str | None, typer.Option(help="Business time in this calendar (default: the first).")
    ] = None,
    csv_: Annotated[bool, typer.Option("--csv", help="One CSV row per figure.")] = False,
    explain: Annotated[bool, typer.Option(help="Print each figure's definition.")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Service figures: volume, backlog, reply and resolution times, one-touch, SLA, CSAT.

    Medians and 90th percentiles, from the event log up to the period's end, so a past
    period gives the same numbers tomorrow.

    Example: inboxd report --from 2026-11-01 --to 2026-11-30 --by agent
    """
    from inboxd.db import session_scope
    from inboxd.models import utcnow
    from inboxd.workflow import report_text, reports

    with errors():
        rt = open_rt(config)
        try:
            with session_scope(rt.engine) as session:
                data = reports.run_report(
                    session,
                    rt.config,
                    utcnow(),
                    since=since,
                    from_date=_day(from_),
                    to_date=_day(to),
                    by=by,
                    calendar=calendar,
                )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if json:
            print_json(data)
        elif csv_:
            _print_csv(data)
        else:
            for line in report_text.describe(data, explain=explain):
                typer.echo(line)


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _print_csv(data: dict[str, Any]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["group", "figure", "measure", "value"])
    for figure, values in data["figures"].items():
        for measure, value in _flat(values):
            writer.writerow(["all", figure, measure, value])
    for group, figures in (data.get("by") or {}).items():
        for figure, values in figures.items():
            for measure, value in _flat(values if isinstance(values, dict) else {"value": values}):
                writer.writerow([group, figure, measure, value])


def _flat(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        if key == "definition":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat(value, f"{name}.")
        else:
            rows.append((name, "" if value is None else value))
    return rows
