"""Customer profiles' cost (#15): the pipeline's customer step, and the customer card.

    python bench/customers.py [--messages N] [--rounds R]

1. Ingest: N generated mails (new tickets from N/4 senders with a CC each, and replies)
   through `inboxd.pipeline.ingest` in one process, with the customer step
   (`pipeline._resolve_customers`) and, as the baseline in the same run, with it
   replaced by a no-op; fresh SQLite databases, rounds interleaved; median msg/s and
   the ratio.
2. The customer card (`customers.context.context_for`) for a requester whose
   organisation has N tickets, against `queries.ticket_json` of the same ticket (what
   every notification and page reads anyway): median ms per call and the ratio.

Timings are printed, never checked (a benchmark is not a test).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from mailbuilder import mail, new_msgid  # noqa: E402
from sqlmodel import Session  # noqa: E402

from inboxd import pipeline  # noqa: E402
from inboxd.config import from_dict  # noqa: E402
from inboxd.customers.context import context_for  # noqa: E402
from inboxd.runtime import open_runtime  # noqa: E402
from inboxd.tickets import queries  # noqa: E402

ORGS = [{"name": "Acme", "domains": ["acme.example"]}]


def corpus(n: int) -> list[bytes]:
    out: list[bytes] = []
    senders = max(1, n // 4)
    for i in range(n):
        who = f"Person {i % senders} <p{i % senders}@{'acme.example' if i % 2 else 'gmail.com'}>"
        out.append(
            mail(
                sender=who,
                cc=f"Colleague {i} <c{i % senders}@acme.example>",
                subject=f"Question {i}",
                message_id=new_msgid(),
                body=f"Message {i}: where is my order?\n",
            )
        )
    return out


def runtime(base: Path):  # type: ignore[no-untyped-def]
    data = {
        "inboxd": {"support_address": "support@example.com", "acknowledge": False},
        "agents": [{"email": "alice@example.com", "name": "Alice", "role": "admin"}],
        "organizations": ORGS,
    }
    return open_runtime(from_dict(data, base_dir=base, source="bench"))


def ingest_rate(raws: list[bytes], base: Path, with_step: bool) -> float:
    rt = runtime(base)
    real = pipeline._resolve_customers
    if not with_step:
        pipeline._resolve_customers = lambda *a, **k: None  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        for raw in raws:
            pipeline.ingest(rt, raw, "bench")
        return len(raws) / (time.perf_counter() - began)
    finally:
        pipeline._resolve_customers = real  # type: ignore[assignment]
        rt.engine.dispose()


def card_times(base: Path, n: int) -> tuple[float, float]:
    rt = runtime(base)
    for raw in corpus(n):
        pipeline.ingest(rt, raw, "bench")
    last = pipeline.ingest(rt, mail(sender="p1@acme.example", message_id=new_msgid()), "bench")
    assert last.ticket is not None
    cards, plain = [], []
    with Session(rt.engine) as session:
        ticket = queries.get_ticket(session, last.ticket)
        for _ in range(50):
            began = time.perf_counter()
            context_for(session, ticket.requester, ticket.id)
            cards.append(time.perf_counter() - began)
            began = time.perf_counter()
            queries.ticket_json(session, ticket)
            plain.append(time.perf_counter() - began)
    rt.engine.dispose()
    return statistics.median(cards) * 1000, statistics.median(plain) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    raws = corpus(args.messages)
    on, off = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            off.append(ingest_rate(raws, Path(tmp) / f"off{r}", with_step=False))
            on.append(ingest_rate(raws, Path(tmp) / f"on{r}", with_step=True))
        card, plain = card_times(Path(tmp) / "card", args.messages)
    base, step = statistics.median(off), statistics.median(on)
    print(f"ingest without the customer step (baseline): {base:7.1f} msg/s")
    print(
        f"ingest with the customer step:               {step:7.1f} msg/s  ratio {step / base:.2f}"
    )
    print(f"ticket_json (baseline):       {plain:6.2f} ms")
    print(f"customer card (context_for):  {card:6.2f} ms  ratio {card / plain:.2f}")


if __name__ == "__main__":
    main()
