"""`inboxd backup` and `inboxd restore` at scale (default 10,000 tickets).

    python bench/backup.py [--tickets N] [--attachments A]

Builds the tickets of bench/sla_clock.py (a message and its events each), gives every
message a 4 KB raw message in the raw store and A of them an attachment file (20 KB),
then times, on that database:

  * baseline: `shutil.copyfile` of the database file — the cheapest copy there is (and
    not a consistent one while a daemon writes: that is what the backup API is for);
  * backup: `inboxd.daemon.backup.backup` into a new folder;
  * restore: `restore` of that folder into a fresh data_dir.

Prints seconds, the ratio to the baseline and whether the restored copy holds the same
number of tickets, messages, raw messages and attachment files. Timing is reported,
never judged.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sla_clock as data

from inboxd.config import from_dict
from inboxd.daemon.backup import backup, restore
from inboxd.models import Attachment, RawMessage
from inboxd.tickets.store import attachment_path


def build(base: Path, n: int, attachments: int) -> Path:
    now = datetime.now(UTC)
    rt = data.build("", base / "data", n, now)
    raw_t, att_t = RawMessage.__table__, Attachment.__table__  # type: ignore[attr-defined]
    with rt.engine.begin() as conn:
        raws = []
        for i in range(1, n + 1):
            body = (f"Subject: Question {i}\r\n\r\n" + "x" * 4000).encode()
            raws.append(
                {
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "size": len(body),
                    "data": body,
                    "stored_at": now,
                }
            )
        conn.execute(insert(raw_t), raws)
        rows = []
        for i in range(1, attachments + 1):
            blob = i.to_bytes(4, "big") * 5000
            digest = hashlib.sha256(blob).hexdigest()
            path = attachment_path(base / "data" / "attachments", digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
            rows.append(
                {
                    "message_pk": i,
                    "filename": f"a{i}.pdf",
                    "content_type": "application/pdf",
                    "size": len(blob),
                    "sha256": digest,
                    "inline": False,
                    "content_id": None,
                }
            )
        if rows:
            conn.execute(insert(att_t), rows)
    rt.engine.dispose()
    return base / "data" / "inboxd.db"


def counts(database: Path) -> tuple[int, ...]:
    with closing(sqlite3.connect(database)) as conn:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("ticket", "message", "raw_message", "attachment")
        )


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--attachments", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        database = build(base / "live", args.tickets, args.attachments)
        live = from_dict({"inboxd": {"data_dir": "data"}}, base_dir=base / "live")
        fresh = from_dict({"inboxd": {"data_dir": "data"}}, base_dir=base / "fresh")
        size = database.stat().st_size / 1e6
        baseline = timed(lambda: shutil.copyfile(database, base / "plain.db"))
        took_backup = timed(lambda: backup(live, base / "backup", datetime.now(UTC)))
        took_restore = timed(lambda: restore(fresh, base / "backup"))
        restored = base / "fresh" / "data" / "inboxd.db"
        files = sum(1 for p in (base / "fresh" / "data" / "attachments").rglob("*") if p.is_file())
        same = counts(restored) == counts(database) and files == args.attachments
        print(f"{args.tickets} tickets, {args.attachments} attachments, database {size:.1f} MB")
        print(f"baseline (copyfile)  {baseline:8.3f} s")
        print(f"backup               {took_backup:8.3f} s  {took_backup / baseline:6.1f}x baseline")
        print(
            f"restore              {took_restore:8.3f} s  {took_restore / baseline:6.1f}x baseline"
        )
        print(f"restored copy complete: {same} {counts(restored)} files={files}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
