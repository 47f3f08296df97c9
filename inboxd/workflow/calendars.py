"""calendars.py: business time — the minutes a team works, in its own zone (SPEC §10.1).

A minute is business time when its wall-clock time in the calendar's zone lies inside one
of the intervals of its day, that day is not a holiday, and it is a weekday with hours or a
make-up working day (调休). An interval belongs to the day it starts on, so "22:00-02:00"
on Friday runs into Saturday even when Saturday is a holiday. Counting wall-clock time
is what a person on shift means: a night shift "00:00-04:00" is five real hours on the
night clocks go back, three on the night they go forward.

The arithmetic works on UTC spans built day by day: within a stretch of constant UTC
offset, wall-clock time is a straight line, so each interval is one exact UTC span per
stretch. No minute-by-minute loops; pure, no I/O, no "now".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# How far add() and the explanations look ahead for business time before giving up: a
# calendar with hours always has some within a few years, unless holidays cover them all.
MAX_DAYS = 3 * 366
_DAY = timedelta(days=1)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")

Span = tuple[datetime, datetime]


class NoBusinessTime(ValueError):
    """The calendar has no working minute in the stretch asked about."""


@dataclass(frozen=True)
class Gap:
    """A stretch skipped because it is not business time, and why, for explanations."""

    start: datetime
    end: datetime
    reason: str  # "outside hours", "weekend", "holiday", "paused"


@dataclass(frozen=True)
class Calendar:
    """Weekly intervals (minutes after midnight, end may pass 24:00), holidays and make-up
    working days, in one IANA zone. Build it with `parse_calendar`."""

    name: str
    zone: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...]  # Monday first
    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    _spans: dict[date, tuple[Span, ...]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    # -- what a day holds -------------------------------------------------------------

    def intervals_of(self, day: date) -> tuple[tuple[int, int], ...]:
        """The wall-clock intervals that start on `day`."""
        if day in self.holidays:
            return ()
        if day in self.working_days:
            return self.makeup_hours
        return self.week[day.weekday()]

    @property
    def makeup_hours(self) -> tuple[tuple[int, int], ...]:
        """A make-up working day gets the hours of the first weekday (Mon-Fri) that has any."""
        for hours in self.week[:5]:
            if hours:
                return hours
        return ()

    def spans_of(self, day: date) -> tuple[Span, ...]:
        """The UTC spans of business time that start on `day`, in order."""
        cached = self._spans.get(day)
        if cached is None:
            cached = tuple(self._build_spans(day))
            if len(self._spans) > 20_000:
                self._spans.clear()
            self._spans[day] = cached
        return cached

    def _build_spans(self, day: date) -> Iterator[Span]:
        intervals = self.intervals_of(day)
        if not intervals:
            return
        midnight = datetime.combine(day, time())
        last_end = max(end for _, end in intervals)
        # A few hours either side cover any daylight-saving shift of the day's midnight.
        lo = (datetime.combine(day, time(), self.zone) - timedelta(hours=4)).astimezone(UTC)
        hi = lo + timedelta(minutes=last_end, hours=8)
        spans: list[Span] = []
        for piece_start, piece_end, offset in _constant_offset_pieces(self.zone, lo, hi):
            for start, end in intervals:
                # On this piece, wall(t) = t + offset; wall in [start, end) after midnight.
                s = (midnight + timedelta(minutes=start) - offset).replace(tzinfo=UTC)
                e = (midnight + timedelta(minutes=end) - offset).replace(tzinfo=UTC)
                s, e = max(s, piece_start), min(e, piece_end)
                if s < e:
                    spans.append((s, e))
        yield from _union(spans)

    # -- arithmetic -----------------------------------------------------------------------

    def spans(self, start: datetime, end: datetime | None = None) -> Iterator[Span]:
        """Business spans overlapping [start, end) (end None: on and on), clipped, in order,
        overlapping ones merged. Stops after MAX_DAYS without any."""
        start = start.astimezone(UTC)
        day = start.astimezone(self.zone).date() - _DAY  # yesterday's night shift
        buffer: list[Span] = []
        idle_days = 0
        while True:
            day_spans = self.spans_of(day)
            idle_days = 0 if day_spans else idle_days + 1
            for s, e in day_spans:
                if e > start and (end is None or s < end):
                    buffer.append((max(s, start), e if end is None else min(e, end)))
            day += _DAY
            # Spans of `day` and later start at its midnight or after, give or take a
            # daylight-saving hour; in a repeated hour, an earlier day's span may start
            # after a later day's. So: merge what is buffered, hand out what ends before.
            safe = datetime.combine(day, time(), self.zone).astimezone(UTC) - timedelta(hours=3)
            finished = end is not None and safe >= end
            buffer = list(_union(buffer))
            while buffer and (finished or buffer[0][0] < safe):
                s, e = buffer[0]
                if finished or e <= safe:
                    yield buffer.pop(0)
                else:
                    # A span running on past `safe` (round the clock, say) is handed out
                    # up to there; the rest may still grow.
                    yield s, safe
                    buffer[0] = (safe, e)
            if finished or (end is None and idle_days > MAX_DAYS):
                return

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end); zero when end is not after start."""
        if end <= start:
            return timedelta()
        return sum((e - s for s, e in self.spans(start, end)), timedelta())

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which `amount` of business time has passed since `start`.
        Zero is `start` itself, even outside hours."""
        if amount <= timedelta():
            return start
        left = amount
        for s, e in self.spans(start):
            if e - s >= left:
                return s + left
            left -= e - s
        raise NoBusinessTime(
            f"calendar {self.name!r} has no business time within {MAX_DAYS} days of "
            f"{start.astimezone(self.zone):%Y-%m-%d}"
        )

    def gaps(self, start: datetime, end: datetime) -> list[Gap]:
        """The stretches of [start, end) that are not business time, each with a reason."""
        out: list[Gap] = []
        cursor = start
        for s, e in self.spans(start, end):
            if s > cursor:
                out.append(Gap(cursor, s, self._reason(cursor, s)))
            cursor = e
        if cursor < end:
            out.append(Gap(cursor, end, self._reason(cursor, end)))
        return out

    def _reason(self, start: datetime, end: datetime) -> str:
        """Why a gap is not business time, in a support lead's words."""
        first = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        full = [
            d
            for d in (first + timedelta(days=i) for i in range((last - first).days + 1))
            if datetime.combine(d, time(), self.zone) >= start
            and datetime.combine(d + _DAY, time(), self.zone) <= end
        ]
        off = [d for d in full if d in self.holidays]
        empty = [d for d in full if d not in self.holidays and not self.intervals_of(d)]
        if off:
            when = off[0].isoformat() if len(off) == 1 else f"{off[0]}..{off[-1]}"
            return f"holiday {when}" + (" and weekend" if empty else "")
        if empty:
            return "weekend"
        return "outside hours"


