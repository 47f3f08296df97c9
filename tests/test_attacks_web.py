"""Web attacks from a red-team run (issue 19, finding 9), kept fixed.

The CSRF token was an HMAC of the CSRF cookie alone: a cookie planted in a victim's
browser (from a sibling subdomain, or over plain http), together with the token that
goes with it, read by the attacker in their own browser, passed for the victim whenever
no Origin header was sent. Now the token is bound to the sign-in session too.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from mailbuilder import mail
from test_web import BASE, csrf_of, signed_in

from inboxd import pipeline
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Ticket
from inboxd.runtime import Runtime
from inboxd.web.app import create_app
from inboxd.web.security import CSRF_COOKIE


def status_of(rt: Runtime, ticket_id: int) -> str:
    with session_scope(rt.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.status


def test_a_planted_csrf_cookie_with_the_attackers_token_is_refused(sqlite_rt: Runtime) -> None:
    rt = sqlite_rt
    ticket = pipeline.ingest(rt, mail(), "test").ticket
    assert ticket is not None
    app = create_app(rt, Metrics())
    attacker, victim = TestClient(app, base_url=BASE), TestClient(app, base_url=BASE)
    attackers_token = csrf_of(attacker)  # the attacker's own browser, signed out
    planted = attacker.cookies.get(CSRF_COOKIE)
    assert planted
    signed_in(victim, rt)
    victim.cookies.set(CSRF_COOKIE, planted)
    # No Origin, no Referer: the case the Origin check cannot decide.
    forged = victim.post(
        f"/tickets/{ticket}/commands",
        data={"csrf": attackers_token, "commands": "#status closed"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert status_of(rt, ticket) != "closed"
    # The victim's own form, rendered for the victim's session, still works.
    own = victim.post(
        f"/tickets/{ticket}/commands",
        data={"csrf": csrf_of(victim), "commands": "#status closed"},
        follow_redirects=False,
    )
    assert own.status_code == 303
    assert status_of(rt, ticket) == "closed"
