"""Ingest throughput: `inboxd ingest` against a stdlib + SQLite baseline, in the same run.

    python bench/ingest.py [--messages N] [--rounds R] [--keep DIR] [--profile]

Generates a corpus once with ../shared/tools/gen_corpus.py (new tickets and threaded
replies; plain, HTML, attachments, CJK), then runs R interleaved rounds, each with a
fresh database:

  * baseline:   stdlib `email` (policy.default) parse, subject/from/Message-ID/In-Reply-To
                and the text body, one SQLite INSERT committed per message
                (journal_mode=WAL, synchronous=FULL);
  * inboxd CLI: `inboxd ingest --config CFG DIR` as a subprocess, wall clock, exactly
                what a user runs (interpreter start-up, imports and migrations included);
  * in-process: `inboxd.pipeline.ingest` over the same files with an already opened
                runtime, one commit per message, one process: the daemon's path for
                mail that arrives one at a time (the CLI batches and parses ahead).

The machine is noisy, so the summary is the median of the rounds. Every inboxd run is
checked against the generator's manifest: a new conversation must create the ticket
numbered like it, a follow-up must be appended to it. Mismatches are printed and make
the exit status 1; timings never do (a benchmark is not a test).

--profile adds a cProfile run of the in-process path (stderr): a stage table, then the
top 25 functions by cumulative time. Everything lives under one temporary root (default
$TMPDIR), removed at the end unless --keep DIR is given.
"""

from __future__ import annotations

import argparse
import cProfile
import email
import email.policy
import io
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
GEN_CORPUS = ROOT.parent / "shared" / "tools" / "gen_corpus.py"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Run:
    """One timed pass over the corpus."""

    name: str
    seconds: float
    messages: int
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Expected:
    kind: str  # "new" or "reply"
    conv: int


# --------------------------------------------------------------------------- corpus


def make_corpus(n: int, work: Path) -> tuple[Path, dict[str, Expected]]:
    """Generate N messages once; copy only *.eml into corpus/ and read the manifest."""
    if not GEN_CORPUS.is_file():
        sys.exit(
            f"bench/ingest.py: corpus generator not found at {GEN_CORPUS}\n"
            "  (expected ../shared/tools/gen_corpus.py next to the repository)"
        )
    generated = work / "generated"
    corpus = work / "corpus"
    proc = subprocess.run(
        [sys.executable, str(GEN_CORPUS), str(n), str(generated)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"bench/ingest.py: gen_corpus.py failed:\n{proc.stderr}")
    corpus.mkdir()
    for eml in sorted(generated.glob("*.eml")):
        shutil.copy2(eml, corpus / eml.name)
    expected: dict[str, Expected] = {}
    lines = (generated / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        cols = line.split("\t")
        expected[cols[0]] = Expected(kind=cols[2], conv=int(cols[3]))
    summary = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    print(f"corpus: {summary.replace(str(generated), 'corpus/')}")
    return corpus, expected


def check(
    run: Run, outcomes: dict[str, tuple[str, int | None]], expected: dict[str, Expected]
) -> None:
    """Compare (result, ticket) per file with the manifest; record mismatches on `run`."""
    for name, exp in expected.items():
        got = outcomes.get(name)
        want = ("created" if exp.kind == "new" else "appended", exp.conv)
        if got is None:
            run.problems.append(f"{name}: no result (expected {want[0]} #{want[1]})")
        elif got != want:
            run.problems.append(f"{name}: {got[0]} #{got[1]} (expected {want[0]} #{want[1]})")
    for name in outcomes.keys() - expected.keys():
        run.problems.append(f"{name}: result for a file not in the manifest")
    kinds = Counter(e.kind for e in expected.values())
    if run.counts["created"] != kinds["new"] or run.counts["appended"] != kinds["reply"]:
        run.problems.insert(
            0,
            f"counts {dict(run.counts)}; manifest has {kinds['new']} new conversations "
            f"and {kinds['reply']} follow-ups",
        )


# --------------------------------------------------------------------------- baseline


def run_baseline(files: list[Path], db_path: Path) -> Run:
    """stdlib parse + extract, one INSERT committed per message, WAL + synchronous=FULL."""
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE message (id INTEGER PRIMARY KEY, message_id TEXT, in_reply_to TEXT,"
        " subject TEXT, sender TEXT, body TEXT)"
    )
    conn.commit()
    run = Run("baseline", 0.0, len(files))
    start = time.perf_counter()
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        try:
            body = part.get_content() if part is not None else ""
        except (LookupError, ValueError):
            body = ""
            run.counts["undecodable body"] += 1
        conn.execute(
            "INSERT INTO message (message_id, in_reply_to, subject, sender, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                str(msg["message-id"] or ""),
                str(msg["in-reply-to"] or ""),
                str(msg["subject"] or ""),
                str(msg["from"] or ""),
                body,
            ),
        )
        conn.commit()
    run.seconds = time.perf_counter() - start
    rows = conn.execute("SELECT count(*) FROM message").fetchone()[0]
    conn.close()
    run.counts["rows"] = rows
    if rows != len(files):
        run.problems.append(f"{rows} rows stored for {len(files)} messages")
    return run


# --------------------------------------------------------------------------- inboxd


def write_config(directory: Path) -> Path:
    """A minimal inboxd.toml: a fresh data_dir, defaults otherwise."""
    directory.mkdir(parents=True)
    cfg = directory / "inboxd.toml"
    cfg.write_text(f'[inboxd]\ndata_dir = "{(directory / "data").as_posix()}"\n', "utf-8")
    return cfg


def inboxd_command() -> list[str]:
    exe = Path(sys.executable).with_name("inboxd")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "inboxd"]


