"""Growth to a million messages: what each step of a growing helpdesk costs.

    python bench/growth.py [--max N] [--steps S] [--sample K] [--database-url URL]
                           [--reps R] [--keep DIR]

Builds a helpdesk of N messages (default 1,000,000, about N/3.3 tickets) in S equal
steps (default 10), SQLite in a fresh data dir by default, or a fresh schema of the
PostgreSQL database given (dropped at the end). Each step:

  * bulk load: N/S messages through the store's own functions (store.open_ticket,
    insert_message, remember_msgids, add_participant, record_event), 1,000 messages to
    a committed transaction, with the search index kept up to date as the pipeline
    keeps it: the path every message takes after parsing, without the parsing;
  * pipeline: K real messages (default 300) through pipeline.ingest_batch in batches of
    50, as `inboxd ingest` runs them: half start a conversation, half answer one of the
    bulk-loaded tickets by In-Reply-To (so the threader looks its keys up in a table
    of the full size), each checked against the ticket it must create or join;
  * ticket list: `inboxd tickets`' query (list_tickets + tickets_json, default filter
    and status=open), p50 and p95 of R runs (default 20);
  * search: the web list's list_tickets + capped count_tickets for a rare word (~0.01 % of
    tickets), a common one (~1 %) and a very common one (~20 %), p50 (fewer runs
    once a case took 5 s);
  * show: `inboxd show`'s ticket_json(full=True) + history of a 200-message ticket;
  * database size (SQLite file + WAL, or the schema's relations on PostgreSQL) and the
    RSS of a real `inboxd serve` on the database after /healthz and one API list.

The table's "ms/msg" columns are the cost per message of the step's bulk load and of
its pipeline sample; "x1" divides them by the first step's, the number the issue's
done-when bounds (no step above ~1.5x). Mismatches (a pipeline message in the wrong
ticket, a search with the wrong number of hits) are printed and make the exit status
1; timings never do. The machine is shared, so run it under `nice -n 10`.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

# Shared with the other benchmarks (bench/ is on sys.path when this file is run).
from ingest import mount_of, work_dir
from web_list import (
    AGENTS,
    COMMON_SENTENCE,
    COMMON_WORD,
    EN_SUBJECTS,
    RARE_SENTENCE,
    RARE_WORD,
    SUPPORT,
    add_sentence,
    fill,
    free_port,
    load_average,
    message_text,
    p95,
    people,
    pg_schema,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHUNK = 1_000  # messages per committed transaction of the bulk load
BATCH = 50  # messages per transaction of the pipeline sample, as cli/mail.py
BIG_TICKET = 200  # messages of the ticket `show` is timed on
VERY_COMMON = "parcel"  # in about one message in five (web_list's English sentences)
CASE_BUDGET = 5.0  # seconds a timed case may take before it gets fewer runs
SEED = 20261203
# Messages per ticket and their weights: a mean of 3.3, a long tail.
THREAD_LENGTHS = ([1, 2, 3, 4, 5, 6, 8, 12], [30, 22, 16, 11, 8, 6, 4, 3])


@dataclass
class Step:
    """What one step measured."""

    messages: int = 0
    tickets: int = 0
    load_seconds: float = 0.0
    load_count: int = 0
    pipeline_seconds: float = 0.0
    pipeline_count: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    db_bytes: int = 0
    rss_kib: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class World:
    """The generator's state: ids so far, the tickets replies may answer, the truth."""

    rng: random.Random
    regulars: list[str]
    others: list[str]
    clock: datetime
    tickets: int = 0
    messages: int = 0
    answerable: list[tuple[int, str, str]] = field(default_factory=list)  # (id, msgid, subj)
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("rare", "common"), 0))
    big_ticket: int = 0


# --------------------------------------------------------------------------- bulk load


