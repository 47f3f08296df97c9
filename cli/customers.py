"""inboxd customers [QUERY] / list / show / merge / unmerge / set / add-address / note."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperGroup

from cli.common import ConfigOption, JsonOption, errors, open_rt, print_json, table

if TYPE_CHECKING:
    from inboxd.runtime import Runtime


class _ListByDefault(TyperGroup):
    """`inboxd customers` and `inboxd customers QUERY` list (SPEC §4); any other first
    word is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_ListByDefault)
AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this agent (default: the first admin).")
]
Ref = Annotated[str, typer.Argument(metavar="CUSTOMER", help="An address, or a customer id.")]


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="customers",
        help="Customer profiles: one per person, whichever address they write from.\n\n"
        "Example: inboxd customers acme",
    )


def _actor(rt: Runtime, as_: str | None) -> str:
    from inboxd.agents import operations
    from inboxd.db import session_scope

    with session_scope(rt.engine) as session:
        return operations.acting_agent(session, as_)


def _print_profile(data: dict[str, Any], json: bool) -> None:
    if json:
        print_json(data)
        return
    typer.echo(f"customer {data['id']}: {data['name'] or '(no name)'}")
    typer.echo(f"addresses {', '.join(data['addresses'])}")
    typer.echo(f"organization {data['organization'] or '-'} · language {data['language'] or '-'}")
    if data["notes"]:
        typer.echo(f"notes {data['notes']}")
    for t in data.get("tickets", []):
        typer.echo(f"  #{t['id']} {t['status']:<8} {t['requester']}  {t['subject']}")
    for m in data.get("merges", []):
        undone = f", undone {m['undone_at']} by {m['undone_by']}" if m["undone_at"] else ""
        typer.echo(
            f"  merge {m['id']}: customer {m['from']} into {m['into']} "
            f"({', '.join(m['addresses'])}) {m['at']} by {m['actor']}{undone}"
        )


@app.command("list")
def list_(
    query: Annotated[str, typer.Argument(help="Part of a name, address or organisation.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many profiles.")] = 50,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List customer profiles, newest change first.

    Example: inboxd customers list acme --json
    """
    from inboxd.customers import service

    with errors():
        data = service.list_json(open_rt(config), query, limit)
        if json:
            print_json(data)
            return
        table(
            ["ID", "NAME", "ORGANIZATION", "LANG", "ADDRESSES"],
            [
                (
                    d["id"],
                    d["name"] or "-",
                    d["organization"] or "-",
                    d["language"] or "-",
                    ", ".join(d["addresses"]),
                )
                for d in data
            ],
            [6, 24, 20, 7, 60],
        )


@app.command("show")
def show(ref: Ref, config: ConfigOption = None, json: JsonOption = False) -> None:
    """One customer: addresses, organisation, tickets, merges and history.

    Example: inboxd customers show carol@example.org --json
    """
    from inboxd.customers import service

    with errors():
        _print_profile(service.show_json(open_rt(config), ref), json)


@app.command("merge")
def merge(
    ref: Ref,
    other: Annotated[str, typer.Argument(metavar="OTHER", help="The profile to merge in.")],
    as_: AsOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Merge OTHER's profile into CUSTOMER's: one customer with both their tickets.

    `unmerge` undoes it exactly.

    Example: inboxd customers merge carol@work.example carol@home.example
    """
    from inboxd.customers import service

    with errors():
        rt = open_rt(config)
        _print_profile(service.merge(rt, ref, other, _actor(rt, as_)), json)


@app.command("unmerge")
def unmerge(
    ref: Ref,
    other: Annotated[
        str | None, typer.Argument(metavar="[OTHER]", help="The address to split off.")
    ] = None,
    as_: AsOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Undo a merge exactly: the profile merged in stands alone again with its addresses
    and tickets. Without OTHER: the merge that brought CUSTOMER in, else the latest one
    into CUSTOMER.

    Example: inboxd customers unmerge carol@work.example carol@home.example
    """
    from inboxd.customers import service

    with errors():
        rt = open_rt(config)
        data = service.unmerge(rt, ref, other, _actor(rt, as_))
        if json:
            print_json(data)
            return
        split, kept = data["split"], data["kept"]
        typer.echo(
            f"customer {split['id']} ({', '.join(split['addresses'])}) is on its own again;"
            f" customer {kept['id']} keeps {', '.join(kept['addresses'])}"
        )


@app.command("set")
def set_(
    ref: Ref,
    name: Annotated[str | None, typer.Option(help="The name mail will no longer change.")] = None,
    organization: Annotated[
        str | None, typer.Option(help='Set by hand; "" goes back to [[organizations]].')
    ] = None,
    language: Annotated[str | None, typer.Option(help="A tag like de, zh-Hans.")] = None,
    notes: Annotated[str | None, typer.Option(help="Replaces the notes.")] = None,
    as_: AsOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Set a customer's name, organisation, language or notes ("" clears one).

    Example: inboxd customers set carol@example.org --name "Carol Lee" --language en
    """
    from inboxd.customers import service

    fields = {
        k: v
        for k, v in {
            "name": name,
            "organization": organization,
            "language": language,
            "notes": notes,
        }.items()
        if v is not None
    }
    with errors():
        rt = open_rt(config)
        _print_profile(service.update(rt, ref, fields, _actor(rt, as_)), json)


@app.command("add-address")
def add_address(
    ref: Ref,
    email: Annotated[str, typer.Argument(help="The address to add.")],
    as_: AsOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Give a customer one more address (one no other profile has; else merge them).

    Example: inboxd customers add-address carol@example.org carol@home.example
    """
    from inboxd.customers import service

    with errors():
        rt = open_rt(config)
        _print_profile(service.add_address(rt, ref, email, _actor(rt, as_)), json)


@app.command("note")
def note(
    ref: Ref,
    text: Annotated[str, typer.Argument(help="A paragraph to add to the notes.")],
    as_: AsOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Add a paragraph to a customer's notes (agents see them beside the ticket).

    Example: inboxd customers note carol@example.org "Prefers a call back."
    """
    from inboxd.customers import service

    with errors():
        rt = open_rt(config)
        _print_profile(service.add_note(rt, ref, text, _actor(rt, as_)), json)
