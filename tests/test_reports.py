"""Reports (SPEC §10.5): a week of tickets with known timelines gives exactly the figures
their definitions say, and a period that has ended reports the same numbers after any
later change.

The fixture week is Monday 2 to Sunday 8 November 2026 (UTC). Each ticket exercises a
definition; the comment beside it says which.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from mailbuilder import mail
from typer.testing import CliRunner

from cli.main import app
from inboxd import pipeline
from inboxd.agents import operations
from inboxd.db import session_scope
from inboxd.models import utcnow
from inboxd.runtime import Runtime
from inboxd.workflow import periods, reports
from inboxd.workflow.report_text import describe, duration
from inboxd.workflow.timelines import Timeline

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
WEEK = periods.Period(START, START + timedelta(days=7))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Day 0 is Monday 2 November 2026."""
    return START + timedelta(days=day, hours=hour, minutes=minute)


def ticket(n: int, created: datetime, *steps: tuple[str, datetime, str]) -> Timeline:
    """A timeline from steps: ("reply", when, agent), ("status", when, "from>to@actor"),
    ("customer", when, ""), ("merged", when, ""), ("csat", when, rating), ("survey", when, ""),
    ("suspect", ...), ("suggested", ...), ("self_solved", ...), ("sla+"/"sla-", when, target)."""
    t = Timeline(n, created_at=created)
    t.customer_messages.append(created)
    for kind, when, value in steps:
        if kind == "reply":
            t.replies.append((when, value))
        elif kind == "status":
            change, actor = value.split("@", 1) if "@" in value else (value, "system")
            old, new = change.split(">")
            t.statuses.append((when, old, new, actor))
        elif kind == "customer":
            t.customer_messages.append(when)
        elif kind == "merged":
            t.merged_at = when
        elif kind == "csat":
            t.ratings.append((when, value, None))
        elif kind == "survey":
            t.surveys.append(when)
        elif kind == "suspect":
            t.suspect.append(when)
        elif kind == "suggested":
            t.suggested_at = when
        elif kind == "self_solved":
            t.self_solved.append(when)
        elif kind == "sla+":
            t.sla_achieved.append((when, value))
        elif kind == "sla-":
            t.sla_breaches.append((when, value))
    return t


ALICE, BOB = "alice@example.com", "bob@example.com"


def week() -> list[Timeline]:
    return [
        # One touch: replied in 30 m, solved at 60 m; rated bad, then re-rated good.
        ticket(
            1,
            at(0, 9),
            ("reply", at(0, 9, 30), ALICE),
            ("status", at(0, 10), f"new>solved@{ALICE}"),
            ("survey", at(1, 8), ""),
            ("csat", at(1, 9), "bad"),
            ("csat", at(2, 9), "good"),
            ("sla+", at(0, 9, 30), "first_reply"),
        ),
        # A pending pause (22 h waiting on the customer), a next reply after 60 m.
        ticket(
            2,
            at(0, 10),
            ("reply", at(0, 12), BOB),
            ("status", at(0, 12), f"new>pending@{BOB}"),
            ("customer", at(1, 10), ""),
            ("status", at(1, 10), "pending>open@carol@example.org"),
            ("reply", at(1, 11), BOB),
            ("status", at(1, 12), f"open>solved@{BOB}"),
            ("survey", at(2, 8), ""),
            ("csat", at(2, 9), "2"),
            ("sla-", at(0, 11), "first_reply"),
        ),
        # A zero-reply solve, after the acknowledgement suggested an article: deflected.
        ticket(
            3,
            at(1, 9),
            ("suggested", at(1, 9), ""),
            ("self_solved", at(1, 9, 10), ""),
            ("status", at(1, 9, 10), "new>solved@carol@example.org"),
        ),
        # Solved, reopened by the customer the next day, answered in 30 m, solved again.
        ticket(
            4,
            at(2, 9),
            ("reply", at(2, 10), ALICE),
            ("status", at(2, 11), f"new>solved@{ALICE}"),
            ("customer", at(3, 9), ""),
            ("status", at(3, 9), "solved>open@dave@example.org"),
            ("reply", at(3, 9, 30), ALICE),
            ("status", at(3, 10), f"open>solved@{ALICE}"),
            ("survey", at(3, 11), ""),
            ("suspect", at(3, 11), ""),
            ("sla+", at(3, 10), "resolution"),
        ),
        # Still open at the end, never answered: backlog 1-3 days old; suggestion unused.
        ticket(5, at(4, 9), ("suggested", at(4, 9), "")),
        # Opened before the period and still open: backlog >30 days; its reply counts.
        ticket(6, datetime(2026, 10, 1, 9, tzinfo=UTC), ("reply", at(1, 15), BOB)),
        # Merged into ticket 1: no backlog, no reply time of its own.
        ticket(7, at(2, 8), ("merged", at(2, 8, 5), "")),
        # Opened on Saturday, answered only after the period: unanswered, in the backlog.
        ticket(8, at(5, 9), ("reply", at(8, 9), ALICE)),
    ]


