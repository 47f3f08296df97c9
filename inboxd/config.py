"""config.py: read inboxd.toml once into a frozen Config. The only TOML reader.

Unknown keys and bad values stop start-up with a message naming the key, the value and
what was expected. Secrets may be inline, `*_env` (an environment variable's name) or
`*_file` (a path); `secret()` resolves them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from inboxd.config_base import Section as _Section
from inboxd.config_base import address as _address
from inboxd.config_includes import with_rules_files
from inboxd.config_mail import OutboundSection
from inboxd.config_ops import LogSection, MetricsSection
from inboxd.config_teams import TeamEntry
from inboxd.errors import ConfigError

ENV_VAR = "INBOXD_CONFIG"
DEFAULT_NAME = "inboxd.toml"
DEFAULT_TEXT_PATH = Path(__file__).with_name("default_config.toml")
EMBEDDED = "embedded defaults"  # Config.source when no file was found

Port = Annotated[int, Field(ge=1, le=65535)]
# Listeners may use port 0: "any free port" (tests; the daemon logs the one it got).
ListenPort = Annotated[int, Field(ge=0, le=65535)]


class InboxdSection(_Section):
    support_address: str = "support@example.com"
    support_name: str = "Example Support"
    aliases: tuple[str, ...] = ()
    data_dir: str = "data"
    database_url: str = ""
    database_timeout_seconds: float = Field(default=30, gt=0)
    web_base_url: str = "http://127.0.0.1:8025"
    secret_key: str = ""
    secret_key_env: str = ""
    secret_key_file: str = "data/secret.key"
    subject_tag: str = "[#{id}]"
    plus_addressing: bool = True
    templates_dir: str = ""
    acknowledge: bool = True
    max_acks_per_sender_per_hour: int = Field(default=3, ge=0)
    # How often the clock looks at what changed and what fell due: SLA warnings and
    # breaches (SPEC §10.2), rules (§10.3).
    clock_seconds: float = Field(default=5, gt=0, le=60)
    rules_files: tuple[str, ...] = ()
    max_ccs_per_message: int = Field(default=20, ge=0)

    @field_validator("support_address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_address(v) for v in value)

    @field_validator("subject_tag")
    @classmethod
    def _check_tag(cls, value: str) -> str:
        if value.count("{id}") != 1:
            raise ValueError("expected a text containing {id} once, like [#{id}]")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql")):
            raise ValueError(
                'expected "" (SQLite in data_dir), sqlite:///PATH or postgresql+psycopg://...'
            )
        return value


class SmtpSection(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: ListenPort = 2525
    max_message_bytes: int = Field(default=26_214_400, ge=1024)
    max_recipients: int = Field(default=50, ge=1, le=1000)
    lmtp: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_connections: int = Field(default=1000, ge=1)
    max_connections_per_ip: int = Field(default=20, ge=1)
    idle_seconds: int = Field(default=300, ge=1)
    command_seconds: int = Field(default=120, ge=1)
    min_data_bytes_per_second: int = Field(default=1024, ge=0)
    session_seconds: int = Field(default=1800, ge=1)
    min_free_disk_mb: int = Field(default=200, ge=0)
    # Bare LF line endings are accepted (and made CRLF) only from these networks: local
    # scripts (smtplib with EmailMessage bytes) and your own MTA, as Postfix exempts
    # $mynetworks. From anyone else they are refused, so no smuggling variant passes.
    trusted_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    @field_validator("trusted_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"{network!r} is not a network: expected CIDR like 10.0.0.0/8"
                ) from None
        return value


class ImapSection(_Section):
    enabled: bool = False
    host: str = ""
    port: Port = 993
    ssl: bool = True
    username: str = ""
    password: str = ""
    password_env: str = ""
    password_file: str = ""
    folders: tuple[str, ...] = ("INBOX",)
    idle: bool = True
    poll_seconds: int = Field(default=60, ge=1)
    after_ingest: str = "seen"

    @field_validator("after_ingest")
    @classmethod
    def _check_after(cls, value: str) -> str:
        if value in ("seen", "delete") or (value.startswith("move:") and len(value) > 5):
            return value
        raise ValueError('expected "seen", "delete" or "move:<folder>"')


class WebSection(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8025
    # All files attached to one reply in the web's reply box, together.
    max_upload_bytes: int = Field(default=10_485_760, ge=0)


class AgentEntry(_Section):
    email: str
    name: str = ""
    role: Literal["admin", "agent"] = "agent"
    team: str | None = None

    @field_validator("email")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return _address(value)


class LoopsSection(_Section):
    """The header-blind loop breaker (inboxd/agents/loop_guard.py). 0 turns a check off."""

    window_minutes: int = Field(default=10, ge=1)
    max_new_tickets_per_sender: int = Field(default=5, ge=0)
    max_messages_per_sender: int = Field(default=20, ge=0)
    max_new_tickets_per_domain: int = Field(default=200, ge=0)
    max_same_text_per_sender: int = Field(default=3, ge=0)
    max_notifications_per_agent_per_minute: int = Field(default=10, ge=0)


class TrustSection(_Section):
    trusted_authserv_ids: tuple[str, ...] = ()
    require_authentication: bool = False


# -- workflow (SPEC §10): calendars and service levels ---------------------------------

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: str) -> int:
    """`90m`, `4h` or `1h30m` as minutes (of a policy's clock)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r}: expected a duration like 30m, 4h or 1h30m")
    hours, mins = (int(g or 0) for g in match.groups())
    return hours * 60 + mins


def _duration_or_none(value: str) -> str:
    if value:
        parse_duration(value)
    return value


# "" (none) or a duration like 30m, 4h, 1h30m; checked at start-up.
Duration = Annotated[str, AfterValidator(_duration_or_none)]


class CalendarEntry(_Section):
    """`[[calendars]]`: checked here, turned into arithmetic by workflow/calendars.py."""

    name: str
    timezone: str = "UTC"
    hours: dict[str, tuple[str, ...]] = {"mon-fri": ("09:00-17:00",)}  # noqa: RUF012 (a frozen pydantic model)
    holidays: tuple[str, ...] = ()
    working_days: tuple[str, ...] = ()
    # A country's public holidays and make-up working days (调休) from the `holidays`
    # package: "CN", "DE", "US"... (a subdivision after a dash: "DE-BY"). Added to the lists.
    holidays_from: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,50}", value):
            raise ValueError("expected a short name of letters, digits, - _ or .")
        return value


