"""Customer profiles (SPEC §10.7): every address resolves to one live profile."""

from __future__ import annotations

from sqlmodel import Session

from inboxd.customers.profiles import customer_for, ensure_customer
from inboxd.runtime import Runtime


def test_an_address_seen_for_the_first_time_gets_a_profile_with_its_name(
    sqlite_rt: Runtime,
) -> None:
    with Session(sqlite_rt.engine) as session:
        first = ensure_customer(session, "Li.Wei@Example.CN", "李伟")
        again = ensure_customer(session, "li.wei@example.cn", "")
        session.commit()
        assert first.id == again.id
        assert again.name == "李伟"
        assert customer_for(session, "LI.WEI@example.cn") == first
        assert customer_for(session, "nobody@example.cn") is None


def test_a_profile_without_a_name_learns_it_later(sqlite_rt: Runtime) -> None:
    with Session(sqlite_rt.engine) as session:
        customer = ensure_customer(session, "anna@example.de")
        assert customer.name == ""
        assert ensure_customer(session, "anna@example.de", "Anna Schmidt").name == "Anna Schmidt"
        assert ensure_customer(session, "anna@example.de", "Someone Else").name == "Anna Schmidt"