def run_cli(corpus: Path, cfg: Path, expected: dict[str, Expected]) -> Run:
    """`inboxd ingest --config CFG DIR`, timed from spawn to exit."""
    start = time.perf_counter()
    proc = subprocess.run(
        [*inboxd_command(), "ingest", "--config", str(cfg), str(corpus)],
        capture_output=True,
        text=True,
    )
    run = Run("inboxd CLI", time.perf_counter() - start, len(expected))
    if proc.returncode != 0:
        run.problems.append(f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return run
    # Each line is "<result> <#ticket|-> <source> [(reason)]", see cli/mail.py.
    outcomes: dict[str, tuple[str, int | None]] = {}
    for line in proc.stdout.splitlines():
        result, ticket, source = line.split(maxsplit=3)[:3]
        run.counts[result] += 1
        outcomes[Path(source).name] = (result, int(ticket[1:]) if ticket != "-" else None)
    check(run, outcomes, expected)
    return run


def run_cli_startup(empty: Path, cfg: Path) -> float:
    """The CLI's fixed cost: the same command over an empty folder, fresh data_dir."""
    start = time.perf_counter()
    subprocess.run(
        [*inboxd_command(), "ingest", "--config", str(cfg), str(empty)],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


def run_in_process(
    corpus: Path, cfg: Path, expected: dict[str, Expected], profiler: cProfile.Profile | None = None
) -> tuple[Run, float]:
    """pipeline.ingest over iter_messages, as the CLI does, without process start-up.

    Returns the run (ingest loop only) and the seconds open_runtime took on the fresh data
    dir (secret key, migrations)."""
    from inboxd import config as config_mod
    from inboxd import pipeline
    from inboxd.mail.sources import iter_messages
    from inboxd.runtime import open_runtime

    start = time.perf_counter()
    rt = open_runtime(config_mod.load(cfg))
    opened = time.perf_counter() - start
    run = Run("inboxd in-process", 0.0, len(expected))
    outcomes: dict[str, tuple[str, int | None]] = {}
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter()
    for source, raw in iter_messages([str(corpus)]):
        result = pipeline.ingest(rt, raw, source)
        run.counts[result.result] += 1
        outcomes[Path(source).name] = (result.result, result.ticket)
    run.seconds = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
    rt.engine.dispose()
    check(run, outcomes, expected)
    return run, opened


# --------------------------------------------------------------------------- profile

# (file suffix, function name) -> label. Cumulative times nest, so rows overlap.
STAGES = [
    (("inboxd/mail/sources.py", "_file"), "read files (sources.iter_messages)"),
    (("inboxd/pipeline.py", "ingest_batch"), "pipeline.ingest_batch (everything)"),
    (("inboxd/pipeline.py", "prepare"), "  pipeline.prepare (pure stages)"),
    (("inboxd/db.py", "session_scope"), "  db.session_scope (open + commit)"),
    (("~", "<method 'commit' of 'sqlite3.Connection' objects>"), "    sqlite3 COMMIT (WAL fsync)"),
    (("inboxd/tickets/store.py", "store_raw"), "  store.store_raw"),
    (("inboxd/tickets/dedupe.py", "find_copy"), "  dedupe.find_copy"),
    (("inboxd/mail/parse.py", "parse_message"), "  parse.parse_message"),
    (("email/parser.py", "parsebytes"), "    stdlib MIME parse (compat32)"),
    (("inboxd/mail/addresses.py", "_flanker_parse"), "    flanker address grammar"),
    (("inboxd/mail/charsets.py", "decode_header"), "    charsets.decode_header"),
    (("inboxd/mail/charsets.py", "decode_bytes"), "    charsets.decode_bytes"),
    (("inboxd/mail/charsets.py", "_guess"), "      charset detection (_guess)"),
    (("inboxd/mail/htmltext.py", "html_to_text"), "    htmltext.html_to_text (inscriptis)"),
    (("inboxd/tickets/threader.py", "known_keys"), "  threader.known_keys"),
    (("inboxd/tickets/dedupe.py", "fingerprint"), "  dedupe.fingerprint"),
    (("inboxd/mail/classify.py", "classify"), "  classify.classify"),
    (("inboxd/tickets/threader.py", "find_ticket"), "  threader.find_ticket"),
    (("inboxd/tickets/store.py", "open_ticket"), "  store.open_ticket"),
    (("inboxd/pipeline.py", "_save"), "  pipeline._save"),
    (("inboxd/mail/quotes.py", "strip_quoted"), "  quotes.strip_quoted"),
    (("inboxd/mail/quotes.py", "strip_quoted_html"), "  quotes.strip_quoted_html"),
    (("inboxd/tickets/store.py", "insert_message"), "    store.insert_message (+ FTS trigger)"),
    (("inboxd/tickets/store.py", "save_attachments"), "    store.save_attachments"),
    (("inboxd/tickets/store.py", "remember_msgids"), "    store.remember_msgids"),
    (("inboxd/tickets/store.py", "record_event"), "    store.record_event"),
    (("inboxd/pipeline.py", "_after_message"), "  pipeline._after_message"),
    (("inboxd/agents/notify.py", "acknowledge"), "  notify.acknowledge (new tickets)"),
    (("inboxd/agents/notify.py", "_recent_acks"), "    notify._recent_acks"),
    (("inboxd/render.py", "render"), "    render.render (jinja2)"),
    (("inboxd/queues/outbox.py", "queue_mail"), "    outbox.queue_mail"),
    (("inboxd/tickets/threader.py", "tickets_waiting_for"), "  threader.tickets_waiting_for"),
    (("sqlalchemy/orm/session.py", "_flush"), "  SQLAlchemy Session._flush (anywhere)"),
    (("~", "<method 'execute' of 'sqlite3.Cursor' objects>"), "  sqlite3 execute (anywhere)"),
]


def print_profile(profiler: cProfile.Profile, messages: int, out: TextIO = sys.stderr) -> None:
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"\nprofile of the in-process path ({messages} messages under cProfile, which"
        f" inflates pure-Python code; cumulative seconds, indented rows are inside the row"
        f" above; 'share' is of {total:.2f} s)",
        file=out,
    )
    print(f"{'stage':<42} {'calls':>7} {'cum s':>8} {'ms/msg':>7} {'share':>6}", file=out)
    for (suffix, func), label in STAGES:
        calls = cum = 0.0
        for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in raw.items():
            if name == func and filename.replace(os.sep, "/").endswith(suffix):
                calls += nc
                cum += ct
        if calls:
            print(
                f"{label:<42} {int(calls):>7} {cum:>8.2f} {1000 * cum / messages:>7.2f}"
                f" {100 * cum / total:>5.1f}%",
                file=out,
            )
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats("cumulative").print_stats(25)
    print("\ntop 25 by cumulative time:", file=out)
    print(buffer.getvalue().split("\n", 4)[-1].rstrip(), file=out)
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats("tottime").print_stats(15)
    print("\ntop 15 by own time:", file=out)
    print(buffer.getvalue().split("\n", 4)[-1].rstrip(), file=out)


# --------------------------------------------------------------------------- main


def mount_of(path: Path) -> str:
    """The mount point and filesystem type holding `path` (Linux), for the report."""
    best, kind = "", "?"
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                _dev, point, fstype = line.split()[:3]
                if str(path).startswith(point) and len(point) >= len(best):
                    best, kind = point, fstype
    except OSError:
        return "?"
    return f"{best} ({kind})"


@contextmanager
def work_dir(keep: Path | None, prefix: str) -> Iterator[Path]:
    """Where a benchmark works: `keep` (new, kept afterwards), else a temporary folder
    removed at the end. Shared by every benchmark in bench/."""
    if keep:
        keep.mkdir(parents=True, exist_ok=False)
        yield keep.resolve()
        return
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2000, metavar="N")
    ap.add_argument("--rounds", type=int, default=3, metavar="R")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep everything")
    ap.add_argument("--profile", action="store_true", help="cProfile the in-process path")
    args = ap.parse_args()
    with work_dir(args.keep, "inboxd-bench-") as work:
        return bench(args, work)


