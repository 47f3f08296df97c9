"""Who gets mail (issue 16 items 2 and 8, SPEC §10.9): preferences, teams, roles.

The decision is one pure function (inboxd/agents/audience.py), specified here as a table;
then the pieces around it: `inboxd agents set/add/list/show/remove`, `[[teams]]` and
`inboxd check`, `#team`, a lead hearing of a bad rating, one mail per action.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_config
from mailbuilder import mail
from sqlmodel import col, select
from typer.testing import CliRunner

from cli.main import app
from inboxd.agents import audience, directory, operations
from inboxd.agents.audience import Reader, TicketFacts
from inboxd.db import session_scope
from inboxd.errors import ConfigError
from inboxd.models import Agent, Event, Outbound, Ticket, utcnow
from inboxd.pipeline import ingest
from inboxd.runtime import Runtime, open_runtime
from inboxd.workflow import csat

# --- the decision, as a table -----------------------------------------------------------

ANN = Reader("ann@example.com", "all", "admin", frozenset({"billing"}))
BEN = Reader("ben@example.com", "all", "agent", frozenset())
TEA = Reader("tea@example.com", "team", "agent", frozenset({"billing"}))
TOM = Reader("tom@example.com", "team", "agent", frozenset({"sales"}))
ASA = Reader("asa@example.com", "assigned", "agent", frozenset({"billing"}))
NED = Reader("ned@example.com", "none", "admin", frozenset({"billing"}))
DESK = [ANN, BEN, TEA, TOM, ASA, NED]

UNASSIGNED = TicketFacts()
BILLING = TicketFacts(team="billing", lead="ann@example.com")
NOBODYS_TEAM = TicketFacts(team="typo")
ASAS = TicketFacts(assignee="asa@example.com", followers=frozenset({"ben@example.com"}))
TEAS = TicketFacts(
    assignee="tea@example.com", team="billing", lead="ann@example.com", followers=frozenset()
)


def emails(*readers: Reader) -> list[str]:
    return [r.email for r in readers]


TABLE = [
    # A new ticket of no team: everyone whose preference is `all` (not team/assigned/none).
    ("new", UNASSIGNED, "", emails(ANN, BEN)),
    # A new ticket of a team: that team's agents whose preference is all or team.
    ("new", BILLING, "", emails(ANN, TEA)),
    # A team nobody works in (a free word): as if it had none, nobody's queue is lost.
    ("new", NOBODYS_TEAM, "", emails(ANN, BEN)),
    # A customer's reply on an unassigned ticket goes where its first mail went.
    ("customer", BILLING, "", emails(ANN, TEA)),
    # ... and to the agents who wrote on it, even if the queue is not theirs.
    (
        "customer",
        TicketFacts(team="billing", followers=frozenset({TOM.email})),
        "",
        emails(ANN, TEA, TOM),
    ),
    ("customer", TicketFacts(followers=frozenset({ASA.email})), "", emails(ANN, BEN)),
    # ... on an assigned ticket: the assignee only, whatever the others' preferences.
    ("customer", ASAS, "", emails(ASA)),
    ("customer", TEAS, "", emails(TEA)),
    # An agent's reply: copies to those following the ticket, never to its writer;
    # `assigned` agents only on their own tickets.
    ("reply", ASAS, "ben@example.com", emails(ASA)),
    ("reply", ASAS, "asa@example.com", emails(BEN)),
    ("note", TEAS, "ann@example.com", emails(TEA)),
    # An assignment: the new assignee, unless they did it themselves.
    ("assign", ASAS, "ann@example.com", emails(ASA)),
    ("assign", ASAS, "asa@example.com", []),
    # A move to a team's queue: its agents, unless someone owns the ticket.
    ("team", BILLING, "ann@example.com", emails(TEA)),
    ("team", TEAS, "", []),
    ("team", NOBODYS_TEAM, "", []),
    ("due", ASAS, "", emails(ASA)),
    ("due", UNASSIGNED, "", emails(ANN, BEN)),
    # SLA warning: the assignee, else the team's agents, else the admins.
    ("sla-warning", TEAS, "", emails(TEA)),
    ("sla-warning", BILLING, "", emails(ANN, TEA)),
    ("sla-warning", UNASSIGNED, "", emails(ANN)),
    # SLA breach: the assignee, the admins and the team's lead (once each).
    ("sla-breach", TEAS, "", emails(TEA, ANN)),
    ("sla-breach", UNASSIGNED, "", emails(ANN)),
    # A bad rating: the team's lead; a ticket of no team, the admins.
    ("csat-bad", BILLING, "", emails(ANN)),
    ("csat-bad", TicketFacts(team="sales"), "", emails(ANN)),
]


@pytest.mark.parametrize(("event", "ticket", "actor", "expected"), TABLE)
def test_who_hears_of_what(
    event: str, ticket: TicketFacts, actor: str, expected: list[str]
) -> None:
    assert audience.audience(event, ticket, DESK, actor=actor) == expected


def test_none_means_no_notification_at_all() -> None:
    ned_owns = TicketFacts(assignee=NED.email, team="billing", lead=NED.email)
    for event in audience.EVENTS:
        assert NED.email not in audience.audience(event, ned_owns, DESK), event


def test_an_unknown_event_is_a_bug_not_silence() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        audience.audience("tweet", UNASSIGNED, DESK)


# --- [[teams]] in the config --------------------------------------------------------------


def team_config(tmp_path: Path, *teams: dict[str, object]) -> None:
    make_config(tmp_path, teams=list(teams))


def test_teams_are_checked_at_start_up(tmp_path: Path) -> None:
    good = {"name": "billing", "agents": ["alice@example.com"], "lead": "alice@example.com"}
    team_config(tmp_path, good)
    with pytest.raises(ConfigError, match="is not one of its agents"):
        team_config(tmp_path, {**good, "lead": "bob@example.com"})
    with pytest.raises(ConfigError, match="expected a lowercase word"):
        team_config(tmp_path, {**good, "name": "Billing Team"})
    with pytest.raises(ConfigError, match="used twice"):
        team_config(tmp_path, good, good)
    with pytest.raises(ConfigError, match="already the support address"):
        team_config(tmp_path, {**good, "email": "support@example.com"})
    with pytest.raises(ConfigError, match="unknown key"):
        team_config(tmp_path, {**good, "members": []})


def test_a_teams_own_address_is_ours_and_opens_tickets_in_its_queue(tmp_path: Path) -> None:
    rt = open_runtime(
        make_config(
            tmp_path,
            teams=[
                {"name": "billing", "agents": ["bob@example.com"], "email": "billing@example.com"}
            ],
        )
    )
    assert "billing@example.com" in rt.config.support_addresses
    created = ingest(rt, mail(to="billing@example.com", subject="Invoice 7 is wrong"))
    plain = ingest(rt, mail(subject="Where is my parcel"))
    with session_scope(rt.engine) as session:
        assert session.get(Ticket, created.ticket).team == "billing"
        assert session.get(Ticket, plain.ticket).team is None
        # Only billing's agent hears of the billing ticket (Alice is not in the team).
        told = session.exec(
            select(Outbound.rcpt_to).where(
                Outbound.ticket_id == created.ticket, Outbound.purpose == "notify:new"
            )
        ).all()
    assert told == [["bob@example.com"]]


# --- #team -------------------------------------------------------------------------------


def new_ticket(rt: Runtime, subject: str = "Help") -> int:
    result = ingest(rt, mail(subject=subject))
    assert result.ticket is not None
    return result.ticket


def test_team_refuses_a_team_that_is_not_configured_and_names_the_allowed(
    tmp_path: Path,
) -> None:
    teams = [{"name": n, "agents": ["bob@example.com"]} for n in ("billing", "sales")]
    rt = open_runtime(make_config(tmp_path, teams=teams))
    ticket = new_ticket(rt)
    with pytest.raises(operations.InvalidCommands) as refused:
        operations.run_commands(rt, ticket, "#team biling", None, "cli")
    assert refused.value.errors == [
        ("#team biling", "no team 'biling'; teams are billing, sales (or none)")
    ]
    done = operations.run_commands(rt, ticket, "#team Billing", None, "cli")
    assert done.ticket["team"] == "billing"
    assert operations.run_commands(rt, ticket, "#team none", None, "cli").ticket["team"] is None


def test_team_without_teams_configured_takes_any_lowercase_word(sqlite_rt: Runtime) -> None:
    ticket = new_ticket(sqlite_rt)
    assert operations.run_commands(sqlite_rt, ticket, "#team Billing", None, "cli").ticket[
        "team"
    ] == ("billing")
    with pytest.raises(operations.InvalidCommands, match="one word"):
        operations.run_commands(sqlite_rt, ticket, "#team two words", None, "cli")


# --- inboxd agents ------------------------------------------------------------------------

runner = CliRunner()


def cli(rt: Runtime, *args: str, input: str | None = None) -> tuple[int, str]:
    config = rt.config.base_dir / "inboxd.toml"
    if not config.exists():
        url = rt.config.database_url
        config.write_text(
            f'[inboxd]\nsupport_address = "support@example.com"\ndatabase_url = "{url}"\n'
            f'secret_key_file = "{rt.config.path(rt.config.inboxd.secret_key_file)}"\n',
            encoding="utf-8",
        )
    result = runner.invoke(app, [*args, "--config", str(config)], input=input)
    return result.exit_code, result.output


def test_agents_set_changes_only_what_it_is_given_and_show_prints_it(sqlite_rt: Runtime) -> None:
    code, out = cli(
        sqlite_rt,
        "agents",
        "set",
        "bob@example.com",
        "--notify",
        "assigned",
        "--receipts",
        "on",
        "--language",
        "zh-hans",
        "--signature",
        "Bob\nExample Support",
    )
    assert code == 0, out
    code, out = cli(sqlite_rt, "agents", "set", "bob@example.com", "--notify", "team")
    assert code == 0, out
    code, out = cli(sqlite_rt, "agents", "show", "bob@example.com", "--json")
    shown = json.loads(out)
    assert {k: shown[k] for k in ("notify", "receipts", "language", "signature")} == {
        "notify": "team",
        "receipts": True,
        "language": "zh-Hans",
        "signature": "Bob\nExample Support",
    }
    listed = json.loads(cli(sqlite_rt, "agents", "list", "--json")[1])
    assert [(a["email"], a["notify"]) for a in listed] == [
        ("alice@example.com", "all"),
        ("bob@example.com", "team"),
    ]


def test_agents_set_refuses_bad_values_with_the_allowed_ones(sqlite_rt: Runtime) -> None:
    code, out = cli(sqlite_rt, "agents", "set", "bob@example.com", "--notify", "some")
    assert code == 2 and "all" in out and "assigned" in out and "none" in out
    code, out = cli(sqlite_rt, "agents", "set", "bob@example.com", "--language", "english!")
    assert code == 2 and "language tag" in out
    code, out = cli(sqlite_rt, "agents", "set", "nobody@example.com", "--notify", "none")
    assert code == 1 and "no agent nobody@example.com" in out
    code, out = cli(sqlite_rt, "agents", "set", "alice@example.com", "--role", "agent")
    assert code == 1 and "last admin" in out


def test_agents_add_takes_the_preferences_too(sqlite_rt: Runtime) -> None:
    code, out = cli(
        sqlite_rt,
        "agents",
        "add",
        "dora@example.com",
        "--name",
        "Dora",
        "--notify",
        "none",
        "--receipts",
        "on",
    )
    assert code == 0, out
    with session_scope(sqlite_rt.engine) as session:
        dora = directory.get_agent(session, "dora@example.com")
        assert (dora.notify, dora.receipts, dora.name) == ("none", True, "Dora")


def test_removing_an_agent_with_open_tickets_refuses_and_lists_them(sqlite_rt: Runtime) -> None:
    first, second, solved = (new_ticket(sqlite_rt, s) for s in ("One", "Two", "Three"))
    for ticket in (first, second, solved):
        operations.run_commands(sqlite_rt, ticket, "#assign bob", None, "cli")
    operations.run_commands(sqlite_rt, solved, "#status solved", None, "cli")

    code, out = cli(sqlite_rt, "agents", "remove", "bob@example.com")
    assert code == 1
    assert f"#{first} (open) One" in out and f"#{second} (open) Two" in out
    assert f"#{solved}" not in out and "--force" in out
    with session_scope(sqlite_rt.engine) as session:
        assert directory.get_agent(session, "bob@example.com").active

    code, out = cli(sqlite_rt, "agents", "remove", "bob@example.com", "--force")
    assert code == 0, out
    assert f"2 ticket(s) unassigned: #{first}, #{second}" in out
    with session_scope(sqlite_rt.engine) as session:
        assert not directory.get_agent(session, "bob@example.com").active
        assert session.get(Ticket, first).assignee_id is None
        assert session.get(Ticket, solved).assignee_id is not None  # history, not work
        unassigned = session.exec(
            select(Event).where(Event.type == "assignee", col(Event.to_value).is_(None))
        ).all()
    assert sorted(e.ticket_id for e in unassigned) == [first, second]
    assert {(e.actor, e.from_value) for e in unassigned} == {
        ("alice@example.com", "bob@example.com")
    }


# --- the lead hears of a bad rating ---------------------------------------------------------


def test_a_bad_rating_is_told_to_the_teams_lead(tmp_path: Path) -> None:
    teams = [{"name": "billing", "agents": ["alice@example.com", "bob@example.com"]}]
    teams[0]["lead"] = "bob@example.com"
    rt = open_runtime(make_config(tmp_path, teams=teams))
    ticket_id = new_ticket(rt)
    operations.run_commands(rt, ticket_id, "#team billing", None, "cli")
    with session_scope(rt.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        csat.record_vote(session, rt, ticket, "good", ticket.requester)
        csat.record_vote(session, rt, ticket, "bad", ticket.requester)
    with session_scope(rt.engine) as session:
        told = session.exec(select(Outbound).where(Outbound.purpose == "notify:csat-bad")).all()
    assert [row.rcpt_to for row in told] == [["bob@example.com"]]
    assert b"rated ticket" in told[0].raw


# --- one mail per action ------------------------------------------------------------------


def test_a_reply_that_also_assigns_mails_the_new_assignee_once(sqlite_rt: Runtime) -> None:
    """Issue 16 item 7: reply + assignment reached Bob as two mails, one "(no text)"."""
    ticket = new_ticket(sqlite_rt)
    operations.run_commands(sqlite_rt, ticket, "#assign me", None, "cli")  # Alice owns it
    before = _mails_to(sqlite_rt, "bob@example.com")
    operations.run_commands(sqlite_rt, ticket, "#assign bob\n#macro thanks", None, "cli")
    mails = _mails_to(sqlite_rt, "bob@example.com")[len(before) :]
    assert [m.purpose for m in mails] == ["notify:assign"], "one mail, the cautious purpose"
    text = mails[0].raw.decode("utf-8", "replace")
    assert "assigned ticket" in text and "replied to the customer" in text


def _mails_to(rt: Runtime, email: str) -> list[Outbound]:
    with session_scope(rt.engine) as session:
        rows = session.exec(select(Outbound).order_by(col(Outbound.id))).all()
        return [r for r in rows if email in r.rcpt_to]


def test_agents_with_notify_none_get_no_new_ticket_mail(sqlite_rt: Runtime) -> None:
    with session_scope(sqlite_rt.engine) as session:
        bob = session.exec(select(Agent).where(Agent.email == "bob@example.com")).one()
        bob.notify = "none"
        session.add(bob)
    new_ticket(sqlite_rt)
    assert _mails_to(sqlite_rt, "bob@example.com") == []
    assert [m.purpose for m in _mails_to(sqlite_rt, "alice@example.com")] == ["notify:new"]


def test_a_rule_that_routes_a_new_ticket_tells_the_teams_agents(tmp_path: Path) -> None:
    """Rules run after the first notification went out (to the agents with `all`): the
    team's agents hear of the ticket when it reaches their queue."""
    from inboxd.workflow import clock

    rules = [
        {
            "name": "invoices",
            "on": "created",
            "when": ['subject ~ "invoice"'],
            "run": "#team billing",
        }
    ]
    teams = [{"name": "billing", "agents": ["bob@example.com"]}]
    rt = open_runtime(make_config(tmp_path, teams=teams, rules=rules))
    with session_scope(rt.engine) as session:
        bob = session.exec(select(Agent).where(Agent.email == "bob@example.com")).one()
        bob.notify = "team"
        session.add(bob)
    ticket = new_ticket(rt, "Invoice 12 is wrong")
    assert _mails_to(rt, "bob@example.com") == []  # not his team's ticket yet
    with session_scope(rt.engine) as session:
        clock.tick(rt, session, utcnow())
    assert [(m.purpose, m.ticket_id) for m in _mails_to(rt, "bob@example.com")] == [
        ("notify:team", ticket)
    ]
    assert [m.purpose for m in _mails_to(rt, "alice@example.com")] == ["notify:new"]


