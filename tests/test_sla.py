"""Service-level targets (SPEC §10.2): computed from a ticket's history and a fixed clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxd import config
from inboxd.errors import ConfigError
from inboxd.workflow.conditions import Facts
from inboxd.workflow.conditions import parse as parse_condition
from inboxd.workflow.sla import Policy, next_due, service_levels, targets
from inboxd.workflow.timelines import Timeline

CN = ZoneInfo("Asia/Shanghai")

SETTINGS = {
    "calendars": [
        {
            "name": "cn",
            "timezone": "Asia/Shanghai",
            "hours": {"mon-fri": ["09:00-12:00", "13:00-18:00"]},
            "holidays": ["2026-10-01..2026-10-07"],
            "working_days": ["2026-10-10"],
        }
    ],
    "sla": [
        {
            "name": "urgent",
            "when": ["priority = urgent"],
            "calendar": "cn",
            "first_reply": "1h",
            "next_reply": "4h",
            "resolution": "16h",
            "warn_before": "30m",
        },
        {"name": "standard", "first_reply": "8h", "resolution": "72h"},
    ],
}


def levels(settings: dict = SETTINGS):  # type: ignore[no-untyped-def, type-arg]
    return service_levels(config.from_dict(settings, base_dir=Path(".")))


def policy(name: str) -> Policy:
    return next(p for p in levels().policies if p.name == name)


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CN)  # type: ignore[misc]


def ticket(created: datetime, **kw: object) -> Timeline:
    t = Timeline(1, created_at=created)
    for name, value in kw.items():
        setattr(t, name, value)
    return t


def by_target(states):  # type: ignore[no-untyped-def]
    return {s.target: s for s in states}


def test_the_first_policy_whose_conditions_hold_applies() -> None:
    urgent = Facts(values={"priority": "urgent"})
    assert levels().choose(urgent).name == "urgent"  # type: ignore[union-attr]
    assert levels().choose(Facts(values={"priority": "low"})).name == "standard"  # type: ignore[union-attr]


def test_a_first_reply_target_runs_in_business_hours_and_warns_before() -> None:
    friday = cst(2026, 11, 27, 17, 40)
    state = by_target(targets(policy("urgent"), ticket(friday), cst(2026, 11, 27, 17, 45)))
    first = state["first_reply"]
    assert first.state == "active"
    assert first.due_at == cst(2026, 11, 30, 9, 40)  # 20 min on Friday, 40 on Monday
    assert first.warn_at == cst(2026, 11, 30, 9, 10)
    assert first.used == timedelta(minutes=5)


def test_a_reply_in_time_achieves_the_target_and_a_late_one_breaches_it() -> None:
    created = cst(2026, 11, 30, 9, 0)
    on_time = ticket(created, replies=[(cst(2026, 11, 30, 9, 50), "bob@example.com")])
    assert (
        by_target(targets(policy("urgent"), on_time, cst(2026, 11, 30, 12)))
        .get("first_reply")
        .state
        == "achieved"
    )
    late = ticket(created, replies=[(cst(2026, 11, 30, 10, 30), "bob@example.com")])
    first = by_target(targets(policy("urgent"), late, cst(2026, 11, 30, 12)))["first_reply"]
    assert (first.state, first.breached_at) == ("breached", cst(2026, 11, 30, 10, 0))


def test_nobody_replying_breaches_at_the_due_time() -> None:
    created = cst(2026, 11, 30, 9, 0)
    first = by_target(targets(policy("urgent"), ticket(created), cst(2026, 11, 30, 10, 1)))[
        "first_reply"
    ]
    assert (first.state, first.breached_at) == ("breached", cst(2026, 11, 30, 10, 0))


def test_each_customer_wait_after_a_reply_has_its_own_next_reply_clock() -> None:
    created = cst(2026, 11, 30, 9, 0)
    t = ticket(
        created,
        replies=[(cst(2026, 11, 30, 9, 30), "bob"), (cst(2026, 11, 30, 14, 0), "bob")],
        customer_messages=[
            created,
            cst(2026, 11, 30, 10, 0),
            cst(2026, 11, 30, 10, 5),
            cst(2026, 11, 30, 16, 0),
        ],
    )
    waits = [
        s for s in targets(policy("urgent"), t, cst(2026, 11, 30, 17)) if s.target == "next_reply"
    ]
    assert [w.cycle for w in waits] == [cst(2026, 11, 30, 10, 0), cst(2026, 11, 30, 16, 0)]
    assert [w.state for w in waits] == ["achieved", "active"]
    assert waits[1].due_at == cst(2026, 12, 1, 11, 0)  # 2 h on Monday, 2 h on Tuesday


def test_the_resolution_clock_pauses_while_pending_and_resumes() -> None:
    created = cst(2026, 11, 30, 9, 0)
    t = ticket(
        created,
        statuses=[
            (cst(2026, 11, 30, 10, 0), "new", "pending", "bob"),
            (cst(2026, 12, 2, 10, 0), "pending", "open", "customer"),
        ],
    )
    paused = by_target(targets(policy("urgent"), t, cst(2026, 12, 1, 12)))["resolution"]
    assert (paused.state, paused.due_at, paused.used) == ("paused", None, timedelta(hours=1))
    resumed = by_target(targets(policy("urgent"), t, cst(2026, 12, 2, 10, 30)))["resolution"]
    assert resumed.state == "active"
    # 1 h used before the pause; 15 h left from Wednesday 10:00: 7 h that day, 8 on Thursday.
    assert resumed.due_at == cst(2026, 12, 3, 18, 0)


def test_solving_in_time_achieves_the_resolution_target() -> None:
    created = cst(2026, 11, 30, 9, 0)
    t = ticket(created, statuses=[(cst(2026, 11, 30, 15, 0), "new", "solved", "bob")])
    res = by_target(targets(policy("urgent"), t, cst(2026, 12, 5)))["resolution"]
    assert (res.state, res.achieved_at) == ("achieved", cst(2026, 11, 30, 15, 0))


def test_the_explanation_names_the_weekend_and_the_holiday_skipped() -> None:
    before_holiday = cst(2026, 9, 30, 17, 30)
    res = by_target(
        targets(policy("urgent"), ticket(before_holiday), cst(2026, 9, 30, 17, 31), explain=True)
    )
    first = res["first_reply"]
    assert first.due_at == cst(2026, 10, 8, 9, 30)
    assert [g.reason for g in first.gaps] == ["holiday 2026-10-01..2026-10-07"]


def test_the_clock_looks_again_at_the_warning_then_at_the_due_time() -> None:
    created = cst(2026, 11, 30, 9, 0)
    states = targets(policy("urgent"), ticket(created), cst(2026, 11, 30, 9, 1))
    assert next_due(states, cst(2026, 11, 30, 9, 1)) == (
        cst(2026, 11, 30, 9, 30),
        "warning:first_reply",
    )
    assert next_due(states, cst(2026, 11, 30, 9, 31))[0] == cst(2026, 11, 30, 10, 0)  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"calendar": "nowhere"}, "no such calendar"),
        ({"when": ["colour = red"]}, "unknown field 'colour'"),
        ({"first_reply": "soon"}, "expected a duration like 30m"),
        ({"pause_on": ["solved"]}, "expected unresolved statuses"),
    ],
)
def test_a_bad_policy_stops_start_up_naming_the_entry_and_key(change: dict, message: str) -> None:  # type: ignore[type-arg]
    bad = {**SETTINGS, "sla": [{**SETTINGS["sla"][0], **change}]}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=message):
        levels(bad)


@pytest.mark.parametrize(
    ("text", "facts", "holds"),
    [
        ('subject ~ "invoice|发票"', Facts(values={"subject": "Re: 发票 for November"}), True),
        ("tag = vip", Facts(lists={"tag": ("vip", "billing")}), True),
        ("tag != vip", Facts(lists={"tag": ("billing",)}), True),
        ("status in [new, open]", Facts(values={"status": "pending"}), False),
        ("assignee = none", Facts(values={"assignee": "none"}), True),
        ("csat < 3", Facts(values={"csat": "2"}), True),
    ],
)
def test_conditions_read_the_ticket(text: str, facts: Facts, holds: bool) -> None:
    assert parse_condition(text).holds(facts) is holds


def test_age_conditions_compare_durations() -> None:
    now = cst(2026, 11, 30, 12)
    facts = Facts(created_at=now - timedelta(hours=3), now=now)
    assert parse_condition("age >= 2h").holds(facts)
    assert not parse_condition("age < 2h").holds(facts)


CLI_CONFIG = """
[inboxd]
support_address = "support@example.com"