def bench(args: argparse.Namespace, work: Path) -> int:
    from inboxd import __version__

    print(
        f"inboxd {__version__} ingest benchmark: {args.messages} messages, {args.rounds} rounds,"
        f" Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"work dir: {work} on {mount_of(work)}")
    corpus, expected = make_corpus(args.messages, work)
    files = sorted(corpus.glob("*.eml"))
    empty = work / "empty"
    empty.mkdir()

    runs: dict[str, list[Run]] = {"baseline": [], "inboxd CLI": [], "inboxd in-process": []}
    startup: list[float] = []
    opened: list[float] = []
    for r in range(1, args.rounds + 1):
        # Flush the previous step's dirty pages first (the 80 MB of corpus before round
        # 1), so they are not written back during the next run's fsyncs.
        os.sync()
        base = run_baseline(files, work / f"baseline-{r}.db")
        os.sync()
        cli = run_cli(corpus, write_config(work / f"cli-{r}"), expected)
        os.sync()
        inproc, open_s = run_in_process(corpus, write_config(work / f"inproc-{r}"), expected)
        startup.append(run_cli_startup(empty, write_config(work / f"startup-{r}")))
        opened.append(open_s)
        for run in (base, cli, inproc):
            runs[run.name].append(run)
        print(
            f"round {r}: baseline {base.rate:6.1f}/s  CLI {cli.rate:6.1f}/s"
            f"  in-process {inproc.rate:6.1f}/s",
            flush=True,
        )

    base_rate = statistics.median(run.rate for run in runs["baseline"])
    print()
    print(f"{'path':<20} {'median msg/s':>12} {'runs msg/s':<26} {'vs baseline':>11}")
    for name, group in runs.items():
        rate = statistics.median(run.rate for run in group)
        each = " ".join(f"{run.rate:.1f}" for run in group)
        print(f"{name:<20} {rate:>12.1f} {each:<26} {rate / base_rate:>10.2f}x")
    print(
        f"CLI fixed cost (start-up, imports, fresh schema; empty folder): "
        f"{statistics.median(startup):.2f} s; open_runtime alone: {statistics.median(opened):.2f} s"
    )
    cli_rate = statistics.median(run.rate for run in runs["inboxd CLI"])
    print(
        f"ratio inboxd CLI / baseline = {cli_rate / base_rate:.2f}"
        " (issue's done-when: >= 0.50, aim > 1.00)"
    )

    failed = False
    for name, group in runs.items():
        last = group[-1]
        shown = dict(last.counts)
        if name != "baseline":
            results = ("created", "appended", "duplicate", "quarantined")
            shown = {k: last.counts[k] for k in results} | shown
        counts = ", ".join(f"{n} {k}" for k, n in shown.items())
        problems = [p for run in group for p in run.problems]
        status = "ok" if not problems else f"{len(problems)} MISMATCHES"
        print(f"check {name}: {counts}: {status}")
        for problem in problems[:10]:
            print(f"  {problem}")
        if len(problems) > 10:
            print(f"  ... and {len(problems) - 10} more")
        failed = failed or bool(problems)

    if args.profile:
        profiler = cProfile.Profile()
        run_in_process(corpus, write_config(work / "profile"), expected, profiler)
        print_profile(profiler, len(files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
