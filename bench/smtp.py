"""SMTP throughput: `inboxd serve` over parallel connections against a raw aiosmtpd fsync sink.

    python bench/smtp.py [--messages N] [--connections C] [--rounds R] [--keep DIR]

Generates a corpus once with ../shared/tools/gen_corpus.py (new tickets and threaded
replies; plain, HTML, attachments, CJK), with CRLF line endings as on the wire. Then it
runs R interleaved rounds. In each round, C sender threads share one queue of messages
in corpus order. Each thread keeps one smtplib connection open and sends one message
after another on it, to two servers:

  * baseline: a bare aiosmtpd server in a subprocess (this file run with --sink DIR).
              Its handle_DATA writes each message to a file of its own and fsyncs the
              file and the directory, in a worker thread, before answering 250. That is
              the least any server pays that keeps the promise "250 means on disk".
  * inboxd:   `inboxd serve` as a subprocess, with a fresh data_dir (SQLite, or with
              --postgres URL a fresh schema on that PostgreSQL per round), free
              [smtp] and [web] ports and outbound mail in file mode. Two rates:
              accepted/s, from the first connection to the last 250 (spool committed);
              and accepted-and-ticketed/s, from the same start until the spool is empty
              (every row done: the pipeline has committed the ticket or the reply).
              The script polls the database read-only every 20 ms to see this.

The summary is the median of the rounds, because the machine is noisy, and each inboxd
rate divided by the baseline's; and each round's accepted rate divided by its own
baseline's (the two runs of a round are seconds apart), with their median: how far the
ratio swings with the machine's load.
Every run is checked. The sink must hold exactly the bytes that were sent. inboxd must
have spooled every message once and stored one Message row per distinct Message-ID. It
must have one ticket per conversation in the generator's manifest, with all of a
conversation's messages on that ticket. It must exit 0 on SIGTERM. Mismatches are
printed and make the exit status 1; timings never do (a benchmark is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Shared with the ingest benchmark (bench/ is on sys.path when this file is run).
from ingest import inboxd_command, mount_of, work_dir

ROOT = Path(__file__).resolve().parent.parent
GEN_CORPUS = ROOT.parent / "shared" / "tools" / "gen_corpus.py"
SUPPORT = "support@helpdesk.example"  # where gen_corpus.py addresses its mail
POLL_SECONDS = 0.02
START_TIMEOUT = 60.0
DRAIN_TIMEOUT = 900.0


@dataclass(frozen=True)
class Mail:
    """One corpus message as it goes on the wire."""

    file: str
    message_id: str
    conv: int
    mail_from: str
    raw: bytes  # CRLF line endings


@dataclass
class Sent:
    """What the sender threads saw: when each 250 came and how long it took."""

    start: float = 0.0
    done_at: list[float] = field(default_factory=list)  # perf_counter() of each 250
    latencies: list[float] = field(default_factory=list)
    temp_failures: int = 0  # 4xx, sent again like an MTA would
    refused: list[str] = field(default_factory=list)  # 5xx or gave up: a mismatch
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def last(self) -> float:
        return max(self.done_at) if self.done_at else self.start

    def rate(self, count: int) -> float:
        return count / (self.last - self.start) if self.last > self.start else 0.0


@dataclass
class Run:
    """One round of one server."""

    name: str
    messages: int
    accepted_rate: float = 0.0
    ticketed_rate: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the server process, user + system
    busiest_thread: float = 0.0  # CPU seconds of its busiest thread
    startup: float = 0.0  # spawn until the SMTP port answers
    during_send: float = 0.0  # msg/s the pipeline finished while mail was arriving
    after_send: float = 0.0  # msg/s it finished after the last 250 (the backlog)
    backlog: int = 0  # messages still pending at the last 250
    acks_seconds: float = 0.0  # after the drain, until the outbound queue was empty
    ingested: Counter[str] = field(default_factory=Counter)  # from /metrics, by result
    temp_failures: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- corpus


def make_corpus(n: int, work: Path) -> list[Mail]:
    """Generate N messages once; keep only *.eml, with CRLF line ends, in manifest order."""
    if not GEN_CORPUS.is_file():
        sys.exit(
            f"bench/smtp.py: corpus generator not found at {GEN_CORPUS}\n"
            "  (expected ../shared/tools/gen_corpus.py next to the repository)"
        )
    generated = work / "generated"
    proc = subprocess.run(
        [sys.executable, str(GEN_CORPUS), str(n), str(generated)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"bench/smtp.py: gen_corpus.py failed:\n{proc.stderr}")
    with (generated / "manifest.tsv").open(encoding="utf-8") as handle:
        manifest = {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}
    mails = []
    for path in sorted(generated.glob("*.eml")):
        row = manifest[path.name]
        # The files end lines in LF; on the wire every line ends in CRLF (and inboxd
        # refuses bare LF, as Postfix's smtpd_forbid_bare_newline does).
        raw = re.sub(rb"\r?\n", b"\r\n", path.read_bytes())
        found = re.search(rb"^Return-Path: <([^>]*)>", raw, re.MULTILINE)
        sender = found.group(1).decode("ascii", "replace") if found else "sender@example.net"
        mails.append(Mail(path.name, row["message_id"], int(row["conv"]), sender, raw))
    summary = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    print(f"corpus: {summary.replace(str(generated), 'corpus/')}")
    return mails


# --------------------------------------------------------------------------- sending


def send_all(port: int, mails: list[Mail], connections: int) -> Sent:
    """C threads, one connection each, taking the next message from a shared list."""
    sent = Sent()
    lock = threading.Lock()
    todo = iter(mails)

    def next_mail() -> Mail | None:
        with lock:
            return next(todo, None)

    def sender() -> None:
        smtp: smtplib.SMTP | None = None
        while (mail := next_mail()) is not None:
            for _attempt in range(5):
                began = time.perf_counter()
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
                    smtp.sendmail(mail.mail_from, [SUPPORT], mail.raw)
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code >= 500:
                        with lock:
                            sent.refused.append(f"{mail.file}: {exc.smtp_code} {exc.smtp_error!r}")
                        break
                    with lock:
                        sent.temp_failures += 1
                except (smtplib.SMTPException, OSError) as exc:
                    with lock:
                        sent.temp_failures += 1
                    print(
                        f"  {mail.file}: {type(exc).__name__}: {exc}; reconnecting", file=sys.stderr
                    )
                    smtp = None
                else:
                    now = time.perf_counter()
                    with lock:
                        sent.done_at.append(now)
                        sent.latencies.append(now - began)
                    break
            else:
                with lock:
                    sent.refused.append(f"{mail.file}: no 250 after 5 attempts")
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException):
                smtp.quit()

    sent.threads = [threading.Thread(target=sender, name=f"sender-{n}") for n in range(connections)]
    sent.start = time.perf_counter()
    for thread in sent.threads:
        thread.start()
    return sent


def join_senders(sent: Sent) -> None:
    for thread in sent.threads:
        thread.join()


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_of(pid: int) -> tuple[float, float]:
    """(user + system CPU seconds of the process, of its busiest thread), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(path: Path) -> float:
        fields = path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    try:
        total = stat(Path(f"/proc/{pid}/stat"))
        threads = [stat(task / "stat") for task in Path(f"/proc/{pid}/task").iterdir()]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    return total, max(threads, default=0.0)


