"""write_lock.py: SQLite's one writer, within one process, with the SMTP door first.

A plain lock let the ingest worker take the database again right after each of its
transactions, so an SMTP session's commit waited behind the pipeline and the door ran at
the pipeline's pace (issue 18). Here a commit that a client is waiting for (`first()`)
goes ahead of every other waiting writer; it still waits for the transaction in progress.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class WriteLock:
    """A non-reentrant lock; `with lock:` queues normally, `with lock.first():` jumps."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._urgent = 0

    def __enter__(self) -> None:
        with self._cond:
            while self._held or self._urgent:
                self._cond.wait()
            self._held = True

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def try_first(self) -> bool:
        """Take the lock only if nobody holds it or waits for it first; True if taken
        (release it with `__exit__`). For a commit that must never wait (the event loop's)."""
        with self._cond:
            if self._held or self._urgent:
                return False
            self._held = True
            return True

    @contextmanager
    def first(self) -> Iterator[None]:
        with self._cond:
            self._urgent += 1
            try:
                while self._held:
                    self._cond.wait()
            finally:
                self._urgent -= 1
            self._held = True
        try:
            yield
        finally:
            self.__exit__()
