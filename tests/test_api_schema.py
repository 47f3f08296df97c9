"""The REST API against its own OpenAPI document (/api/v1/openapi.json), property-based.

Schemathesis turns every documented operation into a Hypothesis strategy of requests, both
ones the document allows (positive) and ones it forbids (negative); for the commands
endpoint a grammar of real command tags is added, since random text hardly ever gets past
the parser. Every request must be answered without a server error (5xx), a success must
match its documented schema and content type, and an error must be the JSON object with a
`detail` that api.py promises. Tickets 1..3 exist, and bob's token is sent with every
request except in the pass that checks that nothing is served without one.

How it is run, and why:

* Strategies under `@given` in ordinary tests, not `schema.parametrize()`: the app needs
  the per-test runtime (`rt`), which means `schemathesis.pytest.from_fixture`, and that
  fails on pytest 9.2 (schemathesis 4.32 sets `Function._nodeid`, which 9.2 removed).
* Deterministic: Hypothesis runs derandomized, without its example database, on a
  runtime that starts from the same three tickets, so every run sends the same requests.
* On both databases, as `rt` is: the fuzz found a crash only PostgreSQL has (ticket ids
  past its 32-bit INTEGER), and at ~100 requests per operation it stays quick.
* Inputs that once crashed the server (found by this fuzz: ticket numbers past the
  database's integer, `#merge N` likewise, NUL characters, lone surrogates in JSON, and
  `#undo` with nothing to undo) are also sent one by one in EDGE_INPUTS, on both databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailbuilder import mail
from schemathesis import GenerationMode

from inboxd import pipeline
from inboxd.agents import directory
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.runtime import Runtime
from inboxd.tickets.commands import ALIASES, COMMANDS
from inboxd.web.app import create_app

SCHEMA_URL = "/api/v1/openapi.json"
SEEDED_TICKETS = (1, 2, 3)
EXAMPLES = 100  # per operation, with a valid token
UNAUTHENTICATED_EXAMPLES = 25  # per operation, without one

# Every operation in the document, so each gets its own test id; a test below checks the
# list against the document, so a new route cannot go unfuzzed.
OPERATIONS = [
    ("GET", "/api/v1/tickets"),
    ("POST", "/api/v1/tickets"),
    ("GET", "/api/v1/tickets/{ticket_id}"),
    ("POST", "/api/v1/tickets/{ticket_id}/commands"),
    ("POST", "/api/v1/tickets/{ticket_id}/replies"),
    ("GET", "/api/v1/report"),
    ("GET", "/api/v1/agents"),
    ("POST", "/api/v1/agents"),
    ("GET", "/api/v1/agents/{email}"),
    ("PATCH", "/api/v1/agents/{email}"),
    ("DELETE", "/api/v1/agents/{email}"),
    ("GET", "/api/v1/teams"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]
API_OPERATIONS = [op for op in OPERATIONS if op[1].startswith("/api/v1/")]
# What the API is designed to answer: success (201: an agent added), unparsable body, no
# token, not an admin, no such ticket, an agent who still owns tickets, refused input.
DESIGNED_STATUSES = {200, 201, 400, 401, 403, 404, 409, 422}

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class Api:
    app: FastAPI
    schema: schemathesis.BaseSchema  # loaded from the document the app serves
    auth: dict[str, str]


def seed_tickets(rt: Runtime) -> None:
    for n in SEEDED_TICKETS:
        result = pipeline.ingest(rt, mail(subject=f"Order {n} is late"), "test")
        assert result.ticket == n


def load_api(rt: Runtime) -> Api:
    """The app on `rt` with tickets 1..3, a token for bob, and the schema it serves."""
    seed_tickets(rt)
    with session_scope(rt.engine) as session:
        token = directory.issue_api_token(session, "bob@example.com")
    # A slow CI machine must not turn into a failure: schemathesis' default is 10 s.
    options = {"request-timeout": 60}
    config = schemathesis.Config.from_dict(options)
    app = create_app(rt, Metrics())
    schema = schemathesis.openapi.from_asgi(SCHEMA_URL, app, config=config)
    return Api(app, schema, {"authorization": f"Bearer {token}"})


@pytest.fixture
def api(rt: Runtime) -> Api:
    """The API under fuzz, on SQLite and on PostgreSQL."""
    return load_api(rt)


@pytest.fixture
def sqlite_api(sqlite_rt: Runtime) -> Api:
    """The API on SQLite only, for what cannot depend on the database: the document,
    and authentication (a lookup by token hash, before any ticket is read)."""
    return load_api(sqlite_rt)


# --- what gets sent --------------------------------------------------------------------

# A grammar of command blocks: each command (or alias) with arguments of the kind it
# takes, a few of them wrong (unknown agent, past date, bad tag...), so that most blocks
# get past the parser and run; plus lines with random arguments.
_ARGS = {
    "status": ["open", "pending", "on_hold", "solved", "closed", "new", "bogus"],
    "assign": ["me", "none", "bob@example.com", "Alice", "alice", "nobody@example.org"],
    "priority": ["low", "urgent", "extreme"],
    "tag": ["shipping", "a:b.c-d", "UPPER", "#vip", "x" * 101],
    "cc": ["dan@example.org", "<erin@example.org>,", "not-an-address"],
    "merge": ["1", "2", "#3", "999", "0", "abc"],
    "subject": ["New subject", "“quoted words”", "ü" * 600],
    "team": ["billing", "none"],
    "due": ["3d", "4h", "0m", "9999w", "2099-01-01", "2020-01-01", "tomorrow"],
    "macro": ["thanks", "need-order-number", "missing", "../thanks"],
}
_ARGS |= {"untag": _ARGS["tag"], "uncc": _ARGS["cc"], "move": _ARGS["merge"]}
_NAMES = sorted({*COMMANDS, *ALIASES})


def _command_line(name: str) -> st.SearchStrategy[str]:
    """`#name` with one argument of its kind, or none if it takes none (or its alias
    implies it: `#take` is `#assign me`)."""
    command, implied = ALIASES.get(name, (name, ()))
    if implied or command not in _ARGS:
        return st.just(f"#{name}")
    return st.sampled_from(_ARGS[command]).map(lambda arg: f"#{name} {arg}")


_GOOD_LINE = st.sampled_from(_NAMES).flatmap(_command_line)
_WORD = st.text(max_size=12)
_ODD_LINE = st.builds(
    lambda name, args: " ".join([f"#{name}", *args]),
    st.sampled_from(_NAMES),
    st.lists(_WORD, max_size=3),
)
COMMAND_TEXTS = (
    st.lists(_GOOD_LINE, min_size=1, max_size=3)
    | st.lists(_GOOD_LINE | _ODD_LINE, min_size=1, max_size=3)
).map("\n".join)


def requests_for(api: Api, method: str, path: str) -> st.SearchStrategy[Any]:
    """Authenticated requests to one operation, as the fuzz sends them."""
    operation = api.schema[path][method]
    generated = [
        operation.as_strategy(mode, headers=api.auth)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    if path.endswith("/commands"):
        # Random text is hardly ever a command block: send the grammar's to real tickets.
        generated.append(
            st.builds(
                lambda ticket, text: operation.Case(
                    path_parameters={"ticket_id": ticket},
                    headers=dict(api.auth),
                    body={"commands": text},
                    media_type="application/json",
                ),
                st.sampled_from(SEEDED_TICKETS),
                COMMAND_TEXTS,
            )
        )
    elif "{ticket_id}" in path:
        # Random ids hardly ever exist: send a share of the valid requests to real tickets.
        seeded = {
            ticket: operation.as_strategy(headers=api.auth, path_parameters={"ticket_id": ticket})
            for ticket in SEEDED_TICKETS
        }
        generated.append(st.sampled_from(SEEDED_TICKETS).flatmap(seeded.__getitem__))
    return st.one_of(generated)


# --- what must hold --------------------------------------------------------------------


def assert_answered_as_documented(case: Any, response: Any) -> None:
    """No 5xx; an API answer is JSON with a designed status; a success matches its
    documented schema, an error has a `detail`."""
    __tracebackhide__ = True
    request = case.as_curl_command()
    assert response.status_code < 500, f"{response.status_code} for {request}: {response.text}"
    if not case.path.startswith("/api/v1/"):
        return  # /metrics is Prometheus text, which the generated document calls JSON
    assert response.status_code in DESIGNED_STATUSES, f"{response.status_code} for {request}"
    assert response.headers.get("content-type") == ["application/json"], request
    if response.status_code < 300:
        case.operation.validate_response(response)
    else:
        body = response.json()
        assert isinstance(body, dict) and "detail" in body, f"{response.text!r} for {request}"


# --- the tests ---------------------------------------------------------------------------


def test_every_documented_operation_is_fuzzed(sqlite_api: Api) -> None:
    """OPERATIONS is the document's list, so a new route is fuzzed from day one."""
    operations = [result.ok() for result in sqlite_api.schema.get_all_operations()]
    documented = {(operation.method.upper(), operation.path) for operation in operations}
    assert documented == set(OPERATIONS)