def stop(proc: subprocess.Popen[Any], timeout: float = 120.0) -> int | None:
    """SIGTERM and wait; SIGKILL if it does not stop. Returns the exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


# --------------------------------------------------------------------------- baseline


def sink_main(directory: Path) -> None:
    """The baseline server (runs in the subprocess): aiosmtpd, one fsynced file per 250."""
    from aiosmtpd.smtp import SMTP

    class FsyncSink:
        def __init__(self) -> None:
            self.dir_fd = os.open(directory, os.O_RDONLY)
            self.count = 0

        async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
            self.count += 1
            raw = envelope.original_content or b""  # type: ignore[attr-defined]
            await asyncio.to_thread(self.write, directory / f"{self.count:07d}.eml", raw)
            return "250 2.0.0 OK"

        def write(self, path: Path, raw: bytes) -> None:
            with open(path, "xb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.fsync(self.dir_fd)  # the new directory entry is durable too

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        handler = FsyncSink()
        server = await loop.create_server(
            lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True, hostname="sink"),
            host="127.0.0.1",
            port=0,
        )
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
        await stopped.wait()
        server.close()
        await server.wait_closed()

    asyncio.run(serve())


def run_baseline(mails: list[Mail], connections: int, directory: Path) -> Run:
    directory.mkdir(parents=True)
    run = Run("baseline", len(mails))
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"bench/smtp.py: the baseline sink did not start: {line!r}")
    run.startup = time.perf_counter() - began
    sent = send_all(int(line.split()[-1]), mails, connections)
    join_senders(sent)
    run.cpu_seconds, run.busiest_thread = cpu_of(proc.pid)
    code = stop(proc)
    run.accepted_rate = run.ticketed_rate = sent.rate(len(mails))
    run.latencies = sent.latencies
    run.temp_failures = sent.temp_failures
    run.problems += sent.refused
    if code != 0:
        run.problems.append(f"the sink exited with {code}")
    stored = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.eml"))
    wanted = Counter(hashlib.sha256(m.raw).hexdigest() for m in mails)
    run.counts["files"] = sum(stored.values())
    if stored != wanted:
        run.problems.append(
            f"{sum((wanted - stored).values())} messages missing,"
            f" {sum((stored - wanted).values())} unexpected files"
        )
    return run


# --------------------------------------------------------------------------- inboxd


def write_config(directory: Path, database_url: str = "") -> Path:
    """inboxd.toml for one round: fresh data_dir (SQLite, or a fresh PostgreSQL schema),
    free ports, outbound to files."""
    directory.mkdir(parents=True)
    data = directory / "data"
    cfg = directory / "inboxd.toml"
    url_line = f'database_url = "{database_url}"\n' if database_url else ""
    cfg.write_text(
        "[inboxd]\n"
        f'support_address = "{SUPPORT}"\n'
        f'data_dir = "{data.as_posix()}"\n'
        f"{url_line}"
        "[smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {free_port()}\n"
        "[web]\n"
        'host = "127.0.0.1"\n'
        f"port = {free_port()}\n"
        "[outbound]\n"
        'mode = "file"\n',
        encoding="utf-8",
    )
    return cfg


def port_of(cfg: Path, section: str) -> int:
    text = cfg.read_text(encoding="utf-8").split(f"[{section}]", 1)[1]
    found = re.search(r"^port = (\d+)", text, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def wait_listening(proc: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(
                f"bench/smtp.py: inboxd serve exited with {proc.returncode}:\n{log.read_text()}"
            )
        if "SMTP listening on" in log.read_text(errors="replace"):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                pass
        time.sleep(0.02)
    proc.kill()
    sys.exit(f"bench/smtp.py: inboxd serve did not listen within {START_TIMEOUT:.0f} s")


@dataclass(frozen=True)
class Database:
    """Where a round's inboxd keeps its data: a SQLite file, or a PostgreSQL schema."""

    sqlite: Path | None = None
    pg_url: str = ""  # a libpq URL with the round's search_path
    inboxd_url: str = ""  # the same for inboxd.toml (SQLAlchemy's spelling)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a read-only query; [] while the schema does not exist yet."""
        if self.sqlite is not None:
            try:
                conn = sqlite3.connect(f"file:{self.sqlite}?mode=ro", uri=True, timeout=10)
            except sqlite3.OperationalError:
                return []
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.OperationalError:  # not created yet
                return []
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            try:
                return conn.execute(sql).fetchall()  # type: ignore[arg-type]
            except psycopg.errors.UndefinedTable:
                return []


