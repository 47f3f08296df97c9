"""checks.py: `inboxd check` — reach every configured server and say what works.

Each check returns one line: what was tried, what happened, and for a failure the fix to
try. Nothing here changes anything (the database check connects but does not migrate).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import shutil
import smtplib
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from inboxd import db
from inboxd.config import Config
from inboxd.customers.organizations import check_organizations
from inboxd.daemon.sender import open_relay
from inboxd.errors import InboxdError, PortInUse
from inboxd.workflow.rules import load_rules
from inboxd.workflow.sla import service_levels


@dataclass(frozen=True)
class CheckLine:
    what: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False  # works, but the admin should know (printed as WARN, not a failure)


def run_checks(cfg: Config) -> Iterator[CheckLine]:
    """Every check that applies to this configuration, in a sensible order."""
    yield _workflow(cfg)
    yield _teams(cfg)
    yield _database(cfg)
    yield _disk(cfg)
    if cfg.smtp.enabled:
        yield _listen_port(cfg, cfg.smtp.host, cfg.smtp.port, "smtp listener")
    if cfg.web.enabled:
        yield _listen_port(cfg, cfg.web.host, cfg.web.port, "web")
    if cfg.metrics.own_listener:
        yield _listen_port(cfg, cfg.metrics.host, cfg.metrics.port, "metrics listener")
    yield _metrics_access(cfg)
    if cfg.imap.enabled:
        yield _imap(cfg)
    if cfg.outbound.mode == "smtp":
        yield _relay(cfg)
    else:
        yield CheckLine(
            "outbound", True, f"file mode: mail is written to {cfg.data_dir / 'outbox'}"
        )
    yield agent_trust(cfg)


def _metrics_access(cfg: Config) -> CheckLine:
    """Who can read /metrics: a WARN when anybody who reaches a non-loopback port can."""
    try:
        token = cfg.metrics_token()
    except InboxdError as exc:
        return CheckLine("metrics", False, str(exc), "fix or remove [metrics] token_file")
    if cfg.metrics.own_listener:
        where = f"{cfg.metrics.host}:{cfg.metrics.port}"
        host = cfg.metrics.host
    elif cfg.web.enabled:
        where = f"the web listener {cfg.web.host}:{cfg.web.port}"
        host = cfg.web.host
    else:
        return CheckLine("metrics", True, "not served ([web] disabled, no [metrics] host)")
    if token:
        return CheckLine("metrics", True, f"/metrics on {where}, bearer token required")
    if _loopback(host):
        return CheckLine("metrics", True, f"/metrics on {where} (loopback only), no token")
    return CheckLine(
        "metrics",
        True,
        f"/metrics on {where} is open to anyone who can reach it",
        'set [metrics] token (or token_file), or [metrics] host = "127.0.0.1"',
        warn=True,
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def agent_trust(cfg: Config) -> CheckLine:
    """Issue 19: without an authenticating MX, a forwarded notification plus a forged
    From: of its agent runs commands; the admin should know what the commands rest on."""
    if cfg.trust.trusted_authserv_ids:
        ids = ", ".join(cfg.trust.trusted_authserv_ids)
        return CheckLine("agent mail", True, f"commands need DMARC or aligned DKIM pass from {ids}")
    return CheckLine(
        "agent mail",
        True,
        "commands by mail rest on the reply token and the From: line alone",
        "set [trust] trusted_authserv_ids to the authserv-id your MX writes in "
        "Authentication-Results, so agents' mail must also pass DMARC or aligned DKIM",
        warn=True,
    )


def _workflow(cfg: Config) -> CheckLine:
    """Calendars, SLA policies and rules parse (their conditions, regexes, commands)."""
    try:
        check_organizations(cfg)
        levels = service_levels(cfg)
        rules = load_rules(cfg)
    except InboxdError as exc:
        return CheckLine(
            "workflow", False, str(exc), "fix the entry named; inboxd serve refuses it"
        )
    return CheckLine(
        "workflow",
        True,
        f"{len(levels.calendars)} calendars, {len(levels.policies)} SLA policies,"
        f" {len(rules)} rules, {len(cfg.organizations)} organizations",
    )


def _teams(cfg: Config) -> CheckLine:
    """`[[teams]]` (SPEC §10.9): rules that name a team that is not one (every firing
    would be refused), and team members who are no active agent (they would get no mail)."""
    if not cfg.teams:
        return CheckLine("teams", True, "none configured: #team takes any lowercase word")
    names = cfg.team_names
    try:
        rules = load_rules(cfg)
    except InboxdError:
        rules = []  # the workflow line reports it
    bad_rules = [
        f"rule {rule.name!r}: {call.line}"
        for rule in rules
        for call in rule.calls
        if call.name == "team" and call.args and call.args[0].lower() not in (*names, "none")
    ]
    if bad_rules:
        return CheckLine(
            "teams",
            False,
            "; ".join(bad_rules) + f" (teams are {', '.join(names)})",
            "use one of the [[teams]] names, or add the team",
        )
    known = _active_agents(cfg)
    members = {a for t in cfg.teams for a in t.agents}
    configured = {a.email for a in cfg.agents}  # added at start-up
    missing = sorted(members - known - configured) if known is not None else []
    summary = ", ".join(
        f"{t.name} ({len(t.agents)} agents" + (f", lead {t.lead}" if t.lead else "") + ")"
        for t in cfg.teams
    )
    if missing:
        return CheckLine(
            "teams",
            True,
            f"{summary}; not active agents: {', '.join(missing)}",
            "inboxd agents add EMAIL --name NAME for each, or take them out of [[teams]]",
            warn=True,
        )
    return CheckLine("teams", True, summary)


def _active_agents(cfg: Config) -> set[str] | None:
    """The active agents' addresses in the database; None when it cannot be read (the
    database line says why). Never creates a database."""
    path = db.sqlite_path(cfg.database_url)
    if path is not None and not path.exists():
        return None
    try:
        engine = create_engine(cfg.database_url)
        with engine.connect() as conn:
            rows = conn.execute(text("select email from agent where active")).all()
        engine.dispose()
    except Exception:  # unreachable, or not migrated yet: the database line reports it
        return None
    return {str(r[0]) for r in rows}


def _database(cfg: Config) -> CheckLine:
    url = cfg.database_url
    path = db.sqlite_path(url)
    if path is not None and not path.exists():
        # Connecting would create an empty file: a check never creates a database.
        return CheckLine("database", False, f"no database at {path}", "run `inboxd init`")
    try:
        engine = create_engine(
            url, connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {}
        )
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        fix = (
            "run `inboxd init` to create data_dir and the database"
            if url.startswith("sqlite")
            else "check [inboxd] database_url, that the server runs and the user may log in"
        )
        return CheckLine("database", False, _short(exc), fix)
    shown = url.split("@")[-1] if "@" in url else url
    return CheckLine("database", True, f"connected to {shown}")


def _disk(cfg: Config) -> CheckLine:
    try:
        free = shutil.disk_usage(cfg.data_dir if cfg.data_dir.exists() else cfg.base_dir).free
    except OSError as exc:
        return CheckLine("disk", False, str(exc), "create data_dir or fix its permissions")
    need = cfg.smtp.min_free_disk_mb * 1024 * 1024
    mb = free // (1024 * 1024)
    if free < need:
        return CheckLine(
            "disk",
            False,
            f"{mb} MB free in data_dir",
            f"free space: mail is refused below {cfg.smtp.min_free_disk_mb} MB",
        )
    return CheckLine("disk", True, f"{mb} MB free in data_dir")


def _listen_port(cfg: Config, host: str, port: int, what: str) -> CheckLine:
    busy = busy_port(cfg, host, port)
    if busy is None:
        return CheckLine(what, True, f"{host}:{port} is free to listen on")
    if busy.healthy_inboxd:
        # The daemon we are checking holds its own port: that is the good case.
        return CheckLine(what, True, f"{host}:{port} is {busy.owner}")
    return CheckLine(
        what,
        False,
        f"cannot listen on {host}:{port}: {busy.owner}",
        "stop what uses the port or change the port"
        if not busy.inboxd
        else "the inboxd there is not healthy: see its log (data_dir/inboxd.log)",
    )


@dataclass(frozen=True)
class BusyPort:
    """Who holds a port inboxd wants: said in words, and whether it is inboxd itself."""

    owner: str
    inboxd: bool = False
    healthy_inboxd: bool = False


def busy_port(cfg: Config, host: str, port: int) -> BusyPort | None:
    """None if inboxd could listen on host:port now; else who holds it.

    A running inboxd is recognised by its /healthz (on `[web]` or `[metrics]`), and on the
    SMTP port by the `inboxd` in its greeting, so `inboxd check` beside a running daemon
    is green and a second `inboxd serve` says why it cannot start."""
    if port == 0:
        return None  # any free port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As asyncio and uvicorn bind: connections of a stopped daemon still in TIME_WAIT
        # do not keep the next one from listening; a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return BusyPort(exc.strerror or str(exc))
        else:
            return None
    if (host, port) in http_listeners(cfg):
        health = healthz_at(host, port)
        if health is None:
            return BusyPort("in use by something else (no inboxd /healthz there)")
    else:
        if not _smtp_greets_as_inboxd(host, port):
            return BusyPort("in use by something else")
        health = healthz(cfg)
        if health is None:
            return BusyPort("in use by a running inboxd (its SMTP greeting answered)", True, True)
    if health.get("status") == "ok":
        return BusyPort("in use by a running inboxd (healthy: /healthz answered)", True, True)
    detail = health.get("database") or health.get("status")
    return BusyPort(f"in use by a running inboxd that is not healthy (/healthz: {detail})", True)


def http_listeners(cfg: Config) -> list[tuple[str, int]]:
    """Where a running daemon answers /healthz: the web listener, and `[metrics]`'s own."""
    found = []
    if cfg.web.enabled:
        found.append((cfg.web.host, cfg.web.port))
    if cfg.metrics.own_listener:
        found.append((cfg.metrics.host, cfg.metrics.port))
    return found