def figures(timelines: list[Timeline], **kwargs: object) -> dict[str, object]:
    return reports.compute(timelines, WEEK, **kwargs)["figures"]  # type: ignore[arg-type]


def test_volume_counts_tickets_opened_solved_and_reopened_in_the_period() -> None:
    f = figures(week())
    assert f["created"]["value"] == 7  # ticket 6 is older
    assert f["solved"]["value"] == 4  # ticket 4 twice, counted once; a merge is no solve
    assert f["reopened"]["value"] == 1
    assert f["replies"]["value"] == 6  # ticket 8's reply came after the period


def test_backlog_is_what_is_still_open_at_the_end_by_age() -> None:
    backlog = figures(week())["backlog"]
    assert backlog["value"] == 3
    assert backlog["by_age"] == {"<1d": 0, "1-3d": 2, "3-7d": 0, "7-30d": 0, ">30d": 1}


def test_first_reply_median_and_p90_with_unanswered_counted_apart() -> None:
    first = figures(week())["first_reply"]
    assert (first["count"], first["unanswered"]) == (3, 3)  # 30, 60, 120; tickets 3, 5, 8
    assert (first["median_minutes"], first["p90_minutes"]) == (60.0, 108.0)
    assert first["business_median_minutes"] is None  # no calendar: calendar time only


def test_next_reply_starts_at_the_first_customer_message_after_a_reply() -> None:
    nxt = figures(week())["next_reply"]
    assert (nxt["count"], nxt["unanswered"]) == (2, 0)  # 60 m on ticket 2, 30 m on 4
    assert (nxt["median_minutes"], nxt["p90_minutes"]) == (45.0, 57.0)


def test_full_resolution_runs_to_the_last_solve_and_pauses_nothing() -> None:
    res = figures(week())["full_resolution"]
    assert res["count"] == 4  # 60, 1560, 10, 1500 minutes
    assert (res["median_minutes"], res["p90_minutes"]) == (780.0, 1542.0)


def test_one_touch_counts_zero_reply_solves_apart() -> None:
    assert figures(week())["one_touch"] == {
        "value": 1,
        "of": 4,
        "zero_reply": 1,
        "definition": reports.DEFINITIONS["one_touch"],
    }


def test_waits_split_time_on_the_team_from_time_on_the_customer() -> None:
    f = figures(week())
    # Waiting on us: 60, 240, 10, 180 (ticket 4's solved night is nobody's wait).
    assert (f["requester_wait"]["median_minutes"], f["requester_wait"]["p90_minutes"]) == (
        120.0,
        222.0,
    )
    # Waiting on the customer: only ticket 2's pending night, 22 h.
    assert f["agent_wait"]["count"] == 4
    assert f["agent_wait"]["p90_minutes"] == 924.0


def test_sla_attainment_per_target() -> None:
    sla = figures(week())["sla"]
    assert sla["first_reply"] == {"achieved": 1, "breached": 1, "attainment": 0.5}
    assert sla["resolution"] == {"achieved": 1, "breached": 0, "attainment": 1.0}


