"""A team's first day (issue 16, "Done when"): each agent gets only the mail they asked for.

A real daemon (tests/daemon_harness.py) with a capture relay behind it (tests/relay.py).
Three agents with different preferences (SPEC §10.9):

* Alice, admin, `--notify all`: every new ticket that has no team.
* Bob, the billing team's only agent and its lead, `--notify team --receipts on`: billing's
  tickets (mail to billing@ lands there) and a receipt after each command block.
* Chen, `--notify assigned`: only tickets assigned to him.

Twenty customer mails in English, Simplified Chinese, German and French: sixteen new
tickets (four of them to billing@), then four replies. The agents answer from mutt (a real
one: tests/replyclients.py). The counts are printed for the lead's note and asserted.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.utils import formataddr
from pathlib import Path

import pytest
from conftest import require
from daemon_harness import listening
from mailbuilder import mail, new_msgid
from relay import CaptureRelay
from replyclients import mutt_binary, mutt_reply
from sqlmodel import col, select
from test_agent_mail import Desk, body_text

from inboxd.db import session_scope
from inboxd.models import Outbound, Ticket

ALICE, BOB, CHEN = "alice@example.com", "bob@example.com", "chen@example.com"
BILLING = "billing@example.com"

AGENTS = [
    {"email": ALICE, "name": "Alice", "role": "admin"},
    {"email": BOB, "name": "Bob", "role": "agent"},
    {"email": CHEN, "name": "Chen Wei", "role": "agent"},
]
TEAMS = [{"name": "billing", "agents": [BOB], "lead": BOB, "email": BILLING}]

# (language, customer's name, address, subject, text): three to support@ per language...
TO_SUPPORT = [
    (
        "en",
        "Carol Baker",
        "carol@example.org",
        "Order 1042 not delivered",
        "My order has not arrived.",
    ),
    ("en", "Dan Ortiz", "dan@example.net", "Cannot log in", "The password reset link expired."),
    ("en", "Erin Fox", "erin@example.org", "Wrong size", "I got a size M instead of L."),
    (
        "zh-Hans",
        "王芳",
        "wang.fang@example.cn",
        "订单还没有到",
        "你好，我的订单 2231 还没有到，请帮忙查一下。",
    ),
    ("zh-Hans", "李娜", "li.na@example.cn", "无法登录账户", "我忘记了密码，重置邮件一直收不到。"),
    ("zh-Hans", "张伟", "zhang.wei@example.cn", "商品有破损", "收到的杯子是碎的，能换一个吗？"),
    (
        "de",
        "Jürgen Müller",
        "juergen@example.de",
        "Lieferung fehlt",
        "Meine Bestellung ist noch nicht angekommen.",
    ),
    (
        "de",
        "Anna Schäfer",
        "anna@example.de",
        "Passwort vergessen",
        "Ich kann mich nicht mehr anmelden.",
    ),
    (
        "de",
        "Lukas Weber",
        "lukas@example.de",
        "Falsche Farbe",
        "Ich habe Blau statt Grün bekommen.",
    ),
    (
        "fr",
        "Élodie Martin",
        "elodie@example.fr",
        "Commande non reçue",
        "Ma commande n'est toujours pas arrivée.",
    ),
    (
        "fr",
        "Hugo Bernard",
        "hugo@example.fr",
        "Mot de passe oublié",
        "Je n'arrive plus à me connecter.",
    ),
    ("fr", "Chloé Petit", "chloe@example.fr", "Article abîmé", "Le vase est arrivé cassé."),
]
# ... and one per language to billing@.
TO_BILLING = [
    ("en", "Gina Park", "gina@example.org", "Invoice 88 is wrong", "I was charged twice."),
    ("zh-Hans", "陈静", "chen.jing@example.cn", "发票抬头错误", "请把发票抬头改成我们公司的名字。"),
    (
        "de",
        "Petra Koch",
        "petra@example.de",
        "Rechnung doppelt",
        "Ich habe zwei Rechnungen erhalten.",
    ),
    (
        "fr",
        "Marc Roux",
        "marc@example.fr",
        "Facture incorrecte",
        "Le montant de la facture est faux.",
    ),
]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    require(mutt_binary() is not None, "mutt not installed (apt-get install mutt)")
    with (
        CaptureRelay() as relay,
        listening(
            tmp_path,
            relay,
            agents=AGENTS,
            teams=TEAMS,
            # The day is compressed into a minute here; in a real day the per-minute cap that
            # sends an agent's notifications to a digest would not be reached.
            loops={"max_notifications_per_agent_per_minute": 0},
        ) as (rt, daemon),
    ):
        d = Desk(rt, daemon, relay, tmp_path)
        _set_preferences(d)
        yield d


def _set_preferences(desk: Desk) -> None:
    """As the admin would, with `inboxd agents set` (the CLI's own code)."""
    from inboxd.agents import directory
    from inboxd.agents.directory import Preferences

    wanted = {
        ALICE: Preferences(notify="all"),
        BOB: Preferences(notify="team", receipts=True, language="de"),
        CHEN: Preferences(notify="assigned", language="zh-Hans"),
    }
    with session_scope(desk.rt.engine) as session:
        for email, prefs in wanted.items():
            directory.set_preferences(session, email, prefs, desk.rt.config.team_names)


def customer_mail(entry: tuple[str, str, str, str, str], to: str, **kw: object) -> bytes:
    _lang, name, address, subject, text = entry
    return mail(
        sender=formataddr((name, address), "utf-8"),
        to=to,
        subject=subject,
        body=f"{text}\n\n{name}\n",
        **kw,  # type: ignore[arg-type]
    )


def send(desk: Desk, raw: bytes, mail_from: str, rcpt: str) -> None:
    host, port = desk.daemon.smtp_address
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail(mail_from, [rcpt], raw)
    desk.settle()


def agent_reply(desk: Desk, ticket_id: int, agent: str, text: str) -> None:
    """The agent answers the latest mail inboxd sent them about the ticket, in mutt."""
    notification = desk.notification(ticket_id, agent)
    raw = mutt_reply(notification, text, desk.workdir / "mutt")
    desk.send(raw)


def test_first_day_each_agent_gets_only_what_their_preference_asks_for(desk: Desk) -> None:
    tickets: dict[str, int] = {}
    msgids: dict[str, str] = {}
    for entry in TO_SUPPORT + TO_BILLING:
        to = BILLING if entry in TO_BILLING else "support@example.com"
        msgid = new_msgid()
        send(desk, customer_mail(entry, to, message_id=msgid), entry[2], to)
        tickets[entry[2]] = desk.ticket_of(msgid)
        msgids[entry[2]] = msgid
    with session_scope(desk.rt.engine) as session:
        teams = {t.id: t.team for t in session.exec(select(Ticket))}
    assert sorted(tid for tid, team in teams.items() if team == "billing") == sorted(
        tickets[e[2]] for e in TO_BILLING
    )

    # Alice hands Carol's ticket to Chen and answers; she takes Élodie's herself.
    carol, elodie = tickets["carol@example.org"], tickets["elodie@example.fr"]
    agent_reply(desk, carol, ALICE, "#assign chen\n\nHi Carol,\n\nChen will look into it.\n")
    agent_reply(desk, elodie, ALICE, "#take\n\nBonjour Élodie,\n\nje m'en occupe.\n")
    # Bob takes Petra's invoice and answers in German.
    petra = tickets["petra@example.de"]
    agent_reply(desk, petra, BOB, "#take\n\nGuten Tag Frau Koch,\n\nwir prüfen das.\n")

    # Four customer replies: on Chen's, Alice's and Bob's tickets, and on one nobody owns.
    wang = tickets["wang.fang@example.cn"]
    replies = [
        (TO_SUPPORT[0], carol, "Thanks, waiting for news."),
        (TO_SUPPORT[9], elodie, "Merci beaucoup !"),
        (TO_BILLING[2], petra, "Vielen Dank für die schnelle Antwort."),
        (TO_SUPPORT[3], wang, "请问有进展吗？"),
    ]
    for entry, ticket_id, text in replies:
        _lang, name, address, subject, _ = entry
        raw = mail(
            sender=formataddr((name, address), "utf-8"),
            subject=f"Re: [#{ticket_id}] {subject}",
            body=f"{text}\n\n{name}\n",
            in_reply_to=msgids[address],
            references=[msgids[address]],
        )
        send(desk, raw, address, "support@example.com")

    counts = {agent: len(desk.mails_to(agent)) for agent in (ALICE, BOB, CHEN)}
    customer_mails = len(TO_SUPPORT) + len(TO_BILLING) + len(replies)
    print(f"first day: {customer_mails} customer mails; agent mails {counts}")

    # Alice: the 12 new tickets of no team, and the reply on her own ticket and on Wang's
    # (nobody's yet). Never billing's tickets, never Chen's or Bob's customer.
    assert _about(desk, ALICE) == sorted([tickets[e[2]] for e in TO_SUPPORT] + [elodie, wang])
    # Bob: billing's four new tickets, the receipt of his #take, Petra's reply.
    assert _about(desk, BOB) == sorted([tickets[e[2]] for e in TO_BILLING] + [petra, petra])
    # Chen: one mail for being assigned Carol's ticket (with Alice's reply in it, not two
    # mails), then Carol's reply.
    assert _about(desk, CHEN) == [carol, carol]
    chen_first = desk.mails_to(CHEN)[0]
    assert "assigned ticket" in body_text(chen_first.message)
    assert "Chen will look into it" in body_text(chen_first.message)
    assert counts == {ALICE: 14, BOB: 6, CHEN: 2}
    # Nothing waits in a digest or failed: what reached the relay is all there is.
    with session_scope(desk.rt.engine) as session:
        states = set(session.exec(select(Outbound.status).where(col(Outbound.status) != "sent")))
    assert states == set()


def _about(desk: Desk, agent: str) -> list[int]:
    """The ticket numbers of the mails the agent received, sorted."""
    found = []
    for cap in desk.mails_to(agent):
        subject = str(cap.message["Subject"])
        found.append(int(subject.split("[#", 1)[1].split("]", 1)[0]))
    return sorted(found)
