"""A real Dovecot IMAP server for the tests: loopback port, throwaway config and mailbox.

`dovecot` (the fixture) writes a dovecot.conf under tmp_path, starts `dovecot -F` as a
subprocess and stops it afterwards; tests may stop and start it in between to play a
server restart. One user, a passwd-file, a Maildir, plaintext login without TLS.

Dovecot refuses to run its login processes as root and to give root mail access, so
as root (CI containers) logins run as `dovenull` (or `nobody`) and the mailbox belongs to
`nobody`, in a directory of its own outside tmp_path (pytest makes tmp_path 0700, which
`nobody` cannot enter). As any other user, everything runs as that user inside tmp_path.
The config uses Dovecot 2.3 syntax (Debian 12's dovecot-imapd).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import require
from imapclient import IMAPClient


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    """One running (or stopped) Dovecot; `client()` logs in as the test user."""

    binary: str
    root: Path
    home: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "support"
    password: str = "s3cret-pw"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    def imap_config(self, **overrides: object) -> dict[str, object]:
        """The [imap] section for make_config(), pointing at this server."""
        section: dict[str, object] = {
            "enabled": True,
            "host": self.host,
            "port": self.port,
            "ssl": False,
            "username": self.user,
            "password": self.password,
            "poll_seconds": 1,
        }
        return {**section, **overrides}

    def write_config(self) -> None:
        (self.root / "base").mkdir(parents=True, exist_ok=True)
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        me = pwd.getpwuid(os.getuid())
        if os.getuid() == 0:
            mail = pwd.getpwnam("nobody")
            login = _first_user("dovenull", "nobody")
            internal, internal_group = "root", "root"
        else:
            mail, login = me, me.pw_name
            internal, internal_group = me.pw_name, _group_name(me.pw_gid)
        (self.root / "users").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{mail.pw_uid}:{mail.pw_gid}::{self.home}\n"
        )
        self.conf.write_text(
            f"""\
protocols = imap
listen = {self.host}
base_dir = {self.root / "base"}
state_dir = {self.root / "state"}
log_path = {self.log}
instance_name = inboxd-test-{self.port}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {self.root / "users"}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {self.root / "users"}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
        )

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it greets on its port."""
        assert self.proc is None, "already running"
        with open(self.root / "stderr.txt", "ab") as stderr:
            self.proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own process group, so stop() can end it all
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start; its log:\n{self._log_tail()}")

    def stop(self, graceful: bool = True) -> None:
        """Stop the server and drop every client connection, as a real restart does."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if graceful and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The master leaves running imap processes serving their clients; end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            client.login(self.user, self.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(self, folder: str, *messages: bytes, flags: tuple[bytes, ...] = ()) -> None:
        """Deliver messages into `folder` (created if missing), as an MTA or MUA would."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw, flags=flags)

    def flags(self, folder: str = "INBOX") -> dict[bytes, tuple[bytes, ...]]:
        """Message-ID -> flags of every message in `folder`, read without touching \\Seen."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            response = client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            result = {}
            for data in response.values():
                header = data.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]")
                if header is None:  # expunged by the poller while we looked
                    continue
                msgid = header.split(b":", 1)[1].strip() if b":" in header else b""
                result[msgid] = tuple(data[b"FLAGS"])
            return result

    def _log_tail(self) -> str:
        parts = []
        for name in ("dovecot.log", "stderr.txt"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


def _first_user(*names: str) -> str:
    for name in names:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError(f"none of the users {names} exists")


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@pytest.fixture(name="dovecot")
def dovecot_server(tmp_path: Path) -> Iterator[Dovecot]:
    """A running Dovecot with one empty mailbox; stopped (and its mail removed) afterwards."""
    binary = find_dovecot()
    require(binary is not None, "dovecot not installed (apt-get install dovecot-imapd)")
    assert binary is not None
    root = tmp_path / "dovecot"
    root.mkdir()
    if os.getuid() == 0:
        home = Path(tempfile.mkdtemp(prefix="inboxd-dovecot-"))
        nobody = pwd.getpwnam("nobody")
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
    else:
        home = root / "home"
        home.mkdir()
    server = Dovecot(binary=binary, root=root, home=home, port=free_port())
    server.write_config()
    server.start()
    try:
        yield server
    finally:
        server.stop(graceful=False)
        if os.getuid() == 0:
            shutil.rmtree(home, ignore_errors=True)
