"""config_base.py: what every table of inboxd.toml shares: frozen, no unknown keys, and
how an address is checked. Imported by config.py and the tables kept beside it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def address(value: str) -> str:
    """A mail address, lowercased; else the message the config error shows."""
    if not _ADDRESS.match(value):
        raise ValueError("expected an email address like support@example.com")
    return value.lower()
