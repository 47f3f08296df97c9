"""Roles (issue 16 item 8, SPEC §10.9): an admin manages agents; an agent works tickets and
changes only their own settings. On the API a refusal is 403 in the one error shape; on
the web, the 403 page. Both through the same core as `inboxd agents set`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_config
from fastapi.testclient import TestClient
from test_api import token_for
from test_web import BASE, csrf_of, new_ticket, signed_in

from inboxd.agents import directory, operations
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.runtime import Runtime, open_runtime
from inboxd.web.app import create_app

ALICE, BOB = "alice@example.com", "bob@example.com"  # admin, agent (conftest.make_config)


@pytest.fixture
def client(sqlite_rt: Runtime) -> TestClient:
    return TestClient(create_app(sqlite_rt, Metrics()), base_url=BASE)


# --- the API -------------------------------------------------------------------------------


def test_an_agent_cannot_call_admin_endpoints(client: TestClient, sqlite_rt: Runtime) -> None:
    bob = token_for(sqlite_rt, BOB)
    refusals = [
        client.post("/api/v1/agents", headers=bob, json={"email": "eve@example.com"}),
        client.delete(f"/api/v1/agents/{ALICE}", headers=bob),
        client.patch(f"/api/v1/agents/{ALICE}", headers=bob, json={"notify": "none"}),
        client.patch(f"/api/v1/agents/{BOB}", headers=bob, json={"role": "admin"}),
    ]
    for answer in refusals:
        assert answer.status_code == 403, answer.text
        body = answer.json()
        assert set(body) == {"detail", "errors"} and body["errors"] == []
        assert "only an admin may" in body["detail"]
    with session_scope(sqlite_rt.engine) as session:
        assert directory.get_agent(session, BOB).role == "agent"
        assert directory.get_agent(session, ALICE).notify == "all"
        assert [a.email for a in directory.list_agents(session)] == [ALICE, BOB]


def test_an_agent_changes_their_own_preferences(client: TestClient, sqlite_rt: Runtime) -> None:
    bob = token_for(sqlite_rt, BOB)
    answer = client.patch(
        f"/api/v1/agents/{BOB}",
        headers=bob,
        json={"notify": "assigned", "receipts": True, "language": "fr"},
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["notify"], answer.json()["language"]) == ("assigned", "fr")
    bad = client.patch(f"/api/v1/agents/{BOB}", headers=bob, json={"notify": "sometimes"})
    assert bad.status_code == 422 and "notify" in bad.json()["errors"][0]["field"]
    listed = client.get("/api/v1/agents", headers=bob).json()
    assert [(a["email"], a["notify"]) for a in listed] == [(ALICE, "all"), (BOB, "assigned")]


def test_an_admin_adds_changes_and_removes_agents(client: TestClient, sqlite_rt: Runtime) -> None:
    alice = token_for(sqlite_rt, ALICE)
    added = client.post(
        "/api/v1/agents",
        headers=alice,
        json={"email": "Dora@Example.com", "name": "Dora", "notify": "team", "team": "billing"},
    )
    assert added.status_code == 201, added.text
    assert (added.json()["email"], added.json()["teams"]) == ("dora@example.com", ["billing"])
    ticket = new_ticket(sqlite_rt)
    operations.run_commands(sqlite_rt, ticket, "#assign dora", None, "cli")
    refused = client.delete("/api/v1/agents/dora@example.com", headers=alice)
    assert refused.status_code == 409
    assert refused.json()["errors"] == [{"field": "query.force", "error": f"open ticket #{ticket}"}]
    gone = client.delete("/api/v1/agents/dora@example.com?force=true", headers=alice)
    assert gone.status_code == 200 and gone.json()["unassigned"] == [ticket]
    assert gone.json()["active"] is False


def test_teams_are_listed_from_the_config(tmp_path: Path) -> None:
    teams = [{"name": "billing", "agents": [BOB], "lead": BOB, "email": "billing@example.com"}]
    rt = open_runtime(make_config(tmp_path, teams=teams))
    client = TestClient(create_app(rt, Metrics()), base_url=BASE)
    listed = client.get("/api/v1/teams", headers=token_for(rt, BOB)).json()
    assert listed == [
        {"name": "billing", "agents": [BOB], "lead": BOB, "email": "billing@example.com"}
    ]


# --- the web ---------------------------------------------------------------------------------


def test_an_agent_sets_their_notifications_on_the_settings_page(
    client: TestClient, sqlite_rt: Runtime
) -> None:
    csrf = signed_in(client, sqlite_rt, BOB)
    page = client.get("/settings")
    assert page.status_code == 200 and "Your settings" in page.text
    assert 'name="role"' not in page.text  # an agent cannot make themselves admin
    saved = client.post(
        "/settings",
        data={"csrf": csrf, "agent": BOB, "notify": "team", "receipts": "true", "language": "de"},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/settings?saved=1"
    with session_scope(sqlite_rt.engine) as session:
        bob = directory.get_agent(session, BOB)
        assert (bob.notify, bob.receipts, bob.language) == ("team", True, "de")
    wrong = client.post(
        "/settings",
        data={"csrf": csrf, "agent": BOB, "notify": "often"},
        follow_redirects=False,
    )
    assert wrong.status_code == 422 and "is not one of all, team, assigned, none" in wrong.text


def test_an_agent_cannot_see_or_change_anyone_elses_settings(
    client: TestClient, sqlite_rt: Runtime
) -> None:
    csrf = signed_in(client, sqlite_rt, BOB)
    assert client.get(f"/settings?agent={ALICE}").status_code == 403
    assert client.get("/agents").status_code == 403
    answer = client.post(
        "/settings", data={"csrf": csrf, "agent": ALICE, "notify": "none"}, follow_redirects=False
    )
    assert answer.status_code == 403 and "only an admin may" in answer.text
    with session_scope(sqlite_rt.engine) as session:
        assert directory.get_agent(session, ALICE).notify == "all"


def test_an_admin_sets_anyones_settings(client: TestClient, sqlite_rt: Runtime) -> None:
    csrf = signed_in(client, sqlite_rt, ALICE)
    listing = client.get("/agents")
    assert listing.status_code == 200 and BOB in listing.text
    assert 'name="role"' in client.get(f"/settings?agent={BOB}").text
    answer = client.post(
        "/settings",
        data={"csrf": csrf, "agent": BOB, "notify": "assigned", "role": "agent", "team": "sales"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    with session_scope(sqlite_rt.engine) as session:
        bob = directory.get_agent(session, BOB)
        assert (bob.notify, bob.team) == ("assigned", "sales")
    assert csrf_of(client, "/settings")
