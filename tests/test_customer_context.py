"""The customer beside every ticket (SPEC §10.7): their other open tickets, their
organisation's and the last few solved, in each agent notification's header, on the
ticket page and in `show --json`, from one bounded query module (customers/context.py)."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

import pytest
from conftest import make_config
from fastapi.testclient import TestClient
from mailbuilder import mail, plain_text
from sqlmodel import Session, col, select
from test_web import BASE, signed_in

from inboxd.agents import operations
from inboxd.customers import context
from inboxd.metrics import Metrics
from inboxd.models import Outbound
from inboxd.pipeline import ingest
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import queries
from inboxd.web.app import create_app

ACME = [{"name": "Acme", "domains": ["acme.example"]}]


@pytest.fixture
def acme(tmp_path: Path) -> Runtime:
    return open_runtime(make_config(tmp_path, organizations=ACME))


def _text(raw: bytes) -> str:
    return plain_text(message_from_bytes(raw))


def _notification(rt: Runtime, ticket_id: int) -> str:
    with Session(rt.engine) as session:
        row = session.exec(
            select(Outbound)
            .where(Outbound.ticket_id == ticket_id, col(Outbound.purpose).startswith("notify:"))
            .order_by(col(Outbound.id).desc())
        ).first()
        assert row is not None
        return _text(row.raw)


def _open(rt: Runtime, sender: str, subject: str) -> int:
    result = ingest(rt, mail(sender=sender, subject=subject))
    assert result.ticket is not None
    return result.ticket


def test_a_notification_names_the_customer_their_open_tickets_and_their_organisations(
    acme: Runtime,
) -> None:
    first = _open(acme, "Max Muster <max@acme.example>", "Printer jammed")
    solved = _open(acme, "max@acme.example", "Login broken")
    operations.run_commands(acme, solved, "#status solved", None, "cli")
    colleague = _open(acme, "Ann <ann@eu.acme.example>", "VPN down")
    _open(acme, "stranger@gmail.com", "Unrelated")
    latest = _open(acme, "Max Muster <max@acme.example>", "Toner empty")
    text = _notification(acme, latest)
    assert "Requester: Max Muster <max@acme.example> · Acme" in text
    assert f"Their other open tickets: #{first} Printer jammed (new)" in text
    assert f"Open at Acme: #{colleague} VPN down (ann@eu.acme.example)" in text
    assert f"Recently solved: #{solved} Login broken" in text
    assert "Unrelated" not in text
    stranger = _notification(acme, 4)
    assert "Their other open" not in stranger and "Open at" not in stranger


def test_show_json_carries_the_customer_object(acme: Runtime) -> None:
    first = _open(acme, "Max Muster <max@acme.example>", "Printer jammed")
    colleague = _open(acme, "ann@acme.example", "VPN down")
    latest = _open(acme, "max@acme.example", "Toner empty")
    with Session(acme.engine) as session:
        data = queries.ticket_json(session, queries.get_ticket(session, latest), full=True)
    customer = data["customer"]
    assert set(customer) >= {
        "id",
        "name",
        "addresses",
        "organization",
        "language",
        "open_tickets",
        "organization_open_tickets",
        "recent_solved",
    }
    assert customer["name"] == "Max Muster" and customer["addresses"] == ["max@acme.example"]
    assert customer["organization"] == "Acme" and data["organization"] == "Acme"
    assert [t["id"] for t in customer["open_tickets"]] == [first]
    assert [t["id"] for t in customer["organization_open_tickets"]] == [colleague]
    assert data["channel"] == "email" and data["submitter"] == "max@acme.example"


def test_the_lists_are_bounded_and_say_that_there_are_more(acme: Runtime) -> None:
    for n in range(context.LIMIT + 3):
        _open(acme, "max@acme.example", f"Ticket {n}")
        _open(acme, f"colleague{n}@acme.example", f"Colleague {n}")
    latest = _open(acme, "max@acme.example", "The last one")
    with Session(acme.engine) as session:
        found = context.context_for(session, "max@acme.example", latest)
    assert found is not None
    assert len(found.open_tickets) == context.LIMIT and found.more_open
    assert len(found.organization_open_tickets) == context.LIMIT
    assert found.more_organization_open
    assert f"#{latest}" not in str([t.id for t in found.open_tickets])


def test_the_ticket_page_shows_the_customer_card(acme: Runtime) -> None:
    _open(acme, "Max Muster <max@acme.example>", "Printer jammed")
    _open(acme, "ann@acme.example", "VPN down")
    latest = _open(acme, "max@acme.example", "Toner empty")
    web = TestClient(create_app(acme, Metrics()), base_url=BASE)
    signed_in(web, acme)
    page = web.get(f"/tickets/{latest}").text
    assert 'id="customer"' in page and "Max Muster" in page
    assert "Their other open tickets" in page and "Printer jammed" in page
    assert "Open at Acme" in page and "VPN down" in page
