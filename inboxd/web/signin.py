"""signin.py: how an agent gets into the web view: magic links and sessions.

Email is an agent's identity, so signing in means proving you read the agent's mail: a
link is mailed (or printed by `inboxd agents login-link` for the first sign-in). A link
is signed with the secret key, expires after LINK_LIFETIME and works once: its random
part is recorded (as a SHA-256) and spent by one conditional UPDATE, so two tabs racing
with the same link cannot both win. A session is a random cookie whose SHA-256 is stored;
signing out or removing the agent ends it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select

from inboxd.errors import InboxdError
from inboxd.models import Agent, WebLogin, WebSession, utcnow
from inboxd.queues.outbox import compose, mailbox, queue_mail
from inboxd.render import render
from inboxd.runtime import Runtime

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(days=14)
MAX_LINKS_PER_HOUR = 5

_CONTEXT = b"inboxd login link v1\x00"
_PACK = struct.Struct(">16sIQ")  # nonce, agent id, expiry (unix seconds)
_MAC_BYTES = 16


class SignInRefused(InboxdError):
    """A sign-in link that is tampered with, expired, already used, or for nobody."""


def _digest(value: bytes | str) -> str:
    data = value.encode("ascii") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def issue_link(
    session: Session, rt: Runtime, agent: Agent, now: datetime | None = None, after: str = "/"
) -> str:
    """A new single-use sign-in URL for an active agent (`after`: the page to open once
    signed in, one of ours, checked by the caller)."""
    assert agent.id is not None
    if not agent.active:
        raise InboxdError(f"{agent.email} is not an active agent")
    now = now or utcnow()
    expires = now + LINK_LIFETIME
    nonce = secrets.token_bytes(16)
    payload = _PACK.pack(nonce, agent.id, int(expires.timestamp()))
    token = base64.urlsafe_b64encode(payload + _mac(rt.secret_key, payload)).decode("ascii")
    session.add(
        WebLogin(nonce_hash=_digest(nonce), agent_id=agent.id, created_at=now, expires_at=expires)
    )
    url = f"{rt.config.inboxd.web_base_url.rstrip('/')}/login/{token.rstrip('=')}"
    return url if after == "/" else f"{url}?{urlencode({'next': after})}"


def check_link(session: Session, rt: Runtime, token: str, now: datetime | None = None) -> Agent:
    """The agent a link signs in, without spending it (for the confirmation page)."""
    agent, _ = _verify(session, rt, token, now or utcnow())
    return agent


def spend_link(session: Session, rt: Runtime, token: str, now: datetime | None = None) -> Agent:
    """Verify a link and mark it used, in the caller's transaction."""
    now = now or utcnow()
    agent, nonce_hash = _verify(session, rt, token, now)
    spent = session.connection().execute(
        update(WebLogin)
        .where(col(WebLogin.nonce_hash) == nonce_hash, col(WebLogin.used_at).is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        raise SignInRefused("this sign-in link was already used; ask for a new one")
    return agent


def _verify(session: Session, rt: Runtime, token: str, now: datetime) -> tuple[Agent, str]:
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        blob = b""
    payload, mac = blob[: _PACK.size], blob[_PACK.size :]
    if len(payload) != _PACK.size or not hmac.compare_digest(mac, _mac(rt.secret_key, payload)):
        raise SignInRefused("this sign-in link is not valid; ask for a new one")
    nonce, agent_id, expires = _PACK.unpack(payload)
    if now.timestamp() > expires:
        raise SignInRefused("this sign-in link has expired; ask for a new one")
    row = session.get(WebLogin, _digest(nonce))
    if row is None or row.agent_id != agent_id:
        raise SignInRefused("this sign-in link is not valid; ask for a new one")
    if row.used_at is not None:
        raise SignInRefused("this sign-in link was already used; ask for a new one")
    agent = session.get(Agent, agent_id)
    if agent is None or not agent.active:
        raise SignInRefused("this agent can no longer sign in")
    return agent, row.nonce_hash


def mail_link(session: Session, rt: Runtime, email: str, after: str = "/") -> bool:
    """Mail a sign-in link to an active agent. False (and nothing sent) for any other
    address, or past MAX_LINKS_PER_HOUR; the page says the same either way, so it
    cannot be used to learn who is an agent or to flood an agent's inbox."""
    agent = session.exec(select(Agent).where(Agent.email == email.strip().lower())).first()
    if agent is None or not agent.active or agent.id is None:
        return False
    recent = session.exec(
        select(func.count())
        .select_from(WebLogin)
        .where(
            WebLogin.agent_id == agent.id, col(WebLogin.created_at) >= utcnow() - timedelta(hours=1)
        )
    ).one()
    if recent >= MAX_LINKS_PER_HOUR:
        return False
    cfg = rt.config.inboxd
    url = issue_link(session, rt, agent, after=after)
    text = render(
        "email/login_link.txt.j2",
        {"url": url, "minutes": int(LINK_LIFETIME.total_seconds() // 60)},
        cfg.templates_dir,
    )
    headers = [
        ("From", mailbox(cfg.support_name, cfg.support_address)),
        ("To", agent.email),
        ("Subject", "Your sign-in link"),
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
    ]
    queue_mail(
        session,
        compose(headers, text, cfg=rt.config),
        mail_from=cfg.support_address,
        rcpt_to=[agent.email],
        ticket_id=None,
        purpose="login",
        capped=False,
    )
    return True


def open_session(session: Session, agent: Agent, now: datetime | None = None) -> str:
    """Start a browser session; returns the cookie value."""
    assert agent.id is not None
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_digest(token),
            agent_id=agent.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    # Housekeeping rides along: sessions and links that can no longer be used.
    session.connection().execute(delete(WebSession).where(col(WebSession.expires_at) < now))
    session.connection().execute(
        delete(WebLogin).where(col(WebLogin.expires_at) < now - timedelta(days=1))
    )
    return token


def session_agent(session: Session, cookie: str | None) -> Agent | None:
    """The active agent a session cookie belongs to, or None."""
    if not cookie or len(cookie) > 200:
        return None
    row = session.get(WebSession, _digest(cookie))
    if row is None or _aware(row.expires_at) < utcnow():
        return None
    agent = session.get(Agent, row.agent_id)
    return agent if agent is not None and agent.active else None


def close_session(session: Session, cookie: str | None) -> None:
    if cookie and len(cookie) <= 200:
        session.connection().execute(
            delete(WebSession).where(col(WebSession.token_hash) == _digest(cookie))
        )


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they are stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
