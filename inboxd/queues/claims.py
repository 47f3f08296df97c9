"""claims.py: on PostgreSQL, a claim on a queue row is a lock held by a live connection.

Several `inboxd serve` processes share one PostgreSQL database (SPEC §9). A claim
written into the row as a lease outlives a process that is killed, and its work waited
out the lease (issue 18: the last ticket 150 s after a SIGKILL). A session advisory lock
does not: when the process dies its socket closes, PostgreSQL ends the session and drops
its locks, and the row is free for the others at once. Each worker holds one `ClaimLocks`
(one dedicated autocommit connection) for the rows it is working on.

Keys use PostgreSQL's two-int form (namespace, row id), a key space apart from the
single-bigint keys of the IMAP leader lock (daemon/leader.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from inboxd.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

SPOOL = 0x1B0D_0001  # inbound rows being processed
OUTBOUND = 0x1B0D_0002  # outbound rows being sent


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class ClaimLocks:
    """Advisory locks (namespace, row id) on one dedicated connection, for one worker.

    Not for concurrent use: a worker claims, works, and releases, one step at a time.
    A connection that fails is thrown away, and with it every lock it held (the
    session is gone on the server too); the next call opens a new one.
    """

    def __init__(self, engine: Engine, namespace: int) -> None:
        self.engine = engine
        self.namespace = namespace
        self._conn: Connection | None = None
        self.held: set[int] = set()

    def _connection(self) -> Connection:
        if self._conn is None:
            try:
                conn = self.engine.connect()
                self._conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            except (OperationalError, PoolTimeout) as exc:
                raise DatabaseUnavailable(f"cannot open a claim connection: {exc}") from None
        return self._conn

    def _run(self, sql: str, row_id: int) -> bool:
        conn = self._connection()
        try:
            got = conn.execute(text(sql), {"ns": self.namespace, "id": row_id}).scalar()
        except (OperationalError, PoolTimeout) as exc:
            self._lose()
            raise DatabaseUnavailable(f"claim connection failed: {exc}") from None
        return bool(got)

    def try_lock(self, row_id: int) -> bool:
        """Take the claim on `row_id` unless another live connection holds it; never waits."""
        if row_id in self.held:
            return True
        if self._run("select pg_try_advisory_lock(:ns, :id)", row_id):
            self.held.add(row_id)
            return True
        return False

    def unlock(self, row_id: int) -> None:
        if row_id not in self.held:
            return
        self.held.discard(row_id)
        self._run("select pg_advisory_unlock(:ns, :id)", row_id)

    def unlock_all(self, row_ids: Iterable[int] | None = None) -> None:
        for row_id in list(self.held if row_ids is None else row_ids):
            try:
                self.unlock(row_id)
            except DatabaseUnavailable as exc:
                log.warning("%s", exc)  # the connection is gone, and its locks with it

    def backend_pid(self) -> int:
        """The server process of the claim connection (tests end it to play a crash)."""
        return int(self._connection().execute(text("select pg_backend_pid()")).scalar_one())

    def _lose(self) -> None:
        conn, self._conn = self._conn, None
        self.held.clear()
        if conn is not None:
            conn.invalidate()  # never back into the pool, where its locks would live on

    def close(self) -> None:
        """Release every claim and the connection."""
        conn, self._conn = self._conn, None
        self.held.clear()
        if conn is None:
            return
        try:
            conn.execute(text("select pg_advisory_unlock_all()"))
            conn.close()
        except Exception:
            conn.invalidate()


def lock_keys(session: Session, namespace: str, keys: Iterable[str]) -> None:
    """Transaction-scoped advisory locks on `keys` (PostgreSQL only; a no-op on SQLite,
    whose one writer serialises everything anyway). Taken in a fixed order, so two
    transactions wanting overlapping keys wait for each other instead of deadlocking."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    numbers = sorted({_key(namespace, k) for k in keys if k})
    if not numbers:
        return
    session.connection().execute(
        text("select pg_advisory_xact_lock(k) from unnest(cast(:keys as bigint[])) as k"),
        {"keys": numbers},
    )


def _key(namespace: str, value: str) -> int:
    digest = hashlib.sha256(f"inboxd.{namespace}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
