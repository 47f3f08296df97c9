"""The docs tell the truth: every command is documented and has help with an example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        found[name] = command
        if hasattr(command, "commands"):
            for sub_name, sub in command.commands.items():
                found[f"{name} {sub_name}"] = sub
    return found


def test_every_command_is_in_the_readme() -> None:
    for name in _commands():
        assert f"`inboxd {name}" in README, f"`inboxd {name}` is not documented in README.md"


def test_every_command_has_help_ending_with_an_example() -> None:
    for name, command in _commands().items():
        assert command.help, f"inboxd {name} has no help"
        assert "Example: inboxd" in command.help, f"inboxd {name} help has no example"


def test_help_runs_for_every_command() -> None:
    for name in _commands():
        result = CliRunner().invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = re.findall(r"^    (python -m pip install -e .*pytest.*)$", README, re.M)
    assert len(commands) == 1
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "sed -n 's/^    \\(python -m pip install -e .*pytest.*\\)$/\\1/p' README.md" in ci
    assert "INBOXD_REQUIRE_ALL=1" in ci


def test_readme_starts_with_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^    (\S.*)$", quick_start, re.M)
    assert commands[0].startswith("python -m pip install . && inboxd init")
    assert commands[1].startswith("python -m pip install -e '.[test]'")


def test_changelog_mentions_every_cli_command() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for name in _commands():
        top = name.split()[0]
        assert f"inboxd {top}" in changelog, f"CHANGELOG.md does not mention inboxd {top}"
