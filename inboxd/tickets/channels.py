"""channels.py: how a request reached support (SPEC §10.7). Kept apart from the code that
opens tickets so that the CLI's help can name them without importing the database."""

from __future__ import annotations

CHANNELS = ("phone", "email", "web", "chat", "walk-in", "other")