def spool_state(db: Database) -> tuple[int, int, int]:
    """(rows, pending, queued outbound) read from the daemon's database, read-only."""
    found = db.rows(
        "select count(*), coalesce(sum(case when state = 'pending' then 1 else 0 end), 0)"
        " from inbound"
    )
    queued = db.rows("select count(*) from outbound where status = 'queued'")
    if not found or not queued:
        return 0, 0, 0
    return int(found[0][0]), int(found[0][1]), int(queued[0][0])


def run_inboxd(mails: list[Mail], connections: int, cfg: Path, db: Database) -> Run:
    run = Run("inboxd", len(mails))
    base = cfg.parent
    log = base / "serve.log"
    smtp_port = port_of(cfg, "smtp")
    began = time.perf_counter()
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [*inboxd_command(), "serve", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            cwd=base,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    wait_listening(proc, log, smtp_port)
    run.startup = time.perf_counter() - began
    cpu_before, _ = cpu_of(proc.pid)

    # Poll the spool while the senders work: the pipeline runs concurrently with them.
    sent = send_all(smtp_port, mails, connections)
    timeline: list[tuple[float, int]] = []  # (time, messages no longer pending)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    drained = None
    while time.monotonic() < deadline:
        rows, pending, _queued = spool_state(db)
        now = time.perf_counter()
        timeline.append((now, rows - pending))
        senders_done = not any(t.is_alive() for t in sent.threads)
        if senders_done and rows >= len(sent.done_at) and pending == 0:
            drained = now
            break
        time.sleep(POLL_SECONDS)
    join_senders(sent)
    if drained is None:
        run.problems.append(f"the spool was not drained after {DRAIN_TIMEOUT:.0f} s")
        drained = time.perf_counter()
    accepted = len(sent.done_at)
    run.accepted_rate = sent.rate(accepted)
    run.ticketed_rate = accepted / (drained - sent.start)
    run.latencies = sent.latencies
    run.temp_failures = sent.temp_failures
    run.problems += sent.refused
    done_at_last = max((n for t, n in timeline if t <= sent.last), default=0)
    run.backlog = accepted - done_at_last
    run.during_send = done_at_last / (sent.last - sent.start)
    if drained > sent.last and run.backlog:
        run.after_send = run.backlog / (drained - sent.last)
    cpu_after, run.busiest_thread = cpu_of(proc.pid)
    run.cpu_seconds = cpu_after - cpu_before

    # Acknowledgements go out after the ticket is committed, from the outbound loop. Not
    # part of "ticketed"; timed so that SIGTERM does not land in the middle of them.
    ack_start = time.perf_counter()
    while spool_state(db)[2] and time.perf_counter() - ack_start < DRAIN_TIMEOUT:
        time.sleep(POLL_SECONDS)
    run.acks_seconds = time.perf_counter() - ack_start
    web_port = port_of(cfg, "web")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        counters = re.findall(r'^inboxd_ingested_total\{result="(\w+)"\} (\d+)$', metrics, re.M)
        run.ingested.update({result: int(value) for result, value in counters})
    except OSError as exc:
        run.problems.append(f"/metrics: {exc}")

    code = stop(proc)
    if code != 0:
        run.problems.append(f"inboxd serve exited with {code} after SIGTERM; log: {log}")
    check_inboxd(run, mails, db)
    if run.problems:
        shutil.copy2(log, base / "serve-failed.log")
    return run


def check_inboxd(run: Run, mails: list[Mail], db: Database) -> None:
    """Spool, Message rows and tickets against what was sent and the manifest."""
    states = Counter(dict(db.rows("select state, count(*) from inbound group by 1")))
    results = Counter(dict(db.rows("select result, count(*) from inbound group by 1")))
    messages = db.rows("select message_id, ticket_id from message")
    tickets = dict(db.rows("select id, merged_into from ticket"))
    outbound = db.rows("select count(*) from outbound")[0][0]
    run.counts.update({f"spool {k}": v for k, v in states.items()})
    run.counts.update({k: v for k, v in results.items() if k})
    run.counts["messages"] = len(messages)
    run.counts["tickets"] = sum(1 for m in tickets.values() if m is None)
    run.counts["merged tickets"] = len(tickets) - run.counts["tickets"]
    run.counts["outbound"] = outbound

    if states.get("done", 0) != len(mails) or len(states) != 1:
        run.problems.append(f"spool states {dict(states)}; {len(mails)} messages were sent")
    if run.ingested != Counter({k: v for k, v in results.items() if k}):
        run.problems.append(f"/metrics ingested_total {dict(run.ingested)} != spool results")
    ids = {m.message_id for m in mails}
    if len(messages) != len(ids):
        run.problems.append(f"{len(messages)} Message rows for {len(ids)} distinct Message-IDs")

    def root(ticket: int) -> int:
        hops = 0
        while tickets.get(ticket) is not None and hops < 50:
            ticket, hops = tickets[ticket], hops + 1
        return ticket

    conv_of = {m.message_id: m.conv for m in mails}
    by_conv: defaultdict[int, set[int]] = defaultdict(set)
    for message_id, ticket in messages:
        if message_id not in conv_of:
            run.problems.append(f"stored Message-ID {message_id} was never sent")
            continue
        by_conv[conv_of[message_id]].add(root(ticket))
    convs = {m.conv for m in mails}
    if run.counts["tickets"] != len(convs) or len(tickets) != len(convs):
        run.problems.append(
            f"{len(tickets)} tickets ({run.counts['tickets']} not merged)"
            f" for {len(convs)} conversations"
        )
    split = [c for c, t in by_conv.items() if len(t) > 1]
    if split:
        run.problems.append(f"{len(split)} conversations on more than one ticket, e.g. {split[:5]}")
    owners: defaultdict[int, set[int]] = defaultdict(set)
    for conv, ticket_ids in by_conv.items():
        for ticket in ticket_ids:
            owners[ticket].add(conv)
    mixed = [t for t, c in owners.items() if len(c) > 1]
    if mixed:
        run.problems.append(
            f"{len(mixed)} tickets hold more than one conversation, e.g. {mixed[:5]}"
        )


def round_database(pg_url: str | None, directory: Path, n: int) -> Database:
    """The round's database: SQLite in its data_dir, or a new schema on PostgreSQL."""
    if not pg_url:
        return Database(sqlite=directory / "data" / "inboxd.db")
    import psycopg

    schema = f"bench_smtp_{os.getpid()}_{n}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {schema} cascade")  # type: ignore[arg-type]
        conn.execute(f"create schema {schema}")  # type: ignore[arg-type]
    sep = "&" if "?" in pg_url else "?"
    scoped = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    return Database(
        pg_url=scoped, inboxd_url=scoped.replace("postgresql://", "postgresql+psycopg://", 1)
    )


