"""leader.py: the lock that lets one process at a time poll an IMAP account (SPEC §9).

On PostgreSQL a session advisory lock on a dedicated connection; with SQLite an flock
on data_dir/imap.lock. Both vanish with the process that held them, so a crashed
leader never blocks the others for longer than their next try.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from inboxd.errors import DatabaseUnavailable
from inboxd.runtime import Runtime

log = logging.getLogger("inboxd.imap")


class LeaderLock:
    """Held by the one process that polls an account (SPEC §9).

    PostgreSQL: a session advisory lock on a dedicated autocommit connection; it goes
    away with the connection, so a crashed leader frees it. SQLite: an flock on
    data_dir/imap.lock, which the kernel frees when the process dies.
    """

    def __init__(self, rt: Runtime, account_key: str) -> None:
        self.engine: Engine = rt.engine
        self.path = rt.config.data_dir / "imap.lock"
        digest = hashlib.sha256(f"inboxd.imap:{account_key}".encode()).digest()
        self.pg_key = int.from_bytes(digest[:8], "big", signed=True)
        self._fd: int | None = None
        self._conn: Connection | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None or self._conn is not None:
            return True
        if self.is_postgres:
            return self._acquire_pg()
        return self._acquire_file()

    def held(self) -> bool:
        """Whether the lock is still ours (a PostgreSQL connection can be lost)."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("select 1"))
        except Exception:
            log.warning("IMAP leader lock lost: its database connection failed")
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("select pg_advisory_unlock(:k)"), {"k": self.pg_key})
                conn.close()
            except Exception:
                # A connection we cannot talk to must not go back to the pool still
                # holding the lock; invalidating it closes the session.
                conn.invalidate()

    def _acquire_file(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def _acquire_pg(self) -> bool:
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except (OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(f"cannot take the IMAP leader lock: {exc}") from None
        try:
            got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": self.pg_key}).scalar()
        except (OperationalError, PoolTimeout) as exc:
            conn.invalidate()
            raise DatabaseUnavailable(f"cannot take the IMAP leader lock: {exc}") from None
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True
