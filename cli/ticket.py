"""inboxd ticket new: open a ticket on a customer's behalf (a call, a chat, a visit)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json
from inboxd.tickets.channels import CHANNELS

app = typer.Typer(no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="ticket",
        help="Open a ticket on a customer's behalf.\n\n"
        "Example: inboxd ticket new --for carol@example.org --subject 'Refund' --text 'Called'",
    )


@app.command("new")
def new(
    requester: Annotated[
        str,
        typer.Option("--for", "--requester", help="The customer's email address (the requester)."),
    ],
    subject: Annotated[str, typer.Option(help="What the customer asked about.")],
    text: Annotated[
        str, typer.Option(help="The request as you took it down (public; - reads stdin).")
    ] = "",
    note: Annotated[str, typer.Option(help="An internal note instead of --text.")] = "",
    name: Annotated[str, typer.Option(help="The customer's name, if inboxd has none.")] = "",
    channel: Annotated[
        str, typer.Option(help=f"How they reached you: {', '.join(CHANNELS)}.")
    ] = "phone",
    notify: Annotated[
        bool,
        typer.Option(
            "--notify/--no-notify",
            help="Mail the customer once ('we have logged your call'); else nothing is sent.",
        ),
    ] = False,
    as_: Annotated[
        str | None, typer.Option("--as", help="The agent logging it (default: the first admin).")
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Open a ticket for a customer who called, chatted or came by; print its number.

    The customer is the requester and gets every reply; you are recorded as its
    submitter. Their first reply time starts with their first own message.

    Example: inboxd ticket new --for carol@example.org --subject "Refund" --notify
    """
    from inboxd.agents import new_ticket, operations
    from inboxd.db import session_scope
    from inboxd.errors import InvalidValue

    request = new_ticket.NewTicket(
        requester,
        subject,
        sys.stdin.read() if text == "-" else text,
        note,
        name,
        channel,
        notify,
    )
    with errors():
        try:
            request = new_ticket.checked(request)  # a typo needs no database
        except InvalidValue as exc:
            flag = {"requester": "--for"}.get(exc.field, f"--{exc.field}")
            raise typer.BadParameter(exc.reason, param_hint=flag) from None
        rt = open_rt(config)
        with session_scope(rt.engine) as session:
            agent = operations.acting_agent(session, as_)
        data = new_ticket.open_for_customer(rt, request, agent, "cli")
        if json:
            print_json(data)
            return
        sent = "; the customer was mailed" if data["notified"] else "; nothing was sent"
        typer.echo(f"#{data['id']} opened for {data['requester']} ({data['channel']}){sent}")