def test_inboxd_check_lists_teams_and_fails_on_a_rule_naming_no_team(tmp_path: Path) -> None:
    from inboxd.daemon import checks

    teams = [{"name": "billing", "agents": ["bob@example.com", "zoe@example.com"]}]
    teams[0]["lead"] = "bob@example.com"
    rt = open_runtime(make_config(tmp_path, teams=teams))  # creates the database
    line = next(c for c in checks.run_checks(rt.config) if c.what == "teams")
    assert line.ok and line.warn
    assert "billing (2 agents, lead bob@example.com)" in line.detail
    assert "not active agents: zoe@example.com" in line.detail

    rules = [{"name": "route", "on": "created", "run": "#team biling"}]
    cfg = make_config(tmp_path, teams=teams, rules=rules)
    line = next(c for c in checks.run_checks(cfg) if c.what == "teams")
    assert not line.ok
    assert line.detail == "rule 'route': #team biling (teams are billing)"


def test_tickets_team_filter_refuses_a_team_that_is_not_configured(tmp_path: Path) -> None:
    teams = [{"name": "billing", "agents": ["bob@example.com"]}]
    rt = open_runtime(make_config(tmp_path, teams=teams))
    config = tmp_path / "inboxd.toml"
    config.write_text(
        f'[inboxd]\nsupport_address = "support@example.com"\n'
        f'database_url = "{rt.config.database_url}"\n'
        f'secret_key_file = "{rt.config.path(rt.config.inboxd.secret_key_file)}"\n'
        '[[teams]]\nname = "billing"\nagents = ["bob@example.com"]\n',
        encoding="utf-8",
    )
    typo = runner.invoke(app, ["tickets", "--team", "biling", "--config", str(config)])
    assert typo.exit_code == 2 and "billing" in typo.output
    ok = runner.invoke(app, ["tickets", "--team", "billing", "--json", "--config", str(config)])
    assert ok.exit_code == 0 and json.loads(ok.output) == []


