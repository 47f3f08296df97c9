"""The quarantine is no longer a black box (issue 16.6): sender and subject in the list,
`show` with a safe view, `delete`, `release` as a ticket, and a log line per entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mailbuilder import mail
from typer.testing import CliRunner

from cli.main import app
from inboxd.mail.peek import peek, safe_line, text_view

ESC = "\x1b"
RLO = "\u202e"  # right-to-left override: "gpj.exe" shown as "exe.jpg"


def test_peek_reads_sender_and_subject_decoded_without_running_the_parser() -> None:
    raw = (
        b"From: =?utf-8?b?546L5bCP5piO?= <wang@example.cn>\r\n"
        b"Subject: =?gb2312?b?t6LGsQ==?=\r\n"
        b"  (folded)\r\n"
        b"\r\n"
        b"body\r\n"
    )
    seen = peek(raw)
    assert seen.sender == "王小明 <wang@example.cn>"
    assert seen.subject == "发票 (folded)"
    assert [name for name, _ in seen.headers] == ["From", "Subject"]
    assert peek(b"\x00\x01 not mail at all").headers == []


def test_nothing_in_a_quarantined_message_can_drive_the_terminal() -> None:
    assert ESC not in safe_line(f"Subject {ESC}[2J{ESC}]0;owned{ESC}\\ x")
    assert RLO not in safe_line(f"invoice{RLO}gpj.exe")
    raw = f"From: a@example.com\r\n\r\nline one\r\n{ESC}[31mred{RLO}\r\n".encode()
    view = text_view(raw)
    assert "line one\n" in view and ESC not in view and RLO not in view
    assert text_view(b"From: a@example.com\r\n\r\n" + b"x" * 50_000).endswith(
        "[… cut at 20000 characters]"
    )


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = tmp_path / "inboxd.toml"
    assert CliRunner().invoke(app, ["init", "--config", str(config)]).exit_code == 0

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, [*args, "--config", str(config)])
        return result.exit_code, result.stdout, result.stderr

    def ingest(name: str, raw: bytes) -> dict[str, object]:
        path = tmp_path / name
        path.write_bytes(raw)
        code, out, err = run("ingest", "--json", str(path))
        assert code == 0, err
        return json.loads(out)

    run.ingest = ingest  # type: ignore[attr-defined]
    return run


def test_a_spam_senders_mail_is_listed_shown_released_and_deleted(
    cli,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    spammer = "Pills <pills@spam.example>"
    first = cli.ingest("1.eml", mail(sender=spammer, subject="Best prices"))
    assert cli("run", str(first["ticket"]), "#spam")[0] == 0
    held = cli.ingest("2.eml", mail(sender=spammer, subject=f"Again {ESC}[2J", body="Buy now\n"))
    assert held["result"] == "quarantined"
    cli.ingest("3.eml", mail(sender=spammer, subject="Third"))

    code, out, _ = cli("quarantine", "--json")
    entries = json.loads(out)
    assert [(e["from"], e["subject"]) for e in entries] == [
        ("Pills <pills@spam.example>", "Again [2J"),
        ("Pills <pills@spam.example>", "Third"),
    ]
    code, out, _ = cli("quarantine")
    assert code == 0 and "FROM" in out and "Pills <pills@spam.example>" in out
    logged = [r.getMessage() for r in caplog.records if r.name == "inboxd.tickets.store"]
    assert any("2.eml from Pills <pills@spam.example>, subject 'Again" in m for m in logged)

    second, third = (e["id"] for e in entries)
    code, out, _ = cli("quarantine", "show", str(second))
    assert code == 0 and ESC not in out
    assert "Subject: Again [2J" in out and "Buy now" in out and "marked as spam" in out

    code, out, err = cli("quarantine", "release", str(second))
    assert code == 0, err
    assert " created #" in out or " appended #" in out
    code, _, err = cli("quarantine", "delete", str(third))
    assert code == 0, err
    code, out, _ = cli("quarantine", "--json")
    assert json.loads(out) == []
    code, _, err = cli("quarantine", "show", str(third))
    assert code == 1 and f"no quarantined message {third}" in err
    # The sender is still marked: their next mail is held again, released or not.
    assert cli.ingest("4.eml", mail(sender=spammer, subject="Fourth"))["result"] == "quarantined"


def test_mail_the_parser_refused_cannot_be_released_but_can_be_shown(
    cli,  # type: ignore[no-untyped-def]
) -> None:
    junk = cli.ingest("junk.txt", b"\x00\x01 this is not an email\n")
    code, out, _ = cli("quarantine", "--json")
    (entry,) = json.loads(out)
    code, out, _ = cli("quarantine", "show", str(entry["id"]))
    assert code == 0 and "no header fields" in out and "\x00" not in out
    code, out, _ = cli("quarantine", "release", str(entry["id"]))
    assert code == 1 and "quarantined" in out
    assert junk["result"] == "quarantined"
