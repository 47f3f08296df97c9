"""Business rules (SPEC §10.3): command tags run on events and after delays, exactly once.

Most tests drive the clock by hand with a given "now" (milliseconds, no sockets); the last
ones run `inboxd serve` and kill it across a time rule's due time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config
from mailbuilder import mail
from sqlmodel import col, select
from typer.testing import CliRunner

from cli.main import app
from inboxd import pipeline
from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.errors import ConfigError
from inboxd.models import Event, Outbound, utcnow
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import queries
from inboxd.workflow import clock

ALICE = "alice@example.com"
CAROL = "carol@example.org"


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Any]:
    """open(rules=[...]) gives a runtime with those rules."""
    opened: list[Runtime] = []

    def open_(**sections: Any) -> Runtime:
        rt = open_runtime(make_config(tmp_path, **sections))
        opened.append(rt)
        return rt

    yield open_
    for rt in opened:
        rt.engine.dispose()


def new_ticket(rt: Runtime, subject: str = "Order 1042", sender: str = "carol@example.org") -> int:
    result = pipeline.ingest(rt, mail(subject=subject, sender=sender), "test")
    assert result.ticket is not None
    return result.ticket


def tick(rt: Runtime, later: timedelta = timedelta()) -> clock.TickResult:
    with rt.write_lock, session_scope(rt.engine) as session:
        return clock.tick(rt, session, utcnow() + later)


def ticket(rt: Runtime, ticket_id: int) -> dict[str, Any]:
    with session_scope(rt.engine) as session:
        return queries.ticket_json(session, queries.get_ticket(session, ticket_id), full=True)


def rule_events(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (e["actor"], e["type"], e["to"] or "")
        for e in data["events"]
        if e["type"].startswith("rule_")
    ]


def test_an_event_rule_routes_a_new_ticket_with_the_agents_own_commands(desk: Any) -> None:
    rt = desk(
        rules=[
            {
                "name": "invoices to billing",
                "on": "created",
                "when": ['subject ~ "invoice|发票"', "channel = test"],
                "run": "#team billing\n#tag invoice",
            }
        ]
    )
    invoice = new_ticket(rt, subject="请开发票 / please send the invoice")
    other = new_ticket(rt, subject="Where is my parcel?")
    assert [r for r, _ in tick(rt).rules] == ["invoices to billing"]
    data = ticket(rt, invoice)
    assert (data["team"], data["tags"]) == ("billing", ["invoice"])
    assert rule_events(data) == [("rule:invoices to billing", "rule_fired", "invoices to billing")]
    assert [e["actor"] for e in data["events"] if e["type"] == "team"] == [
        "rule:invoices to billing"
    ]
    assert ticket(rt, other)["team"] is None
    assert tick(rt).rules == []  # once


def test_a_three_rule_loop_ends_after_one_firing_each_with_the_chain_logged(desk: Any) -> None:
    rt = desk(
        rules=[
            {"name": "r1", "on": "status:open", "run": "#priority high"},
            {"name": "r2", "on": "priority:high", "run": "#status pending"},
            {"name": "r3", "on": "status:pending", "run": "#status open"},
        ]
    )
    ticket_id = new_ticket(rt)
    operations.run_commands(rt, ticket_id, "#status open", ALICE, "cli")
    assert sorted(r for r, _ in tick(rt).rules) == ["r1", "r2", "r3"]
    data = ticket(rt, ticket_id)
    assert rule_events(data) == [
        ("rule:r1", "rule_fired", "r1"),
        ("rule:r2", "rule_fired", "r2"),
        ("rule:r3", "rule_fired", "r3"),
        ("rule:r1", "rule_skipped", "already ran in this chain of events"),
    ]
    assert (data["status"], data["priority"]) == ("open", "high")
    assert tick(rt).rules == []


def test_a_refused_command_rolls_back_only_its_own_rule_and_admins_hear_once(
    desk: Any,
) -> None:
    rt = desk(
        rules=[
            {"name": "good", "on": "created", "run": "#tag triaged"},
            {"name": "bad", "on": "created", "run": "#tag half-done\n#assign nobody@example.com"},
        ]
    )
    first = new_ticket(rt)
    tick(rt)
    data = ticket(rt, first)
    assert data["tags"] == ["triaged"] and data["assignee"] is None
    refused = [e for e in data["events"] if e["type"] == "rule_refused"]
    assert len(refused) == 1 and "#assign nobody@example.com" in refused[0]["to"]
    new_ticket(rt, sender="dave@example.org")
    tick(rt)
    with session_scope(rt.engine) as session:
        mails = session.exec(select(Outbound).where(Outbound.purpose == "receipt:rule")).all()
        assert [m.rcpt_to for m in mails] == [[ALICE]]  # one an hour, to the admin


def test_a_time_rule_fires_after_its_delay_once_and_again_when_re_armed(desk: Any) -> None:
    rt = desk(
        rules=[
            {
                "name": "remind pending",
                "after": "18h",
                "since": "status:pending",
                "when": ["status = pending"],
                "run": "#tag reminded\nHello, we are still waiting for your answer.",
            }
        ]
    )
    ticket_id = new_ticket(rt)
    operations.run_commands(rt, ticket_id, "#status pending", ALICE, "cli")
    assert tick(rt, timedelta(hours=17)).rules == []
    assert [r for r, _ in tick(rt, timedelta(hours=19)).rules] == ["remind pending"]
    assert tick(rt, timedelta(hours=20)).rules == []
    data = ticket(rt, ticket_id)
    auto = [m for m in data["messages"] if m["kind"] == "auto"]
    assert len(auto) == 1 and "still waiting" in auto[0]["text"]
    # The customer answers, the agent asks again: pending again re-arms the rule.
    operations.run_commands(rt, ticket_id, "#status open", ALICE, "cli")
    operations.run_commands(rt, ticket_id, "#status pending", ALICE, "cli")
    assert [r for r, _ in tick(rt, timedelta(hours=19)).rules] == ["remind pending"]


def test_max_runs_one_fires_on_the_first_arming_only(desk: Any) -> None:
    rt = desk(
        rules=[
            {
                "name": "once",
                "after": "1h",
                "since": "status:pending",
                "run": "#tag nudged",
                "max_runs": 1,
            }
        ]
    )
    ticket_id = new_ticket(rt)
    operations.run_commands(rt, ticket_id, "#status pending", ALICE, "cli")
    tick(rt)
    assert len(tick(rt, timedelta(hours=2)).rules) == 1
    operations.run_commands(rt, ticket_id, "#status open\n#untag nudged", ALICE, "cli")
    operations.run_commands(rt, ticket_id, "#status pending", ALICE, "cli")
    tick(rt)
    assert tick(rt, timedelta(hours=2)).rules == []
    assert ("rule:once", "rule_skipped", "it ran 1 times on this ticket (max_runs)") in rule_events(
        ticket(rt, ticket_id)
    )


def test_a_time_rule_whose_conditions_no_longer_hold_is_skipped_with_the_reason(
    desk: Any,
) -> None:
    rt = desk(
        rules=[
            {
                "name": "close stale",
                "after": "2h",
                "since": "status:pending",
                "when": ["status = pending"],
                "run": "#status closed",
            }
        ]
    )
    ticket_id = new_ticket(rt)
    operations.run_commands(rt, ticket_id, "#status pending", ALICE, "cli")
    tick(rt)
    operations.run_commands(rt, ticket_id, "#status solved", ALICE, "cli")
    assert tick(rt, timedelta(hours=3)).rules == []
    data = ticket(rt, ticket_id)
    assert data["status"] == "solved"
    assert ("rule:close stale", "rule_skipped", "its conditions no longer hold") in rule_events(
        data
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "x", "on": "created", "when": ["colour = red"], "run": "#tag a"},
            "unknown field",
        ),
        (
            {"name": "x", "on": "created", "when": ['subject ~ "("'], "run": "#tag a"},
            "regular expression",
        ),
        ({"name": "x", "on": "created", "run": "#stauts open"}, "unknown command #stauts"),
        ({"name": "x", "on": "whenever", "run": "#tag a"}, "expected an event"),
        ({"name": "x", "after": "2h", "run": "#tag a"}, "needs since"),
        (
            {"name": "x", "on": "created", "after": "2h", "since": "created", "run": "#tag a"},
            "either on",
        ),
    ],
)
def test_a_bad_rule_stops_start_up_naming_the_rule_and_the_problem(
    tmp_path: Path, rule: dict[str, Any], message: str
) -> None:
    from inboxd.workflow.rules import load_rules

    with pytest.raises(ConfigError, match=message):
        load_rules(make_config(tmp_path, rules=[rule]))


def test_rules_files_are_read_in_order_after_the_configs_own(tmp_path: Path) -> None:
    from inboxd import config

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "b.toml").write_text(
        '[[rules]]\nname = "b"\non = "created"\nrun = "#tag b"\n'
    )
    (tmp_path / "rules" / "a.toml").write_text(
        '[[rules]]\nname = "a"\non = "created"\nrun = "#tag a"\n'
    )
    (tmp_path / "inboxd.toml").write_text(
        '[inboxd]\nrules_files = ["rules/*.toml"]\n\n'
        '[[rules]]\nname = "own"\non = "note"\nrun = "#tag n"\n'
    )
    cfg = config.load(tmp_path / "inboxd.toml")
    assert [r.name for r in cfg.rules] == ["own", "a", "b"]


def test_rules_test_shows_what_would_run_and_changes_nothing(desk: Any, tmp_path: Path) -> None:
    rules = [
        {
            "name": "vip",
            "on": "created",
            "when": ["requester_domain = bigco.example"],
            "run": "#priority urgent\n#tag vip",
        },
        {"name": "to nobody", "on": "created", "run": "#assign nobody@example.com"},
    ]
    rt = desk(rules=rules)
    vip = new_ticket(rt, sender="Boss <boss@bigco.example>")
    rt.engine.dispose()
    toml = tmp_path / "inboxd.toml"
    lines = [
        f'[inboxd]\nsupport_address = "support@example.com"\ndata_dir = "{rt.config.data_dir}"\n'
    ]
    for r in rules:
        lines.append("[[rules]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in r.items()))
    toml.write_text("\n".join(lines))

    def fingerprint() -> str:
        # The database and its write-ahead log (-shm is SQLite's shared-memory index of
        # readers, which any reader touches).
        found = sorted(rt.config.data_dir.glob("inboxd.db*"))
        files = [p for p in found if not p.name.endswith("-shm")]
        return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()

    before = fingerprint()
    result = CliRunner(env={"INBOXD_CONFIG": ""}).invoke(
        app, ["rules", "test", "--config", str(toml), "--json"]
    )
    assert result.exit_code == 0, result.output
    found = {(w["rule"], w["ticket"]): w for w in json.loads(result.stdout)}
    assert found[("vip", vip)]["outcome"] == "run"
    assert found[("vip", vip)]["commands"] == ["#priority urgent", "#tag vip"]
    assert found[("to nobody", vip)]["outcome"].startswith("refused: #assign nobody@example.com")
    assert fingerprint() == before, "a dry run changed the database"
    with session_scope(open_runtime(rt.config).engine) as session:
        assert not session.exec(select(Event).where(col(Event.actor).startswith("rule:"))).all()


def test_a_time_rule_fires_once_when_the_daemon_is_killed_across_its_due_time(
    tmp_path: Path,
) -> None:
    import smtplib
    import subprocess

    from daemon_harness import INBOXD, serve_config, serving, wait_until

    from inboxd import config
    from inboxd.models import ClockState, RuleDue, Ticket

    settings = serve_config(tmp_path, inboxd={"clock_seconds": 0.2})
    settings["rules"] = [
        {
            "name": "remind",
            "after": "1h",
            "since": "status:pending",
            "when": ["status = pending"],
            "run": "#tag reminded\nAre you still there? Reply and we carry on.",
        }
    ]
    with serving(tmp_path, settings) as server:
        rt = open_runtime(config.load(server.config_path))

        def fired() -> list[Event]:
            with session_scope(rt.engine) as session:
                return list(session.exec(select(Event).where(Event.type == "rule_fired")))

        def has(ticket_id: int) -> bool:
            with session_scope(rt.engine) as session:
                return session.get(Ticket, ticket_id) is not None

        def caught_up() -> bool:
            with session_scope(rt.engine) as session:
                last = max((e.id or 0 for e in session.exec(select(Event))), default=0)
                seen = session.get(ClockState, clock.WATERMARK)
                return seen is not None and int(seen.value) >= last

        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
            client.sendmail("carol@example.org", ["support@example.com"], mail())
        wait_until(lambda: has(1) and caught_up(), what="the ticket")
        env = {"PATH": str(INBOXD.parent)}
        subprocess.run(
            [str(INBOXD), "run", "1", "#status pending", "--config", str(server.config_path)],
            check=True,
            capture_output=True,
            env=env,
        )
        wait_until(caught_up, what="the clock to arm the rule")
        server.kill()
        # While the daemon is down, the rule's due time passes.
        with session_scope(rt.engine) as session:
            due = session.get(RuleDue, (1, "remind"))
            assert due is not None
            due.due_at = utcnow() - timedelta(minutes=1)
        server.start()
        wait_until(fired, what="the time rule to fire after the restart")
        server.kill()
        server.start()
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
            client.sendmail("dave@example.org", ["support@example.com"], mail(subject="Other"))
        wait_until(lambda: has(2) and caught_up(), what="the clock's next pass")
        assert len(fired()) == 1
        data = ticket(rt, 1)
        assert "reminded" in data["tags"]
        assert [m["kind"] for m in data["messages"]].count("auto") == 1
        rt.engine.dispose()


def test_the_rules_shipped_in_the_sample_config_are_valid(tmp_path: Path) -> None:
    import tomllib

    from inboxd import config
    from inboxd.workflow.rules import load_rules

    sample = config.DEFAULT_TEXT_PATH.read_text(encoding="utf-8")
    block = sample[sample.index("# [[rules]]") :]
    uncommented = "\n".join(line.removeprefix("#").removeprefix(" ") for line in block.splitlines())
    entries = tomllib.loads(uncommented)["rules"]
    assert len(entries) >= 5
    cfg = make_config(tmp_path, rules=entries, agents=[])
    names = [r.name for r in load_rules(cfg)]
    assert "remind pending" in names and "close pending" in names


def test_in_a_running_daemon_a_rule_loop_ends_and_a_refusal_rolls_back_only_its_rule(
    tmp_path: Path,
) -> None:
    import smtplib

    from daemon_harness import listening, wait_until

    rules = [
        {"name": "r1", "on": "status:open", "run": "#priority high"},
        {"name": "r2", "on": "priority:high", "run": "#status pending"},
        {"name": "r3", "on": "status:pending", "run": "#status open"},
        {"name": "route", "on": "created", "when": ['subject ~ "invoice"'], "run": "#team billing"},
        {"name": "broken", "on": "created", "run": "#tag half\n#assign nobody@example.com"},
    ]
    with listening(tmp_path, inboxd={"clock_seconds": 0.2}, rules=rules) as (rt, daemon):
        host, port = daemon.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail(CAROL, ["support@example.com"], mail(subject="Invoice 7 is wrong"))

        def fired(ticket_id: int, *names: str) -> bool:
            with session_scope(rt.engine) as session:
                done = session.exec(
                    select(Event.to_value).where(
                        Event.ticket_id == ticket_id, Event.type == "rule_fired"
                    )
                ).all()
            return set(names) <= set(done)

        wait_until(lambda: fired(1, "route"), what="the routing rule")
        operations.run_commands(rt, 1, "#status open", ALICE, "cli")
        wait_until(lambda: fired(1, "r1", "r2", "r3"), what="the chain of three rules")
        data = ticket(rt, 1)
    assert data["team"] == "billing" and "half" not in data["tags"]
    outcomes = rule_events(data)
    assert [o for o in outcomes if o[1] == "rule_fired"] == [
        ("rule:route", "rule_fired", "route"),
        ("rule:r1", "rule_fired", "r1"),
        ("rule:r2", "rule_fired", "r2"),
        ("rule:r3", "rule_fired", "r3"),
    ]
    assert ("rule:r1", "rule_skipped", "already ran in this chain of events") in outcomes
    assert [o[0] for o in outcomes if o[1] == "rule_refused"] == ["rule:broken"]
