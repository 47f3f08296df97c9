"""Run the daemon in tests: in a thread of this process, or as `inboxd serve` in a subprocess.

    with running_daemon(rt) as daemon:            # Daemon(rt).run() on its own event loop
        host, port = daemon.smtp_address

    server = ServeProcess(tmp_path, config_dict).start()   # waits until it listens
    server.kill()                                 # SIGKILL: a crash
    server.start()                                # same config, same ports
    assert server.stop() == 0                     # SIGTERM: exit code

Plus `free_port()`, `wait_until()` and `write_toml()`. Everything listens on 127.0.0.1.
Waiting is always "until this is true, or give up after a generous timeout", never "this
must take less than N seconds", so a slow machine makes the suite slower, not red.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import make_config

from inboxd.daemon.serve import Daemon
from inboxd.runtime import Runtime, open_runtime

T = TypeVar("T")

INBOXD = Path(sys.executable).with_name("inboxd")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy, and return that; else fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            name = what or getattr(predicate, "__name__", "the condition")
            raise AssertionError(f"timed out after {timeout} s waiting for {name}")
        time.sleep(interval)


# --- the daemon in a thread ------------------------------------------------------------


class DaemonThread:
    """`Daemon(rt).run()` on an event loop of its own, in a background thread."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.daemon = Daemon(rt)
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="test-daemon", daemon=True)

    def _main(self) -> None:
        try:
            self.exit_code = asyncio.run(self.daemon.run())
        except BaseException as exc:  # reported by start()/stop()
            self.error = exc
            self.daemon.ready.set()

    def start(self, timeout: float = 20.0) -> DaemonThread:
        self._thread.start()
        if not self.daemon.ready.wait(timeout):
            raise AssertionError("the daemon did not become ready")
        if self.error is not None:
            raise AssertionError(f"the daemon failed to start: {self.error!r}") from self.error
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        self.daemon.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("the daemon did not stop")
        if self.error is not None:
            raise AssertionError(f"the daemon crashed: {self.error!r}") from self.error
        return self.exit_code

    @property
    def smtp_address(self) -> tuple[str, int]:
        assert self.daemon.smtp_address is not None, "the SMTP listener is not enabled"
        return self.daemon.smtp_address

    def wake_outbound(self) -> None:
        self.daemon.wake_outbound()


@contextmanager
def running_daemon(rt: Runtime) -> Iterator[DaemonThread]:
    """A started daemon for the duration of the block; stopped (and checked) afterwards."""
    runner = DaemonThread(rt).start()
    try:
        yield runner
    finally:
        code = runner.stop()
        assert code == 0, f"the daemon exited with {code}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """ "" (SQLite in the data dir) or a fresh PostgreSQL schema (conftest's pg_url).

    Import it into a test module to run a test on both databases."""
    return str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else ""


def daemon_runtime(
    base: Path, database_url: str = "", relay: Any = None, **sections: dict[str, Any]
) -> Runtime:
    """`make_config` for a daemon in a test: listener on any free port, web side off,
    and outbound mail through `relay` (a tests.relay.CaptureRelay) when one is given."""
    sections["smtp"] = {"port": 0, **sections.get("smtp", {})}
    sections["web"] = {"enabled": False, **sections.get("web", {})}
    if relay is not None:
        where = {"mode": "smtp", "host": relay.host, "port": relay.port}
        sections["outbound"] = {**where, **sections.get("outbound", {})}
    return open_runtime(make_config(base, database_url, **sections))


@contextmanager
def listening(
    base: Path, relay: Any = None, database_url: str = "", **sections: dict[str, Any]
) -> Iterator[tuple[Runtime, DaemonThread]]:
    """A runtime (see daemon_runtime) and its daemon, running for the block."""
    rt = daemon_runtime(base, database_url, relay, **sections)
    try:
        with running_daemon(rt) as daemon:
            yield rt, daemon
    finally:
        rt.engine.dispose()


# --- `inboxd serve` in a subprocess ----------------------------------------------------


def write_toml(path: Path, data: Mapping[str, Any]) -> Path:
    """Write a config dict (tables of scalars and lists, arrays of tables) as TOML."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str | Path):
            return json.dumps(str(v), ensure_ascii=False)  # a TOML basic string
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines: list[str] = []
    for name, section in data.items():
        if isinstance(section, list):
            for entry in section:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {value(v)}" for k, v in entry.items()]
                lines.append("")
        else:
            lines.append(f"[{name}]")
            lines += [f"{k} = {value(v)}" for k, v in section.items()]
            lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def serve_config(
    base: Path, *, smtp_port: int | None = None, web_port: int | None = None, **sections: Any
) -> dict[str, Any]:
    """A config for `inboxd serve` rooted in `base`: fixed free ports, file-mode outbound."""
    data: dict[str, Any] = {
        "inboxd": {"support_address": "support@example.com", "data_dir": str(base / "data")},
        "smtp": {"host": "127.0.0.1", "port": smtp_port or free_port()},
        "web": {"host": "127.0.0.1", "port": web_port or free_port()},
        "agents": [{"email": "alice@example.com", "name": "Alice", "role": "admin"}],
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


_LISTENING = re.compile(r"(SMTP|LMTP) listening on ([\d.]+):(\d+)")


class ServeProcess:
    """`inboxd serve --config FILE` as a child process; stderr goes to a file we read."""

    def __init__(self, base: Path, config: Mapping[str, Any]) -> None:
        self.base = base
        self.config = config
        self.config_path = write_toml(base / "inboxd.toml", config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path = base / "serve-0.log"

    @property
    def smtp_port(self) -> int:
        return int(self.config["smtp"]["port"])

    @property
    def web_port(self) -> int:
        return int(self.config["web"]["port"])

    def start(self, timeout: float = 30.0) -> ServeProcess:
        """Start the server and wait until its SMTP port accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        self.log_path = self.base / f"serve-{self.runs}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("INBOXD_CONFIG", None)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(INBOXD), "serve", "--config", str(self.config_path)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd=self.base,
            )
        wait_until(self._listening, timeout, 0.05, "inboxd serve to listen")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"inboxd serve exited with {self.proc.returncode}:\n{self.stderr()}"
            )
        if not _LISTENING.search(self.stderr()):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                return True
        except OSError:
            return False

    def stderr(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int, timeout: float = 60.0) -> int:
        """Send `sig` and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"inboxd serve did not exit on signal {sig}:\n{self.stderr()}"
            ) from None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: the clean stop. Returns the exit code."""
        return self.signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash, with no chance to clean up."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def ensure_stopped(self) -> None:
        """For cleanup: kill it if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@contextmanager
def serving(base: Path, config: Mapping[str, Any]) -> Iterator[ServeProcess]:
    """`inboxd serve` for the block; killed on the way out if the test left it running."""
    server = ServeProcess(base, config)
    try:
        yield server.start()
    finally:
        server.ensure_stopped()
