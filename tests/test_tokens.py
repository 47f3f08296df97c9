"""Reply tokens: bound to ticket and agent, unguessable, revoked by a new secret key."""

from __future__ import annotations

import pytest

from inboxd.tickets.tokens import (
    ReplyToken,
    make_token,
    read_token,
    token_address,
    token_from_address,
)

SECRET = b"0123456789abcdef0123456789abcdef"


def test_customer_token_names_the_ticket_only() -> None:
    assert read_token(SECRET, make_token(SECRET, 42)) == ReplyToken(42, None)


def test_agent_token_names_ticket_and_agent() -> None:
    assert read_token(SECRET, make_token(SECRET, 42, agent_id=7)) == ReplyToken(42, 7)


def test_token_survives_a_mail_system_that_changes_case() -> None:
    assert read_token(SECRET, make_token(SECRET, 9).upper()) == ReplyToken(9, None)


def test_rotating_the_secret_revokes_every_token() -> None:
    assert read_token(b"another secret key 0123456789", make_token(SECRET, 42)) is None


@pytest.mark.parametrize("position", range(0, 31, 3))
def test_any_changed_character_is_refused(position: int) -> None:
    token = make_token(SECRET, 42, 7)
    flipped = "a" if token[position] != "a" else "b"
    assert read_token(SECRET, token[:position] + flipped + token[position + 1 :]) is None


@pytest.mark.parametrize("garbage", ["", "42", "x" * 31, "!" * 31, "a" * 200, "ticket42"])
def test_garbage_is_refused(garbage: str) -> None:
    assert read_token(SECRET, garbage) is None


def test_tokens_for_different_tickets_and_agents_differ() -> None:
    tokens = {make_token(SECRET, t, a) for t in range(1, 30) for a in (None, 1, 2)}
    assert len(tokens) == 29 * 3


def test_token_addresses_use_plus_addressing_on_our_addresses_only() -> None:
    token = make_token(SECRET, 5)
    address = token_address("support@example.com", token)
    assert address == f"support+{token}@example.com"
    ours = ("support@example.com", "help@example.com")
    assert token_from_address(address, ours) == token
    assert token_from_address(f"help+{token}@example.com", ours) == token
    assert token_from_address(f"support+{token}@evil.test", ours) is None
    assert token_from_address("support@example.com", ours) is None
