"""Several `inboxd serve` on one PostgreSQL: rates for 1, 2 and 3 daemons, and a kill.

    python bench/daemons.py [--messages N] [--threads T] [--rounds R] [--postgres URL]

Each run starts its daemons (`inboxd serve` subprocesses, own data_dir and ports, one
fresh PostgreSQL schema shared by them, outbound mail to a capture relay) and sends N
new conversations over SMTP from T threads, spread round robin over the daemons. Two
rates per run, from the first connection: accepted/s until the last 250, and
ticketed/s until every accepted message is stored and the spool is empty.

The kill run uses three daemons and SIGKILLs the first once a third of the mail is
accepted; its senders move on to the next daemon, as an MTA retries. It reports the
seconds from the kill to the last ticket (the claims of issue 18 held a dead daemon's
work for a 2-minute lease), messages lost (250'd but never stored), messages stored
twice, and outgoing mails the relay received twice (at most the one a kill cut short
may be; SPEC §9). The four runs are interleaved R times (default 3) and the table shows
the median of each figure, because the machine is noisy; the counts are summed over the
rounds. Mismatches make the exit status 1; timings never do.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cluster import Cluster, customer_mails, duplicates  # noqa: E402
from mailbuilder import mail  # noqa: E402
from relay import CaptureRelay  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Result:
    name: str
    daemons: int
    accepted: int
    accept_rate: float
    ticket_rate: float
    takeover: float | None = None
    lost: int = 0
    doubled: int = 0
    sent_twice: int = 0


@contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    """A schema of its own on the server, dropped afterwards (others share the server)."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        # Where no run's `drop schema cascade` takes it (tests/conftest.py says why).
        conn.execute(text("create extension if not exists pg_trgm schema public"))
        conn.execute(text(f'create schema "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


def run(base_url: str, work: Path, daemons: int, messages: int, threads: int, kill: bool) -> Result:
    name = f"{daemons} daemon{'s' if daemons > 1 else ''}" + (", one killed" if kill else "")
    tag = uuid.uuid4().hex[:8]
    mails = customer_mails(messages, tag, mail)
    with fresh_schema(base_url) as url, CaptureRelay() as relay:
        cluster = Cluster(work / tag, url, relay, nodes=daemons).start()
        try:
            load = cluster.send_in_background(mails, threads=threads)
            killed_at = None
            if kill:
                while len(load.accepted) < messages // 3 and any(
                    t.is_alive() for t in load.threads
                ):
                    time.sleep(0.01)
                cluster.nodes[0].kill()
                killed_at = time.monotonic()
            load.join()
            done_at = cluster.wait_all_processed(load.accepted, timeout=600)
            cluster.wait_outbound_sent(relay, timeout=600)
            stored = cluster.stored_ids()
            result = Result(
                name,
                daemons,
                len(load.accepted),
                len(load.accepted) / max(load.last_at - load.first_at, 1e-9),
                len(load.accepted) / max(done_at - load.first_at, 1e-9),
                None if killed_at is None else done_at - killed_at,
                lost=sum(1 for m in load.accepted if not stored[m]),
                doubled=sum(1 for n in stored.values() if n > 1),
                sent_twice=len(duplicates(relay)),
            )
        finally:
            cluster.ensure_stopped()
    return result


def median(runs: list[Result]) -> Result:
    """The median of each figure over the rounds; the counts summed."""
    takeovers = [r.takeover for r in runs if r.takeover is not None]
    return Result(
        runs[0].name,
        runs[0].daemons,
        sum(r.accepted for r in runs),
        statistics.median(r.accept_rate for r in runs),
        statistics.median(r.ticket_rate for r in runs),
        statistics.median(takeovers) if takeovers else None,
        lost=sum(r.lost for r in runs),
        doubled=sum(r.doubled for r in runs),
        sent_twice=sum(r.sent_twice for r in runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=PG_URL)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inboxd-bench-daemons-"))
    plan = [(1, False), (2, False), (3, False), (3, True)]
    rounds: list[list[Result]] = [[] for _ in plan]
    try:
        for _ in range(args.rounds):
            for runs, (daemons, kill) in zip(rounds, plan, strict=True):
                runs.append(run(args.postgres, work, daemons, args.messages, args.threads, kill))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = [median(runs) for runs in rounds]
    base = results[0]
    print(
        f"{args.messages} messages, {args.threads} SMTP threads, one PostgreSQL, "
        f"median of {args.rounds} rounds"
    )
    print(
        f"{'run':<24} {'accepted/s':>10} {'x1':>5} {'ticketed/s':>10} {'x1':>5} "
        f"{'kill->last':>10} {'lost':>4} {'double':>6} {'sent2x':>6}"
    )
    bad = False
    for r in results:
        takeover = "-" if r.takeover is None else f"{r.takeover:.1f} s"
        print(
            f"{r.name:<24} {r.accept_rate:>10.1f} {r.accept_rate / base.accept_rate:>5.2f} "
            f"{r.ticket_rate:>10.1f} {r.ticket_rate / base.ticket_rate:>5.2f} "
            f"{takeover:>10} {r.lost:>4} {r.doubled:>6} {r.sent_twice:>6}"
        )
        allowed = args.rounds if r.takeover is not None else 0
        bad = bad or r.lost > 0 or r.doubled > 0 or r.sent_twice > allowed
        bad = bad or r.accepted != args.messages * args.rounds
    if bad:
        print("MISMATCH: a message was lost or doubled, or a mail sent twice", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
