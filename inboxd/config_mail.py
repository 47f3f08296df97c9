"""config_mail.py: the `[outbound]` table, how inboxd sends the mail it writes: the relay,
retries, the size of files a notification carries, and whether an HTML part goes with the
plain text.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from inboxd.config_base import Section

Port = Annotated[int, Field(ge=1, le=65535)]


class OutboundSection(Section):
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
    # Customer files attached to an agent's notification, together (the rest are named).
    notify_attachments_bytes: int = Field(default=10_485_760, ge=0)
    # An HTML alternative beside every plain text (links, quotes, the signature set off);
    # off = plain text only, byte for byte the same text either way.
    html: bool = True