def load(rt: Any, world: World, count: int) -> tuple[int, float]:
    """Add about `count` messages (whole conversations) through the store's functions."""
    from inboxd.db import session_scope
    from inboxd.tickets import store

    global _TICKET_UPDATE
    _TICKET_UPDATE = _TICKET_UPDATE if _TICKET_UPDATE is not None else _ticket_update()
    rng = world.rng
    done = 0
    start = time.perf_counter()
    while done < count:
        with rt.write_lock, session_scope(rt.engine) as session:
            in_chunk = 0
            while in_chunk < CHUNK and done + in_chunk < count:
                length = rng.choices(*THREAD_LENGTHS)[0]
                if not world.big_ticket:
                    length = BIG_TICKET
                in_chunk += conversation(session, store, world, length)
        done += in_chunk
    return done, time.perf_counter() - start


def conversation(session: Any, store: Any, world: World, length: int) -> int:
    """One ticket with `length` messages, customer and agent taking turns."""
    rng = world.rng
    requester = rng.choice(world.regulars) if rng.random() < 0.5 else rng.choice(world.others)
    world.clock += timedelta(seconds=rng.expovariate(1 / 30))
    subject = fill(rng.choice(EN_SUBJECTS), rng, world.clock)
    ticket = store.open_ticket(session, subject, requester)
    assert ticket.id is not None
    world.tickets = ticket.id
    if length == BIG_TICKET:
        world.big_ticket = ticket.id
    common = rng.random() < 0.01
    rare = rng.random() < 0.0001
    world.expected["common"] += common
    world.expected["rare"] += rare
    known = {requester}
    agent_email, agent_name = AGENTS[1 + int(rng.random() * (len(AGENTS) - 1))][:2]
    first_msgid = ""
    references: list[str] = []
    for k in range(length):
        from_agent = k % 2 == 1
        when = world.clock + timedelta(minutes=37 * k)
        text = message_text(rng, "en", from_agent, when, agent_name)
        if k == 0 and common:
            text = add_sentence(text, COMMON_SENTENCE.format(word=COMMON_WORD))
        if k == 0 and rare:
            text = add_sentence(text, RARE_SENTENCE.format(word=RARE_WORD))
        sender = agent_email if from_agent else requester
        msgid = f"<g{ticket.id}.{k}.{rng.getrandbits(32):x}@{sender.split('@')[1]}>"
        first_msgid = first_msgid or msgid
        world.messages += 1
        message_pk = store.insert_message(
            session,
            {
                "ticket_id": ticket.id,
                "direction": "out" if from_agent else "in",
                "kind": "reply" if from_agent else "customer",
                "threaded_by": "web" if from_agent else ("new" if k == 0 else "references"),
                "message_id": msgid,
                "fingerprint": f"{world.messages:064x}",
                "raw_sha256": None,
                "source": "web" if from_agent else "smtp",
                "from_email": sender,
                "from_name": agent_name if from_agent else sender.split("@")[0],
                "sender_ambiguous": False,
                "to": [requester] if from_agent else [SUPPORT],
                "cc": [],
                "reply_to": [],
                "subject": subject if k == 0 else f"Re: {subject}",
                "date": when,
                "received_at": when,
                "body": text,
                "text": text,
                "html": None,
                "flags": {},
            },
        )
        keys = dict.fromkeys(references[-10:], "referenced") | {msgid: "stored"}
        store.remember_msgids(session, ticket.id, keys)
        references.append(msgid)
        if from_agent:
            store.add_participant(session, ticket, agent_email, "agent", agent_email, known)
        store.record_event(
            session, ticket, sender, "message", None, "customer", message_pk=message_pk
        )
    # Where the conversation stands now, as the pipeline and the commands would leave it.
    status = rng.choices(["open", "pending", "solved", "closed"], [15, 10, 35, 40])[0]
    session.connection().execute(
        _TICKET_UPDATE, {"b_id": ticket.id, "b_status": status, "b_updated_at": when}
    )
    if status == "closed":
        pass  # an answer to a closed ticket opens a follow-up (SPEC §5): not a reply case
    elif len(world.answerable) < 20_000:
        world.answerable.append((ticket.id, first_msgid, subject))
    else:
        world.answerable[int(rng.random() * len(world.answerable))] = (
            ticket.id,
            first_msgid,
            subject,
        )
    return length


