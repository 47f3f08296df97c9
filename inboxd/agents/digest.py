"""digest.py: no agent gets more than a few notifications a minute; the rest come as one.

Issue 19: a loop sent 834 mails to agents in two minutes. Whatever the cause, an agent's
mailbox gets at most `[loops] max_notifications_per_agent_per_minute` notifications in a
minute; later ones are queued with status `digest` (the sender leaves them alone), and a
minute after the first of them the timer sends that agent one mail listing them all,
after which they are `digested`. Time is passed in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from inboxd.models import Outbound, utcnow
from inboxd.queues.outbox import compose, mailbox, queue_mail
from inboxd.render import render
from inboxd.runtime import Runtime

HELD = "digest"  # Outbound.status of a notification waiting for its digest
DONE = "digested"
WINDOW = timedelta(minutes=1)


def recent_counts(session: Session, now: datetime | None = None) -> Counter[str]:
    """Notifications each address was sent (or queued) in the last minute."""
    since = (now or utcnow()) - WINDOW
    query = select(Outbound.rcpt_to).where(
        col(Outbound.purpose).startswith("notify:"),
        col(Outbound.created_at) >= since,
        Outbound.status != HELD,
    )
    counts: Counter[str] = Counter()
    for rcpt in session.exec(query):
        counts.update(rcpt)
    return counts


def send_digests(session: Session, rt: Runtime, now: datetime | None = None) -> int:
    """One mail per agent whose held notifications have waited a minute; how many sent."""
    now = now or utcnow()
    held = session.exec(
        select(Outbound).where(Outbound.status == HELD).order_by(col(Outbound.id))
    ).all()
    by_agent: dict[str, list[Outbound]] = defaultdict(list)
    for row in held:
        by_agent[row.rcpt_to[0] if row.rcpt_to else ""].append(row)
    cfg = rt.config.inboxd
    sent = 0
    for email, rows in by_agent.items():
        first = rows[0].created_at
        if first.tzinfo is None:  # SQLite hands back naive UTC
            first = first.replace(tzinfo=now.tzinfo)
        if not email or first > now - WINDOW:
            continue
        text = render(
            "email/digest.txt.j2",
            {
                "count": len(rows),
                "cap": rt.config.loops.max_notifications_per_agent_per_minute,
                "subjects": [_subject(row.raw) for row in rows],
                "web_url": cfg.web_base_url.rstrip("/"),
            },
            cfg.templates_dir,
        )
        headers = [
            ("From", mailbox(cfg.support_name, cfg.support_address)),
            ("To", email),
            ("Subject", f"{len(rows)} more notifications"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
        ]
        queue_mail(
            session,
            compose(headers, text, cfg=rt.config),
            mail_from=cfg.support_address,
            rcpt_to=[email],
            ticket_id=None,
            purpose="notify:digest",
            capped=False,
        )
        for row in rows:
            row.status = DONE
            session.add(row)
        sent += 1
    return sent


def _subject(raw: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"subject:"):
            return line[8:].strip().decode("utf-8", "replace")
    return "(no subject)"
