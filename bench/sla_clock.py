"""SLA clock cost at scale: N open tickets under policies (default 100,000).

    python bench/sla_clock.py [--tickets N] [--changes C] [--database-url URL]

Builds a fresh SQLite database (or a fresh schema in the PostgreSQL database given) with
N unresolved tickets created over the last 30 days — priorities low/normal/high/urgent
15/60/20/5 %, a "created" and a customer "message" event each, 40 % with a public agent
reply and 20 % pending — bulk-inserted with SQLAlchemy Core. Two policies on a business
calendar (Asia/Shanghai, Mon-Fri with a lunch break, a holiday week) cover them all.

Then, on the real database, timed:

  * baseline: one `SELECT count(*) FROM ticket` — the cheapest look at the table, the
    unit every other figure is divided by (the machine is noisy; ratios travel better);
  * recompute all: `recompute_all` — what the daemon does at start-up after a calendar or
    policy edit (every unresolved ticket's targets computed afresh and stored);
  * idle tick: one clock pass when nothing changed and nothing fell due;
  * busy tick: one pass after C tickets changed (a tag each), as in a busy minute;
  * due tick: one pass one hour later, when every target that fell due in that hour fires.

The clock ticks every `clock_seconds` (20 s by default): its cost per minute is three
ticks. Prints seconds and the ratio to the baseline. Timing is reported, never judged.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inboxd.config import from_dict
from inboxd.db import session_scope
from inboxd.models import ClockState, Event, Message, Ticket
from inboxd.runtime import open_runtime
from inboxd.tickets import actions
from inboxd.workflow import clock, sla_clock

POLICIES = {
    "calendars": [
        {
            "name": "cn",
            "timezone": "Asia/Shanghai",
            "hours": {"mon-fri": ["09:00-12:00", "13:00-18:00"]},
            "holidays": ["2026-10-01..2026-10-07", "2027-01-01"],
            "working_days": ["2026-10-10"],
        }
    ],
    "sla": [
        {
            "name": "urgent",
            "when": ["priority in [urgent, high]"],
            "calendar": "cn",
            "first_reply": "1h",
            "next_reply": "4h",
            "resolution": "16h",
            "warn_before": "30m",
        },
        {
            "name": "standard",
            "calendar": "cn",
            "first_reply": "8h",
            "next_reply": "16h",
            "resolution": "72h",
            "warn_before": "1h",
        },
    ],
}
PRIORITIES = ["low"] * 15 + ["normal"] * 60 + ["high"] * 20 + ["urgent"] * 5
CHUNK = 5000


def build(url: str, data_dir: Path, n: int, now: datetime):  # type: ignore[no-untyped-def]
    cfg = from_dict(
        {"inboxd": {"database_url": url, "data_dir": str(data_dir)}, **POLICIES},
        base_dir=data_dir,
    )
    rt = open_runtime(cfg)
    rng = random.Random(7)
    tickets, messages, events = [], [], []
    ticket_t, message_t, event_t = (m.__table__ for m in (Ticket, Message, Event))  # type: ignore[attr-defined]
    with rt.engine.begin() as conn:
        for i in range(1, n + 1):
            created = now - timedelta(minutes=rng.randint(1, 30 * 24 * 60))
            status = "pending" if rng.random() < 0.2 else "open"
            tickets.append(
                {
                    "id": i,
                    "subject": f"Question {i}",
                    "status": status,
                    "priority": rng.choice(PRIORITIES),
                    "requester": f"c{i}@example.org",
                    "created_at": created,
                    "updated_at": created,
                }
            )
            messages.append(
                {
                    "id": i,
                    "ticket_id": i,
                    "fingerprint": f"{i:064x}",
                    "source": "smtp:127.0.0.1",
                    "from_email": f"c{i}@example.org",
                    "to": [],
                    "cc": [],
                    "reply_to": [],
                    "flags": {},
                    "received_at": created,
                }
            )
            events.append(
                {"ticket_id": i, "at": created, "actor": "c", "type": "created", "to_value": "new"}
            )
            events.append(
                {
                    "ticket_id": i,
                    "at": created,
                    "actor": "c",
                    "type": "message",
                    "to_value": "customer",
                }
            )
            if rng.random() < 0.4:
                reply = created + timedelta(minutes=rng.randint(5, 600))
                if reply < now:
                    events.append(
                        {
                            "ticket_id": i,
                            "at": reply,
                            "actor": "a",
                            "type": "reply",
                            "to_value": "x",
                        }
                    )
            if status == "pending":
                events.append(
                    {
                        "ticket_id": i,
                        "at": created + timedelta(minutes=1),
                        "actor": "a",
                        "type": "status",
                        "from_value": "new",
                        "to_value": "pending",
                    }
                )
            if len(tickets) >= CHUNK:
                _flush(conn, ticket_t, message_t, event_t, tickets, messages, events)
        _flush(conn, ticket_t, message_t, event_t, tickets, messages, events)
        last = conn.execute(select(func.max(Event.id))).scalar_one()
        conn.execute(
            insert(ClockState.__table__), [{"key": "clock.last_event_id", "value": str(last)}]
        )  # type: ignore[attr-defined]
    return rt


def _flush(conn, ticket_t, message_t, event_t, tickets, messages, events) -> None:  # type: ignore[no-untyped-def]
    for table, rows in ((ticket_t, tickets), (message_t, messages), (event_t, events)):
        if rows:
            conn.execute(insert(table), rows)
            rows.clear()


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 18:00 in Shanghai
    with tempfile.TemporaryDirectory() as tmp:
        url, schema = args.database_url, None
        if url.startswith("postgresql"):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with create_engine(url).begin() as conn:
                conn.execute(text(f'create schema "{schema}"'))
            url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        try:
            start = time.perf_counter()
            rt = build(url, Path(tmp), args.tickets, now)
            print(
                f"built {args.tickets} tickets in {time.perf_counter() - start:.1f} s"
                f" ({rt.engine.dialect.name})"
            )

            def baseline() -> None:
                with session_scope(rt.engine) as s:
                    s.exec(select(func.count()).select_from(Ticket)).one()  # type: ignore[call-overload]

            base = timed(baseline, 5)

            def recompute() -> None:
                with session_scope(rt.engine) as s:
                    sla_clock.recompute_all(rt, s, now)

            def tick_at(at: datetime) -> Callable[[], None]:
                def run() -> None:
                    with session_scope(rt.engine) as s:
                        tick_at.fired = len(clock.tick(rt, s, at).sla)  # type: ignore[attr-defined]

                return run

            def change() -> None:
                with session_scope(rt.engine) as s:
                    for i in random.Random(1).sample(range(1, args.tickets + 1), args.changes):
                        t = s.get(Ticket, i)
                        assert t is not None
                        actions.add_tag(s, t, f"bench{uuid.uuid4().hex[:6]}", "bench")

            rows = [("baseline: count(*)", base)]
            rows.append(("recompute all (calendar edit)", timed(recompute)))
            rows.append(("idle tick", timed(tick_at(now), 5)))
            change()
            rows.append((f"busy tick ({args.changes} changed)", timed(tick_at(now))))
            later = now + timedelta(hours=25)
            rows.append(("due tick (25 h later)", timed(tick_at(later))))
            fired = tick_at.fired  # type: ignore[attr-defined]
            print(f"{'case':38} {'seconds':>10} {'x baseline':>12}")
            for name, secs in rows:
                print(f"{name:38} {secs:10.4f} {secs / base:12.1f}")
            idle = rows[2][1]
            print(
                f"clock cost per idle minute (3 ticks): {3 * idle * 1000:.1f} ms;"
                f" the due tick fired {fired}"
            )
            rt.engine.dispose()
        finally:
            if schema:
                with create_engine(args.database_url).begin() as conn:
                    conn.execute(text(f'drop schema "{schema}" cascade'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
