"""An admin's checks beside a running `inboxd serve` (issue 17): `inboxd check` is green
on the daemon's own ports, a second `serve` says in one line why it cannot start, and
`inboxd status` reports the daemon's queues and clock. Real processes, real sockets."""

from __future__ import annotations

import json
import smtplib
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import make_config
from daemon_harness import (
    INBOXD,
    ServeProcess,
    free_port,
    serve_config,
    serving,
    wait_until,
    write_toml,
)
from mailbuilder import mail, new_msgid
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from inboxd import pipeline
from inboxd.daemon.status import gather
from inboxd.db import session_scope
from inboxd.models import Event, utcnow
from inboxd.runtime import open_runtime

MAIL = Path(__file__).resolve().parent / "data" / "mail"


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def second_serve(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INBOXD), "serve", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config_path.parent,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    base = tmp_path_factory.mktemp("running")
    with serving(base, serve_config(base)) as running:
        yield running


@pytest.fixture
def other_smtp_server() -> Iterator[int]:
    """Something that is not inboxd on a port: it greets like Postfix and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def greet() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"220 mx.example.net ESMTP Postfix\r\n")

    thread = threading.Thread(target=greet, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def test_check_beside_the_running_daemon_is_green(server: ServeProcess) -> None:
    code, out, _ = run_cli("check", "--config", str(server.config_path))
    assert code == 0, out
    assert f"ok    smtp listener: 127.0.0.1:{server.smtp_port} is in use by a running inboxd" in out
    assert "(healthy: /healthz answered)" in out
    assert f"ok    web: 127.0.0.1:{server.web_port} is in use by a running inboxd" in out


def test_a_second_serve_says_in_one_line_that_inboxd_runs_there(server: ServeProcess) -> None:
    done = second_serve(server.config_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"inboxd: cannot listen on 127.0.0.1:{server.smtp_port} (SMTP): "
        "in use by a running inboxd (healthy: /healthz answered)"
    ]
    assert "Traceback" not in (Path(server.config["inboxd"]["data_dir"]) / "inboxd.log").read_text()


def test_a_port_held_by_something_else_is_named_so(tmp_path: Path, other_smtp_server: int) -> None:
    config = write_toml(
        tmp_path / "inboxd.toml", serve_config(tmp_path, smtp_port=other_smtp_server)
    )
    code, out, _ = run_cli("check", "--config", str(config))
    assert code == 1
    where = f"127.0.0.1:{other_smtp_server}"
    assert f"FAIL  smtp listener: cannot listen on {where}: in use by something else" in out
    done = second_serve(config)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"inboxd: cannot listen on 127.0.0.1:{other_smtp_server} (SMTP): in use by something else"
    ]


def test_status_reports_the_running_daemons_queues_and_clock(server: ServeProcess) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail("carol@example.org", ["support@example.com"], mail(message_id=new_msgid()))

    def settled() -> dict[str, object] | None:
        code, out, _ = run_cli("status", "--json", "--config", str(server.config_path))
        data = json.loads(out)
        quiet = data["spool_pending"] == 0 and data["outbound_queued"] == 0
        done = data["last_mail_out"] and data["clock_events_behind"] == 0
        return data if code == 0 and quiet and done else None

    data = wait_until(settled, timeout=60, what="the daemon to take in, answer and tick")
    assert data["daemon"] == "running"
    assert data["last_message_in"] and str(data["last_message_in"]).endswith("Z")
    assert data["clock_lag_seconds"] == 0
    code, out, _ = run_cli("status", "--config", str(server.config_path))
    assert code == 0 and out.startswith("daemon           running (")
    assert "spool            0 waiting" in out and "clock            0 events behind" in out


def test_status_without_a_daemon_says_so_and_exits_1(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "inboxd.toml", serve_config(tmp_path, web_port=free_port()))
    assert run_cli("init", "--config", str(config))[0] == 0
    code, out, _ = run_cli("status", "--config", str(config))
    assert code == 1
    assert out.startswith("daemon           not running (no answer at http://127.0.0.1:")
    assert "last message in  never" in out


def test_the_clock_lag_is_the_age_of_the_oldest_event_it_has_not_seen(tmp_path: Path) -> None:
    rt = open_runtime(make_config(tmp_path, web={"enabled": False}))
    pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "test")
    later = utcnow() + timedelta(minutes=10)
    found = gather(rt, later)
    assert found.daemon == "not running" and not found.healthy
    with session_scope(rt.engine) as session:
        events = list(session.exec(select(Event)))
    assert found.clock_events_behind == len(events) >= 1
    assert found.clock_lag_seconds == (later - min(e.at for e in events)).total_seconds()
    assert found.outbound_queued >= 1  # the acknowledgement at least: no daemon sends it
    rt.engine.dispose()