# --------------------------------------------------------------------------- main


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--sink":
        sink_main(Path(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1000, metavar="N")
    ap.add_argument("--connections", type=int, default=4, metavar="C")
    ap.add_argument("--rounds", type=int, default=3, metavar="R")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep everything")
    ap.add_argument(
        "--postgres",
        metavar="URL",
        help="run inboxd on this PostgreSQL (libpq URL; a fresh schema per round)",
    )
    args = ap.parse_args()
    with work_dir(args.keep, "inboxd-bench-smtp-") as work:
        return bench(args, work)


def bench(args: argparse.Namespace, work: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from inboxd import __version__

    print(
        f"inboxd {__version__} SMTP benchmark: {args.messages} messages over"
        f" {args.connections} connections, {args.rounds} rounds, Python"
        f" {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"work dir: {work} on {mount_of(work)}; load average {load()}")
    print(f"inboxd database: {'PostgreSQL ' + args.postgres if args.postgres else 'SQLite'}")
    mails = make_corpus(args.messages, work)

    runs: dict[str, list[Run]] = {"baseline": [], "inboxd": []}
    for r in range(1, args.rounds + 1):
        os.sync()
        base = run_baseline(mails, args.connections, work / f"sink-{r}")
        os.sync()
        db = round_database(args.postgres, work / f"inboxd-{r}", r)
        cfg = write_config(work / f"inboxd-{r}", db.inboxd_url)
        box = run_inboxd(mails, args.connections, cfg, db)
        runs["baseline"].append(base)
        runs["inboxd"].append(box)
        print(
            f"round {r}: baseline {base.accepted_rate:6.1f}/s   inboxd accepted"
            f" {box.accepted_rate:6.1f}/s, ticketed {box.ticketed_rate:6.1f}/s"
            f"   (load {load()})",
            flush=True,
        )

    def median(name: str, attr: str) -> float:
        return statistics.median(getattr(run, attr) for run in runs[name])

    base_rate = median("baseline", "accepted_rate")
    rows = [
        ("baseline: aiosmtpd + fsync", "baseline", "accepted_rate"),
        ("inboxd accepted (250)", "inboxd", "accepted_rate"),
        ("inboxd accepted-and-ticketed", "inboxd", "ticketed_rate"),
    ]
    print()
    print(f"{'path':<30} {'median msg/s':>12}  {'runs msg/s':<22} {'vs baseline':>11}")
    for label, name, attr in rows:
        rate = median(name, attr)
        each = " ".join(f"{getattr(run, attr):.1f}" for run in runs[name])
        print(f"{label:<30} {rate:>12.1f}  {each:<22} {rate / base_rate:>10.2f}x")
    accepted = median("inboxd", "accepted_rate")
    ticketed = median("inboxd", "ticketed_rate")
    print(f"ratio inboxd accepted / baseline = {accepted / base_rate:.2f}")
    print(f"ratio inboxd accepted-and-ticketed / baseline = {ticketed / base_rate:.2f}")
    # The machine's load swings between rounds: each round's own ratio shows how much.
    rounds = zip(runs["baseline"], runs["inboxd"], strict=True)
    paired = [box.accepted_rate / base.accepted_rate for base, box in rounds]
    print(
        f"accepted / baseline per round: {' '.join(f'{r:.2f}' for r in paired)};"
        f" median {statistics.median(paired):.2f}"
    )

    print()
    for name in runs:
        latencies = [x for run in runs[name] for x in run.latencies]
        n = len(runs[name]) * args.messages
        print(
            f"{name:<8} 250 latency p50 {ms(latencies, 0.5):6.1f} ms,"
            f" p90 {ms(latencies, 0.9):6.1f} ms, p99 {ms(latencies, 0.99):6.1f} ms;"
            f" server CPU {median(name, 'cpu_seconds'):5.1f} s"
            f" ({1000 * sum(r.cpu_seconds for r in runs[name]) / n:.1f} ms/msg), busiest thread"
            f" {median(name, 'busiest_thread'):5.1f} s; start-up {median(name, 'startup'):.2f} s"
        )
    print(
        f"inboxd pipeline: {median('inboxd', 'during_send'):.1f} msg/s ticketed while mail was"
        f" arriving, {median('inboxd', 'after_send'):.1f} msg/s on the backlog after the last"
        f" 250 ({median('inboxd', 'backlog'):.0f} messages); acknowledgements written"
        f" {median('inboxd', 'acks_seconds'):.2f} s after the drain"
    )
    print(f"load average at the end: {load()}")

    failed = False
    for name, group in runs.items():
        last = group[-1]
        counts = ", ".join(f"{n} {k}" for k, n in last.counts.items())
        retries = sum(run.temp_failures for run in group)
        problems = [f"round {i}: {p}" for i, run in enumerate(group, 1) for p in run.problems]
        status = "ok" if not problems else f"{len(problems)} MISMATCHES"
        print(f"check {name}: {counts}; {retries} 4xx/retries over all rounds: {status}")
        for problem in problems[:10]:
            print(f"  {problem}")
        if len(problems) > 10:
            print(f"  ... and {len(problems) - 10} more")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
