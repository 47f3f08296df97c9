"""`inboxd rules test` at scale: a dry run of five rules over N tickets (default 10,000).

    python bench/rules_dryrun.py [--tickets N]

Uses the data of bench/sla_clock.py (N open tickets over 30 days, their events) with the
rules shipped in inboxd.toml (route by subject, VIP domains, remind and close pending
tickets, a bad rating). Times `dry_run` over every event of the last 30 days against the
baseline of one `SELECT count(*) FROM event`, and prints how many rule outcomes it found.
Timing is reported, never judged.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sla_clock as data

from inboxd.models import Event
from inboxd.workflow.rule_dryrun import dry_run
from inboxd.workflow.rules import load_rules

RULES = [
    {
        "name": "invoices",
        "on": "created",
        "when": ['subject ~ "invoice|发票"'],
        "run": "#team billing\n#tag invoice",
    },
    {
        "name": "vip",
        "on": "created",
        "any": ["requester_domain = bigcustomer.example"],
        "run": "#priority high\n#tag vip",
    },
    {
        "name": "remind pending",
        "after": "24h",
        "since": "status:pending",
        "when": ["status = pending"],
        "run": "#macro pending-reminder",
    },
    {
        "name": "close pending",
        "after": "72h",
        "since": "status:pending",
        "when": ["status = pending"],
        "run": "#macro pending-closed\n#status closed",
    },
    {"name": "question 7", "on": "customer-message", "when": ["subject ~ 7$"], "run": "#tag seven"},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    data.POLICIES["rules"] = RULES
    with tempfile.TemporaryDirectory() as tmp:
        rt = data.build("", Path(tmp), args.tickets, now)
        rules = load_rules(rt.config)
        with Session(rt.engine) as session:
            start = time.perf_counter()
            events = session.exec(select(func.count()).select_from(Event)).one()  # type: ignore[call-overload]
            base = time.perf_counter() - start
            start = time.perf_counter()
            found = dry_run(session, rules, now, now - timedelta(days=30))
            took = time.perf_counter() - start
            session.rollback()
        rt.engine.dispose()
    print(f"{args.tickets} tickets, {events[0] if isinstance(events, tuple) else events} events")
    print(f"baseline count(*): {base * 1000:.1f} ms")
    print(
        f"dry run of {len(RULES)} rules: {took:.2f} s ({took / base:.0f}x baseline),"
        f" {len(found)} outcomes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
