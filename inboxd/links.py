"""links.py: signed links for people without a login (the customer status page). Pure.

A link names its ticket only inside an HMAC-signed blob, so it carries no sequential
ticket number to guess from, and rotating the secret key revokes every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

_CONTEXT = b"inboxd status link v1\x00"
_PACK = struct.Struct(">I")
_MAC_BYTES = 12


def status_token(secret: bytes, ticket_id: int) -> str:
    payload = _PACK.pack(ticket_id)
    mac = hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).decode("ascii").rstrip("=")


def read_status_token(secret: bytes, token: str) -> int | None:
    """The ticket id a status token names, or None when it does not verify."""
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    if len(blob) != _PACK.size + _MAC_BYTES:
        return None
    payload, mac = blob[: _PACK.size], blob[_PACK.size :]
    expected = hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    return int(_PACK.unpack(payload)[0])


def status_url(web_base_url: str, secret: bytes, ticket_id: int) -> str:
    return f"{web_base_url.rstrip('/')}/status/{status_token(secret, ticket_id)}"
