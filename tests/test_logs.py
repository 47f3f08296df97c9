"""The log an admin reads (or ships): one line per message in, per mail sent or retried,
per quarantine and per command block, at the configured level, in a rotated file, as text
or as JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_config
from sqlmodel import select

from inboxd import pipeline
from inboxd.config import Config
from inboxd.daemon import logs
from inboxd.db import session_scope
from inboxd.errors import ConfigError
from inboxd.mail.command_tags import extract_tags
from inboxd.models import Outbound, Ticket
from inboxd.queues.outbox import SendOutcome, record_outcome
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets.blocks import Actor
from inboxd.tickets.commands import run_block

MAIL = Path(__file__).resolve().parent / "data" / "mail"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger(logs.ROOT)
    level, propagate = root.level, root.propagate
    yield
    for handler in [h for h in root.handlers if getattr(h, "inboxd_owned", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    root.propagate = propagate


def runtime(tmp_path: Path, **log: object) -> Runtime:
    cfg = make_config(tmp_path, log=log)
    logs.configure(cfg)
    return open_runtime(cfg)


def json_lines(cfg: Config) -> list[dict[str, object]]:
    path = logs.log_file(cfg)
    assert path is not None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_message_received_is_one_line_with_its_fields(tmp_path: Path) -> None:
    rt = runtime(tmp_path, format="json")
    raw = (MAIL / "new_ticket_plain.eml").read_bytes()
    pipeline.ingest(rt, raw, "smtp:127.0.0.1")
    pipeline.ingest(rt, raw, "smtp:127.0.0.1")
    received = [line for line in json_lines(rt.config) if line["logger"] == "inboxd.pipeline"]
    assert [(r["result"], r["ticket"], r["level"]) for r in received] == [
        ("created", 1, "info"),
        ("duplicate", 1, "info"),
    ]
    assert received[0]["source"] == "smtp:127.0.0.1"
    assert str(received[0]["message_id"]).startswith("<")
    assert received[0]["message"].startswith(f"message {received[0]['message_id']} from smtp:")


def test_a_quarantine_is_a_warning_naming_the_reason(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    pipeline.ingest(rt, b"\x00\xff not a mail at all", "file:junk.eml")
    text = logs.log_file(rt.config).read_text(encoding="utf-8")  # type: ignore[union-attr]
    [warning] = [line for line in text.splitlines() if " WARNING " in line]
    assert "inboxd.tickets.store: quarantined file:junk.eml from (no sender)" in warning
    assert "no header fields" in warning
    [received] = [line for line in text.splitlines() if " INFO inboxd.pipeline: " in line]
    assert "file:junk.eml: quarantined, ticket None" in received


def test_a_command_block_applied_or_refused_is_one_line(tmp_path: Path) -> None:
    rt = runtime(tmp_path, format="json")
    pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "test")
    actor = Actor("alice@example.com", role="admin")
    with session_scope(rt.engine) as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None
        good, _ = extract_tags("#status pending\n#tag shipping")
        bad, _ = extract_tags("#status nonsense")
        run_block(session, ticket, actor, good, source="cli")
        run_block(session, ticket, actor, bad, source="web")
    blocks = [line for line in json_lines(rt.config) if line["logger"] == "inboxd.tickets.commands"]
    assert [(b["outcome"], b["source"], b["actor"], b["ticket"]) for b in blocks] == [
        ("applied", "cli", "alice@example.com", 1),
        ("refused", "web", "alice@example.com", 1),
    ]
    assert "pending" in str(blocks[0]["changes"]) and "nonsense" in str(blocks[1]["changes"])


def test_mail_sent_retried_and_failed_each_say_so(tmp_path: Path) -> None:
    rt = runtime(tmp_path, format="json")
    pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "test")
    with session_scope(rt.engine) as session:
        ack = session.exec(select(Outbound)).first()
        assert ack is not None and ack.id is not None
        record_outcome(session, rt.config, ack.id, SendOutcome(ok=False, error="451 try later"))
        record_outcome(session, rt.config, ack.id, SendOutcome(ok=True))
    sends = [line for line in json_lines(rt.config) if line["logger"] == "inboxd.queues.outbox"]
    assert [(s["level"], s["attempt"], s["id"]) for s in sends] == [
        ("warning", 1, ack.id),
        ("info", 2, ack.id),
    ]
    assert "451 try later" in str(sends[0]["message"]) and "retrying in" in str(sends[0]["message"])
    assert sends[1]["to"] == "carol@example.org" and sends[1]["ticket"] == 1


def test_the_level_keeps_out_what_is_below_it(tmp_path: Path) -> None:
    rt = runtime(tmp_path, level="warning")
    pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "test")
    pipeline.ingest(rt, b"\x00\xff", "file:junk.eml")
    lines = logs.log_file(rt.config).read_text(encoding="utf-8").splitlines()  # type: ignore[union-attr]
    assert len(lines) == 1 and "quarantined" in lines[0]


def test_the_file_is_rotated_at_max_bytes_keeping_backups(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, log={"file": "logs/inboxd.log", "max_bytes": 2000, "backups": 2})
    logs.configure(cfg)
    for n in range(200):
        logging.getLogger("inboxd.test").info("line %(n)s of the rotation test", {"n": n})
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["inboxd.log", "inboxd.log.1", "inboxd.log.2"]
    assert all((tmp_path / "logs" / n).stat().st_size <= 2000 for n in names)
    assert "line 199 " in (tmp_path / "logs" / "inboxd.log").read_text(encoding="utf-8")


def test_no_file_and_the_terminal_keeps_tracebacks_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_config(tmp_path)
    logs.configure(cfg, terminal=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("inboxd.test").exception("worker failed")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ERROR worker failed" in err
    assert "Traceback" in (tmp_path / "data" / "inboxd.log").read_text(encoding="utf-8")

    logs.configure(make_config(tmp_path / "other", log={"file": "-"}), terminal=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("inboxd.test").exception("worker failed")
    assert "Traceback" in capsys.readouterr().err  # stderr is the only record then
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(("key", "value"), [("format", "xml"), ("level", "loud"), ("backups", -1)])
def test_bad_log_settings_stop_start_up_naming_the_key(
    tmp_path: Path, key: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=rf"\[log\] {key} = "):
        make_config(tmp_path, log={key: value})
