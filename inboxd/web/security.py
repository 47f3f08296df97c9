"""security.py: what every web page needs to be safe to open, in one place.

- Headers on every answer: a Content-Security-Policy with no script at all (the pages
  are plain server-rendered forms), no framing by other sites, no referrer to other sites
  (sign-in and status links never leak; "no-referrer" would make Chromium send
  `Origin: null` from our own forms), no MIME sniffing.
- CSRF on every state-changing form: a random cookie (HttpOnly, SameSite=Strict) and,
  in the form, an HMAC under the secret key of it and of the sign-in session cookie; a
  request without both, or from a foreign Origin, is refused. Binding the token to the
  session (issue 19) means a CSRF cookie planted in a victim's browser, with the token
  that goes with it in the attacker's own browser, does not pass for the victim. The API
  is exempt: it takes no cookies, only Bearer tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from inboxd.runtime import Runtime

CSRF_COOKIE = "inboxd_csrf"
SESSION_COOKIE = "inboxd_session"

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Sanitized mail HTML, shown in an <iframe sandbox>: no script, no form, no remote
# resource unless the agent asks for images; links open outside the sandbox.
MAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src {images}; form-action 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; sandbox allow-popups "
    "allow-popups-to-escape-sandbox"
)
# An attachment downloaded from us must never run as our page (an .html or .svg file).
FILE_CSP = "default-src 'none'; sandbox"


class SecurityHeaders(BaseHTTPMiddleware):
    """Sets the headers above, and hands every browser its CSRF cookie."""

    def __init__(self, app: object, rt: Runtime) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.secure = rt.config.inboxd.web_base_url.startswith("https:")

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not request.cookies.get(CSRF_COOKIE):
            request.state.new_csrf = secrets.token_urlsafe(24)
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
            headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith("/static/") and response.status_code == 200:
            headers.setdefault("Cache-Control", "public, max-age=3600")
        elif not request.url.path.startswith("/api/"):
            headers.setdefault("Cache-Control", "no-store")
        new = getattr(request.state, "new_csrf", None)
        if new:
            response.set_cookie(
                CSRF_COOKIE,
                new,
                httponly=True,
                samesite="strict",
                secure=self.secure or request.url.scheme == "https",
                path="/",
            )
        return response


def csrf_token(request: Request, rt: Runtime) -> str:
    """The token to put in this browser's forms (for its current sign-in session)."""
    cookie = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    return _sign(rt, cookie or "", request.cookies.get(SESSION_COOKIE, ""))


def _sign(rt: Runtime, cookie: str, session: str) -> str:
    data = b"inboxd csrf\x00" + cookie.encode() + b"\x00" + session.encode()
    return hmac.new(rt.secret_key, data, hashlib.sha256).hexdigest()


def check_form(request: Request, rt: Runtime, token: str | None) -> None:
    """Refuse (403) a state-changing request that another site could have sent."""
    origin = request.headers.get("origin") or _origin_of(request.headers.get("referer", ""))
    # "null" is what a sandboxed frame or a data: page sends: never one of ours.
    if origin and origin not in _own_origins(request, rt):
        raise HTTPException(403, "refused: this form was sent from another site")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = _sign(rt, cookie, request.cookies.get(SESSION_COOKIE, ""))
    if not cookie or not token or not hmac.compare_digest(token, expected):
        raise HTTPException(
            403, "refused: the form's security token is missing or stale; reload the page"
        )


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _own_origins(request: Request, rt: Runtime) -> set[str]:
    own = {_origin_of(str(request.base_url)), _origin_of(rt.config.inboxd.web_base_url)}
    host = request.headers.get("host")
    if host:
        own.add(f"{request.url.scheme}://{host}")
    return own


def session_cookie_args(request: Request, rt: Runtime) -> dict[str, object]:
    """How the sign-in cookie is set: HttpOnly, SameSite=Lax (a link from a mail client
    still arrives signed in), Secure over https."""
    secure = rt.config.inboxd.web_base_url.startswith("https:") or request.url.scheme == "https"
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}


# -- two-step public forms (knowledge base "answered", survey votes) ---------------------
#
# Mail security scanners open every link in a mail and sometimes post the forms they find.
# A public page that records something therefore carries a nonce saying when it was served;
# a post without it, or sooner than a person could read the page, records nothing.


def page_nonce(rt: Runtime, purpose: str, token: str, issued: int, salt: str = "") -> str:
    """`ISSUED.SALT.MAC`: when the page was served, a random salt, and a signature."""
    salt = salt or secrets.token_hex(6)
    mac = hmac.new(rt.secret_key, f"{purpose}:{token}:{issued}:{salt}".encode(), hashlib.sha256)
    return f"{issued}.{salt}.{mac.hexdigest()[:24]}"


def page_nonce_age(rt: Runtime, purpose: str, token: str, nonce: str, now: int) -> int | None:
    """Seconds since the page with this nonce was served; None if it is not one of ours."""
    issued, _, rest = nonce.partition(".")
    salt, _, _mac = rest.partition(".")
    if not issued.isdigit() or len(issued) > 12 or not salt:
        return None
    if not hmac.compare_digest(page_nonce(rt, purpose, token, int(issued), salt), nonce):
        return None
    return now - int(issued)
