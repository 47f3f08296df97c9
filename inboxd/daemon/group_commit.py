"""group_commit.py: concurrent SMTP sessions share one durable spool commit.

A commit with synchronous=FULL (or a PostgreSQL commit) costs an fsync; one per message
held the SMTP door to a few dozen messages a second, queued behind the ingest worker's
transactions on SQLite's single writer. Here every message that arrives while a commit is
in flight waits for the next one, which stores them all in one transaction
(`spool.accept_many`). No message waits for a timer: a lone message is committed at once,
and under load the groups grow by themselves. Each session gets its spool id (and so its
250) only after the commit that holds its message; if that commit fails, every session in
the group gets DatabaseUnavailable, which the listener answers with 451.

On SQLite a group whose commit need not wait is committed on the event loop itself
(`commit_now`): in a worker thread, every step of SQLite gives the GIL back, and getting
it again from an event loop busy reading DATA took up to the interpreter's switch interval
each time, so a 1 ms commit took 3-5 ms and every 250 waited for it (issue 18). When the
one writer's lock is taken (the pipeline's transaction, or another process's), the group
goes to the thread as before, so the loop never waits for a lock.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Engine

from inboxd import db
from inboxd.errors import DatabaseUnavailable
from inboxd.queues import spool
from inboxd.write_lock import WriteLock

# One commit holds at most this much mail, so a wave of large messages cannot make one
# transaction (and the memory it holds) unbounded.
GROUP_MESSAGES = 256
GROUP_BYTES = 32 * 1024 * 1024
# A group committed on the event loop holds at most this much: writing a bigger one would
# hold up every session for as long, so it goes to the thread.
LOOP_BYTES = 1024 * 1024

Commit = Callable[[Engine, Sequence[spool.Arrival], Any], list[int]]
# The group's ids if it could be committed without waiting for a lock, else None.
CommitNow = Callable[[Sequence[spool.Arrival]], list[int] | None]


class GroupCommit:
    """Collects arrivals in the event loop; one flusher task commits them in groups."""

    def __init__(
        self,
        engine: Engine,
        write_lock: AbstractContextManager[Any] | None = None,
        commit: Commit | None = None,
        commit_now: CommitNow | None = None,
    ) -> None:
        self.engine = engine
        self.write_lock = write_lock
        self._commit = commit or spool.accept_many
        self._commit_now = commit_now
        self._waiting: deque[tuple[spool.Arrival, asyncio.Future[int]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0  # how many commits were made (tests and metrics count them)

    async def accept(self, arrival: spool.Arrival) -> int:
        """The spool id, once the commit holding `arrival` is durable."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((arrival, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="spool-group-commit")
        return await future

    def _next_group(self) -> tuple[list[tuple[spool.Arrival, asyncio.Future[int]]], int]:
        """The next group to commit, and its size in bytes."""
        group: list[tuple[spool.Arrival, asyncio.Future[int]]] = []
        size = 0
        while self._waiting and len(group) < GROUP_MESSAGES:
            if group and size + len(self._waiting[0][0].raw) > GROUP_BYTES:
                break
            entry = self._waiting.popleft()
            group.append(entry)
            size += len(entry[0].raw)
        return group, size

    async def _flush_all(self) -> None:
        while self._waiting:
            group, size = self._next_group()
            arrivals = [arrival for arrival, _ in group]
            if self._commit_now is not None and size <= LOOP_BYTES:
                try:
                    now = self._commit_now(arrivals)
                except Exception as exc:  # every session of the group answers 451
                    _fail(group, exc)
                    continue
                if now is not None:
                    self.commits += 1
                    _answer(group, now)
                    await asyncio.sleep(0)  # let the sessions answer and read on
                    continue
            # SQLite's writer lock lets a commit that clients wait for go first.
            first = getattr(self.write_lock, "first", None)
            lock = first() if first is not None else self.write_lock
            try:
                ids = await asyncio.to_thread(self._commit, self.engine, arrivals, lock)
            except Exception as exc:  # every session of the group answers 451
                _fail(group, exc)
                continue
            except BaseException:  # the loop is stopping: no 250 for what is unconfirmed
                _fail(group, DatabaseUnavailable("the spool commit was interrupted"))
                raise
            self.commits += 1
            _answer(group, ids)


def commit_on_loop(
    database_url: str, write_lock: AbstractContextManager[Any] | None
) -> CommitNow | None:
    """On SQLite, what commits a group on the event loop when no lock is taken: an engine
    of its own that waits a millisecond at most for the database and leaves checkpoints
    to the other connections (a checkpoint copies megabytes). None on PostgreSQL."""
    if not isinstance(write_lock, WriteLock) or db.sqlite_path(database_url) is None:
        return None
    engine = db.make_engine(database_url, 0.001, checkpoints=False)

    def commit_now(arrivals: Sequence[spool.Arrival]) -> list[int] | None:
        return spool.accept_now(engine, arrivals, write_lock)

    # Its connection closes with the listener, not whenever the collector finds the cycle.
    weakref.finalize(commit_now, engine.dispose)
    return commit_now


def _answer(group: list[tuple[spool.Arrival, asyncio.Future[int]]], ids: list[int]) -> None:
    for (_, future), spool_id in zip(group, ids, strict=True):
        # A session whose client went away meanwhile has a cancelled future: its message
        # is stored all the same, and the client will send it again.
        if not future.done():
            future.set_result(spool_id)


def _fail(group: list[tuple[spool.Arrival, asyncio.Future[int]]], exc: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
