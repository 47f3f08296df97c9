"""flash.py: the one-line confirmation a page shows after a command ("what changed").

Post/Redirect/Get: a form's POST changes things, then redirects with a short-lived
cookie carrying the lines to show; the next page shows them once and deletes the cookie.
No script. The cookie is signed under the secret key (and bound to the sign-in session),
so another site cannot plant a message such as "Reply sent" that never happened, and it
is read on the same site only (SameSite=Strict, HttpOnly).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from inboxd.runtime import Runtime
from inboxd.web.security import SESSION_COOKIE

FLASH_COOKIE = "inboxd_flash"
MAX_LINES = 60  # a bulk action on a whole page of the list, plus its summary
MAX_LINE = 300
LIFETIME_SECONDS = 120  # the redirect follows at once; a stale one never shows


@dataclass(frozen=True)
class FlashLine:
    """One line: `ok` lines are changes, the others say why something was not done."""

    text: str
    ok: bool = True
    link: str = ""  # an own page the line refers to (/tickets/N), or ""


def set_flash(response: Response, request: Request, rt: Runtime, lines: list[FlashLine]) -> None:
    """Attach the lines to this (redirect) response for the next page to show."""
    data = [
        [line.text[:MAX_LINE], line.ok, line.link if line.link.startswith("/tickets/") else ""]
        for line in lines[:MAX_LINES]
    ]
    if len(lines) > MAX_LINES:
        data.append([f"… and {len(lines) - MAX_LINES} more", True, ""])
    payload = base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=True).encode()).decode()
    cookie = f"{payload}.{_mac(rt, request, payload)}"
    response.set_cookie(
        FLASH_COOKIE,
        cookie,
        max_age=LIFETIME_SECONDS,
        httponly=True,
        samesite="strict",
        secure=rt.config.inboxd.web_base_url.startswith("https:") or request.url.scheme == "https",
        path="/",
    )


def take_flash(request: Request, rt: Runtime) -> list[FlashLine]:
    """The lines waiting for this browser; [] when there are none or they are not ours."""
    cookie = request.cookies.get(FLASH_COOKIE, "")
    payload, _, mac = cookie.rpartition(".")
    if not payload or not hmac.compare_digest(mac, _mac(rt, request, payload)):
        return []
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        return [FlashLine(str(text), bool(ok), str(link)) for text, ok, link in data]
    except (ValueError, TypeError):
        return []


def forget_flash(response: Response) -> None:
    """Shown once: the page that showed the lines deletes them."""
    response.delete_cookie(FLASH_COOKIE, path="/")


def _mac(rt: Runtime, request: Request, payload: str) -> str:
    data = f"inboxd flash\x00{request.cookies.get(SESSION_COOKIE, '')}\x00{payload}".encode()
    return hmac.new(rt.secret_key, data, hashlib.sha256).hexdigest()[:32]
