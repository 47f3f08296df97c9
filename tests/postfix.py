"""A real Postfix for the tests: loopback ports, a throwaway config, queue and log.

`postfix_instance(transport)` writes main.cf and master.cf into a directory of its own,
starts Postfix with `postfix -c DIR start` and stops and removes it afterwards. Its smtpd listens on
a free loopback port; `transport` entries (address or domain → `lmtp:inet:…` or
`smtp:[…]:…`) say where it delivers, as a site's `transport_maps` would; anything else
goes to the `error` transport, so the test Postfix never sends a packet beyond 127.0.0.1
and never asks DNS.

Postfix's master runs as root and its daemons as `postfix`, which must be able to enter
the directory: it lives under /tmp with mode 0755, not in pytest's 0700 tmp_path. Logs
go to `maillog` in that directory (Postfix 3.4+ `maillog_file`, no syslog needed).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conftest import require

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def find_postfix() -> str | None:
    return shutil.which("postfix") or next(
        (p for p in ("/usr/sbin/postfix", "/usr/local/sbin/postfix") if os.path.exists(p)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Postfix:
    """One throwaway Postfix instance; `send()` hands it mail as any client would."""

    binary: str
    root: Path
    port: int
    transport: dict[str, str] = field(default_factory=dict)
    relay_domains: tuple[str, ...] = ("example.com",)
    running: bool = False

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def write_config(self) -> None:
        self.conf.mkdir(parents=True, exist_ok=True)
        for sub in ("queue", "data"):
            (self.root / sub).mkdir(exist_ok=True)
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        routes = ", ".join(f"{key}={value}" for key, value in self.transport.items())
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.root),
            "myhostname": "mx.test.example",
            "mydomain": "test.example",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "mydestination": "",
            "relay_domains": ", ".join(self.relay_domains),
            "transport_maps": f"inline:{{ {routes} }}" if routes else "",
            # Nothing leaves loopback: whatever no transport entry names bounces here.
            "default_transport": "error:5.7.1 the test Postfix delivers only to its transports",
            "relay_transport": "error:5.7.1 the test Postfix delivers only to its transports",
            "relayhost": "",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "lmtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            # Retry deferred mail quickly: a test restarts inboxd and waits for the queue.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        (self.conf / "main.cf").write_text(
            "".join(f"{key} = {value}\n" for key, value in main.items()), encoding="utf-8"
        )
        (self.conf / "master.cf").write_text(
            MASTER_CF.format(listen=f"127.0.0.1:{self.port}"), encoding="utf-8"
        )

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        # Postfix prints to stderr only on a terminal; its reasons are in the maillog.
        return subprocess.run(
            [self.binary, "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> None:
        self.write_config()
        done = self._postfix("start")
        if done.returncode != 0:
            raise RuntimeError(f"postfix start failed: {done.stderr}\n{self.log()}")
        self.running = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn,
            ):
                if conn.recv(512).startswith(b"220"):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"Postfix did not answer on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        if self.running:
            self._postfix("stop")
            self.running = False

    def flush(self) -> None:
        """Try every deferred message now (`postqueue -f`), as an admin would."""
        postqueue = shutil.which("postqueue") or "/usr/sbin/postqueue"
        subprocess.run(
            [postqueue, "-c", str(self.conf), "-f"], capture_output=True, timeout=60, check=False
        )

    def log(self) -> str:
        try:
            return self.maillog.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def deliveries(self, status: str = "sent") -> list[str]:
        """The maillog's delivery lines with this status (sent, deferred, bounced)."""
        return [line for line in self.log().splitlines() if f"status={status}" in line]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60) -> list[str]:
        """Wait until `count` maillog lines match `pattern`; return them."""
        deadline = time.monotonic() + timeout
        found: list[str] = []
        while time.monotonic() < deadline:
            found = [line for line in self.log().splitlines() if re.search(pattern, line)]
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(
            f"{count} maillog line(s) matching {pattern!r} expected, {len(found)} seen:\n"
            + self.log()[-4000:]
        )

    def send(self, raw: bytes, rcpt: str, sender: str = "carol@example.org") -> None:
        import smtplib

        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.sendmail(sender, [rcpt], raw)


@contextlib.contextmanager
def postfix_instance(transport: Mapping[str, str]) -> Iterator[Postfix]:
    """A started Postfix delivering by `transport`; stopped and removed afterwards."""
    binary = find_postfix()
    require(binary is not None, "Postfix is not installed (Debian package postfix)")
    require(os.geteuid() == 0, "Postfix's master must start as root")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        require(False, "the postfix user does not exist (Debian package postfix)")
    assert binary is not None
    root = Path(tempfile.mkdtemp(prefix="inboxd-postfix-", dir="/tmp"))
    root.chmod(0o755)
    mta = Postfix(binary, root, free_port(), dict(transport))
    try:
        mta.start()
        yield mta
    finally:
        mta.stop()
        shutil.rmtree(root, ignore_errors=True)
