"""report_text.py: a report object (reports.py) in words a support lead reads at a glance.

Durations as "42 m", "5 h 10 m", "2 d 3 h"; a figure with nothing to measure says so
("no tickets") rather than printing a zero that looks like a result. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inboxd.workflow.reports import DEFINITIONS

TIMINGS = (
    ("first_reply", "First reply"),
    ("next_reply", "Next reply"),
    ("full_resolution", "Full resolution"),
    ("requester_wait", "Waiting on us"),
    ("agent_wait", "Waiting on customer"),
)


def duration(minutes: float | None) -> str:
    """42 m, 5 h 10 m, 2 d 3 h ("-" when there is nothing to measure)."""
    if minutes is None:
        return "-"
    total = round(minutes)
    if total < 60:
        return f"{total} m"
    hours, mins = divmod(total, 60)
    if hours < 24:
        return f"{hours} h {mins} m" if mins else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def describe(data: dict[str, Any], *, explain: bool = False) -> Iterator[str]:
    """The report as lines of text, each figure with its definition when asked."""
    f = data["figures"]
    calendar = data.get("calendar")
    clock = f"business time: calendar {calendar}" if calendar else "calendar time (24x7)"
    yield f"Service report {data['from']} to {data['to']} ({clock})"
    yield ""

    def line(label: str, text: str, name: str) -> Iterator[str]:
        yield f"{label:<22}{text}"
        if explain:
            yield f"{'':<22}{f[name]['definition']}"

    yield from line("Created", str(f["created"]["value"]), "created")
    yield from line("Solved", str(f["solved"]["value"]), "solved")
    yield from line("Reopened", str(f["reopened"]["value"]), "reopened")
    ages = ", ".join(f"{k} {v}" for k, v in f["backlog"]["by_age"].items() if v)
    yield from line(
        "Backlog", f"{f['backlog']['value']}" + (f" ({ages})" if ages else ""), "backlog"
    )
    for name, label in TIMINGS:
        t = f[name]
        if not t["count"]:
            text = "no tickets"
        else:
            text = f"median {duration(t['median_minutes'])}, p90 {duration(t['p90_minutes'])}"
            if t.get("business_median_minutes") is not None:
                text += (
                    f" (business {duration(t['business_median_minutes'])},"
                    f" p90 {duration(t['business_p90_minutes'])})"
                )
            text += f", {t['count']} measured"
        if t.get("unanswered"):
            text += f", {t['unanswered']} unanswered"
        yield from line(label, text, name)
    one = f["one_touch"]
    yield from line(
        "One-touch",
        f"{one['value']} of {one['of']} solved ({one['zero_reply']} without any reply)",
        "one_touch",
    )
    targets = {k: v for k, v in f["sla"].items() if k != "definition"}
    sla = "; ".join(
        f"{k} {v['achieved']} achieved, {v['breached']} breached ({_percent(v['attainment'])})"
        for k, v in targets.items()
    )
    yield from line("SLA", sla or "no SLA outcomes", "sla")
    c = f["csat"]
    csat = (
        f"{_percent(c['score'])} good ({c['good']} good, {c['bad']} bad; {c['responses']}"
        f" of {c['surveys']} surveys answered; {c['suspect']} suspect)"
        if c["responses"] or c["surveys"]
        else "no ratings"
    )
    yield from line("Satisfaction", csat, "csat")
    s = f["self_service"]
    yield from line(
        "Self-service",
        f"{s['suggested']} suggested, {s['solved']} solved by the customer,"
        f" {s['deflected']} deflected",
        "self_service",
    )
    by = data.get("by")
    if by:
        yield ""
        if explain:
            yield DEFINITIONS["by"]
        yield f"{'':<30}{'replies':>8}{'solved':>8}{'1st reply':>12}{'CSAT':>8}"
        for key, row in by.items():
            median = duration(row["first_reply"]["median_minutes"])
            score = _percent(row["csat"]["score"])
            yield f"{key[:29]:<30}{row['replies']:>8}{row['solved']:>8}{median:>12}{score:>8}"
