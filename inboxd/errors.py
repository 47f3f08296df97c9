"""errors.py: the one exception tree. Each edge translates these (CLI: exit 1 or 2)."""

from __future__ import annotations


class InboxdError(Exception):
    """Base of every error inboxd raises on purpose; anything else is a bug."""

    exit_code = 1


class ConfigError(InboxdError):
    """The configuration file is missing a value, has an unknown key or a bad value."""

    exit_code = 2


class NotFound(InboxdError):
    """A ticket, message, agent or quarantine entry named by the user does not exist."""


class Forbidden(InboxdError):
    """The acting agent's role does not allow this: an `agent` works tickets; managing
    agents, teams, rules, quarantine and configuration is for an `admin` (SPEC §10.9).
    Web and API: 403."""


class InvalidValue(InboxdError):
    """An option, filter or field given a value outside the allowed ones; `field` names it
    and the message lists what is allowed (CLI: exit 2, API: 422)."""

    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ParseRejected(InboxdError):
    """A message exceeds the parser's limits (depth, parts, header size, time).

    The message is quarantined with its raw bytes; `reason` says which limit it hit.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DatabaseUnavailable(InboxdError):
    """The database cannot be reached or is locked; the caller should retry later."""


class ImapError(InboxdError):
    """The IMAP server cannot be reached or refused us; the message names what to fix."""


class PortInUse(InboxdError):
    """A port `inboxd serve` should listen on is taken (by another inboxd, or not)."""

    exit_code = 2
