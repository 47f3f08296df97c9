"""The command line as users type it: exit codes, one JSON document, no tracebacks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

MAIL = Path(__file__).resolve().parent / "data" / "mail"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "inboxd.toml"
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--config", str(path)])
    assert result.exit_code == 0, result.output
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def unboxed(text: str) -> str:
    """A usage error as one line: typer draws it in a box and wraps it at the width."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


def test_init_writes_config_data_dir_and_key_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.toml"
    code, out, _ = run("init", "--config", str(path))
    assert code == 0 and f"wrote {path}" in out
    key = (tmp_path / "data" / "secret.key").read_text()
    assert (tmp_path / "data" / "inboxd.db").exists()
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o077 == 0
    code, out, _ = run("init", "--config", str(path))
    assert code == 0 and f"kept {path}" in out
    assert (tmp_path / "data" / "secret.key").read_text() == key


def test_ingest_json_prints_one_object_per_message(cfg: Path) -> None:
    code, out, _ = run("ingest", "--config", str(cfg), "--json", str(MAIL))
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == len(list(MAIL.glob("*.eml")))
    for line in lines:
        assert set(line) == {"source", "result", "ticket", "message_id", "reason"}
    by_name = {Path(line["source"]).name: line for line in lines}
    first = by_name["new_ticket_plain.eml"]
    reply = by_name["gmail_reply_in_reply_to.eml"]
    assert reply["ticket"] == first["ticket"]
    assert {first["result"], reply["result"]} == {"created", "appended"}


def test_ingest_twice_reports_duplicates(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    code, out, _ = run("ingest", "--config", str(cfg), "--json", str(MAIL))
    assert code == 0
    assert {json.loads(line)["result"] for line in out.splitlines()} == {"duplicate"}


def test_ingest_reads_stdin_mbox_and_maildir(cfg: Path, tmp_path: Path) -> None:
    raw = (MAIL / "new_ticket_plain.eml").read_bytes()
    result = CliRunner().invoke(app, ["ingest", "--config", str(cfg), "--json", "-"], input=raw)
    assert json.loads(result.stdout)["result"] == "created"

    mbox = tmp_path / "archive.mbox"
    mbox.write_bytes(
        b"From carol@example.org Mon Nov 23 10:00:00 2026\n"
        + (MAIL / "html_only.eml").read_bytes().replace(b"\r\n", b"\n")
        + b"\nFrom wang Mon Nov 23 10:00:00 2026\n"
        + (MAIL / "gb2312_label_gbk_text.eml").read_bytes().replace(b"\r\n", b"\n")
    )
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    shutil.copy(MAIL / "auto_reply_out_of_office.eml", maildir / "new" / "1.host")
    code, out, _ = run("ingest", "--config", str(cfg), "--json", str(mbox), str(maildir))
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["result"] for r in results] == ["created", "created", "created"]
    assert results[0]["source"].endswith("archive.mbox#1")


def test_tickets_json_is_one_array_of_spec_objects(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    code, out, _ = run("tickets", "--config", str(cfg), "--json")
    assert code == 0
    tickets = json.loads(out)
    assert isinstance(tickets, list) and tickets
    required = {
        "id",
        "subject",
        "status",
        "priority",
        "assignee",
        "team",
        "tags",
        "requester",
        "cc",
        "created_at",
        "updated_at",
        "first_response_at",
        "solved_at",
        "merged_into",
    }
    for ticket in tickets:
        assert required <= set(ticket)
        assert "messages" not in ticket
    subjects = {t["subject"] for t in tickets}
    assert "发票抬头错误" in subjects
    assert "Order 1042 not delivered" in subjects


def test_tickets_filters(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    _, out, _ = run("tickets", "--config", str(cfg), "--json", "--requester", "CAROL@example.org")
    assert [t["requester"] for t in json.loads(out)] == ["carol@example.org"]
    _, out, _ = run("tickets", "--config", str(cfg), "--json", "--status", "solved")
    assert json.loads(out) == []
    _, out, _ = run("tickets", "--config", str(cfg), "--json", "--assignee", "none", "--limit", "2")
    assert len(json.loads(out)) == 2


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--status", "bogus", "new, open, pending, on-hold, solved, closed"),
        ("--priority", "extreme", "low, normal, high, urgent"),
        ("--sort", "oldest", "updated, created, priority, id, due"),
        ("--limit", "0", "from 1 up"),
        ("--limit", "-1", "from 1 up"),
    ],
)
def test_tickets_refuses_an_unknown_value_with_exit_2_naming_the_allowed_ones(
    cfg: Path, option: str, value: str, allowed: str
) -> None:
    """Issue 16.5: `--status bogus` used to exit 0 with nothing, `--limit 0` gave one."""
    run("ingest", "--config", str(cfg), str(MAIL / "new_ticket_plain.eml"))
    code, out, err = run("tickets", "--config", str(cfg), "--json", option, value)
    assert code == 2 and out == ""
    said = unboxed(err)
    assert f"Invalid value for {option}" in said and allowed in said and "Traceback" not in err