def test_the_fuzz_token_reaches_real_tickets(sqlite_api: Api) -> None:
    """The header the fuzz sends authenticates, and the seeded tickets answer 200,
    so the fuzz below exercises the handlers, not just the 401 path."""
    operation = sqlite_api.schema["/api/v1/tickets/{ticket_id}"]["GET"]
    for ticket in SEEDED_TICKETS:
        headers = dict(sqlite_api.auth)
        case = operation.Case(path_parameters={"ticket_id": ticket}, headers=headers)
        response = case.call()
        assert response.status_code == 200
        case.operation.validate_response(response)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_request_makes_a_server_error(api: Api, method: str, path: str) -> None:
    """Whatever an authenticated client sends, valid or not, the answer is never a 5xx,
    a success matches the document, and an error is JSON with a `detail`."""

    @FUZZ_SETTINGS
    @given(case=requests_for(api, method, path))
    def fuzz(case: Any) -> None:
        assert_answered_as_documented(case, case.call())

    fuzz()


@pytest.mark.parametrize(("method", "path"), API_OPERATIONS)
def test_without_a_token_nothing_succeeds_or_crashes(
    sqlite_api: Api, method: str, path: str
) -> None:
    """Without a valid token (none, or whatever the generator puts in `authorization`)
    every API request is refused with a 4xx, never served and never a 5xx."""
    operation = sqlite_api.schema[path][method]
    strategy = st.one_of(
        [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    )

    @settings(FUZZ_SETTINGS, max_examples=UNAUTHENTICATED_EXAMPLES)
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        response = case.call()
        assert 400 <= response.status_code < 500, case.as_curl_command()

    fuzz()


# --- inputs that once crashed the API ---------------------------------------------------

BEYOND_INT4 = str(2**31)  # ticket.id is an INTEGER column on PostgreSQL
BEYOND_BIGINT = str(2**63)  # and a 64-bit one on SQLite
# name: (method, path, query or JSON body; bytes are sent as they are). In this order:
# "undo-nothing" needs a ticket on which bob has run no command block yet.
EDGE_INPUTS: dict[str, tuple[str, str, dict[str, str] | bytes | None]] = {
    "undo-nothing": ("POST", "/api/v1/tickets/1/commands", {"commands": "#undo"}),
    "show-id-beyond-int4": ("GET", f"/api/v1/tickets/{BEYOND_INT4}", None),
    "show-id-beyond-bigint": ("GET", f"/api/v1/tickets/{BEYOND_BIGINT}", None),
    "reply-id-beyond-bigint": ("POST", f"/api/v1/tickets/{BEYOND_BIGINT}/replies", {"text": "Hi"}),
    "commands-id-beyond-bigint": (
        "POST", f"/api/v1/tickets/{BEYOND_BIGINT}/commands", {"commands": "#open"},
    ),
    "merge-into-id-beyond-int4": (
        "POST", "/api/v1/tickets/1/commands", {"commands": f"#merge {BEYOND_INT4}"},
    ),
    "merge-into-id-beyond-bigint": (
        "POST", "/api/v1/tickets/1/commands", {"commands": f"#merge {BEYOND_BIGINT}"},
    ),
    "reply-lone-surrogate": ("POST", "/api/v1/tickets/1/replies", rb'{"text": "\ud800"}'),
    "commands-lone-surrogate": (
        "POST", "/api/v1/tickets/1/commands", rb'{"commands": "#tag \ud800"}',
    ),
    "search-nul": ("GET", "/api/v1/tickets", {"q": "abc\x00"}),
    "status-filter-nul": ("GET", "/api/v1/tickets", {"status": "open\x00"}),
    "tag-filter-nul": ("GET", "/api/v1/tickets", {"tag": "x\x00"}),
    "requester-filter-nul": ("GET", "/api/v1/tickets", {"requester": "a\x00@example.org"}),
    "reply-nul": ("POST", "/api/v1/tickets/1/replies", {"text": "Hi\x00"}),
    "subject-nul": ("POST", "/api/v1/tickets/1/commands", {"commands": "#subject a\x00b"}),
    "new-ticket-nul": ("POST", "/api/v1/tickets", {"for": "c\x00@example.org", "subject": "a\x00"}),
    "new-ticket-lone-surrogate": (
        "POST", "/api/v1/tickets", rb'{"for": "c@example.org", "subject": "\ud800"}',
    ),
    "new-ticket-for-support": (
        "POST", "/api/v1/tickets", {"for": "support@example.com", "subject": "x"},
    ),
}  # fmt: skip


def test_inputs_that_once_crashed_the_api_are_answered(rt: Runtime) -> None:
    """Each input the fuzz once found a server error with gets an answer below 500, on
    both databases (their integers and their text differ)."""
    api = load_api(rt)
    client = TestClient(api.app, raise_server_exceptions=False)
    crashed = set()
    for name, (method, path, payload) in EDGE_INPUTS.items():
        if isinstance(payload, bytes):
            headers = {**api.auth, "content-type": "application/json"}
            response = client.request(method, path, headers=headers, content=payload)
        elif method == "POST":
            response = client.request(method, path, headers=api.auth, json=payload)
        else:
            response = client.request(method, path, headers=api.auth, params=payload)
        if response.status_code >= 500:
            crashed.add(name)
    assert sorted(crashed) == [], "server errors"
