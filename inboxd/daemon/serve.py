"""serve.py: `inboxd serve` — one asyncio process running whatever the config enables.

Wiring only: the SMTP listener and the web app run on the event loop; the ingest worker
(the synchronous pipeline, one writer) and the IMAP poller run in threads; the outbound
sender is a task that sleeps until the next mail is due or it is woken. SIGTERM/SIGINT
stop accepting, let in-flight work finish (or leave it safely in the spool), and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import uvicorn

from inboxd import languages, pipeline
from inboxd.agents import digest, notify
from inboxd.daemon import checks, sender
from inboxd.daemon.smtp import start_listener
from inboxd.db import session_scope
from inboxd.errors import DatabaseUnavailable
from inboxd.metrics import Metrics
from inboxd.models import Inbound, utcnow
from inboxd.queues import claims, outbox, spool
from inboxd.runtime import Runtime
from inboxd.tickets import store
from inboxd.web.app import create_app, create_ops_app
from inboxd.web.views import Wakeups
from inboxd.workflow import clock, sla_clock
from inboxd.workflow.rules import load_rules
from inboxd.workflow.sla import service_levels

log = logging.getLogger(__name__)

# The sender also looks at the queue this often, for mail queued by other processes
# (and, with several daemons, a mail whose sender died during the send: SPEC §9).
OUTBOUND_POLL = timedelta(seconds=10)
SHUTDOWN_GRACE_SECONDS = 20.0
# Spooled messages processed per transaction: more means fewer commits, fewer means
# shorter holds of SQLite's write lock (which SMTP accepts wait for).
WORKER_BATCH = 8
# Mail in one ingest transaction, at most (a single bigger message goes alone).
BATCH_BYTES = 16 * 1024 * 1024
TIMER_SECONDS = 60.0
# In a wave of mail, accepting it comes first: the listener and the pipeline share one
# interpreter, and the pipeline's share held SMTP to the pipeline's pace (issue 18: 73
# accepted/s against a 740/s fsync sink). After a batch during which a client began a
# message, the pipeline waits up to ACCEPT_FIRST times as long as the batch took, until
# ARRIVAL_LULL passes with nothing new: mail is absorbed at the listener's speed and
# ticketed behind it, and the pipeline keeps a share of the time under any load. A pause
# that shows mail coming no faster than the pipeline goes ends the giving way for a
# while (CALM_BATCHES), so a steady stream the pipeline can keep up with is not slowed.
# In a storm that never ends the pipeline keeps 1/(ACCEPT_FIRST + 1) of the time: at 6 it
# held the door to 0.60x the fsync sink, at 20 0.81x (bench/smtp.py), either way with the
# same time to the last ticket, since the pipeline catches up after the wave.
ACCEPT_FIRST = 12.0
ARRIVAL_LULL = 0.05
# The batch in a wave, while a client began a message in the last second (_batch_size).
ARRIVING_BATCH = 2
ARRIVING_BATCH_SECONDS = 1.0
# After a pause that showed no wave, this many batches run without one.
CALM_BATCHES = 10


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    """The running process. `run()` returns the exit code."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self.ingest_wake = threading.Event()
        self.last_arrival = 0.0
        self.arrivals = 0  # messages clients began (MAIL FROM), counted by the listener
        self.wave = False  # during the last pause, mail arrived faster than batches go
        self.calm_batches = 0  # batches left that do not give way (no wave was seen)
        self.outbound_wake: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_requested: asyncio.Event | None = None
        self.ready = threading.Event()
        self.smtp_address: tuple[str, int] | None = None
        # On PostgreSQL, the claims of this process's ingest worker and sender: locks
        # that end with this process (SPEC §9), so another daemon takes its work at once.
        self.spool_locks: claims.ClaimLocks | None = None
        self.outbound_locks: claims.ClaimLocks | None = None
        if claims.is_postgres(rt.engine):
            self.spool_locks = claims.ClaimLocks(rt.engine, claims.SPOOL)
            self.outbound_locks = claims.ClaimLocks(rt.engine, claims.OUTBOUND)

    # -- wake-ups, callable from any thread ---------------------------------------------

    def wake_ingest(self) -> None:
        self.ingest_wake.set()

    def arriving(self) -> None:
        """A client began a message: in a wave, the pipeline gives way (ACCEPT_FIRST)."""
        self.last_arrival = time.monotonic()
        self.arrivals += 1

    def wake_outbound(self) -> None:
        if self.outbound_wake is not None:
            self._call_in_loop(self.outbound_wake.set)

    def request_stop(self) -> None:
        """Ask the daemon to stop (thread-safe, and harmless once it has stopped)."""
        if self.stop_requested is not None:
            self._call_in_loop(self.stop_requested.set)

    def _call_in_loop(self, callback: Callable[[], None]) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self.loop.call_soon_threadsafe(callback)

    # -- main ---------------------------------------------------------------------------

    async def run(self) -> int:
        cfg = self.rt.config
        service_levels(cfg)  # a bad [[calendars]], [[sla]] or [[rules]] entry stops start-up
        load_rules(cfg)
        # Before anything starts (or releases a spool lease): a taken port is one line.
        checks.listeners_free(cfg)
        self.loop = asyncio.get_running_loop()
        self.stop_requested = asyncio.Event()
        self.outbound_wake = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(sig, self.stop_requested.set)
        keep_big_buffers_apart()
        if self.rt.engine.dialect.name == "sqlite":
            # One daemon per SQLite database: leases left by a killed process are ours.
            spool.release_claims(self.rt.engine)
            sender.release_claims(self.rt.engine)

        # The language detector's models, before anything listens: loading them holds
        # the GIL for about a second, which stalled every SMTP session when the first
        # Latin-script mail came in (issue 18).
        began = time.monotonic()
        await asyncio.to_thread(languages.warm_up)
        log.info("language models loaded in %.1f s", time.monotonic() - began)
        threads = [threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)]
        if cfg.imap.enabled:
            from inboxd.daemon import imap

            # A bad [imap] section stops start-up here (exit 2), not later in a thread.
            imap.Account.from_config(cfg)
            threads.append(
                threading.Thread(
                    target=imap.run_poller,
                    args=(self.rt, self.stopping, self.wake_ingest),
                    name="imap",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        outbound = asyncio.create_task(self._outbound_loop(), name="outbound")
        timers = asyncio.create_task(self._timers_loop(), name="timers")

        smtp_server = None
        if cfg.smtp.enabled:
            smtp_server = await start_listener(
                self.rt, self.wake_ingest, self.metrics, self.arriving
            )
            sock = smtp_server.sockets[0].getsockname()
            self.smtp_address = (sock[0], sock[1])
            kind = "LMTP" if cfg.smtp.lmtp else "SMTP"
            log.info("%s listening on %s:%s", kind, sock[0], sock[1])
        web = None
        web_task = None
        if cfg.web.enabled:
            web = _QuietServer(
                uvicorn.Config(
                    create_app(
                        self.rt, self.metrics, Wakeups(self.wake_ingest, self.wake_outbound)
                    ),
                    host=cfg.web.host,
                    port=cfg.web.port,
                    log_level="warning",
                    lifespan="off",
                )
            )
            web_task = asyncio.create_task(web.serve(), name="web")
            log.info("web listening on http://%s:%s", cfg.web.host, cfg.web.port)
        ops = None
        ops_task = None
        if cfg.metrics.own_listener:
            ops = _QuietServer(
                uvicorn.Config(
                    create_ops_app(self.rt, self.metrics),
                    host=cfg.metrics.host,
                    port=cfg.metrics.port,
                    log_level="warning",
                    lifespan="off",
                )
            )
            ops_task = asyncio.create_task(ops.serve(), name="metrics")
            log.info(
                "/metrics and /healthz listening on http://%s:%s",
                cfg.metrics.host,
                cfg.metrics.port,
            )
        if cfg.outbound.mode == "smtp":
            log.info("sending through %s:%s", cfg.outbound.host, cfg.outbound.port)
        else:
            log.info("writing outgoing mail to %s", cfg.data_dir / "outbox")
        self.ready.set()

        await self.stop_requested.wait()
        log.info("stopping: no new connections; finishing work in progress")
        if smtp_server is not None:
            smtp_server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(smtp_server.wait_closed(), SHUTDOWN_GRACE_SECONDS)
        self.stopping.set()
        self.ingest_wake.set()
        self.outbound_wake.set()
        for thread in threads:
            await asyncio.to_thread(thread.join, SHUTDOWN_GRACE_SECONDS)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(outbound, SHUTDOWN_GRACE_SECONDS)
        timers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timers
        for server, task in ((web, web_task), (ops, ops_task)):
            if server is not None and task is not None:
                server.should_exit = True
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task, 5)
        log.info("stopped")
        return 0

    # -- workers ------------------------------------------------------------------------

    def _ingest_loop(self) -> None:
        """The one writer: takes spooled messages and runs the pipeline on each."""
        failures = 0
        while not self.stopping.is_set():
            try:
                rows = spool.claim(
                    self.rt.engine, self._batch_size(), self.rt.write_lock, self.spool_locks
                )
            except DatabaseUnavailable as exc:
                failures += 1
                log.warning("ingest worker: %s", exc)
                self.stopping.wait(min(2**failures, 60))
                continue
            except Exception:
                failures += 1
                log.exception("ingest worker: cannot read the spool")
                self.stopping.wait(min(2**failures, 60))
                continue
            failures = 0
            if not rows:
                self.ingest_wake.wait(5)
                self.ingest_wake.clear()
                continue
            started = time.monotonic()
            try:
                self._ingest_rows(rows)
            finally:
                if self.spool_locks is not None:
                    self.spool_locks.unlock_all()
            self.wake_outbound()
            self._let_arrivals_in(started, len(rows))
        if self.spool_locks is not None:
            self.spool_locks.close()

    def _batch_size(self) -> int:
        """Fewer messages a transaction during a wave: on SQLite a batch holds the one
        writer's lock, and every 250 waits for it."""
        recent = time.monotonic() - self.last_arrival < ARRIVING_BATCH_SECONDS
        return ARRIVING_BATCH if self.wave and recent else WORKER_BATCH

    def _let_arrivals_in(self, started: float, processed: int) -> None:
        """After a batch of `processed` messages begun at `started`, give way to arriving
        mail (give_way). What arrives meanwhile says whether it was a wave: mail coming
        no faster than the batch went means the pipeline keeps up, and it does not give
        way again for the next CALM_BATCHES batches."""
        ended = time.monotonic()
        if self.calm_batches > 0:
            self.calm_batches -= 1
            return
        before = self.arrivals
        while not self.stopping.is_set():
            pause = give_way(started, ended, self.last_arrival, time.monotonic())
            if pause <= 0:
                break
            self.stopping.wait(pause)
        paused = time.monotonic() - ended
        if paused > 0:
            self.wave = is_wave(self.arrivals - before, paused, processed, ended - started)
            if not self.wave:
                self.calm_batches = CALM_BATCHES

    def _ingest_rows(self, rows: list[Inbound]) -> None:
        """A few spooled messages, in transactions of at most BATCH_BYTES of mail each
        (issue 19: eight 24 MB mails in one batch took the daemon to 1 GB)."""
        batch: list[pipeline.Incoming] = []
        size = total = 0
        try:
            for row in rows:
                item = self._incoming(row)
                if item is None:
                    continue
                batch.append(item)
                size += len(item.raw)
                total += len(item.raw)
                if size >= BATCH_BYTES:
                    self._ingest_batch(batch)
                    batch, size = [], 0
            if batch:
                self._ingest_batch(batch)
        except DatabaseUnavailable as exc:
            # Left pending: tried again once the claim ends (at once on PostgreSQL, when
            # the lease expires on SQLite).
            log.warning("ingest worker: %s", exc)
            self.stopping.wait(2)
        finally:
            batch.clear()
            if total >= BATCH_BYTES:
                release_memory()

    def _incoming(self, row: Inbound) -> pipeline.Incoming | None:
        with session_scope(self.rt.engine) as session:
            raw = store.load_raw(session, row.raw_sha256)
        if raw is None:
            log.error("spool %s: raw message %s is missing", row.id, row.raw_sha256)
            return None
        return pipeline.Incoming(raw, row.source, tuple(row.rcpt_to), row.id, row.mail_from or None)

    def _ingest_batch(self, batch: list[pipeline.Incoming]) -> None:
        for result in pipeline.ingest_batch(self.rt, batch):
            self.metrics.inc(f'ingested_total{{result="{result.result}"}}')

    async def _outbound_loop(self) -> None:
        assert self.outbound_wake is not None
        cfg = self.rt.config
        while not self.stopping.is_set():
            # Cleared before the queue is read, so a wake-up (new mail, or a stop) that
            # arrives while it is being read is not lost.
            self.outbound_wake.clear()
            try:
                sent = await asyncio.to_thread(
                    sender.deliver_due, cfg, self.rt.engine, 20, self.metrics, self.outbound_locks
                )
                if sent:
                    continue
                due = await asyncio.to_thread(outbox.next_due_at, self.rt.engine)
            except DatabaseUnavailable as exc:
                log.warning("outbound sender: %s", exc)
                due = None
            except Exception:
                log.exception("outbound sender: cannot read the queue")
                due = None
            wait = OUTBOUND_POLL.total_seconds()
            if due is not None:
                wait = max(0.0, min(wait, (due - utcnow()).total_seconds()))
            if self.stopping.is_set():
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.outbound_wake.wait(), wait)
        if self.outbound_locks is not None:
            await asyncio.to_thread(self.outbound_locks.close)

    async def _timers_loop(self) -> None:
        """Tickets whose #due time has come reopen and agents' digests go out (once a
        minute); the clock runs rules and fires SLA warnings and breaches that fell due
        (every `clock_seconds`)."""
        last_reopen = 0.0
        first = True
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_reopen >= TIMER_SECONDS:
                    last_reopen = time.monotonic()
                    if await asyncio.to_thread(self._reopen_due):
                        self.wake_outbound()
                if await asyncio.to_thread(self._sla_tick, first):
                    self.wake_outbound()
                first = False
            except Exception:
                log.exception("timers: cannot run the clock")
            await asyncio.sleep(self.rt.config.inboxd.clock_seconds)

    def _reopen_due(self) -> int:
        """Due tickets reopened, and agents' digests sent; how many mails that queued."""
        with self.rt.write_lock, session_scope(self.rt.engine) as session:
            return notify.reopen_due(session, self.rt) + digest.send_digests(session, self.rt)

    def _sla_tick(self, first: bool) -> int:
        now = utcnow()
        with self.rt.write_lock, session_scope(self.rt.engine) as session:
            if first:
                count = sla_clock.recompute_if_changed(self.rt, session, now)
                if count:
                    log.info("sla: due times computed afresh for %s tickets", count)
            result = clock.tick(self.rt, session, now)
        for f in result.sla:
            log.info("sla: ticket %s %s %s (due %s)", f.ticket_id, f.target, f.kind, f.at)
        for rule, ticket_id in result.rules:
            log.info("rules: %r ran on ticket %s", rule, ticket_id)
        return result.count


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def keep_big_buffers_apart() -> None:
    """Buffers over 1 MiB (a raw mail, a decoded attachment) get pages of their own, which
    go back to the system when freed. glibc otherwise raises this threshold after the
    first big free and puts later big buffers on the heap, where they stay."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)


def give_way(started: float, ended: float, last_arrival: float, now: float) -> float:
    """How much longer the pipeline waits after a batch it ran from `started` to `ended`
    (0: go on), given when a client last began a message (see ACCEPT_FIRST). Only if one
    began during the batch (its 250 waited for the batch's commit); then while they keep
    coming, the clients the batch held up having a lull's time to send their next, and
    never past ACCEPT_FIRST times the batch's own time."""
    if last_arrival < started:
        return 0.0
    until = ended + ACCEPT_FIRST * (ended - started)
    quiet = now - max(last_arrival, ended)
    return max(0.0, min(until - now, ARRIVAL_LULL - quiet))


def is_wave(arrived: int, paused: float, processed: int, busy: float) -> bool:
    """Whether mail came faster during a pause (`arrived` begun in `paused` seconds) than
    the batch before it went (`processed` in `busy` seconds): then the backlog grows
    whatever the pipeline does, and accepting first costs no throughput."""
    return arrived * busy > processed * paused


def release_memory() -> None:
    """Give the memory of big mails back to the system once they are processed: Python
    frees it, but glibc keeps freed heap for reuse, and the daemon's RSS stayed at 1 GB."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def serve(rt: Runtime) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit code."""
    return asyncio.run(Daemon(rt).run())
