"""Customer profiles (SPEC §10.7): every address resolves to one live profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_config
from mailbuilder import mail
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli.main import app
from inboxd.agents import operations
from inboxd.customers import profiles, service
from inboxd.customers.context import context_for
from inboxd.customers.profiles import customer_for, ensure_customer, sync_organizations
from inboxd.models import CustomerEvent, CustomerMerge, Ticket, utcnow
from inboxd.pipeline import ingest
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import queries
from inboxd.workflow.ticket_facts import facts_for_many


def test_an_address_seen_for_the_first_time_gets_a_profile_with_its_name(
    sqlite_rt: Runtime,
) -> None:
    with Session(sqlite_rt.engine) as session:
        first = ensure_customer(session, "Li.Wei@Example.CN", "李伟")
        again = ensure_customer(session, "li.wei@example.cn", "")
        session.commit()
        assert first.id == again.id
        assert again.name == "李伟"
        assert customer_for(session, "LI.WEI@example.cn") == first
        assert customer_for(session, "nobody@example.cn") is None


def test_a_profile_without_a_name_learns_it_later(sqlite_rt: Runtime) -> None:
    with Session(sqlite_rt.engine) as session:
        customer = ensure_customer(session, "anna@example.de")
        assert customer.name == ""
        assert ensure_customer(session, "anna@example.de", "Anna Schmidt").name == "Anna Schmidt"
        assert ensure_customer(session, "anna@example.de", "Someone Else").name == "Anna Schmidt"


# --- every requester and CC resolves to a profile as mail is applied -------------------


def _tickets_of(session: Session, email: str) -> set[int]:
    customer = customer_for(session, email)
    assert customer is not None
    addresses = profiles.addresses_of(session, customer)
    rows = session.exec(select(Ticket.id).where(col(Ticket.requester).in_(addresses)))
    return set(rows)


def test_requester_and_ccs_get_profiles_and_the_senders_own_name_stays_current(
    sqlite_rt: Runtime,
) -> None:
    ingest(sqlite_rt, mail(sender="Carol Lee <carol@example.org>", cc="Dave D <dave@example.org>"))
    with Session(sqlite_rt.engine) as session:
        carol, dave = (
            customer_for(session, "carol@example.org"),
            customer_for(session, "dave@example.org"),
        )
        assert carol is not None and carol.name == "Carol Lee"
        assert dave is not None and dave.name == "Dave D"
    # Carol renames herself in her mail client; someone else's Cc: line calls her "c".
    ingest(sqlite_rt, mail(sender="Carol Lee-Smith <carol@example.org>", subject="Other"))
    ingest(sqlite_rt, mail(sender="Erin <erin@example.org>", cc="c <carol@example.org>"))
    with Session(sqlite_rt.engine) as session:
        carol = customer_for(session, "carol@example.org")
        assert carol is not None and carol.name == "Carol Lee-Smith"
        history = session.exec(
            select(CustomerEvent).where(CustomerEvent.customer_id == carol.id)
        ).all()
        assert [(e.type, e.from_value, e.to_value) for e in history if e.type == "name"] == [
            ("name", "Carol Lee", "Carol Lee-Smith")
        ]


def test_mail_never_overwrites_a_name_an_agent_set(sqlite_rt: Runtime) -> None:
    ingest(sqlite_rt, mail(sender="carol <carol@example.org>"))
    service.update(sqlite_rt, "carol@example.org", {"name": "Carol Lee"}, "alice@example.com")
    ingest(sqlite_rt, mail(sender="CAROL!!! <carol@example.org>", subject="Again"))
    with Session(sqlite_rt.engine) as session:
        carol = customer_for(session, "carol@example.org")
        assert carol is not None and carol.name == "Carol Lee"
        assert carol.name_source == "agent"


def test_a_cc_the_threading_rules_did_not_add_gets_no_profile(sqlite_rt: Runtime) -> None:
    first = ingest(sqlite_rt, mail(sender="carol@example.org", subject="Order 1"))
    # By subject tag only (SPEC §5): its Cc: is not added, so it is nobody's CC.
    ingest(
        sqlite_rt,
        mail(sender="carol@example.org", subject=f"[#{first.ticket}] more", cc="x@evil.example"),
    )
    with Session(sqlite_rt.engine) as session:
        assert customer_for(session, "x@evil.example") is None


# --- merge and unmerge ------------------------------------------------------------------


def test_a_customer_writing_from_two_addresses_merged_and_unmerged_keeps_exactly_its_tickets(
    rt: Runtime,
) -> None:
    work = ingest(rt, mail(sender="Carol <carol@work.example>", subject="Invoice"))
    home = ingest(rt, mail(sender="carol@home.example", subject="Delivery"))
    home2 = ingest(rt, mail(sender="carol@home.example", subject="Delivery again"))
    with Session(rt.engine) as session:
        before_work = _tickets_of(session, "carol@work.example")
        before_home = _tickets_of(session, "carol@home.example")
    assert before_work == {work.ticket} and before_home == {home.ticket, home2.ticket}

    merged = service.merge(rt, "carol@work.example", "carol@home.example", "alice@example.com")
    assert merged["addresses"] == ["carol@work.example", "carol@home.example"]
    assert {t["id"] for t in merged["tickets"]} == before_work | before_home
    # An address added after the merge belongs to the merged customer, not to either half.
    service.add_address(rt, "carol@home.example", "carol@mobile.example", "alice@example.com")
    later = ingest(rt, mail(sender="carol@mobile.example", subject="From my phone"))
    with Session(rt.engine) as session:
        assert _tickets_of(session, "carol@home.example") == {
            work.ticket,
            home.ticket,
            home2.ticket,
            later.ticket,
        }

    split = service.unmerge(rt, "carol@work.example", "carol@home.example", "bob@example.com")
    assert split["split"]["addresses"] == ["carol@home.example"]
    assert split["kept"]["addresses"] == ["carol@work.example", "carol@mobile.example"]
    with Session(rt.engine) as session:
        assert _tickets_of(session, "carol@home.example") == before_home
        assert _tickets_of(session, "carol@work.example") == before_work | {later.ticket}
        merge_row = session.exec(select(CustomerMerge)).one()
        assert merge_row.actor == "alice@example.com" and merge_row.undone_by == "bob@example.com"
        assert merge_row.undone_at is not None


def test_unmerge_puts_back_what_the_merge_filled_in_unless_it_changed_since(
    sqlite_rt: Runtime,
) -> None:
    ingest(sqlite_rt, mail(sender="carol@work.example"))
    ingest(sqlite_rt, mail(sender="Carol Lee <carol@home.example>", subject="Other"))
    merged = service.merge(
        sqlite_rt, "carol@work.example", "carol@home.example", "alice@example.com"
    )
    assert merged["name"] == "Carol Lee"  # the surviving profile had none
    service.unmerge(sqlite_rt, "carol@home.example", None, "alice@example.com")
    with Session(sqlite_rt.engine) as session:
        work, home = (
            customer_for(session, "carol@work.example"),
            customer_for(session, "carol@home.example"),
        )
        assert work is not None and home is not None and work.id != home.id
        assert (work.name, home.name) == ("", "Carol Lee")


def test_merge_and_unmerge_by_command_tag_from_any_edge(sqlite_rt: Runtime) -> None:
    work = ingest(sqlite_rt, mail(sender="carol@work.example"))
    home = ingest(sqlite_rt, mail(sender="carol@home.example", subject="Other"))
    assert work.ticket is not None and home.ticket is not None
    outcome = operations.run_commands(
        sqlite_rt, work.ticket, "#customer-merge carol@home.example", None, "cli"
    )
    assert any("merged into customer" in c for c in outcome.result.changes)
    with Session(sqlite_rt.engine) as session:
        assert _tickets_of(session, "carol@work.example") == {work.ticket, home.ticket}
    with pytest.raises(operations.InvalidCommands, match="is this requester's profile already"):
        operations.run_commands(
            sqlite_rt, work.ticket, "#customer-merge carol@home.example", None, "cli"
        )
    operations.run_commands(sqlite_rt, home.ticket, "#customer-unmerge", None, "web")
    with Session(sqlite_rt.engine) as session:
        assert _tickets_of(session, "carol@work.example") == {work.ticket}
        assert _tickets_of(session, "carol@home.example") == {home.ticket}
        types = [e.type for e in queries.events_of(session, home.ticket)]
        assert "customer_unmerged" in types
    with pytest.raises(operations.InvalidCommands, match="no merge to undo"):
        operations.run_commands(sqlite_rt, home.ticket, "#customer-unmerge", None, "cli")


def test_a_chain_of_merges_unmerges_in_any_order(sqlite_rt: Runtime) -> None:
    for sender in ("a@one.example", "b@two.example", "c@three.example"):
        ingest(sqlite_rt, mail(sender=sender, subject=sender))
    service.merge(sqlite_rt, "b@two.example", "a@one.example", "alice@example.com")
    service.merge(sqlite_rt, "c@three.example", "b@two.example", "alice@example.com")
    # The first merge is undone first: a stands alone, b stays with c.
    service.unmerge(sqlite_rt, "c@three.example", "a@one.example", "alice@example.com")
    with Session(sqlite_rt.engine) as session:
        c = customer_for(session, "c@three.example")
        assert c is not None
        assert profiles.addresses_of(session, c) == ["c@three.example", "b@two.example"]
        assert _tickets_of(session, "a@one.example") == {1}


# --- organisations ----------------------------------------------------------------------


def test_gmail_customers_share_no_organisation_and_company_domains_do(tmp_path: Path) -> None:
    orgs = [{"name": "Acme", "domains": ["acme.example", "acme.cn"]}]
    rt = open_runtime(make_config(tmp_path, organizations=orgs))
    for sender in ("ann@gmail.com", "ben@gmail.com", "li@acme.cn", "max@eu.acme.example"):
        ingest(rt, mail(sender=sender, subject=f"from {sender}"))
    with Session(rt.engine) as session:
        ann, ben = customer_for(session, "ann@gmail.com"), customer_for(session, "ben@gmail.com")
        assert ann is not None and ben is not None
        assert ann.organization is None and ben.organization is None
        li = context_for(session, "li@acme.cn")
        assert li is not None and li.customer.organization == "Acme"
        assert [t.requester for t in li.organization_open_tickets] == ["max@eu.acme.example"]
        ann_context = context_for(session, "ann@gmail.com")
        assert ann_context is not None and ann_context.organization_open_tickets == []
    rt.engine.dispose()


@pytest.mark.parametrize("domain", ["gmail.com", "QQ.com", "163.com", "mail.yahoo.com", "co.uk"])
def test_an_organisation_listing_a_free_mail_domain_stops_start_up(
    tmp_path: Path, domain: str
) -> None:
    path = tmp_path / "inboxd.toml"
    path.write_text(
        f'[[organizations]]\nname = "Oops"\ndomains = ["acme.example", "{domain}"]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "'Oops'" in result.stderr and domain.lower() in result.stderr
    assert "Traceback" not in result.output + result.stderr
    check = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert "free-mail" in check.output or "public suffix" in check.output


def test_a_changed_organisation_list_reaches_stored_profiles_on_the_next_start(
    tmp_path: Path,
) -> None:
    rt = open_runtime(make_config(tmp_path))
    ingest(rt, mail(sender="li@acme.cn"))
    with Session(rt.engine) as session:
        assert sync_organizations(session, rt.config.organizations) == 0
        orgs = make_config(tmp_path, organizations=[{"name": "Acme", "domains": ["acme.cn"]}])
        assert sync_organizations(session, orgs.organizations) == 1
        assert sync_organizations(session, orgs.organizations) == 0  # nothing changed since
        li = customer_for(session, "li@acme.cn")
        assert li is not None and li.organization == "Acme"
    rt.engine.dispose()


def test_the_organization_condition_reads_the_customers_organisation(tmp_path: Path) -> None:
    rt = open_runtime(
        make_config(tmp_path, organizations=[{"name": "Acme", "domains": ["acme.example"]}])
    )
    mine = ingest(rt, mail(sender="max@acme.example"))
    other = ingest(rt, mail(sender="ann@gmail.com", subject="x"))
    with Session(rt.engine) as session:
        tickets = [session.get(Ticket, mine.ticket), session.get(Ticket, other.ticket)]
        facts = facts_for_many(session, [t for t in tickets if t], utcnow())
        assert facts[mine.ticket or 0].text("organization") == "acme"
        assert facts[other.ticket or 0].text("organization") == ""
    rt.engine.dispose()


# --- the CLI ----------------------------------------------------------------------------


def test_customers_cli_lists_shows_merges_unmerges_sets_and_adds_addresses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inboxd.toml"
    assert CliRunner().invoke(app, ["init", "--config", str(path)]).exit_code == 0

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, [*args, "--config", str(path)])
        return result.exit_code, result.stdout, result.stderr

    for raw in (mail(sender="Carol <carol@work.example>"), mail(sender="carol@home.example")):
        CliRunner().invoke(app, ["ingest", "--config", str(path), "-"], input=raw)
    code, out, _ = run("customers", "--json")
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = run("customers", "carol", "--json")  # SPEC §4: customers [QUERY]
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = run("customers", "merge", "carol@work.example", "carol@home.example", "--json")
    assert code == 0 and json.loads(out)["addresses"] == [
        "carol@work.example",
        "carol@home.example",
    ]
    code, out, _ = run("customers", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 1
    code, out, _ = run("customers", "set", "carol@home.example", "--name", "Carol Lee", "--json")
    assert code == 0 and json.loads(out)["name"] == "Carol Lee"
    code, out, err = run("customers", "set", "carol@home.example", "--language", "no such")
    assert code == 2 and "language" in err
    code, _, err = run("customers", "add-address", "carol@work.example", "carol@home.example")
    assert code == 1 and "already an address" in err
    code, out, _ = run("customers", "note", "carol@work.example", "Prefers phone.", "--json")
    assert code == 0 and json.loads(out)["notes"] == "Prefers phone."
    code, out, _ = run("customers", "unmerge", "carol@work.example", "--json")
    assert code == 0 and json.loads(out)["split"]["addresses"] == ["carol@home.example"]
    code, out, _ = run("customers", "show", "carol@work.example", "--json")
    shown = json.loads(out)
    assert [m["undone_by"] for m in shown["merges"]] == ["alice@example.com"]
    assert {e["type"] for e in shown["history"]} >= {"created", "merged", "unmerged", "notes"}
    code, _, err = run("customers", "show", "nobody@example.org")
    assert code == 1 and "no customer" in err
