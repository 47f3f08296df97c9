"""Every edge runs a command block with the same view of the desk (operations.desk_options):
the reply box, the command box, mail, rules and the rules' dry run refuse and accept the
same commands. Before, the reply box ran without the configured teams (so `#team anything`
passed there) and the dry run without them too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_config
from mailbuilder import mail
from sqlmodel import Session

from inboxd import pipeline
from inboxd.agents import operations
from inboxd.agents.operations import InvalidCommands, desk_options
from inboxd.models import utcnow
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import queries
from inboxd.workflow.rule_dryrun import dry_run
from inboxd.workflow.rules import load_rules

ALICE = "alice@example.com"


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Runtime]:
    cfg = make_config(
        tmp_path,
        teams=[{"name": "billing", "agents": [ALICE]}],
        rules=[{"name": "misfiled", "on": "created", "run": "#team nosuch"}],
    )
    rt = open_runtime(cfg)
    yield rt
    rt.engine.dispose()


def a_ticket(rt: Runtime) -> int:
    result = pipeline.ingest(rt, mail(subject="Invoice"), "test")
    assert result.ticket is not None
    return result.ticket


def test_the_desk_options_carry_the_configured_teams_and_the_support_identity(
    desk: Runtime,
) -> None:
    options = desk_options(desk)
    assert options["teams"] == ("billing",)
    assert options["support"] is not None
    assert options["support"].address == "support@example.com"


def test_the_reply_box_refuses_a_team_that_is_not_configured_as_the_command_box_does(
    desk: Runtime,
) -> None:
    ticket = a_ticket(desk)

    def reply_box(team: str) -> None:
        text = f"#team {team}\n\nThanks!"
        operations.post_reply(
            desk, ticket, ALICE, text, note=False, source="web", read_commands=True
        )

    with pytest.raises(InvalidCommands, match="nosuch"):
        operations.run_commands(desk, ticket, "#team nosuch", ALICE, "cli")
    with pytest.raises(InvalidCommands, match="nosuch"):
        reply_box("nosuch")
    with Session(desk.engine) as session:
        assert queries.get_ticket(session, ticket).team is None
    reply_box("billing")
    with Session(desk.engine) as session:
        assert queries.get_ticket(session, ticket).team == "billing"


def test_the_rules_dry_run_refuses_what_the_real_run_would(desk: Runtime) -> None:
    a_ticket(desk)
    now = utcnow()
    with Session(desk.engine) as session:
        (would,) = [
            w
            for w in dry_run(
                session,
                load_rules(desk.config),
                now,
                now.replace(year=2000),
                desk=desk_options(desk),
            )
            if w.rule == "misfiled"
        ]
        session.rollback()
    assert would.outcome.startswith("refused: #team nosuch")