def _ticket_update() -> Any:
    from sqlalchemy import bindparam, update

    from inboxd.models import Ticket

    return (
        update(Ticket)
        .where(Ticket.id == bindparam("b_id"))
        .values(status=bindparam("b_status"), updated_at=bindparam("b_updated_at"))
    )


_TICKET_UPDATE: Any = None

# --------------------------------------------------------------------------- pipeline


def sample_mail(world: World, k: int, step: int) -> tuple[list[bytes], list[int | None]]:
    """K real messages: half new conversations, half replies to bulk-loaded tickets.
    Returns the raw bytes and, per message, the ticket it must join (None: a new one)."""
    rng = world.rng
    raws: list[bytes] = []
    wants: list[int | None] = []
    picked = rng.sample(world.answerable, min(len(world.answerable), k // 2))
    for i in range(k):
        msg = EmailMessage()
        sender = f"sample{step}.{i}@customers.example"
        when = world.clock + timedelta(seconds=i)
        msg["Date"] = format_datetime(when)
        msg["To"] = SUPPORT
        msg["Message-ID"] = f"<s{step}.{i}.{rng.getrandbits(32):x}@customers.example>"
        if i % 2 and picked:
            ticket_id, msgid, subject = picked.pop()
            msg["From"] = sender
            msg["Subject"] = f"Re: {subject}"
            msg["In-Reply-To"] = msgid
            msg["References"] = msgid
            wants.append(ticket_id)
        else:
            msg["From"] = sender
            msg["Subject"] = fill(rng.choice(EN_SUBJECTS), rng, when)
            wants.append(None)
        msg.set_content(message_text(rng, "en", False, when, ""))
        raws.append(bytes(msg))
    return raws, wants


def run_pipeline(rt: Any, world: World, k: int, step: int, problems: list[str]) -> float:
    """K messages through pipeline.ingest_batch, BATCH to a transaction; seconds taken."""
    from inboxd import pipeline

    raws, wants = sample_mail(world, k, step)
    seconds = 0.0
    for at in range(0, len(raws), BATCH):
        items = [
            pipeline.Incoming(raw, f"sample-{step}-{at + j}")
            for j, raw in enumerate(raws[at : at + BATCH])
        ]
        start = time.perf_counter()
        results = pipeline.ingest_batch(rt, items)
        seconds += time.perf_counter() - start
        for result, want in zip(results, wants[at : at + BATCH], strict=True):
            expected = "created" if want is None else "appended"
            if result.result != expected or (want is not None and result.ticket != want):
                problems.append(
                    f"{result.source}: {result.result} #{result.ticket}, expected {expected}"
                    f" #{want or 'new'} ({result.reason})"
                )
            if result.result == "created" and result.ticket:
                world.tickets = max(world.tickets, result.ticket)
    world.messages += len(raws)
    world.clock += timedelta(seconds=len(raws))
    return seconds


# --------------------------------------------------------------------------- reads


def timed(fn: Any, reps: int) -> list[float]:
    """Run `fn` up to `reps` times (at least 3, fewer once they took CASE_BUDGET s)."""
    times: list[float] = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= 3 and sum(times) > CASE_BUDGET:
            break
    return times


def measure_reads(rt: Any, world: World, step: Step, reps: int) -> None:
    from inboxd.db import session_scope
    from inboxd.tickets import history, queries

    def listing(**filters: Any) -> Any:
        def run() -> None:
            with session_scope(rt.engine) as session:
                found = queries.list_tickets(session, queries.TicketFilter(**filters))
                queries.tickets_json(session, found)

        return run

    def search(word: str) -> Any:
        # What the web's list does for a search: a page of tickets and the capped count.
        def run() -> None:
            flt = queries.TicketFilter(q=word, limit=50)
            with session_scope(rt.engine) as session:
                found = queries.list_tickets(session, flt)
                queries.tickets_json(session, found)
                queries.count_tickets(session, flt, cap=queries.COUNT_CAP)

        return run

    with session_scope(rt.engine) as session:  # the exact counts, once, untimed
        for word in (RARE_WORD, COMMON_WORD, VERY_COMMON):
            step.hits[word] = queries.count_tickets(session, queries.TicketFilter(q=word))

    def show() -> None:
        with session_scope(rt.engine) as session:
            ticket = queries.get_ticket(session, world.big_ticket)
            queries.ticket_json(session, ticket, full=True)
            history.history(session, world.big_ticket, UTC)

    step.times["list"] = timed(listing(), reps)
    step.times["list open"] = timed(listing(status="open"), reps)
    step.times["rare"] = timed(search(RARE_WORD), reps)
    step.times["common"] = timed(search(COMMON_WORD), reps)
    step.times["very common"] = timed(search(VERY_COMMON), reps)
    step.times["show 200"] = timed(show, reps)
    for word, key in ((RARE_WORD, "rare"), (COMMON_WORD, "common")):
        got, want = step.hits.get(word), world.expected[key]
        if got != want:
            step.problems.append(f"search {word!r}: {got} tickets, expected {want}")


def database_bytes(rt: Any) -> int:
    if rt.engine.dialect.name == "sqlite":
        path = rt.config.data_dir / "inboxd.db"
        return sum(p.stat().st_size for p in path.parent.glob("inboxd.db*"))
    with rt.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
            ).scalar_one()
        )


