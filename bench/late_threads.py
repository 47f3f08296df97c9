"""Threading when mail is late: pairwise precision and recall on a generated archive.

    python bench/late_threads.py [--threads N] [--runs R] [--delay D] [--seed S]
                                 [--no-list-id] [-v]

Builds a mailing-list archive of its own (made here, no real mail): N conversations
(default 120) among 40 list members, each a tree of replies with the header habits
real clients have (full References, References trimmed to the last few, In-Reply-To
only, References without In-Reply-To), reply-all Cc to the parent's author half of the
time, and the List-Id the list server adds (`--no-list-id` leaves it out, to see the
replies that only a reply-all ties to their parent).

The archive is ingested into a fresh SQLite database once in send order and R times
(default 3) with each message delayed by a random 0..D places (default 20). Each run
is scored on every pair of messages, "same ticket" (after merges) against "same
conversation". Precision: of the pairs on one ticket, the share that are one
conversation. Recall: of the pairs of one conversation, the share on one ticket.

Nothing here is a pass/fail gate; tests/test_threading.py checks the rules themselves.
The issue's target (#10, class 7): delayed recall >= 0.99 with precision no lower than
in order.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from inboxd.config import from_dict  # noqa: E402
from inboxd.db import session_scope  # noqa: E402
from inboxd.models import Message, Ticket  # noqa: E402
from inboxd.pipeline import ingest  # noqa: E402
from inboxd.runtime import open_runtime  # noqa: E402

LIST = "dev@lists.example.org"
HABITS = (("full", 0.65), ("trimmed", 0.15), ("in-reply-to", 0.15), ("references", 0.05))


@dataclass(frozen=True)
class Mail:
    """One message of the archive: its conversation and its raw bytes."""

    msgid: str
    thread: int
    raw: bytes


def archive(threads: int, seed: int, list_id: bool = True) -> list[Mail]:
    """The archive in send order (without List-Id headers if `list_id` is False)."""
    rng = random.Random(seed)
    members = [f"member{i}@users.example.net" for i in range(40)]
    habit = {m: rng.choices([h for h, _ in HABITS], [w for _, w in HABITS])[0] for m in members}
    events: list[tuple[datetime, Mail]] = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for t in range(threads):
        when = start + timedelta(minutes=rng.randrange(60 * 24 * 20))
        size = min(1 + int(rng.expovariate(1 / 5)), 30)
        # (msgid, author, chain of ancestors' Message-IDs)
        posted: list[tuple[str, str, list[str]]] = []
        for n in range(size):
            msgid = f"<t{t}.m{n}.{rng.getrandbits(32):08x}@mail.example.net>"
            author = rng.choice(members)
            headers = [
                f"From: Member <{author}>",
                f"To: {LIST}",
                f"Subject: {'Re: ' if n else ''}topic {t}",
                f"Message-ID: {msgid}",
                f"Date: {format_datetime(when)}",
            ]
            if list_id:
                headers.append(f"List-Id: Developers <{LIST.replace('@', '.')}>")
            chain: list[str] = []
            if posted:
                # Most replies answer one of the last few messages.
                parent_id, parent_author, parent_chain = posted[
                    max(0, len(posted) - 1 - int(rng.expovariate(1 / 2)))
                ]
                chain = [*parent_chain, parent_id]
                if rng.random() < 0.5:
                    headers.append(f"Cc: {parent_author}")
                style = habit[author]
                if style in ("full", "trimmed", "in-reply-to"):
                    headers.append(f"In-Reply-To: {parent_id}")
                if style == "full":
                    headers.append(f"References: {' '.join(chain)}")
                elif style == "trimmed":
                    headers.append(f"References: {' '.join(chain[-2:])}")
                elif style == "references":
                    headers.append(f"References: {' '.join(chain)}")
            posted.append((msgid, author, chain))
            body = f"Message {n} of topic {t}.\r\n"
            raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode()
            events.append((when, Mail(msgid, t, raw)))
            when += timedelta(minutes=1 + rng.randrange(600))
    events.sort(key=lambda e: e[0])
    return [mail for _, mail in events]


def delayed(mails: list[Mail], delay: int, seed: int) -> list[Mail]:
    """Each message held back by a random 0..delay places, as relays and retries do."""
    rng = random.Random(seed)
    keys = [(i + rng.randint(0, delay), i) for i in range(len(mails))]
    return [mails[i] for _, i in sorted(keys)]


def run(order: list[Mail], directory: Path) -> dict[str, int]:
    """Ingest `order` into a fresh database; each Message-ID's final ticket."""
    config = from_dict(
        {
            "inboxd": {"support_address": "support@helpdesk.example"},
            "agents": [{"email": "agent@helpdesk.example", "name": "Agent", "role": "admin"}],
        },
        base_dir=directory,
        source="bench",
    )
    rt = open_runtime(config)
    try:
        for mail in order:
            result = ingest(rt, mail.raw, "bench", ())
            if result.result not in ("created", "appended"):
                raise SystemExit(f"{mail.msgid}: {result}")
        with session_scope(rt.engine) as session:
            merged = {t.id: t.merged_into for t in session.exec(select(Ticket)).all()}
            placed = {}
            for msgid, ticket in session.exec(select(Message.message_id, Message.ticket_id)):
                hops = 0
                while merged.get(ticket) and hops < 100:
                    ticket = merged[ticket]
                    hops += 1
                placed[msgid] = ticket
        return placed
    finally:
        rt.engine.dispose()


def pairs(groups: Counter[object]) -> int:
    return sum(n * (n - 1) // 2 for n in groups.values())


def score(mails: list[Mail], placed: dict[str, int]) -> tuple[float, float, int]:
    """(precision, recall, tickets) of "same ticket" against "same conversation"."""
    both = pairs(Counter((m.thread, placed[m.msgid]) for m in mails))
    same_ticket = pairs(Counter(placed[m.msgid] for m in mails))
    same_thread = pairs(Counter(m.thread for m in mails))
    precision = both / same_ticket if same_ticket else 1.0
    recall = both / same_thread if same_thread else 1.0
    return precision, recall, len(set(placed.values()))


def split_threads(mails: list[Mail], placed: dict[str, int]) -> list[tuple[int, list[int]]]:
    """Conversations spread over more than one ticket, with the tickets."""
    tickets: dict[int, set[int]] = {}
    for m in mails:
        tickets.setdefault(m.thread, set()).add(placed[m.msgid])
    return [(t, sorted(ts)) for t, ts in sorted(tickets.items()) if len(ts) > 1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=int, default=20)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--no-list-id", action="store_true", help="as if no list server")
    parser.add_argument("-v", action="store_true", help="list the split conversations")
    args = parser.parse_args(argv)
    mails = archive(args.threads, args.seed, list_id=not args.no_list_id)
    print(f"archive: {len(mails)} messages in {args.threads} conversations (seed {args.seed})")
    orders = [("in order", mails)]
    orders += [
        (f"delayed {r + 1}", delayed(mails, args.delay, args.seed * 1000 + r))
        for r in range(args.runs)
    ]
    print(f"{'order':<12} {'precision':>9} {'recall':>7} {'tickets':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, order in orders:
            directory = Path(tmp) / name.replace(" ", "-")
            directory.mkdir()
            placed = run(order, directory)
            precision, recall, tickets = score(mails, placed)
            print(f"{name:<12} {precision:>9.4f} {recall:>7.4f} {tickets:>7}")
            if args.v:
                for thread, ts in split_threads(mails, placed):
                    print(f"    topic {thread} on tickets {ts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
