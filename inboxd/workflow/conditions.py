"""conditions.py: `FIELD OP VALUE` tests on a ticket (SPEC §10.3), for SLA policies and rules.

A condition is parsed once, at start-up, so a typo stops the daemon with the key named
instead of silently never matching. Evaluation reads `Facts`, a plain snapshot of the
ticket (and of the event that caused the check), so it is pure and can be tested and
explained without a database.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from inboxd.config import parse_duration

OPS = ("!=", ">=", "<", "=", "~", "in")
TEXT_FIELDS = frozenset(
    {
        "status",
        "priority",
        "assignee",
        "team",
        "requester",
        "requester_domain",
        "organization",
        "channel",
        "language",
        "subject",
        "text",
        "from",
        "csat",
    }
)
LIST_FIELDS = frozenset({"tag", "to", "cc"})
DURATION_FIELDS = frozenset({"age", "idle"})
FIELDS = TEXT_FIELDS | LIST_FIELDS | DURATION_FIELDS
_SHAPE = re.compile(r"^\s*([a-z_]+)\s*(!=|>=|<|=|~|\bin\b)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Facts:
    """What conditions can see. Text fields absent from `values` are "" (none)."""

    values: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    created_at: datetime | None = None
    last_public_at: datetime | None = None
    now: datetime | None = None

    def text(self, name: str) -> str:
        return (self.values.get(name) or "").lower()

    def duration(self, name: str) -> timedelta | None:
        since = self.created_at if name == "age" else self.last_public_at or self.created_at
        if since is None or self.now is None:
            return None
        return self.now - since


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str | tuple[str, ...] | int
    source: str
    pattern: re.Pattern[str] | None = None

    def holds(self, facts: Facts) -> bool:
        if self.field in DURATION_FIELDS:
            elapsed = facts.duration(self.field)
            if elapsed is None:
                return False
            limit = timedelta(minutes=int(self.value))  # type: ignore[arg-type]
            return elapsed >= limit if self.op == ">=" else elapsed < limit
        candidates = (
            [v.lower() for v in facts.lists.get(self.field, ())]
            if self.field in LIST_FIELDS
            else [facts.text(self.field)]
        )
        if self.op == "!=":
            return all(not self._match(c) for c in candidates) if candidates else True
        return any(self._match(c) for c in candidates)

    def _match(self, candidate: str) -> bool:
        if self.op in ("=", "!="):
            return candidate == self.value
        if self.op == "in":
            return candidate in self.value  # type: ignore[operator]
        if self.op == "~":
            assert self.pattern is not None
            return self.pattern.search(candidate) is not None
        # >= and < on a text field: numbers (csat 1-5).
        try:
            number = float(candidate)
        except ValueError:
            return False
        limit = float(self.value)  # type: ignore[arg-type]
        return number >= limit if self.op == ">=" else number < limit


def parse(text: str) -> Condition:
    """One condition; ValueError says what was expected."""
    match = _SHAPE.match(text)
    if not match:
        raise ValueError(f"{text!r}: expected FIELD OP VALUE, like priority = urgent")
    name, op, raw = match.groups()
    if name not in FIELDS:
        raise ValueError(f"{text!r}: unknown field {name!r} (one of {', '.join(sorted(FIELDS))})")
    if not raw:
        raise ValueError(f"{text!r}: a value is missing after {op!r}")
    if name in DURATION_FIELDS:
        if op not in (">=", "<"):
            raise ValueError(f"{text!r}: {name} is compared with >= or <, like {name} >= 2h")
        return Condition(name, op, parse_duration(_unquote(raw)), text)
    if op == "in":
        inner = raw.strip()
        if not (inner.startswith("[") and inner.endswith("]")):
            raise ValueError(f"{text!r}: expected a list in brackets, like status in [new, open]")
        items = tuple(_unquote(i).lower() for i in inner[1:-1].split(",") if i.strip())
        return Condition(name, op, items, text)
    value = _unquote(raw)
    if op == "~":
        try:
            pattern = re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{text!r}: not a regular expression: {exc}") from None
        return Condition(name, op, value, text, pattern)
    if op in (">=", "<"):
        try:
            float(value)
        except ValueError:
            raise ValueError(f"{text!r}: {op} compares numbers or durations") from None
    return Condition(name, op, value.lower(), text)


def parse_all(texts: Iterable[str]) -> tuple[Condition, ...]:
    return tuple(parse(t) for t in texts)


def all_hold(conditions: Iterable[Condition], facts: Facts) -> bool:
    return all(c.holds(facts) for c in conditions)


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        try:
            return shlex.split(raw)[0]
        except ValueError:
            return raw[1:-1]
    return raw