# --------------------------------------------------------------------------- serve


def serve_rss(cfg: Path, token: str) -> int:
    """Start `inboxd serve` on the database, ask /healthz and one API page, read its RSS
    (KiB, high-water mark), stop it with SIGTERM."""
    exe = Path(sys.executable).with_name("inboxd")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "inboxd"]
    web = free_port()
    site = cfg.parent / f"serve-{web}.toml"
    site.write_text(
        cfg.read_text("utf-8").replace("[inboxd]", "[inboxd]\nclock_seconds = 60", 1)
        + f"\n[smtp]\nport = {free_port()}\n\n[web]\nport = {web}\n",
        "utf-8",
    )
    proc = subprocess.Popen(
        [*command, "serve", "--config", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{web}"
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=30).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return 0
                time.sleep(0.2)
        request = urllib.request.Request(
            f"{base}/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}
        )
        urllib.request.urlopen(request, timeout=120).read()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=1_000_000, metavar="N", help="messages in all")
    ap.add_argument("--steps", type=int, default=10, metavar="S")
    ap.add_argument("--sample", type=int, default=300, metavar="K", help="pipeline messages")
    ap.add_argument("--reps", type=int, default=20, metavar="R", help="runs per read case")
    ap.add_argument(
        "--database-url",
        default="",
        metavar="URL",
        help="PostgreSQL to run against, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        " (a fresh schema, dropped at the end); default: SQLite in the data dir",
    )
    ap.add_argument("--no-serve", action="store_true", help="skip the RSS of `inboxd serve`")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep everything")
    args = ap.parse_args()
    if args.max < args.steps * 2 * BIG_TICKET or args.steps < 1:
        ap.error(f"--max must be at least {args.steps * 2 * BIG_TICKET} for {args.steps} steps")
    with work_dir(args.keep, "inboxd-growth-") as work:
        if args.database_url:
            with pg_schema(args.database_url) as url:
                return bench(args, work, url)
        return bench(args, work, "")


