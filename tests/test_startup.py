"""CLI start-up: a command imports only what it uses (issue #18, item 4).

Every `inboxd` command pays for the imports of the whole CLI before it does anything.
The mail parser (flanker), the knowledge base's segmenters (jieba, OpenCC, Snowball),
the web stack, jinja2 and alembic each cost a noticeable part of a second; reading the
ticket list needs none of them. These tests read the import graph of real processes
(no timing: a busy machine makes a process slower, not a test red).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Imported by mail, web, KB and migration paths; never needed to list or show tickets.
HEAVY = (
    "flanker",
    "rjieba",
    "opencc",
    "Stemmer",
    "jinja2",
    "fastapi",
    "starlette",
    "uvicorn",
    "alembic",
    "lxml",
    "inscriptis",
    "charset_normalizer",
    "pygal",
    "holidays",
    "frontmatter",
    "aiosmtpd",
    "imapclient",
)
DATABASE = ("sqlalchemy", "sqlmodel")

# Runs the console script's main() with the given argv in a fresh interpreter and
# prints, at exit, the top-level names of every module that was imported.
PROBE = """
import atexit, json, sys
names = lambda: sorted({m.split(".")[0] for m in sys.modules})
atexit.register(lambda: print("\\nMODULES " + json.dumps(names())))
sys.argv = ["inboxd", *json.loads(sys.argv[1])]
from cli.main import main
main()
"""


def imported_by(*argv: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(argv))],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.rsplit("MODULES ", 1)[-1]
    return set(json.loads(line))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An initialised data dir (database, key) with one message in it."""
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(f'[inboxd]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n', "utf-8")
    mail = ROOT / "tests" / "data" / "mail" / "new_ticket_plain.eml"
    proc = subprocess.run(
        [sys.executable, "-m", "inboxd", "ingest", "--config", str(cfg), str(mail)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return cfg


def test_help_and_version_import_no_database_or_mail_library() -> None:
    for argv in (["--help"], ["--version"]):
        found = imported_by(*argv)
        assert not found & {*HEAVY, *DATABASE}, (argv, sorted(found & {*HEAVY, *DATABASE}))


# `show` explains the ticket's SLA, whose condition evaluator and time texts come with the
# mail and template stack (workflow/ticket_facts.py, render.py): only the KB, the web and
# the migrations are out of bounds for it, for now.
SHOW_MAY = {"flanker", "jinja2", "lxml", "inscriptis", "charset_normalizer"}


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["tickets"], set()),
        (["tickets", "--status", "open", "--json"], set()),
        (["search", "invoice"], set()),
        (["show", "1"], SHOW_MAY),
    ],
)
def test_reading_tickets_imports_neither_the_parser_nor_the_web_nor_the_kb(
    site: Path, argv: list[str], allowed: set[str]
) -> None:
    found = imported_by(*argv, "--config", str(site))
    assert "sqlalchemy" in found  # it did read the database
    extra = found & (set(HEAVY) - allowed)
    assert not extra, f"inboxd {' '.join(argv)} imported {sorted(extra)}"


def test_ingest_still_brings_the_parser(site: Path) -> None:
    mail = ROOT / "tests" / "data" / "mail" / "new_ticket_plain.eml"
    assert "flanker" in imported_by("ingest", "--config", str(site), str(mail))