def test_an_sla_breach_reaches_the_teams_lead_and_the_admins(tmp_path: Path) -> None:
    from datetime import timedelta

    from inboxd.workflow import clock

    teams = [
        {
            "name": "billing",
            "agents": ["bob@example.com", "cy@example.com"],
            "lead": "bob@example.com",
            "email": "billing@example.com",
        }
    ]
    agents = [
        {"email": "alice@example.com", "name": "Alice", "role": "admin"},
        {"email": "bob@example.com", "name": "Bob", "role": "agent"},
        {"email": "cy@example.com", "name": "Cy", "role": "agent"},
    ]
    sla = [{"name": "all", "first_reply": "1h"}]
    rt = open_runtime(make_config(tmp_path, teams=teams, agents=agents, sla=sla))
    result = ingest(rt, mail(to="billing@example.com", subject="Invoice"))
    start = utcnow()
    for later in (timedelta(), timedelta(hours=2)):
        with rt.write_lock, session_scope(rt.engine) as session:
            clock.tick(rt, session, start + later)
    with session_scope(rt.engine) as session:
        told = session.exec(
            select(Outbound.rcpt_to).where(
                Outbound.ticket_id == result.ticket, Outbound.purpose == "notify:sla-breach"
            )
        ).all()
    assert sorted(r[0] for r in told) == ["alice@example.com", "bob@example.com"]