def _constant_offset_pieces(
    zone: ZoneInfo, lo: datetime, hi: datetime
) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """[lo, hi) cut where the zone's UTC offset changes, with each piece's offset."""
    step = timedelta(hours=3)
    cursor = lo
    offset = _offset(zone, cursor)
    probe = cursor
    while probe < hi:
        nxt = min(probe + step, hi)
        if _offset(zone, nxt) != offset:
            # Narrow down to the second on which the offset changes.
            a, b = probe, nxt
            while b - a > timedelta(seconds=1):
                mid = a + (b - a) / 2
                if _offset(zone, mid) == offset:
                    a = mid
                else:
                    b = mid
            change = b.replace(microsecond=0)
            if _offset(zone, change) == offset:
                change += timedelta(seconds=1)
            yield cursor, change, offset
            cursor, offset = change, _offset(zone, change)
            probe = change
            continue
        probe = nxt
    yield cursor, hi, offset


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta()


def _union(spans: list[Span]) -> Iterator[Span]:
    pending: Span | None = None
    for s, e in sorted(spans):
        if pending is None:
            pending = (s, e)
        elif s <= pending[1]:
            pending = (pending[0], max(pending[1], e))
        else:
            yield pending
            pending = (s, e)
    if pending is not None:
        yield pending


