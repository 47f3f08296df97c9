"""config_ops.py: the tables an operator sets for running inboxd, not for its mail:
where /metrics and /healthz are served and who may read them, and where log lines go.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from inboxd.config_base import Section

ListenPort = Annotated[int, Field(ge=0, le=65535)]


class MetricsSection(Section):
    """Where /metrics and /healthz are served, and who may read /metrics.

    By default both are routes of the web listener and /metrics is open to whoever can
    reach that port. A host of their own keeps them off a web port that faces agents; a
    token keeps the numbers (queue depths, senders' counts) from anyone without it."""

    host: str = ""  # "" = on [web]'s listener; else a listener of their own on host:port
    port: ListenPort = 9108
    token: str = ""  # if set, /metrics needs "Authorization: Bearer TOKEN"
    token_file: str = ""  # or the token is this file's first line (keeps it out of the config)

    @property
    def own_listener(self) -> bool:
        return bool(self.host)


class LogSection(Section):
    """Where log lines go (inboxd/daemon/logs.py)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    file: str = ""  # "" = data_dir/inboxd.log; "-" = no file (stderr under serve: journald)
    max_bytes: int = Field(default=10_485_760, ge=0)  # rotate at this size; 0 = logrotate's
    backups: int = Field(default=5, ge=0, le=100)
    format: Literal["text", "json"] = "text"
