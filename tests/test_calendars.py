"""Business-time arithmetic (SPEC §10.1) agrees with a minute-by-minute reference.

The reference knows nothing of spans or offsets: for each UTC minute it reads the wall
clock in the calendar's zone and asks whether that wall-clock time lies inside an interval
of its day (or of the day before, for intervals that run past midnight).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxd.workflow.calendars import (
    Calendar,
    NoBusinessTime,
    parse_calendar,
    parse_dates,
    parse_interval,
)

MINUTE = timedelta(minutes=1)


def reference_is_business(cal: Calendar, instant: datetime) -> bool:
    local = instant.astimezone(cal.zone).replace(tzinfo=None)
    for back in (0, 1):
        day = local.date() - timedelta(days=back)
        wall = (local - datetime.combine(day, datetime.min.time())) / MINUTE
        if any(start <= wall < end for start, end in cal.intervals_of(day)):
            return True
    return False


def reference_between(cal: Calendar, start: datetime, end: datetime) -> int:
    count, t = 0, start
    while t < end:
        count += reference_is_business(cal, t)
        t += MINUTE
    return count


def reference_add(cal: Calendar, start: datetime, amount: int) -> datetime:
    if amount == 0:
        return start
    t, left = start, amount
    while True:
        if reference_is_business(cal, t):
            left -= 1
            if left == 0:
                return t + MINUTE
        t += MINUTE


# Zones with daylight saving both ways (north and south), one without, one at +05:45.
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Shanghai", "Asia/Kathmandu"]
DAY_SPECS = ["mon-fri", "sat", "sun", "mon,wed,fri", "daily"]


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    zone = draw(st.sampled_from(ZONES))
    hours: dict[str, list[str]] = {}
    for spec in draw(st.lists(st.sampled_from(DAY_SPECS), min_size=1, max_size=3, unique=True)):
        intervals = []
        for _ in range(draw(st.integers(1, 3))):
            start = draw(st.integers(0, 24 * 4 - 1)) * 15
            length = draw(st.integers(1, 12 * 4)) * 15  # up to 12 h, may cross midnight
            end = (start + length) % (24 * 60)
            intervals.append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
        hours[spec] = intervals
    base = date(2026, 1, 1)
    offsets = draw(st.lists(st.integers(-400, 800), max_size=6, unique=True))
    days = [base + timedelta(days=o) for o in offsets]
    cut = draw(st.integers(0, len(days)))
    holidays = [d.isoformat() for d in days[:cut]]
    if draw(st.booleans()):
        holidays.append("2026-03-28..2026-04-06")  # over a weekend and Europe's DST change
    off = {d for text in holidays for d in parse_dates(text)}
    working = [d.isoformat() for d in days[cut:] if d not in off]
    return parse_calendar("t", zone, hours, holidays, working)


# Instants near the interesting places: DST changes both ways, the year's end, a weekend.
ANCHORS = [
    datetime(2026, 3, 8, 6, 0, tzinfo=UTC),  # US spring forward
    datetime(2026, 3, 29, 0, 0, tzinfo=UTC),  # EU spring forward
    datetime(2026, 4, 5, 14, 0, tzinfo=UTC),  # Sydney falls back
    datetime(2026, 10, 4, 14, 0, tzinfo=UTC),  # Sydney springs forward
    datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # EU falls back
    datetime(2026, 11, 1, 5, 0, tzinfo=UTC),  # US falls back
    datetime(2026, 12, 31, 12, 0, tzinfo=UTC),  # the year's end
    datetime(2026, 6, 13, 12, 0, tzinfo=UTC),  # a Saturday
]


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    anchor = draw(st.sampled_from(ANCHORS))
    return anchor + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))


FAST = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(calendars(), instants(), st.integers(0, 4 * 24 * 60))
def test_business_minutes_between_two_instants_match_the_reference(
    cal: Calendar, start: datetime, length: int
) -> None:
    end = start + timedelta(minutes=length)
    assert cal.between(start, end) == reference_between(cal, start, end) * MINUTE


@FAST
@given(calendars(), instants(), st.data())
def test_adding_business_minutes_matches_the_reference(
    cal: Calendar, start: datetime, data: st.DataObject
) -> None:
    # Up to about ten days ahead, so the minute-by-minute reference stays quick.
    weekly = sum(end - start for day in cal.week for start, end in day)
    amount = data.draw(st.integers(0, min(weekly + weekly // 2, 30 * 60)))
    due = cal.add(start, amount * MINUTE)
    assert due == reference_add(cal, start, amount)
    assert cal.between(start, due) == amount * MINUTE


@FAST
@given(calendars(), instants(), st.integers(1, 3 * 24 * 60))
def test_gaps_and_spans_cover_the_stretch_exactly(
    cal: Calendar, start: datetime, length: int
) -> None:
    end = start + timedelta(minutes=length)
    gaps = cal.gaps(start, end)
    skipped = sum((g.end - g.start for g in gaps), timedelta())
    assert skipped + cal.between(start, end) == end - start
    assert all(g.start < g.end for g in gaps)


SHANGHAI = parse_calendar(
    "cn",
    "Asia/Shanghai",
    {"mon-fri": ["09:00-12:00", "13:00-18:00"]},
    ["2026-10-01..2026-10-07", "2026-01-01"],
    ["2026-10-10"],
)


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI.zone)  # type: ignore[misc]


def test_a_deadline_skips_the_lunch_break_the_night_and_the_weekend() -> None:
    friday_5pm = cst(2026, 11, 27, 17, 0)
    assert SHANGHAI.add(friday_5pm, timedelta(hours=2)) == cst(2026, 11, 30, 10, 0)
    assert SHANGHAI.add(cst(2026, 11, 30, 11, 30), timedelta(hours=1)) == cst(2026, 11, 30, 13, 30)


def test_the_national_holiday_is_skipped_and_the_make_up_saturday_counts() -> None:
    before = cst(2026, 9, 30, 17, 0)
    assert SHANGHAI.add(before, timedelta(hours=2)) == cst(2026, 10, 8, 10, 0)
    # Saturday 10 October is a make-up working day (调休) with the Monday hours.
    assert SHANGHAI.between(cst(2026, 10, 10, 0, 0), cst(2026, 10, 11, 0, 0)) == timedelta(hours=8)


def test_gaps_name_weekends_and_holidays_in_a_support_leads_words() -> None:
    reasons = [g.reason for g in SHANGHAI.gaps(cst(2026, 9, 30, 17, 0), cst(2026, 10, 8, 10, 0))]
    assert reasons == ["holiday 2026-10-01..2026-10-07"]
    weekend = SHANGHAI.gaps(cst(2026, 11, 27, 17, 0), cst(2026, 11, 30, 10, 0))
    assert [g.reason for g in weekend] == ["weekend"]
    lunch = SHANGHAI.gaps(cst(2026, 11, 30, 11, 0), cst(2026, 11, 30, 14, 0))
    assert [g.reason for g in lunch] == ["outside hours"]


def test_a_night_shift_that_spans_the_autumn_change_is_an_hour_longer() -> None:
    cal = parse_calendar("night", "Europe/Berlin", {"daily": ["00:00-04:00"]})
    autumn = datetime(2026, 10, 25, tzinfo=cal.zone)
    assert cal.between(autumn, autumn + timedelta(days=1)) == timedelta(hours=5)
    spring = datetime(2026, 3, 29, tzinfo=cal.zone)
    assert cal.between(spring, spring + timedelta(days=1)) == timedelta(hours=3)


def test_an_interval_belongs_to_the_day_it_starts_on() -> None:
    cal = parse_calendar("late", "UTC", {"fri": ["22:00-02:00"]}, ["2026-12-05"])
    friday = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
    assert cal.between(friday, friday + timedelta(hours=6)) == timedelta(hours=4)


def test_a_calendar_whose_hours_are_all_holidays_says_so() -> None:
    years = [f"{y}-01-01..{y}-12-31" for y in range(2026, 2031)]
    cal = parse_calendar("x", "UTC", {"mon": ["09:00-10:00"]}, years)
    with pytest.raises(NoBusinessTime, match="no business time"):
        cal.add(datetime(2025, 12, 30, 10, tzinfo=UTC), timedelta(hours=100))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25:00-26:00", "hours run 00:00 to 24:00"),
        ("9-5", "expected an interval like 09:00-18:00"),
    ],
)
def test_bad_intervals_are_refused_with_what_was_expected(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_interval(text)


def test_bad_calendars_are_refused_with_what_was_expected() -> None:
    with pytest.raises(ValueError, match="IANA zone"):
        parse_calendar("x", "Mars/Olympus", {"mon": ["09:00-10:00"]})
    with pytest.raises(ValueError, match="days like mon-fri"):
        parse_calendar("x", "UTC", {"monday-friday": ["09:00-10:00"]})
    with pytest.raises(ValueError, match="both a holiday and a working day"):
        parse_calendar("x", "UTC", {"mon": ["09:00-10:00"]}, ["2026-10-10"], ["2026-10-10"])
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_dates("2026-10-07..2026-10-01")


def test_a_country_preset_brings_public_holidays_and_make_up_working_days() -> None:
    cal = parse_calendar(
        "cn", "Asia/Shanghai", {"mon-fri": ["09:00-18:00"]}, (), (), holidays_from="CN"
    )
    national_day = cal.between(cst(2026, 10, 1, 0, 0), cst(2026, 10, 8, 0, 0))
    assert national_day == timedelta()  # the whole Golden Week is off
    # Saturday 10 October 2026 is a make-up working day (调休) in the State Council notice.
    assert cal.between(cst(2026, 10, 10, 0, 0), cst(2026, 10, 11, 0, 0)) == timedelta(hours=9)


def test_explicit_lists_win_over_the_preset() -> None:
    cal = parse_calendar(
        "cn",
        "Asia/Shanghai",
        {"mon-fri": ["09:00-18:00"]},
        ["2026-10-09"],
        ["2026-10-01"],
        holidays_from="CN",
    )
    assert cal.between(cst(2026, 10, 1, 0, 0), cst(2026, 10, 2, 0, 0)) == timedelta(hours=9)
    assert cal.between(cst(2026, 10, 9, 0, 0), cst(2026, 10, 10, 0, 0)) == timedelta()


def test_an_unknown_country_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no such country"):
        parse_calendar("x", "UTC", {"mon": ["09:00-10:00"]}, holidays_from="XX")


def test_a_round_the_clock_calendar_adds_like_plain_time() -> None:
    cal = parse_calendar("24x7", "Europe/Berlin", {"daily": ["00:00-24:00"]})
    start = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)  # across the spring change
    assert cal.add(start, timedelta(hours=100)) == start + timedelta(hours=100)
    assert cal.between(start, start + timedelta(days=30)) == timedelta(days=30)
    also = parse_calendar("nights", "UTC", {"daily": ["00:00-00:00"]})
    assert also.add(start, timedelta(hours=50)) == start + timedelta(hours=50)