def test_csat_counts_the_latest_vote_and_sets_suspect_votes_apart() -> None:
    csat = figures(week())["csat"]
    assert (csat["good"], csat["bad"], csat["score"]) == (1, 1, 0.5)
    assert (csat["responses"], csat["surveys"], csat["suspect"]) == (2, 3, 1)


def test_self_service_deflection_is_net_of_customers_who_come_back() -> None:
    assert figures(week())["self_service"] == {
        "suggested": 2,
        "solved": 1,
        "deflected": 1,
        "definition": reports.DEFINITIONS["self_service"],
    }
    back = week()
    back[2].statuses.append((at(3, 9), "solved", "open", "carol@example.org"))
    assert figures(back)["self_service"]["deflected"] == 0  # reopened within 7 days


def test_per_agent_figures_credit_replies_solves_first_replies_and_ratings() -> None:
    by = reports.compute_by(week(), WEEK, "agent", None, agents={ALICE, BOB})
    assert set(by) == {ALICE, BOB}
    assert (by[ALICE]["replies"], by[ALICE]["solved"]) == (3, 2)
    assert by[ALICE]["first_reply"]["median_minutes"] == 45.0  # tickets 1 and 4
    assert (by[ALICE]["csat"]["good"], by[ALICE]["csat"]["bad"]) == (1, 0)
    assert (by[BOB]["replies"], by[BOB]["solved"]) == (3, 1)
    assert (by[BOB]["csat"]["good"], by[BOB]["csat"]["bad"]) == (0, 1)


def test_business_time_goes_through_the_calendar_it_is_given() -> None:
    def half(start: datetime, end: datetime) -> float:
        return (end - start).total_seconds() / 120

    first = figures(week(), business=half)["first_reply"]
    assert (first["business_median_minutes"], first["business_p90_minutes"]) == (30.0, 54.0)


def test_a_weekend_counts_nothing_in_the_business_time_of_a_real_calendar() -> None:
    from inboxd.workflow.calendars import parse_calendar

    office = parse_calendar("office", "UTC", {"mon-fri": ["09:00-17:00"]})

    def clock(start: datetime, end: datetime) -> float:
        return office.between(start, end).total_seconds() / 60

    # Opened Friday 16:00, answered Monday 10:00: 66 hours of calendar time, 2 of business.
    friday = ticket(20, at(4, 16), ("reply", at(7, 10), ALICE))
    period = periods.Period(START, START + timedelta(days=14))
    first = reports.compute([friday], period, business=clock)["figures"]["first_reply"]
    assert (first["median_minutes"], first["business_median_minutes"]) == (66 * 60, 120.0)


def test_every_figure_carries_its_definition() -> None:
    for name, value in figures(week()).items():
        assert value["definition"], name


def test_the_report_in_words() -> None:
    data = reports.compute(week(), WEEK)
    text = "\n".join(describe(data, explain=True))
    assert "First reply           median 1 h, p90 1 h 48 m, 3 measured, 3 unanswered" in text
    assert "One-touch             1 of 4 solved (1 without any reply)" in text
    assert reports.DEFINITIONS["backlog"] in text
    assert [duration(m) for m in (None, 42, 60, 310, 1500, 2880)] == [
        "-",
        "42 m",
        "1 h",
        "5 h 10 m",
        "1 d 1 h",
        "2 d",
    ]


def test_periods_are_whole_days_in_the_calendars_zone() -> None:
    p = periods.period_from(
        datetime(2026, 12, 3, tzinfo=UTC),
        from_date=date(2026, 11, 1),
        to_date=date(2026, 11, 30),
        zone="Asia/Shanghai",
    )
    assert (p.start, p.end) == (
        datetime(2026, 10, 31, 16, tzinfo=UTC),
        datetime(2026, 11, 30, 16, tzinfo=UTC),
    )
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    assert periods.period_from(now).start == now - timedelta(days=30)
    assert periods.period_from(now, since="12h").start == now - timedelta(hours=12)
    for bad in ("30", "d", "-3d", "3y", "0d"):
        with pytest.raises(ValueError, match="a period like 30d"):
            periods.parse_span(bad)