def healthz(cfg: Config, timeout: float = 3) -> dict[str, object] | None:
    """The JSON of the running daemon's /healthz, or None (no HTTP listener, no answer)."""
    listeners = http_listeners(cfg)
    return healthz_at(*listeners[0], timeout=timeout) if listeners else None


def healthz_at(host: str, port: int, timeout: float = 3) -> dict[str, object] | None:
    """The JSON of /healthz on host:port, or None if nothing like inboxd answers there."""
    host = _connect_host(host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = answer.read(4096)
    except urllib.error.HTTPError as exc:  # 503: inboxd, with its database down
        body = exc.read(4096)
    except (OSError, ValueError):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "status" in data else None


def listeners_free(cfg: Config) -> None:
    """Raise PortInUse (exit 2, one line) if a port `serve` would listen on is taken."""
    wanted = []
    if cfg.smtp.enabled:
        wanted.append(("SMTP" if not cfg.smtp.lmtp else "LMTP", cfg.smtp.host, cfg.smtp.port))
    if cfg.web.enabled:
        wanted.append(("web", cfg.web.host, cfg.web.port))
    if cfg.metrics.own_listener:
        wanted.append(("metrics", cfg.metrics.host, cfg.metrics.port))
    for what, host, port in wanted:
        if (busy := busy_port(cfg, host, port)) is not None:
            raise PortInUse(f"cannot listen on {host}:{port} ({what}): {busy.owner}")


def _smtp_greets_as_inboxd(host: str, port: int) -> bool:
    try:
        with socket.create_connection((_connect_host(host), port), timeout=3) as conn:
            greeting = conn.recv(512)
    except OSError:
        return False
    return greeting.startswith(b"220 ") and b" inboxd" in greeting


def _connect_host(host: str) -> str:
    """Where to reach a listener bound to `host` (a wildcard is reached on loopback)."""
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
    return wildcard.get(host, host)


def _imap(cfg: Config) -> CheckLine:
    try:
        from inboxd.daemon import imap

        detail = imap.check_login(cfg)
    except InboxdError as exc:
        return CheckLine("imap", False, str(exc))
    return CheckLine("imap", True, detail)


def _relay(cfg: Config) -> CheckLine:
    out = cfg.outbound
    where = f"{out.host}:{out.port}"
    try:
        with open_relay(cfg, timeout=10):
            pass
    except smtplib.SMTPAuthenticationError as exc:
        return CheckLine(
            "relay",
            False,
            f"{where}: login refused ({exc.smtp_code})",
            "check [outbound] username and password_env/password_file",
        )
    except (OSError, smtplib.SMTPException, InboxdError) as exc:
        return CheckLine(
            "relay",
            False,
            f"{where}: {_short(exc)}",
            "check [outbound] host/port/ssl/starttls and that the relay runs",
        )
    return CheckLine(
        "relay",
        True,
        f"{where} answered EHLO" + (" and accepted the login" if out.username else ""),
    )


def _short(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text_[0] if text_ else ''}"[:300]
