"""sla_explain.py: a ticket's deadlines as data (`show --json`'s `sla`) and in words.

One builder for `inboxd sla N`, `#sla` by mail, the API and the ticket page, so all four
say the same: per target the due time (calendar zone, admin zone, UTC), minutes used and
left of the policy's clock, the state, and what was skipped (nights, weekends, holidays,
pauses) — so a support lead can check the arithmetic by hand.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from inboxd.models import Ticket
from inboxd.render import span_text, when_text
from inboxd.runtime import Runtime
from inboxd.workflow.ticket_facts import evaluate


def sla_json(session: Session, rt: Runtime, ticket: Ticket, now: datetime) -> dict[str, Any]:
    """The `sla` object of SPEC §10.2: {"policy": ..., "targets": [...]} (policy None: none)."""
    policy, states = evaluate(session, rt, ticket, now, explain=True)
    if policy is None:
        return {"policy": None, "calendar": None, "targets": []}
    admin_zone = _admin_zone(rt)
    targets = []
    for s in states:
        targets.append(
            {
                "target": s.target,
                "started_at": _iso(s.cycle),
                "limit": _minutes(s.limit),
                "due_at": _iso(s.due_at),
                "due_local": when_text(s.due_at, policy.zone) if s.due_at else None,
                "due_admin": when_text(s.due_at, admin_zone) if s.due_at else None,
                "warn_at": _iso(s.warn_at),
                "used": _minutes(s.used),
                "left": _minutes(s.left),
                "state": s.state,
                "achieved_at": _iso(s.achieved_at),
                "breached_at": _iso(s.breached_at),
                "skipped": [
                    {
                        "start": _iso(g.start),
                        "end": _iso(g.end),
                        "reason": g.reason,
                        "minutes": _minutes(g.end - g.start),
                    }
                    for g in s.gaps
                ],
            }
        )
    return {
        "policy": policy.name,
        "calendar": policy.calendar.name if policy.calendar else None,
        "zone": policy.zone,
        "targets": targets,
    }


def sla_text(data: dict[str, Any], ticket_id: int) -> str:
    """The same, for a person: what is due when, how it was counted."""
    if data["policy"] is None:
        return f"Ticket #{ticket_id}: no SLA policy applies (no [[sla]] entry matches it)."
    clock = f"business hours of calendar {data['calendar']}" if data["calendar"] else "24x7"
    lines = [f"Ticket #{ticket_id}: SLA policy {data['policy']} ({clock}, {data['zone']})."]
    for t in data["targets"]:
        name = t["target"].replace("_", " ")
        limit = span_text(timedelta(minutes=t["limit"]))
        used = span_text(timedelta(minutes=t["used"]))
        head = f"- {name} ({limit}, started {_short(t['started_at'], data['zone'])}): {t['state']}"
        if t["state"] == "achieved":
            head += f" at {_short(t['achieved_at'], data['zone'])}, {used} used"
        elif t["state"] == "breached":
            head += f", was due {t['due_local']} (UTC {t['due_at'][:16].replace('T', ' ')})"
        elif t["state"] == "paused":
            head += f", {used} used, {span_text(timedelta(minutes=t['left']))} left when it resumes"
        else:
            head += (
                f", due {t['due_local']} = {t['due_admin']} = UTC "
                f"{t['due_at'][:16].replace('T', ' ')}; {used} used, "
                f"{span_text(timedelta(minutes=t['left']))} left"
            )
        lines.append(head)
        for g in t["skipped"]:
            lines.append(
                f"    skipped {_short(g['start'], data['zone'])} → {_short(g['end'], data['zone'])}"
                f" ({span_text(timedelta(minutes=g['minutes']))}): {g['reason']}"
            )
    return "\n".join(lines)


def _admin_zone(rt: Runtime) -> str:
    """The zone of whoever runs the command: $TZ when it names an IANA zone, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        return ZoneInfo(name).key if name else "UTC"
    except (ValueError, OSError):
        return "UTC"


def _short(iso: str | None, zone: str) -> str:
    if not iso:
        return "-"
    local = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    return f"{local:%a %m-%d %H:%M}"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