def test_a_period_at_the_ends_of_the_calendar_is_refused_with_a_reason() -> None:
    # The API fuzzer found `?to=0001-01-01`: its default start, 29 days before, was a 500.
    now = datetime(2026, 12, 3, tzinfo=UTC)
    for ends in (
        {"to_date": date(1, 1, 1)},
        {"from_date": date(9999, 12, 31), "to_date": date(9999, 12, 31)},
    ):
        with pytest.raises(ValueError, match="within the years 1 to 9999"):
            periods.period_from(now, **ends)  # type: ignore[arg-type]


# --- on a real database --------------------------------------------------------------


def _report(rt: Runtime, period: periods.Period, by: str | None = None) -> dict[str, object]:
    with session_scope(rt.engine) as session:
        return reports.build_report(session, period, by=by)


def test_a_past_period_reports_the_same_numbers_after_later_changes(rt: Runtime) -> None:
    begin = utcnow() - timedelta(minutes=1)
    for n in range(3):
        raw = mail(sender=f"c{n}@example.org", subject=f"Question {n}", body="Help, please.")
        assert pipeline.ingest(rt, raw, f"m{n}").result == "created"
    operations.post_reply(rt, 1, ALICE, "Here is the answer.", note=False, source="web")
    operations.run_commands(rt, 1, "#status solved", ALICE, "cli")
    operations.post_reply(rt, 2, BOB, "Looking into it.", note=True, source="web")  # a note
    operations.run_commands(rt, 2, "#status pending", BOB, "cli")
    period = periods.Period(begin, utcnow() + timedelta(milliseconds=1))
    before = _report(rt, period, by="agent")
    f = before["figures"]  # type: ignore[index]
    assert (f["created"]["value"], f["solved"]["value"], f["replies"]["value"]) == (3, 1, 1)
    assert (f["first_reply"]["count"], f["first_reply"]["unanswered"]) == (1, 2)
    assert f["one_touch"]["value"] == 1 and f["backlog"]["value"] == 2

    # Later: ticket 1 reopened and answered again, 2 merged into 3, 3 solved by Bob.
    operations.run_commands(rt, 1, "#status open", ALICE, "cli")
    operations.post_reply(rt, 1, ALICE, "One more thing.", note=False, source="api")
    operations.run_commands(rt, 2, "#merge 3", BOB, "cli")
    operations.run_commands(rt, 3, "#status solved", BOB, "cli")
    assert _report(rt, period, by="agent") == before
    assert _report(rt, periods.Period(begin, utcnow() + timedelta(seconds=1)))["figures"] != f


def test_cli_report_json_csv_and_explain(rt: Runtime) -> None:
    pipeline.ingest(rt, mail(sender="c@example.org", subject="Hi", body="Hello"), "m")
    operations.post_reply(rt, 1, ALICE, "Hello to you.", note=False, source="web")
    toml = rt.config.base_dir / "inboxd.toml"
    toml.write_text(
        f'[inboxd]\nsupport_address = "support@example.com"\n'
        f'database_url = "{rt.config.database_url}"\n',
        encoding="utf-8",
    )
    config = ["--config", str(toml)]
    runner = CliRunner(env={"INBOXD_CONFIG": ""})
    result = runner.invoke(app, ["report", *config, "--json", "--by", "agent"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"from", "to", "calendar", "figures", "by"}
    assert data["figures"]["first_reply"]["count"] == 1 and ALICE in data["by"]
    for name in ("created", "solved", "reopened", "backlog", "first_reply", "next_reply"):
        assert data["figures"][name]["definition"]
    result = runner.invoke(app, ["report", *config, "--csv"])
    assert result.exit_code == 0 and "all,first_reply,count,1" in result.stdout
    result = runner.invoke(app, ["report", *config, "--explain", "--since", "7d"])
    assert result.exit_code == 0 and reports.DEFINITIONS["one_touch"] in result.stdout
    for bad in (["--since", "soon"], ["--since", "7d", "--from", "2026-11-01"]):
        result = runner.invoke(app, ["report", *config, *bad])
        assert result.exit_code == 2, result.output
    result = runner.invoke(app, ["report", *config, "--calendar", "nope"])
    assert result.exit_code == 2 and "no calendar named 'nope'" in result.output
