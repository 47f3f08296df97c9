"""`inboxd report` at scale: 100,000 tickets with 300,000 customer messages (default).

    python bench/reports.py [--tickets N] [--database-url URL]

Builds the data of bench/sla_clock.py (N tickets over 30 days; a created, a customer
message, for 40 % an agent reply, for 20 % a pending status) and adds two more customer
messages per ticket (messages and their events), so N tickets carry 3N messages. Then
times, on the same database, in interleaved rounds:

  * baseline: `SELECT count(*) FROM event` (one pass over the table the report reads);
  * report: `run_report` for the last 30 days, calendar time;
  * report by agent: the same with `--by agent`;
  * report in business time: the same on the bench's Shanghai calendar.

Prints the medians in seconds and their ratio to the baseline. Never judged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sla_clock as data

from inboxd.models import Event, Message
from inboxd.workflow.reports import run_report


def more_messages(rt, n: int, now: datetime) -> None:  # type: ignore[no-untyped-def]
    message_t, event_t = Message.__table__, Event.__table__  # type: ignore[attr-defined]
    with rt.engine.begin() as conn:
        created = dict(conn.execute(text("select id, created_at from ticket")).all())
        next_id = n + 1
        messages, events = [], []
        for ticket_id, at in created.items():
            at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            for k in (1, 2):
                when = min(at + timedelta(hours=6 * k), now)
                messages.append(
                    {"id": next_id, "ticket_id": ticket_id, "fingerprint": f"m{next_id:063x}",
                     "source": "smtp:127.0.0.1", "from_email": f"c{ticket_id}@example.org",
                     "to": [], "cc": [], "reply_to": [], "flags": {}, "received_at": when}
                )  # fmt: skip
                events.append(
                    {"ticket_id": ticket_id, "at": when, "actor": "c", "type": "message",
                     "to_value": "customer", "message_pk": next_id}
                )  # fmt: skip
                next_id += 1
            if len(messages) >= 10_000:
                conn.execute(insert(message_t), messages)
                conn.execute(insert(event_t), events)
                messages, events = [], []
        if messages:
            conn.execute(insert(message_t), messages)
            conn.execute(insert(event_t), events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        url, schema = args.database_url, None
        if url.startswith("postgresql"):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with create_engine(url).begin() as conn:
                conn.execute(text(f'create schema "{schema}"'))
            url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        try:
            start = time.perf_counter()
            rt = data.build(url, Path(tmp), args.tickets, now)
            more_messages(rt, args.tickets, now)
            with Session(rt.engine) as s:
                messages = s.execute(select(func.count()).select_from(Message)).scalar_one()
                events = s.execute(select(func.count()).select_from(Event)).scalar_one()
            took = time.perf_counter() - start
            print(f"{args.tickets} tickets, {messages} messages, {events} events"
                  f" ({rt.engine.dialect.name}), built in {took:.0f} s")  # fmt: skip
            cases = {
                "baseline: count(*) of events": lambda s: s.execute(
                    select(func.count()).select_from(Event)
                ).scalar_one(),
                "report, last 30 days": lambda s: run_report(s, rt.config, now, since="30d"),
                "report --by agent": lambda s: run_report(
                    s, rt.config, now, since="30d", by="agent"
                ),
                "report, business time (cn)": lambda s: run_report(
                    s, rt.config, now, since="30d", calendar="cn"
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, case in cases.items():
                    with Session(rt.engine) as s:
                        t0 = time.perf_counter()
                        case(s)
                        times[name].append(time.perf_counter() - t0)
            base = statistics.median(times["baseline: count(*) of events"])
            print(f"{'case':34} {'median s':>10} {'x baseline':>11}")
            for name, values in times.items():
                median = statistics.median(values)
                print(f"{name:34} {median:10.3f} {median / base:11.1f}")
            rt.engine.dispose()
        finally:
            if schema:
                with create_engine(args.database_url).begin() as conn:
                    conn.execute(text(f'drop schema "{schema}" cascade'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
