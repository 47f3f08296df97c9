"""A list's count stops at a cap (#18 item 3): "1000+ tickets" is what a reader needs,
and counting every ticket a common word matches cost as much as listing them. Below the
cap the count is exact, on SQLite's full-text path and on PostgreSQL's alike."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from mailbuilder import mail
from sqlmodel import Session
from test_web import BASE, signed_in

from inboxd import pipeline
from inboxd.agents import operations
from inboxd.metrics import Metrics
from inboxd.runtime import Runtime
from inboxd.tickets import queries
from inboxd.web.app import create_app


def tickets(rt: Runtime, count: int, subject: str, body: str) -> list[int]:
    made = []
    for n in range(count):
        result = pipeline.ingest(
            rt, mail(sender=f"c{n}@example.org", subject=f"{subject} {n}", body=body), "test"
        )
        assert result.ticket is not None
        made.append(result.ticket)
    return made


def count(rt: Runtime, cap: int | None = None, **filters: object) -> int:
    with Session(rt.engine) as session:
        return queries.count_tickets(session, queries.TicketFilter(**filters), cap=cap)  # type: ignore[arg-type]


def test_below_the_cap_the_count_is_exact_and_past_it_says_more(rt: Runtime) -> None:
    tickets(rt, 12, "Parcel late", "Where is my parcel?")
    tickets(rt, 3, "Invoice", "Please resend the invoice.")
    assert count(rt, q="parcel") == 12
    assert count(rt, cap=50, q="parcel") == 12
    assert count(rt, cap=12, q="parcel") == 12
    assert count(rt, cap=11, q="parcel") == 12  # 11 + 1: more than 11
    assert count(rt, cap=5, q="parcel") == 6
    assert count(rt, cap=5, q="zebra") == 0
    assert count(rt, cap=5) == 6 and count(rt, cap=100) == 15  # no search: all of them


def test_a_ticket_matching_in_its_subject_and_in_many_messages_counts_once(
    rt: Runtime,
) -> None:
    (ticket,) = tickets(rt, 1, "Parcel late", "My parcel is late.")
    for text in ("The parcel?", "Still no parcel.", "Parcel found, thanks"):
        operations.post_reply(rt, ticket, "alice@example.com", text, note=False, source="api")
    tickets(rt, 1, "Other", "A second parcel question")
    assert count(rt, cap=100, q="parcel") == 2 == count(rt, q="parcel")


def test_the_capped_count_keeps_every_other_filter(rt: Runtime) -> None:
    made = tickets(rt, 6, "Parcel late", "Where is my parcel?")
    for ticket in made[:2]:
        operations.run_commands(rt, ticket, "#pending\n#tag vip", "alice@example.com", "cli")
    assert count(rt, cap=100, q="parcel", status="pending") == 2
    assert count(rt, cap=100, q="parcel", tag="vip") == 2
    assert count(rt, cap=100, q="parcel", status="new") == 4
    assert count(rt, cap=100, q="parcel", requester="c5@example.org") == 1


def test_short_words_and_quotes_are_counted_as_written(rt: Runtime) -> None:
    tickets(rt, 2, 'Error "E7"', 'The screen says "E7" again')
    tickets(rt, 1, "Other", "nothing to see")
    assert count(rt, cap=100, q="E7") == 2 == count(rt, q="E7")  # two characters: LIKE
    assert count(rt, cap=100, q='"E7"') == 2 == count(rt, q='"E7"')
    assert count(rt, cap=100, q="say\x00s") == count(rt, q="says") == 2


@pytest.mark.parametrize("cap", [100])
def test_the_ticket_list_says_how_many_up_to_the_cap_and_pages_on(
    sqlite_rt: Runtime, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    monkeypatch.setattr(queries, "COUNT_CAP", cap)
    tickets(sqlite_rt, 101, "Parcel late", "Where is my parcel?")
    web = TestClient(create_app(sqlite_rt, Metrics()), base_url=BASE)
    signed_in(web, sqlite_rt)
    page = web.get("/?q=parcel").text
    assert '<span id="total">100+</span> tickets · page 1 of 2+' in page
    assert 'rel="next"' in page
    last = web.get("/?q=parcel&page=3").text  # counted to the page after the one shown
    assert '<span id="total">101</span> tickets · page 3 of 3' in last


# On PostgreSQL a search first tests the newest tickets one by one (queries.NEWEST): a
# word in most tickets no longer makes it fetch and sort every hit. What it answers must
# be what the trigram indexes answer, for every order, page and filter.
def answers(rt: Runtime, cases: list[queries.TicketFilter]) -> list[tuple[list[int], list[int]]]:
    """Each filter's page (ticket ids) and its counts capped at 3 and at 6."""
    with Session(rt.engine) as session:
        return [
            (
                [t.id for t in queries.list_tickets(session, flt) if t.id is not None],
                [queries.count_tickets(session, flt, cap=cap) for cap in (3, 6)],
            )
            for flt in cases
        ]


def test_a_word_in_most_tickets_gives_the_page_and_count_the_indexes_give(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = tickets(rt, 24, "Parcel late", "Where is my parcel?")
    tickets(rt, 6, "Invoice", "Please resend the invoice.")
    for n, ticket in enumerate(made[::3]):
        commands = "#priority high" if n % 2 else "#pending\n#priority urgent"
        operations.run_commands(rt, ticket, commands, "alice@example.com", "cli")
    operations.post_reply(rt, made[1], "alice@example.com", "Found it", note=False, source="api")
    # The newest five are invoices (and six in all): a count walk that finds them dense
    # and then too few for the cap must fall back to the exact count.
    monkeypatch.setattr(queries, "NEWEST", 5)
    monkeypatch.setattr(queries, "COUNT_NEWEST", 20)
    cases = [
        queries.TicketFilter(q=q, sort=sort, offset=offset, limit=limit, status=status)
        for q in ("parcel", "PARCEL", "invoice", "found it", "xylophone")
        for sort in ("updated", "created", "priority", "id")
        for offset, limit in ((0, 5), (2, 3), (0, 50))
        for status in (None, "new")
    ]
    from_newest: list[object] = []
    walk = queries._page_among_newest

    def noting_pages(session: Session, flt: queries.TicketFilter) -> object:
        from_newest.append(walk(session, flt))
        return from_newest[-1]

    monkeypatch.setattr(queries, "_page_among_newest", noting_pages)
    walked = answers(rt, cases)
    monkeypatch.setattr(queries, "_page_among_newest", lambda session, flt: None)
    monkeypatch.setattr(queries, "_many_among_newest", lambda session, flt, cap: False)
    assert walked == answers(rt, cases)
    if rt.engine.dialect.name == "postgresql":  # the dense pages came from the newest
        assert any(page is not None for page in from_newest)
