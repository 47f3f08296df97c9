"""Who may read /metrics and /healthz, and where (issue 17 item 5).

By default both are routes of the web listener and open; `[metrics] token` asks for a
bearer token; `[metrics] host` moves them to a listener of their own, off the port
agents use.
"""

from __future__ import annotations

import httpx
import pytest
from conftest import make_config
from daemon_harness import free_port, serve_config, serving, wait_until
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli_app
from inboxd.config import Config
from inboxd.daemon.checks import run_checks
from inboxd.errors import ConfigError
from inboxd.metrics import Metrics
from inboxd.runtime import open_runtime
from inboxd.web.app import create_app


def client_for(tmp_path, **metrics: object) -> TestClient:
    rt = open_runtime(make_config(tmp_path, metrics=metrics))
    return TestClient(create_app(rt, Metrics()))


def test_without_a_token_metrics_and_healthz_are_open_on_the_web_port(tmp_path) -> None:
    client = client_for(tmp_path)
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}


def test_with_a_token_metrics_needs_it_as_a_bearer_token(tmp_path) -> None:
    client = client_for(tmp_path, token="s3cret-metrics")
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "inboxd_" not in refused.text
    wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert right.status_code == 200
    assert "inboxd_" in right.text
    # Liveness stays open: a load balancer's probe carries no token.
    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_token_may_live_in_a_file_of_its_own(tmp_path) -> None:
    (tmp_path / "metrics.token").write_text("from-a-file\n", encoding="utf-8")
    client = client_for(tmp_path, token_file="metrics.token")
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer from-a-file"})
    assert ok.status_code == 200


def test_an_unreadable_or_empty_token_file_is_a_clear_config_error(tmp_path) -> None:
    missing = make_config(tmp_path, metrics={"token_file": "nowhere.token"})
    with pytest.raises(ConfigError, match=r"token_file .*nowhere\.token: cannot read"):
        missing.metrics_token()
    (tmp_path / "empty.token").write_text("\n", encoding="utf-8")
    empty = make_config(tmp_path, metrics={"token_file": "empty.token"})
    with pytest.raises(ConfigError, match="the file is empty"):
        empty.metrics_token()
    lines = {line.what: line for line in run_checks(missing)}
    assert not lines["metrics"].ok


def test_with_a_listener_of_their_own_the_web_port_serves_no_metrics(tmp_path) -> None:
    client = client_for(tmp_path, host="127.0.0.1", port=free_port())
    assert client.get("/metrics").status_code == 404
    assert client.get("/healthz").status_code == 200  # `inboxd check` still knows the web port


def check_lines(cfg: Config) -> dict[str, object]:
    return {line.what: line for line in run_checks(cfg)}


def test_check_warns_when_metrics_are_open_beyond_loopback(tmp_path) -> None:
    exposed = make_config(tmp_path, web={"host": "0.0.0.0", "port": free_port()})
    line = check_lines(exposed)["metrics"]
    assert line.warn and "open to anyone" in line.detail and "[metrics] token" in line.fix
    guarded = make_config(
        tmp_path, web={"host": "0.0.0.0", "port": free_port()}, metrics={"token": "t"}
    )
    line = check_lines(guarded)["metrics"]
    assert line.ok and not line.warn and "token required" in line.detail
    local = make_config(tmp_path)
    assert not check_lines(local)["metrics"].warn


def test_a_running_daemon_serves_metrics_on_their_own_port_behind_a_token(tmp_path) -> None:
    metrics_port = free_port()
    config = serve_config(
        tmp_path, metrics={"host": "127.0.0.1", "port": metrics_port, "token": "tok-123"}
    )
    with serving(tmp_path, config) as server:
        base = f"http://127.0.0.1:{metrics_port}"

        def healthy() -> httpx.Response | None:
            try:
                return httpx.get(f"{base}/healthz", timeout=10)
            except httpx.TransportError:
                return None

        assert wait_until(healthy, what="/healthz on the metrics port").json() == {"status": "ok"}
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        answer = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer tok-123"})
        assert answer.status_code == 200 and "inboxd_smtp_accepted_total" in answer.text
        web = httpx.get(f"http://127.0.0.1:{server.web_port}/metrics", timeout=10)
        assert web.status_code == 404
        # `inboxd check` beside it: every port is a healthy inboxd, nothing fails.
        result = CliRunner().invoke(cli_app, ["check", "--config", str(server.config_path)])
        assert "metrics listener" in result.output
        assert "FAIL" not in result.output, result.output