def bench(args: argparse.Namespace, work: Path, database_url: str) -> int:
    from inboxd import __version__
    from inboxd import config as config_mod
    from inboxd.agents import directory
    from inboxd.db import session_scope
    from inboxd.runtime import open_runtime

    cfg = write_config(work / "site", database_url)
    rt = open_runtime(config_mod.load(cfg))
    with session_scope(rt.engine) as session:
        token = directory.issue_api_token(session, AGENTS[0][0])
    where = "PostgreSQL" if database_url else "SQLite"
    print(
        f"inboxd {__version__} growth benchmark: {args.max} messages in {args.steps} steps,"
        f" {args.sample} through the pipeline per step, {where}, Python"
        f" {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"work dir: {work} on {mount_of(work)}; {load_average()}", flush=True)
    rng = random.Random(SEED)
    regulars, others = people(rng)
    world = World(rng, regulars, others, datetime.now(UTC) - timedelta(days=400))
    per_step = args.max // args.steps
    steps: list[Step] = []
    header = (
        f"{'messages':>9} {'tickets':>8} {'load/s':>7} {'ms/msg':>6} {'x1':>5}"
        f" {'pipe/s':>6} {'ms/msg':>6} {'x1':>5} {'list p50/p95 ms':>16} {'open p50':>8}"
        f" {'rare':>7} {'common':>7} {'v.common':>8} {'show200':>7} {'MiB':>6} {'RSS MiB':>7}"
    )
    print(header, flush=True)
    for number in range(1, args.steps + 1):
        step = Step()
        step.load_count, step.load_seconds = load(rt, world, per_step - args.sample)
        step.pipeline_seconds = run_pipeline(rt, world, args.sample, number, step.problems)
        step.pipeline_count = args.sample
        if rt.engine.dialect.name == "postgresql":
            with rt.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")  # as autovacuum would, soon after a load
        step.messages, step.tickets = world.messages, world.tickets
        measure_reads(rt, world, step, args.reps)
        step.db_bytes = database_bytes(rt)
        if not args.no_serve:
            step.rss_kib = serve_rss(cfg, token)
        steps.append(step)
        print(row(step, steps[0]), flush=True)
    rt.engine.dispose()
    print(
        f"hits: rare {steps[-1].hits.get(RARE_WORD)}, common {steps[-1].hits.get(COMMON_WORD)},"
        f" very common {steps[-1].hits.get(VERY_COMMON)} tickets; search and show: p50 ms of"
        " list_tickets + tickets_json + count_tickets capped as the web's list counts;"
        f" {load_average()}"
    )
    problems = [p for s in steps for p in s.problems]
    print(f"check: {'ok' if not problems else f'{len(problems)} MISMATCHES'}")
    for problem in problems[:10]:
        print(f"  {problem}")
    return 1 if problems else 0


def row(step: Step, first: Step) -> str:
    def per(seconds: float, count: int) -> float:
        return 1000 * seconds / max(1, count)

    def p50(name: str) -> float:
        return 1000 * statistics.median(step.times[name])

    load_ms = per(step.load_seconds, step.load_count)
    pipe_ms = per(step.pipeline_seconds, step.pipeline_count)
    first_load = per(first.load_seconds, first.load_count)
    first_pipe = per(first.pipeline_seconds, first.pipeline_count)
    listing = f"{p50('list'):.1f}/{1000 * p95(step.times['list']):.1f}"
    return (
        f"{step.messages:>9} {step.tickets:>8} {1000 / load_ms:>7.0f} {load_ms:>6.2f}"
        f" {load_ms / first_load:>4.2f}x {1000 / pipe_ms:>6.0f} {pipe_ms:>6.2f}"
        f" {pipe_ms / first_pipe:>4.2f}x {listing:>16} {p50('list open'):>8.1f}"
        f" {p50('rare'):>7.1f} {p50('common'):>7.1f} {p50('very common'):>8.1f}"
        f" {p50('show 200'):>7.1f} {step.db_bytes / 2**20:>6.0f} {step.rss_kib / 1024:>7.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