# -- building a calendar from its config entry ------------------------------------------


def parse_calendar(
    name: str,
    timezone: str,
    hours: dict[str, list[str] | tuple[str, ...]],
    holidays: tuple[str, ...] | list[str] = (),
    working_days: tuple[str, ...] | list[str] = (),
    holidays_from: str = "",
) -> Calendar:
    """A Calendar from the strings of `[[calendars]]`; ValueError says what is wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        raise ValueError(
            f"timezone {timezone!r}: expected an IANA zone like Asia/Shanghai"
        ) from None
    week: list[list[tuple[int, int]]] = [[] for _ in _DAYS]
    for days, intervals in hours.items():
        for weekday in parse_days(days):
            week[weekday].extend(parse_interval(i) for i in intervals)
    if not any(week):
        raise ValueError(
            'hours: expected at least one interval, like {"mon-fri" = ["09:00-18:00"]}'
        )
    off = frozenset(d for text in holidays for d in parse_dates(text))
    extra = frozenset(d for text in working_days for d in parse_dates(text))
    if both := sorted(off & extra):
        raise ValueError(f"{both[0]} is both a holiday and a working day")
    if holidays_from:
        preset_off, preset_extra = country_days(holidays_from)
        # The explicit lists win over the preset where they disagree.
        off |= preset_off - extra
        extra |= preset_extra - off
    return Calendar(
        name=name,
        zone=zone,
        week=tuple(tuple(sorted(day)) for day in week),
        holidays=off,
        working_days=extra,
    )


# Preset years: far enough back for reports, ahead for deadlines; lunar holidays of
# future years are the package's estimates, make-up days only those already announced.
PRESET_YEARS = range(2015, 2041)


def country_days(code: str) -> tuple[frozenset[date], frozenset[date]]:
    """A country's public holidays and weekend working days (调休) from `holidays`."""
    import holidays as holiday_data  # a dependency only this preset needs at start-up

    country, _, subdivision = code.strip().upper().partition("-")
    try:
        found = holiday_data.country_holidays(
            country, subdiv=subdivision or None, years=PRESET_YEARS
        )
    except NotImplementedError:
        raise ValueError(
            f"holidays_from = {code!r}: no such country in the holidays package"
            " (ISO 3166 codes like CN, DE, US, or DE-BY)"
        ) from None
    workdays = frozenset(getattr(found, "weekend_workdays", ()) or ())
    return frozenset(found.keys()), workdays


def parse_days(text: str) -> list[int]:
    """`mon-fri`, `sat`, `mon,wed,fri` or `daily` as weekday numbers (Monday = 0)."""
    text = text.strip().lower()
    if text in ("daily", "every day", "mon-sun"):
        return list(range(7))
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"{text!r}: expected days like mon-fri, sat or mon,wed,fri")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        if b < a:
            raise ValueError(f"{text!r}: a range of days runs forward, like mon-fri")
        out.extend(range(a, b + 1))
    return out


def parse_interval(text: str) -> tuple[int, int]:
    """`09:00-12:00` as minutes after midnight; an end at or before the start (`22:00-02:00`)
    runs past midnight into the next day."""
    match = _INTERVAL.match(text.strip())
    if not match:
        raise ValueError(f"{text!r}: expected an interval like 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: hours run 00:00 to 24:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= 24 * 60:
        raise ValueError(f"{text!r}: an interval starts before 24:00")
    if end <= start:
        end += 24 * 60
    return start, end


def parse_dates(text: str) -> list[date]:
    """`2026-10-01` or a range `2026-10-01..2026-10-07` (both included)."""
    first, sep, last = text.strip().partition("..")
    try:
        a = date.fromisoformat(first.strip())
        b = date.fromisoformat(last.strip()) if sep else a
    except ValueError:
        raise ValueError(
            f"{text!r}: expected a date like 2026-10-01 or 2026-10-01..2026-10-07"
        ) from None
    if b < a:
        raise ValueError(f"{text!r}: the range ends before it starts")
    if (b - a).days > 366:
        raise ValueError(f"{text!r}: a range of dates spans at most a year")
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60
