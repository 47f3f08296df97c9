"""inboxd sla N: where a ticket's service-level targets stand, and how they were counted."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json


def register(app: typer.Typer) -> None:
    app.command("sla")(sla)


def sla(
    ticket_id: Annotated[int, typer.Argument(metavar="N", help="Ticket number.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Explain a ticket's deadlines: policy, due times, minutes used and left, what was skipped.

    Example: inboxd sla 42
    """
    from inboxd.db import session_scope
    from inboxd.models import utcnow
    from inboxd.tickets import queries
    from inboxd.workflow.sla import service_levels
    from inboxd.workflow.sla_explain import sla_json, sla_text

    with errors():
        rt = open_rt(config)
        service_levels(rt.config)  # a bad [[sla]] or [[calendars]] entry: exit 2, named
        with session_scope(rt.engine) as session:
            ticket = queries.get_ticket(session, ticket_id)
            data = sla_json(session, rt, ticket, utcnow())
        if json:
            print_json(data)
            return
        typer.echo(sla_text(data, ticket_id))