class SlaEntry(_Section):
    """`[[sla]]`: one policy; targets are "" (none) or durations of its calendar's clock."""

    name: str
    when: tuple[str, ...] = ()
    calendar: str = ""
    first_reply: Duration = ""
    next_reply: Duration = ""
    resolution: Duration = ""
    pause_on: tuple[str, ...] = ("pending", "on-hold")
    warn_before: Duration = ""

    @field_validator("pause_on")
    @classmethod
    def _check_pause(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for status in value:
            if status not in ("new", "open", "pending", "on-hold"):
                raise ValueError(
                    f"{status!r}: expected unresolved statuses (new, open, pending, on-hold)"
                )
        return value

    def minutes(self, target: str) -> int | None:
        value = getattr(self, target)
        return parse_duration(value) if value else None


RULE_EVENTS = ("created", "customer-message", "agent-reply", "note", "assigned")
RULE_EVENTS += ("sla-warning", "sla-breach", "csat")
RULE_SINCE = ("created", "customer-message", "agent-reply")


def _event_name(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value in allowed or (value.startswith(("status:", "priority:")) and value.split(":")[1]):
        return value
    names = ", ".join(allowed)
    raise ValueError(f"expected {what}: {names}, status:S or priority:P")


class RuleEntry(_Section):
    """`[[rules]]` (SPEC §10.3): an event rule (`on`) or a time rule (`after` + `since`)."""

    name: str
    on: str = ""
    after: Duration = ""
    since: str = ""
    calendar: str = ""
    when: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    run: str
    max_runs: int = Field(default=0, ge=0)

    @field_validator("on")
    @classmethod
    def _check_on(cls, value: str) -> str:
        return _event_name(value, RULE_EVENTS, "an event") if value else value

    @field_validator("since")
    @classmethod
    def _check_since(cls, value: str) -> str:
        return _event_name(value, RULE_SINCE, "an event to count from") if value else value

    @model_validator(mode="after")
    def _one_kind(self) -> RuleEntry:
        if bool(self.on) == bool(self.after):
            raise ValueError(
                f"rule {self.name!r}: give either on (an event rule) or after + since (a time rule)"
            )
        if self.after and not self.since:
            raise ValueError(f"rule {self.name!r}: a time rule needs since (created, ...)")
        return self


class KbSection(_Section):
    """The knowledge base and its suggestions in acknowledgements (SPEC §10.6)."""

    enabled: bool = True
    dir: str = ""  # "" = data_dir/kb
    suggestions: int = Field(default=3, ge=0, le=10)
    min_score: float = Field(default=4.0, ge=0)


class CsatSection(_Section):
    """Satisfaction surveys (SPEC §10.4)."""

    enabled: bool = False
    after: Annotated[Duration, Field(min_length=2)] = "24h"  # after solved, if still solved
    scale: Literal["good-bad", "1-5"] = "good-bad"
    min_days_between: int = Field(default=7, ge=0)  # one survey per customer in this many days


class OrganizationEntry(_Section):
    """`[[organizations]]` (SPEC §10.7): addresses at or under `domains` belong to `name`;
    customers/organizations.py refuses free-mail domains and public suffixes at start-up."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
    domains: Annotated[tuple[str, ...], Field(min_length=1)]


class Config(_Section):
    """The whole configuration, frozen. `base_dir` anchors every relative path."""

    inboxd: InboxdSection = InboxdSection()
    smtp: SmtpSection = SmtpSection()
    imap: ImapSection = ImapSection()
    outbound: OutboundSection = OutboundSection()
    web: WebSection = WebSection()
    metrics: MetricsSection = MetricsSection()
    log: LogSection = LogSection()
    agents: tuple[AgentEntry, ...] = ()
    trust: TrustSection = TrustSection()
    calendars: tuple[CalendarEntry, ...] = ()
    sla: tuple[SlaEntry, ...] = ()
    rules: tuple[RuleEntry, ...] = ()
    kb: KbSection = KbSection()
    csat: CsatSection = CsatSection()
    loops: LoopsSection = LoopsSection()
    teams: tuple[TeamEntry, ...] = ()
    organizations: tuple[OrganizationEntry, ...] = ()
    base_dir: Path = Path(".")
    source: str = EMBEDDED

    @model_validator(mode="after")
    def _teams_distinct(self) -> Config:
        names = [t.name for t in self.teams]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"[[teams]]: the name {', '.join(twice)} is used twice")
        ours = {self.inboxd.support_address, *self.inboxd.aliases}
        emails = [t.email for t in self.teams if t.email]
        for team in self.teams:
            if team.email in ours:
                raise ValueError(
                    f"team {team.name!r}: email {team.email!r} is already the support address"
                    " or an alias"
                )
            if team.email and emails.count(team.email) > 1:
                raise ValueError(f"[[teams]]: the email {team.email!r} is used by two teams")
        return self

    @property
    def team_names(self) -> tuple[str, ...]:
        """The configured teams' names; empty when no team is configured."""
        return tuple(t.name for t in self.teams)

    def team(self, name: str | None) -> TeamEntry | None:
        return next((t for t in self.teams if t.name == name), None) if name else None

    def path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def data_dir(self) -> Path:
        return self.path(self.inboxd.data_dir)

    def metrics_token(self) -> str:
        """The token /metrics asks for ("" = none): `[metrics] token`, or the first line
        of `token_file`; a file that cannot be read, or is empty, is a ConfigError."""
        if not self.metrics.token_file:
            return self.metrics.token
        path = self.path(self.metrics.token_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"[metrics] token_file {path}: cannot read: {exc.strerror}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise ConfigError(f"[metrics] token_file {path}: the file is empty")
        return token

    @property
    def database_url(self) -> str:
        url = self.inboxd.database_url
        return url or f"sqlite:///{self.data_dir / 'inboxd.db'}"

    @property
    def kb_dir(self) -> Path:
        return self.path(self.kb.dir) if self.kb.dir else self.data_dir / "kb"

    @property
    def support_addresses(self) -> tuple[str, ...]:
        """Every address inboxd receives for: support@, its aliases, the teams' own."""
        teams = tuple(t.email for t in self.teams if t.email)
        return (self.inboxd.support_address, *self.inboxd.aliases, *teams)


# The system-wide folder; a constant so tests can point it elsewhere.
SYSTEM_DIR = Path("/etc/inboxd")


def search_paths() -> list[Path]:
    """Where a config is looked for when neither --config nor $INBOXD_CONFIG names one,
    in order (SPEC §3): this folder, the user's config folder, the system's."""
    user = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return [Path(DEFAULT_NAME), Path(user) / "inboxd" / DEFAULT_NAME, SYSTEM_DIR / DEFAULT_NAME]


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """--config, else $INBOXD_CONFIG, else the first of `search_paths()` that exists."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(ENV_VAR):
        return Path(env)
    return next((p for p in search_paths() if p.is_file()), None)


def places_looked() -> str:
    """The places `find_config_path` tried, for a message that says where it looked."""
    places = ["--config (not given)", f"${ENV_VAR} (not set)"]
    places += [str(p if p.is_absolute() else Path.cwd() / p) for p in search_paths()]
    return ", ".join(places)


def load(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the configuration; raise ConfigError naming what is wrong."""
    path = find_config_path(explicit)
    if path is None:
        return Config(base_dir=Path.cwd())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file (run `inboxd init`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(data, base_dir=path.resolve().parent, source=str(path))


def from_dict(data: dict[str, Any], *, base_dir: Path, source: str = "<dict>") -> Config:
    """Validate an already-read TOML document."""
    for reserved in ("base_dir", "source"):
        if reserved in data:
            raise ConfigError(f"{source}: unknown key {reserved!r}")
    data = with_rules_files(data, base_dir)
    try:
        return Config(**data, base_dir=base_dir, source=source)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        section, key = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("", loc[0] if loc else "")
        where = f"[{section}] {key}" if section and key else (section or key)
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {where}")
            continue
        expected = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {where} = {err.get('input')!r}: {expected}")
    return "\n".join(lines)


def secret(cfg: Config, section: BaseModel, name: str) -> str:
    """Resolve a secret given inline, as NAME_env or as NAME_file."""
    inline = getattr(section, name, "")
    env_name = getattr(section, f"{name}_env", "")
    file_name = getattr(section, f"{name}_file", "")
    if env_name:
        if env_name not in os.environ:
            raise ConfigError(f"{name}_env = {env_name!r}: no such environment variable is set")
        return os.environ[env_name]
    if inline:
        return str(inline)
    if file_name:
        path = cfg.path(file_name)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{name}_file = {file_name!r}: cannot read {path}: {exc.strerror}"
            ) from None
    return ""
