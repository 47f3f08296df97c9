"""config.py: read inboxd.toml once into a frozen Config. The only TOML reader.

Unknown keys and bad values stop start-up with a message naming the key, the value and
what was expected. Secrets may be inline, `*_env` (an environment variable's name) or
`*_file` (a path); `secret()` resolves them.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inboxd.errors import ConfigError

ENV_VAR = "INBOXD_CONFIG"
DEFAULT_NAME = "inboxd.toml"
DEFAULT_TEXT_PATH = Path(__file__).with_name("default_config.toml")

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
Port = Annotated[int, Field(ge=1, le=65535)]
# Listeners may use port 0: "any free port" (tests; the daemon logs the one it got).
ListenPort = Annotated[int, Field(ge=0, le=65535)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError("expected an email address like support@example.com")
    return value.lower()


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


class OutboundSection(_Section):
    mode: Literal["file", "smtp"] = "file"
    host: str = "127.0.0.1"
    port: Port = 25
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password: str = ""
    password_env: str = ""
    password_file: str = ""
    max_attempts: int = Field(default=10, ge=1)
    retry_seconds: float = Field(default=60, gt=0)


class WebSection(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8025


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


class Config(_Section):
    """The whole configuration, frozen. `base_dir` anchors every relative path."""

    inboxd: InboxdSection = InboxdSection()
    smtp: SmtpSection = SmtpSection()
    imap: ImapSection = ImapSection()
    outbound: OutboundSection = OutboundSection()
    web: WebSection = WebSection()
    agents: tuple[AgentEntry, ...] = ()
    trust: TrustSection = TrustSection()
    loops: LoopsSection = LoopsSection()
    base_dir: Path = Path(".")
    source: str = "embedded defaults"

    def path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def data_dir(self) -> Path:
        return self.path(self.inboxd.data_dir)

    @property
    def database_url(self) -> str:
        url = self.inboxd.database_url
        return url or f"sqlite:///{self.data_dir / 'inboxd.db'}"

    @property
    def support_addresses(self) -> tuple[str, ...]:
        return (self.inboxd.support_address, *self.inboxd.aliases)


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """--config, else $INBOXD_CONFIG, else ./inboxd.toml if it exists, else None."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(ENV_VAR):
        return Path(env)
    local = Path(DEFAULT_NAME)
    return local if local.exists() else None


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
