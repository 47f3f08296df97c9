"""periods.py: which stretch of time a report covers, and which clock measures it.

`--since 30d` ends now; `--from`/`--to` are whole days in the calendar's zone (both
included), so "November" means November where the team works, not in UTC. Business
time comes from a calendar of `[[calendars]]` (SPEC §10.1); with none, 24x7. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from inboxd.config import Config
from inboxd.workflow.sla import service_levels

# Minutes of business time between two instants (a calendar's arithmetic); None = 24x7.
BusinessMinutes = Callable[[datetime, datetime], float]


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, and the zone its dates were given in."""

    start: datetime
    end: datetime
    zone: str = "UTC"


def period_from(
    now: datetime,
    *,
    since: str | None = None,
    from_date: date | None = None,
    to_date: date | None = None,
    zone: str = "UTC",
) -> Period:
    """The period a user asked for: `--since 30d` (ending now), or whole days
    `--from D --to D` (both included) in `zone`. The default is the last 30 days."""
    tz = ZoneInfo(zone)
    if from_date is not None or to_date is not None:
        try:
            last = to_date or now.astimezone(tz).date()
            first = from_date or last - timedelta(days=29)
            if first > last:
                raise ValueError(f"--from {first} is after --to {last}")
            start = datetime.combine(first, time(), tz).astimezone(ZoneInfo("UTC"))
            end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(ZoneInfo("UTC"))
        except OverflowError:  # to=0001-01-01 (30 days before it), or 9999-12-31
            raise ValueError("a report period must lie within the years 1 to 9999") from None
        return Period(start, end, zone)
    span = parse_span(since or "30d")
    return Period(now - span, now, zone)


def parse_span(text: str) -> timedelta:
    """`30d`, `12h`, `2w` as a timedelta; ValueError names what was expected."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value, unit = text[:-1], text[-1:]
    if unit not in units or not value.isdigit() or not 0 < int(value) <= 100_000:
        raise ValueError(f"a period like 30d, 12h or 2w, not {text!r}")
    return timedelta(**{units[unit]: int(value)})


def calendar_name(cfg: Config, wanted: str | None) -> str | None:
    """The calendar a report's business time uses: the one asked for, else the first."""
    names = [c.name for c in getattr(cfg, "calendars", ())]
    if wanted is not None and wanted not in names:
        known = ", ".join(names) or "none is configured"
        raise ValueError(f"no calendar named {wanted!r} ([[calendars]]: {known})")
    return wanted or (names[0] if names else None)


def report_zone(cfg: Config, wanted: str | None) -> str:
    """The zone a report's days are counted in: its calendar's, else UTC."""
    name = calendar_name(cfg, wanted)
    for cal in getattr(cfg, "calendars", ()):
        if cal.name == name:
            return str(cal.timezone)
    return "UTC"


def business_clock(cfg: Config, wanted: str | None) -> BusinessMinutes | None:
    """Business minutes between two instants in the report's calendar (None: 24x7)."""
    name = calendar_name(cfg, wanted)
    if name is None:
        return None
    calendar = service_levels(cfg).calendars[name]
    return lambda start, end: calendar.between(start, end).total_seconds() / 60
