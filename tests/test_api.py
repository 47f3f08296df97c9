"""The REST API: the same tickets, commands and replies as the CLI, behind API tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inboxd import pipeline
from inboxd.agents import directory
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.runtime import Runtime
from inboxd.web.app import create_app

MAIL = Path(__file__).resolve().parent / "data" / "mail"


@pytest.fixture
def client(sqlite_rt: Runtime) -> TestClient:
    return TestClient(create_app(sqlite_rt, Metrics()))


def token_for(rt: Runtime, email: str) -> dict[str, str]:
    with session_scope(rt.engine) as session:
        return {"Authorization": f"Bearer {directory.issue_api_token(session, email)}"}


def new_ticket(rt: Runtime) -> int:
    result = pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "test")
    assert result.ticket is not None
    return result.ticket


def test_every_route_refuses_a_missing_or_unknown_token(
    client: TestClient, sqlite_rt: Runtime
) -> None:
    ticket = new_ticket(sqlite_rt)
    for method, path in [
        ("get", "/api/v1/tickets"),
        ("get", f"/api/v1/tickets/{ticket}"),
        ("post", f"/api/v1/tickets/{ticket}/commands"),
        ("post", f"/api/v1/tickets/{ticket}/replies"),
    ]:
        assert client.request(method, path).status_code == 401
        bad = {"Authorization": "Bearer ibx_not-a-real-token"}
        response = client.request(method, path, headers=bad, json={"commands": "#open"})
        assert response.status_code == 401
        assert "token" in response.json()["detail"]


def test_list_and_show_return_the_cli_json(client: TestClient, sqlite_rt: Runtime) -> None:
    ticket = new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "bob@example.com")
    listed = client.get("/api/v1/tickets", headers=auth, params={"status": "new"}).json()
    assert [t["id"] for t in listed] == [ticket]
    assert "messages" not in listed[0]
    shown = client.get(f"/api/v1/tickets/{ticket}", headers=auth).json()
    assert shown["messages"][0]["from"] == "carol@example.org"
    searched = client.get("/api/v1/tickets", headers=auth, params={"q": "1042"}).json()
    assert [t["id"] for t in searched] == [ticket]
    assert client.get("/api/v1/tickets/999", headers=auth).status_code == 404


def test_commands_run_as_the_token_agent_or_answer_422_with_each_bad_line(
    client: TestClient, sqlite_rt: Runtime
) -> None:
    ticket = new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "bob@example.com")
    ok = client.post(
        f"/api/v1/tickets/{ticket}/commands",
        headers=auth,
        json={"commands": "#status pending\n#take\n#tag shipping"},
    )
    assert ok.status_code == 200
    body = ok.json()
    assert (body["status"], body["assignee"], body["tags"]) == (
        "pending",
        "bob@example.com",
        ["shipping"],
    )
    assert {e["actor"] for e in body["events"] if e["type"] in ("status", "assignee")} == {
        "bob@example.com"
    }
    bad = client.post(
        f"/api/v1/tickets/{ticket}/commands",
        headers=auth,
        json={"commands": "#status closed\n#stauts open\n#priority extreme"},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"] == "commands refused; nothing was applied"
    errors = bad.json()["errors"]
    assert [e["line"] for e in errors] == ["#stauts open", "#priority extreme"]
    after = client.get(f"/api/v1/tickets/{ticket}", headers=auth).json()
    assert after["status"] == "pending"  # the valid first line was not applied either


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"status": "bogus"}, "query.status", "new, open, pending, on-hold, solved, closed"),
        ({"priority": "extreme"}, "query.priority", "low, normal, high, urgent"),
        ({"assignee": "zed"}, "query.assignee", "an agent's email or name, me, or none"),
        ({"limit": "0"}, "query.limit", "greater than or equal to 1"),
        ({"sort": "oldest"}, "query.sort", "'updated', 'created', 'priority', 'id' or 'due'"),
    ],
)
def test_a_bad_filter_is_answered_422_in_the_one_error_shape(
    client: TestClient, sqlite_rt: Runtime, params: dict[str, str], field: str, allowed: str
) -> None:
    """Issue 16.5: `?status=bogus` used to answer 200 []; errors came in three shapes."""
    new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "bob@example.com")
    answer = client.get("/api/v1/tickets", headers=auth, params=params)
    assert answer.status_code == 422
    body = answer.json()
    assert set(body) == {"detail", "errors"} and isinstance(body["detail"], str)
    assert [e["field"] for e in body["errors"]] == [field]
    assert allowed in body["errors"][0]["error"]


def test_every_api_error_has_the_one_shape(client: TestClient, sqlite_rt: Runtime) -> None:
    ticket = new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "bob@example.com")
    answers = [
        client.get("/api/v1/tickets"),  # 401
        client.get("/api/v1/tickets/999", headers=auth),  # 404
        client.post(f"/api/v1/tickets/{ticket}/replies", headers=auth, content=b"{nope"),
        client.post(f"/api/v1/tickets/{ticket}/commands", headers=auth, json={"commands": "x"}),
    ]
    assert [a.status_code for a in answers] == [401, 404, 422, 422]
    for answer in answers:
        body = answer.json()
        assert isinstance(body["detail"], str) and body["detail"], body
        assert set(body) <= {"detail", "errors"}
        assert all(set(e) <= {"field", "line", "error"} for e in body.get("errors", []))


def test_the_api_assignee_filter_reads_names_and_me_as_the_tokens_agent(
    client: TestClient, sqlite_rt: Runtime
) -> None:
    ticket = new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "bob@example.com")
    client.post(f"/api/v1/tickets/{ticket}/commands", headers=auth, json={"commands": "#take"})
    for who in ("me", "bob", "bob@example.com"):
        listed = client.get("/api/v1/tickets", headers=auth, params={"assignee": who}).json()
        assert [t["id"] for t in listed] == [ticket], who


def test_a_reply_is_queued_to_the_customer_and_a_note_is_not(
    client: TestClient, sqlite_rt: Runtime
) -> None:
    ticket = new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "alice@example.com")
    reply = client.post(
        f"/api/v1/tickets/{ticket}/replies",
        headers=auth,
        json={"text": "It is on its way. -- alice@example.com"},
    )
    assert reply.status_code == 200
    note = client.post(
        f"/api/v1/tickets/{ticket}/replies",
        headers=auth,
        json={"text": "Checked with the warehouse.", "note": True},
    )
    kinds = [m["kind"] for m in note.json()["messages"]]
    assert kinds == ["customer", "reply", "note"]
    assert note.json()["first_response_at"] is not None
    from sqlmodel import select

    from inboxd.models import Outbound

    with session_scope(sqlite_rt.engine) as session:
        sent = session.exec(select(Outbound).where(Outbound.purpose == "reply")).all()
    assert len(sent) == 1
    assert sent[0].rcpt_to == ["carol@example.org", "dan@example.org"]
    raw = sent[0].raw.decode()
    assert "alice@example.com" not in raw
    assert "Checked with the warehouse" not in raw


def test_the_openapi_document_is_served(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/tickets",
        "/api/v1/tickets/{ticket_id}",
        "/api/v1/tickets/{ticket_id}/commands",
        "/api/v1/tickets/{ticket_id}/replies",
    } <= set(document["paths"])


def test_bad_json_is_answered_with_a_json_error(client: TestClient, sqlite_rt: Runtime) -> None:
    ticket = new_ticket(sqlite_rt)
    auth = token_for(sqlite_rt, "bob@example.com")
    response = client.post(f"/api/v1/tickets/{ticket}/replies", headers=auth, content=b"{nope")
    assert response.status_code == 422
    assert "detail" in response.json()


def test_a_command_that_refuses_while_applied_rolls_back_its_whole_block(rt: Runtime) -> None:
    """`#undo` with nothing to undo is found out only when applied; the block's earlier
    commands must not stay applied (blocks are all or nothing), and no event remains."""
    from inboxd.agents import operations
    from inboxd.tickets import queries

    result = pipeline.ingest(rt, (MAIL / "new_ticket_plain.eml").read_bytes(), "test")
    assert result.ticket is not None
    with pytest.raises(operations.InvalidCommands) as refused:
        operations.run_commands(rt, result.ticket, "#status pending\n#undo", "bob@example.com", "t")
    assert refused.value.errors[0][0] == "#undo"
    with session_scope(rt.engine) as session:
        shown = queries.ticket_json(session, queries.get_ticket(session, result.ticket), full=True)
    assert shown["status"] == "new"
    assert [e["type"] for e in shown["events"] if e["actor"] == "bob@example.com"] == []


def test_numbers_beyond_any_ticket_and_nul_characters_are_answered_not_crashed(
    rt: Runtime,
) -> None:
    """Found by tests/test_api_schema.py: 32-bit overflow on PostgreSQL, 64-bit on SQLite,
    NUL in search and in text, and an unencodable lone surrogate in a JSON body."""
    client = TestClient(create_app(rt, Metrics()), raise_server_exceptions=False)
    ticket = new_ticket(rt)
    auth = token_for(rt, "bob@example.com")
    for path in ("/api/v1/tickets/2147483648", "/api/v1/tickets/9223372036854775808"):
        assert client.get(path, headers=auth).status_code == 422
    merge = {"commands": "#merge 9223372036854775808"}
    answer = client.post(f"/api/v1/tickets/{ticket}/commands", headers=auth, json=merge)
    assert answer.status_code == 422 and "no ticket" in answer.text
    for params in ({"q": "abc\x00"}, {"status": "new\x00"}, {"tag": "\x00"}):
        assert client.get("/api/v1/tickets", headers=auth, params=params).status_code == 200
    reply = {"text": "Hi\x00 there"}
    answer = client.post(f"/api/v1/tickets/{ticket}/replies", headers=auth, json=reply)
    assert answer.status_code == 200 and answer.json()["messages"][-1]["text"] == "Hi there"
    surrogate = b'{"text": "\\ud800"}'
    answer = client.post(
        f"/api/v1/tickets/{ticket}/replies",
        headers={**auth, "content-type": "application/json"},
        content=surrogate,
    )
    assert answer.status_code == 422