[[agents]]
email = "alice@example.com"
role = "admin"

[[calendars]]
name = "cn"
timezone = "Asia/Shanghai"
hours = { "mon-fri" = ["09:00-12:00", "13:00-18:00"] }
holidays = ["2026-10-01..2026-10-07"]

[[sla]]
name = "standard"
calendar = "cn"
first_reply = "4h"
"""


def test_inboxd_sla_explains_a_deadline_across_the_national_holiday(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as jsonlib

    from mailbuilder import mail
    from sqlmodel import select
    from typer.testing import CliRunner

    from cli.main import app
    from inboxd import pipeline
    from inboxd.db import session_scope
    from inboxd.models import Event, Ticket
    from inboxd.runtime import open_runtime

    toml = tmp_path / "inboxd.toml"
    toml.write_text(CLI_CONFIG, encoding="utf-8")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    rt = open_runtime(config.load(toml))
    pipeline.ingest(rt, mail(subject="Where is my invoice?"), "test")
    # The mail came in on Wednesday 30 September at 16:00 in Shanghai, before the holiday.
    created = cst(2026, 9, 30, 16, 0)
    with session_scope(rt.engine) as session:
        for event in session.exec(select(Event)):
            event.at = created
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        ticket.created_at = created
    rt.engine.dispose()

    runner = CliRunner(env={"INBOXD_CONFIG": ""})
    result = runner.invoke(app, ["sla", "1", "--config", str(toml)])
    assert result.exit_code == 0, result.output
    # 2 h on Wednesday, then a week of holiday, then 2 h on Thursday 8 October.
    assert "SLA policy standard (business hours of calendar cn, Asia/Shanghai)" in result.stdout
    assert "was due Thu 2026-10-08 11:00 CST" in result.stdout
    assert "holiday 2026-10-01..2026-10-07" in result.stdout
    result = runner.invoke(app, ["show", "1", "--json", "--config", str(toml)])
    sla = jsonlib.loads(result.stdout)["sla"]
    (first,) = sla["targets"]
    assert (first["target"], first["state"], first["limit"]) == ("first_reply", "breached", 240)
    assert first["due_at"].startswith("2026-10-08T03:00")
    assert first["due_admin"] == "Thu 2026-10-08 05:00 CEST"
    assert [g["reason"] for g in first["skipped"]] == ["holiday 2026-10-01..2026-10-07"]
    assert first["skipped"][0]["minutes"] == (7 * 24 + 15) * 60  # Wed 18:00 to Thu 09:00


def test_reports_count_business_time_in_the_calendar_they_are_given() -> None:
    from inboxd.workflow.periods import business_clock

    cfg = config.from_dict(SETTINGS, base_dir=Path("."))
    clock = business_clock(cfg, "cn")
    assert clock is not None
    # Friday 17:00 to Monday 10:00 in Shanghai: one hour on Friday, one on Monday.
    assert clock(cst(2026, 11, 27, 17, 0), cst(2026, 11, 30, 10, 0)) == 120


def test_the_clock_with_a_fixed_now_orders_the_ticket_list_by_the_nearest_deadline(
    tmp_path: Path,
) -> None:
    from conftest import make_config
    from mailbuilder import mail

    from inboxd import pipeline
    from inboxd.agents import operations
    from inboxd.db import session_scope
    from inboxd.models import utcnow
    from inboxd.runtime import open_runtime
    from inboxd.tickets import queries
    from inboxd.workflow import clock

    rt = open_runtime(
        make_config(
            tmp_path,
            sla=[
                {"name": "urgent", "when": ["priority = urgent"], "first_reply": "30m"},
                {"name": "standard", "when": ["priority != low"], "first_reply": "8h"},
            ],
        )
    )
    for n in range(3):
        pipeline.ingest(rt, mail(subject=f"Question {n + 1}", sender=f"c{n}@example.org"), "t")
    operations.run_commands(rt, 2, "#priority urgent", "alice@example.com", "cli")
    operations.run_commands(rt, 3, "#priority low", "alice@example.com", "cli")
    now = utcnow()
    with session_scope(rt.engine) as session:
        assert clock.tick(rt, session, now).count == 0
        by_due = queries.list_tickets(session, queries.TicketFilter(sort="due"))
        assert [t.id for t in by_due] == [2, 1, 3]  # 30 m, 8 h, no policy
        rows = queries.tickets_json(session, by_due)
        assert [r["sla_due_target"] for r in rows] == ["first_reply", "first_reply", None]
        later = now + timedelta(hours=1)
        overdue = queries.TicketFilter(due="overdue", now=later)
        assert [t.id for t in queries.list_tickets(session, overdue)] == [2]
        fired = clock.tick(rt, session, later).sla
        assert [(f.ticket_id, f.kind) for f in fired] == [(2, "breach")]
        assert clock.tick(rt, session, later).sla == []  # once
    rt.engine.dispose()
