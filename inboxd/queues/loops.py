"""loops.py: the loop breaker. Caps on mail inboxd sends by itself, and suppressed addresses.

Headers (Auto-Submitted, Precedence, X-Loop, ...) stop well-behaved autoresponders; broken
ones send none, and an agent's out-of-office that answers a notification without them
looks like a reply. So besides the headers, there are hard caps per ticket: however the
loop is built, it cannot send more than a few mails a minute. An address that bounced
with 5.1.1 (no such user) is not mailed again for a while.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from inboxd.models import Outbound, Suppression, utcnow

WINDOW = timedelta(minutes=10)
# Mail to a customer (acknowledgements, relayed replies, receipts...) per ticket per window.
MAX_CUSTOMER_MAIL_PER_TICKET = 10
# Notifications and other mail to agents per ticket per window.
MAX_AGENT_MAIL_PER_TICKET = 30
SUPPRESS_FOR = timedelta(days=7)

_AGENT_PREFIXES = ("notify:", "receipt", "warn:")


def _is_agent_mail(purpose: str) -> bool:
    return purpose.startswith(_AGENT_PREFIXES) or purpose == "delivery_failed"


def over_cap(session: Session, ticket_id: int | None, purpose: str) -> bool:
    """Would one more mail of this kind on this ticket break the loop caps?"""
    if ticket_id is None:
        return False
    agent_side = _is_agent_mail(purpose)
    query = select(Outbound.purpose).where(
        Outbound.ticket_id == ticket_id, col(Outbound.created_at) >= utcnow() - WINDOW
    )
    recent = [p for p in session.exec(query) if _is_agent_mail(p) == agent_side]
    cap = MAX_AGENT_MAIL_PER_TICKET if agent_side else MAX_CUSTOMER_MAIL_PER_TICKET
    return len(recent) >= cap


_SUPPRESSED = "inboxd.suppressed"


def _current(session: Session) -> dict[str, datetime]:
    """Suppressed addresses -> until when, read once per session (the table is small)."""
    cached: dict[str, datetime] | None = session.info.get(_SUPPRESSED)
    if cached is None:
        rows = session.exec(select(Suppression.email, Suppression.until)).all()
        cached = dict(rows)
        session.info[_SUPPRESSED] = cached
    return cached


def suppressed(session: Session, email: str) -> bool:
    """Is mail to this address held back for now?"""
    until = _current(session).get(email.lower())
    return until is not None and until >= utcnow()


def suppress(session: Session, email: str, reason: str) -> None:
    """Do not mail this address for SUPPRESS_FOR (it bounced as unknown, say)."""
    email = email.lower()
    row = session.get(Suppression, email) or Suppression(email=email, reason=reason, until=utcnow())
    row.reason = reason[:500]
    row.until = utcnow() + SUPPRESS_FOR
    session.add(row)
    _current(session)[email] = row.until


def count_suppressed(session: Session) -> int:
    query = select(func.count()).select_from(Suppression).where(col(Suppression.until) >= utcnow())
    return int(session.exec(query).one())