def test_tickets_assignee_reads_names_and_me_as_assign_does_and_team_filters(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    code, _, err = run("agents", "add", "bob@example.com", "--name", "Bob", "--config", str(cfg))
    assert code == 0, err
    code, _, err = run("run", "1", "#assign bob\n#team billing", "--config", str(cfg))
    assert code == 0, err

    def ids(*args: str) -> list[int]:
        code, out, err = run("tickets", "--config", str(cfg), "--json", *args)
        assert code == 0, err
        return [t["id"] for t in json.loads(out)]

    for who in ("bob", "Bob", "BOB@example.com"):
        assert ids("--assignee", who) == [1], who
    assert ids("--assignee", "me", "--as", "bob@example.com") == [1]
    assert ids("--assignee", "me") == []  # the first admin has none
    assert ids("--team", "billing") == [1]
    assert ids("--team", "sales") == []
    code, _, err = run("tickets", "--config", str(cfg), "--assignee", "zed")
    assert code == 2 and "--assignee: no agent 'zed'" in unboxed(err)


def test_show_json_has_messages_and_events_with_new_text_only(cfg: Path) -> None:
    _, out, _ = run(
        "ingest",
        "--config",
        str(cfg),
        "--json",
        str(MAIL / "new_ticket_plain.eml"),
        str(MAIL / "gmail_reply_in_reply_to.eml"),
    )
    ticket_id = json.loads(out.splitlines()[0])["ticket"]
    code, out, _ = run("show", "--config", str(cfg), "--json", str(ticket_id))
    assert code == 0
    ticket = json.loads(out)
    assert ticket["cc"] == ["dan@example.org"]
    first, reply = ticket["messages"]
    assert first["threaded_by"] == "new" and reply["threaded_by"] == "references"
    assert reply["text"].startswith("Forgot to say")
    assert "wrote:" not in reply["text"] and "> Hello" not in reply["text"]
    assert reply["date"] == "2026-11-23T10:02:00Z"
    types = [e["type"] for e in ticket["events"]]
    assert types[0] == "created" and types.count("message") == 2
    assert all(e["at"].endswith("Z") for e in ticket["events"])


def test_show_of_a_missing_ticket_exits_1_with_one_line(cfg: Path) -> None:
    code, out, err = run("show", "--config", str(cfg), "999")
    assert code == 1
    assert out == ""
    assert err.strip() == "inboxd: no ticket 999"


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.toml"
    path.write_text("[smtp]\nport = -1\n")
    code, _, err = run("tickets", "--config", str(path))
    assert code == 2
    assert "[smtp] port = -1" in err
    assert "Traceback" not in err


def test_bad_usage_exits_2(cfg: Path) -> None:
    code, _, _ = run("show", "--config", str(cfg), "not-a-number")
    assert code == 2


def test_search_finds_subject_and_message_text(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    _, out, _ = run("search", "--config", str(cfg), "--json", "00340434161094042557")
    assert [t["subject"] for t in json.loads(out)] == ["Order 1042 not delivered"]
    _, out, _ = run("search", "--config", str(cfg), "--json", "发票")
    assert len(json.loads(out)) == 1
    _, out, _ = run("search", "--config", str(cfg), "--json", "100%_nothing")
    assert json.loads(out) == []


def test_quarantine_lists_and_retries(cfg: Path, tmp_path: Path) -> None:
    junk = tmp_path / "not-mail.txt"
    junk.write_bytes(b"\x00\x01 this is not an email\n")
    _, out, _ = run("ingest", "--config", str(cfg), "--json", str(junk))
    assert json.loads(out)["result"] == "quarantined"
    code, out, _ = run("quarantine", "--config", str(cfg), "--json")
    assert code == 0
    (entry,) = json.loads(out)
    assert entry["reason"] == "no header fields: this is not an email message"
    assert entry["source"] == str(junk)
    code, out, _ = run("quarantine", "--config", str(cfg), "retry", str(entry["id"]))
    assert code == 1  # still not an email: it stays quarantined
    code, out, _ = run("quarantine", "--config", str(cfg), "--json")
    assert json.loads(out)[0]["attempts"] == 2
    code, _, err = run("quarantine", "--config", str(cfg), "retry", "12345")
    assert code == 1 and "no quarantined message 12345" in err


def test_human_tables_are_readable(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    code, out, _ = run("tickets", "--config", str(cfg))
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:3] == ["#", "STATUS", "PRIO"]
    code, out, _ = run("show", "--config", str(cfg), "1")
    assert code == 0 and out.startswith("#1 ")


def test_reply_sends_to_the_customer_and_note_stays_inside(cfg: Path) -> None:
    run("ingest", "--config", str(cfg), str(MAIL))
    code, out, err = run("reply", "1", "It ships today.", "--config", str(cfg))
    assert code == 0, err
    assert "reply queued to the customer" in out
    code, out, _ = run(
        "reply", "1", "Called the carrier.", "--note", "--config", str(cfg), "--json"
    )
    assert code == 0
    kinds = [m["kind"] for m in json.loads(out)["messages"]]
    assert kinds[-2:] == ["reply", "note"]
    code, _, err = run("reply", "1", "   ", "--config", str(cfg))
    assert code == 1 and "the reply is empty" in err
