"""group_commit.py: concurrent SMTP sessions share one durable spool commit.

A commit with synchronous=FULL (or a PostgreSQL commit) costs an fsync; one per message
held the SMTP door to a few dozen messages a second, queued behind the ingest worker's
transactions on SQLite's single writer. Here every message that arrives while a commit is
in flight waits for the next one, which stores them all in one transaction
(`spool.accept_many`). No message waits for a timer: a lone message is committed at once,
and under load the groups grow by themselves. Each session gets its spool id (and so its
250) only after the commit that holds its message; if that commit fails, every session in
the group gets DatabaseUnavailable, which the listener answers with 451.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.engine import Engine

from inboxd.errors import DatabaseUnavailable
from inboxd.queues import spool

# One commit holds at most this much mail, so a wave of large messages cannot make one
# transaction (and the memory it holds) unbounded.
GROUP_MESSAGES = 256
GROUP_BYTES = 32 * 1024 * 1024

Commit = Callable[[Engine, Sequence[spool.Arrival], Any], list[int]]


class GroupCommit:
    """Collects arrivals in the event loop; one flusher task commits them in groups."""

    def __init__(
        self,
        engine: Engine,
        write_lock: AbstractContextManager[Any] | None = None,
        commit: Commit | None = None,
    ) -> None:
        self.engine = engine
        self.write_lock = write_lock
        self._commit = commit or spool.accept_many
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

    def _next_group(self) -> list[tuple[spool.Arrival, asyncio.Future[int]]]:
        group: list[tuple[spool.Arrival, asyncio.Future[int]]] = []
        size = 0
        while self._waiting and len(group) < GROUP_MESSAGES:
            if group and size + len(self._waiting[0][0].raw) > GROUP_BYTES:
                break
            entry = self._waiting.popleft()
            group.append(entry)
            size += len(entry[0].raw)
        return group

    async def _flush_all(self) -> None:
        while self._waiting:
            group = self._next_group()
            arrivals = [arrival for arrival, _ in group]
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
            for (_, future), spool_id in zip(group, ids, strict=True):
                # A session whose client went away meanwhile has a cancelled future: its
                # message is stored all the same, and the client will send it again.
                if not future.done():
                    future.set_result(spool_id)


def _fail(group: list[tuple[spool.Arrival, asyncio.Future[int]]], exc: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
