"""tokens.py: reply tokens, the `TOKEN` in support+TOKEN@domain. Pure.

A token names a ticket and, for agents, the agent it was issued to, signed with the
secret key (HMAC-SHA256, 80 bits kept). It cannot be guessed or moved to another ticket,
and rotating the secret key revokes every token at once. Lowercase base32 survives mail
systems that change the case of local parts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass

_CUSTOMER, _AGENT = 1, 2
_PACK = struct.Struct(">BII")
_MAC_BYTES = 10
_CONTEXT = b"inboxd reply token v1\x00"
_LENGTH = -(-(_PACK.size + _MAC_BYTES) * 8 // 5)  # base32 characters, no padding


@dataclass(frozen=True)
class ReplyToken:
    ticket_id: int
    agent_id: int | None = None  # None: issued to the ticket's customers


def make_token(secret: bytes, ticket_id: int, agent_id: int | None = None) -> str:
    """The token for a ticket's customers (agent_id None) or for one agent."""
    payload = _PACK.pack(_AGENT if agent_id else _CUSTOMER, ticket_id, agent_id or 0)
    mac = hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.b32encode(payload + mac).decode("ascii").rstrip("=").lower()


def read_token(secret: bytes, token: str) -> ReplyToken | None:
    """The ticket (and agent) a token names, or None when it does not verify."""
    text = token.strip().upper()
    if len(text) != _LENGTH or not text.isalnum():
        return None
    try:
        blob = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        return None
    payload, mac = blob[: _PACK.size], blob[_PACK.size :]
    expected = hmac.new(secret, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    kind, ticket_id, agent_id = _PACK.unpack(payload)
    if kind == _AGENT and agent_id:
        return ReplyToken(ticket_id, agent_id)
    if kind == _CUSTOMER and not agent_id:
        return ReplyToken(ticket_id)
    return None


def token_address(support_address: str, token: str) -> str:
    """support@example.com + token -> support+token@example.com."""
    local, _, domain = support_address.partition("@")
    return f"{local}+{token}@{domain}"


def is_ours(address: str, support_addresses: tuple[str, ...]) -> bool:
    """Is this one of our addresses, with or without a +token?"""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}" in support_addresses


def token_from_address(address: str, support_addresses: tuple[str, ...]) -> str | None:
    """The token part of support+TOKEN@domain when the address is one of ours."""
    local, _, domain = address.lower().rpartition("@")
    base, plus, token = local.partition("+")
    if not plus or not token:
        return None
    return token if f"{base}@{domain}" in support_addresses else None
