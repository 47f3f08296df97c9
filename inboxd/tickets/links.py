"""links.py: signed links for people without a login (the customer status page). Pure.

A status token is opaque: the ticket id inside it is masked with a key derived from the
secret key, and the whole is HMAC-signed. So a link reveals no ticket number (not even
to someone who decodes it), cannot be guessed or moved to another ticket, and rotating
the secret key revokes every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

_CONTEXT = b"inboxd status link v2\x00"
_PACK = struct.Struct(">I")
_SALT_BYTES = 8
_MAC_BYTES = 12
_SIZE = _SALT_BYTES + _PACK.size + _MAC_BYTES


def _keyed(secret: bytes, label: bytes, data: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + label + data, hashlib.sha256).digest()


def status_token(secret: bytes, ticket_id: int) -> str:
    """The ticket's status token: the same for every mail about the ticket."""
    plain = _PACK.pack(ticket_id)
    salt = _keyed(secret, b"salt", plain)[:_SALT_BYTES]
    mask = _keyed(secret, b"mask", salt)[: _PACK.size]
    masked = bytes(a ^ b for a, b in zip(plain, mask, strict=True))
    mac = _keyed(secret, b"mac", salt + masked)[:_MAC_BYTES]
    return base64.urlsafe_b64encode(salt + masked + mac).decode("ascii")


def read_status_token(secret: bytes, token: str) -> int | None:
    """The ticket id a status token names, or None when it does not verify."""
    try:
        blob = base64.urlsafe_b64decode(token.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    if len(blob) != _SIZE:
        return None
    salt, masked, mac = blob[:_SALT_BYTES], blob[_SALT_BYTES:-_MAC_BYTES], blob[-_MAC_BYTES:]
    if not hmac.compare_digest(mac, _keyed(secret, b"mac", salt + masked)[:_MAC_BYTES]):
        return None
    mask = _keyed(secret, b"mask", salt)[: _PACK.size]
    return int(_PACK.unpack(bytes(a ^ b for a, b in zip(masked, mask, strict=True)))[0])


def status_url(web_base_url: str, secret: bytes, ticket_id: int) -> str:
    return f"{web_base_url.rstrip('/')}/status/{status_token(secret, ticket_id)}"
