"""Mail in the customer's language (SPEC §10.8): detected from their first message, set
by an agent with `#language`, and every mail inboxd sends them (acknowledgement, "we
logged your call", survey, self-service text, the footer of relayed replies) in the
bundled variant for it, else English."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

import pytest
from conftest import make_config
from fastapi.testclient import TestClient
from mailbuilder import mail
from sqlmodel import Session, col, select

from inboxd import languages, pipeline, render
from inboxd.agents import new_ticket, operations
from inboxd.customers.profiles import customer_for
from inboxd.db import session_scope
from inboxd.metrics import Metrics
from inboxd.models import Event, Outbound, utcnow
from inboxd.runtime import Runtime, open_runtime
from inboxd.tickets import links
from inboxd.web.app import create_app
from inboxd.workflow import clock

ALICE = "alice@example.com"
BASE = "http://127.0.0.1:8025"  # the default web_base_url

# A customer's first mail, and a phrase only that language's acknowledgement has.
FIRST_MAILS = {
    "zh-Hans": (
        "订单还没到",
        "我的订单已经两个星期了还没到，麻烦帮我查一下物流。",
        "我们已经收到您的请求",
    ),
    "zh-Hant": (
        "訂單還沒到",
        "我的訂單已經兩個禮拜了還沒到，麻煩幫我查一下物流。",
        "我們已經收到您的請求",
    ),
    "ja": (
        "注文が届きません",
        "注文してから2週間たちましたが、まだ届いていません。",
        "ご依頼を受け付け",
    ),
    "de": (
        "Bestellung fehlt",
        "Meine Bestellung ist nach zwei Wochen immer noch nicht da.",
        "Wir haben Ihre Anfrage erhalten",
    ),
    "fr": (
        "Commande manquante",
        "Ma commande n'est toujours pas arrivée après deux semaines.",
        "nous avons bien reçu votre demande",
    ),
    "es": (
        "Pedido perdido",
        "Mi pedido todavía no ha llegado después de dos semanas.",
        "hemos recibido su solicitud",
    ),
    "en": (
        "Order missing",
        "My order still hasn't arrived after two weeks, could you check?",
        "we have received your request",
    ),
}


def queued(rt: Runtime, purpose: str) -> list[Message]:
    with session_scope(rt.engine) as session:
        rows = session.exec(
            select(Outbound).where(Outbound.purpose == purpose).order_by(col(Outbound.id))
        ).all()
        return [message_from_bytes(bytes(r.raw), policy=default_policy) for r in rows]


def text_of(msg: Message) -> str:
    return msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def language_of(rt: Runtime, email: str) -> tuple[str | None, str]:
    with Session(rt.engine) as session:
        customer = customer_for(session, email)
        assert customer is not None
        return customer.language, customer.language_source


@pytest.mark.parametrize("language", list(FIRST_MAILS))
def test_the_first_mail_sets_the_customers_language_and_the_acknowledgement_speaks_it(
    sqlite_rt: Runtime, language: str
) -> None:
    subject, body, phrase = FIRST_MAILS[language]
    pipeline.ingest(sqlite_rt, mail(subject=subject, body=body), "test")
    assert language_of(sqlite_rt, "carol@example.org") == (language, "detected")
    (ack,) = queued(sqlite_rt, "ack")
    assert phrase in text_of(ack)
    assert subject in str(ack["Subject"])  # the ticket's own subject, untranslated
    html = ack.get_body(("html",))
    assert html is not None and f'lang="{language}"' in html.get_content()


def test_a_traditional_chinese_customer_reads_traditional_characters_only(
    sqlite_rt: Runtime,
) -> None:
    subject, body, _ = FIRST_MAILS["zh-Hant"]
    pipeline.ingest(sqlite_rt, mail(subject=subject, body=body), "test")
    (ack,) = queued(sqlite_rt, "ack")
    text = text_of(ack)
    for simplified in "们经请这处进务单号为":
        assert simplified not in text


def test_a_mail_too_short_to_tell_leaves_the_language_open_for_the_next(
    sqlite_rt: Runtime,
) -> None:
    pipeline.ingest(sqlite_rt, mail(subject="Hi", body="ok?"), "test")
    assert language_of(sqlite_rt, "carol@example.org") == (None, "")
    assert "we have received your request" in text_of(queued(sqlite_rt, "ack")[0])
    pipeline.ingest(sqlite_rt, mail(subject="Rechnung", body=FIRST_MAILS["de"][1]), "test")
    assert language_of(sqlite_rt, "carol@example.org") == ("de", "detected")


def test_a_detected_language_stays_when_a_later_mail_is_in_another(sqlite_rt: Runtime) -> None:
    pipeline.ingest(sqlite_rt, mail(subject="Bestellung", body=FIRST_MAILS["de"][1]), "test")
    pipeline.ingest(sqlite_rt, mail(subject="Order", body=FIRST_MAILS["en"][1]), "test")
    assert language_of(sqlite_rt, "carol@example.org") == ("de", "detected")


def test_an_agent_sets_the_language_by_command_and_mail_never_overrides_it(
    sqlite_rt: Runtime,
) -> None:
    result = pipeline.ingest(sqlite_rt, mail(subject="Order", body=FIRST_MAILS["en"][1]), "test")
    assert result.ticket is not None
    outcome = operations.run_commands(sqlite_rt, result.ticket, "#language zh-tw", ALICE, "cli")
    assert outcome.result.changes == ["customer 1's language set to zh-TW (mail in zh-Hant)"]
    assert language_of(sqlite_rt, "carol@example.org") == ("zh-TW", "agent")
    pipeline.ingest(sqlite_rt, mail(subject="Encore", body=FIRST_MAILS["fr"][1]), "test")
    assert language_of(sqlite_rt, "carol@example.org") == ("zh-TW", "agent")
    # zh-TW is read as Traditional Chinese: the second ticket's acknowledgement.
    assert "我們已經收到您的請求" in text_of(queued(sqlite_rt, "ack")[-1])
    with Session(sqlite_rt.engine) as session:
        (event,) = session.exec(select(Event).where(Event.type == "customer_language")).all()
        assert (event.from_value, event.to_value, event.actor) == ("en", "zh-TW", ALICE)


def test_language_refuses_what_is_not_a_language_tag_and_changes_nothing(
    sqlite_rt: Runtime,
) -> None:
    result = pipeline.ingest(sqlite_rt, mail(subject="Order", body=FIRST_MAILS["en"][1]), "test")
    assert result.ticket is not None
    with pytest.raises(Exception, match="not a language tag"):
        operations.run_commands(sqlite_rt, result.ticket, "#language klingon!", ALICE, "cli")
    assert language_of(sqlite_rt, "carol@example.org") == ("en", "detected")


def test_a_language_without_bundled_text_gets_english(sqlite_rt: Runtime) -> None:
    body = "Obrigado, mas a minha encomenda ainda não chegou depois de duas semanas."
    pipeline.ingest(sqlite_rt, mail(subject="Encomenda", body=body), "test")
    assert language_of(sqlite_rt, "carol@example.org") == ("pt", "detected")
    assert "we have received your request" in text_of(queued(sqlite_rt, "ack")[0])


def with_admins_template(
    tmp_path: Path, name: str, text: str, **sections: dict[str, object]
) -> Runtime:
    """A runtime whose [inboxd] templates_dir holds the mail template `name`."""
    folder = tmp_path / "templates" / "email"
    folder.mkdir(parents=True)
    (folder / name).write_text(text, encoding="utf-8")
    templates = {"templates_dir": str(tmp_path / "templates")}
    return open_runtime(make_config(tmp_path, inboxd=templates, **sections))


def test_an_admins_templates_dir_can_add_a_language(tmp_path: Path) -> None:
    rt = with_admins_template(
        tmp_path,
        "acknowledgement.pt.txt.j2",
        "Olá{% if name %} {{ name }}{% endif %}, recebemos o seu pedido #{{ ticket_id }}.\n",
    )
    try:
        body = "Obrigado, mas a minha encomenda ainda não chegou depois de duas semanas."
        pipeline.ingest(rt, mail(subject="Encomenda", body=body), "test")
        assert "recebemos o seu pedido" in text_of(queued(rt, "ack")[0])
    finally:
        rt.engine.dispose()


# --- every customer-facing mail -------------------------------------------------------

CUSTOMER_FACING = {
    "email/acknowledgement.txt.j2": {
        "name": "王小明",
        "ticket_id": 7,
        "subject": "Order",
        "status_url": "https://help.example.com/status/7",
        "support_name": "Example Support",
        "extra": "",
    },
    "email/logged_call.txt.j2": {
        "ticket": {"id": 7, "subject": "Order", "channel": "phone"},
        "customer": {"name": "Anna"},
        "agent": {"name": "Alice"},
        "status_url": "https://help.example.com/status/7",
        "text": "Wants a refund.",
        "support_name": "Example Support",
    },
    "email/csat_survey.txt.j2": {
        "ticket": {"id": 7, "subject": "Order"},
        "link": "https://help.example.com/csat/7",
        "scale": "good-bad",
    },
    "email/customer_footer.txt.j2": {
        "ticket_id": 7,
        "status_url": "https://help.example.com/status/7",
    },
    "email/kb_suggestions.txt.j2": {
        "articles": [{"title": "Reset", "summary": "How to", "url": "https://h.example/kb/r"}],
    },
}


@pytest.mark.parametrize("name", list(CUSTOMER_FACING))
def test_every_customer_facing_mail_has_each_bundled_language(name: str) -> None:
    assert set(render.variants(name)) >= set(languages.BUNDLED)
    english = render.localized(name, "en", CUSTOMER_FACING[name])
    for language in languages.BUNDLED:
        mail_text = render.localized(name, language, CUSTOMER_FACING[name])
        assert mail_text.language == language
        assert "https://" in mail_text.text  # the links survive in every language
        if language != "en":
            assert mail_text.text != english.text
            assert mail_text.subject != english.subject or not english.subject


@pytest.mark.parametrize(
    ("tag", "expected"), [("zh-TW", "zh-Hant"), ("de-AT", "de"), ("pt", "en"), (None, "en")]
)
def test_a_tag_picks_its_variant(tag: str | None, expected: str) -> None:
    name = "email/acknowledgement.txt.j2"
    assert render.localized(name, tag, CUSTOMER_FACING[name]).language == expected


def test_the_survey_goes_in_the_customers_language_with_its_subject(tmp_path: Path) -> None:
    rt = open_runtime(make_config(tmp_path, csat={"enabled": True, "after": "1h"}))
    try:
        result = pipeline.ingest(
            rt, mail(subject="Commande manquante", body=FIRST_MAILS["fr"][1]), "test"
        )
        assert result.ticket is not None
        operations.post_reply(
            rt, result.ticket, ALICE, "Elle part aujourd'hui.", note=False, source="api"
        )
        operations.run_commands(rt, result.ticket, "#status solved", ALICE, "cli")
        with rt.write_lock, session_scope(rt.engine) as session:
            clock.tick(rt, session, utcnow() + timedelta(hours=2))
        (survey,) = queued(rt, "csat")
        assert "Êtes-vous satisfait de notre aide ?" in str(survey["Subject"])
        assert "« bien » ou « mauvais »" in text_of(survey)
        assert "Où en est votre demande : " in text_of(survey)  # the footer, in French too
        # The relayed reply's footer is in French as well.
        (reply,) = queued(rt, "reply")
        assert "Où en est votre demande : " in text_of(reply)
    finally:
        rt.engine.dispose()


def test_a_logged_call_mail_goes_in_the_language_an_agent_gave_the_customer(
    sqlite_rt: Runtime,
) -> None:
    first = pipeline.ingest(sqlite_rt, mail(subject="Order", body=FIRST_MAILS["en"][1]), "test")
    assert first.ticket is not None
    operations.run_commands(sqlite_rt, first.ticket, "#language ja", ALICE, "cli")
    request = new_ticket.NewTicket(
        "carol@example.org", "返品", "電話で返品の相談", "", "", "phone", True
    )
    new_ticket.open_for_customer(sqlite_rt, request, ALICE, "cli")
    (logged,) = queued(sqlite_rt, "logged_call")
    assert "お電話いただきありがとうございます" in text_of(logged)


# --- the pages a customer opens -----------------------------------------------------------


def test_the_status_page_speaks_the_customers_language_else_their_browsers(
    sqlite_rt: Runtime,
) -> None:
    web = TestClient(create_app(sqlite_rt, Metrics()), base_url=BASE)
    german = pipeline.ingest(sqlite_rt, mail(subject="Bestellung", body=FIRST_MAILS["de"][1]))
    assert german.ticket is not None
    page = web.get(f"/status/{links.status_token(sqlite_rt.secret_key, german.ticket)}")
    assert '<html lang="de">' in page.text
    assert (
        "Nachricht hinzufügen" in page.text and "eingegangen, wartet auf Bearbeitung" in page.text
    )
    # A customer whose language is not known yet: the browser's (zh-TW: Traditional).
    short = pipeline.ingest(sqlite_rt, mail(sender="dan@example.org", subject="?", body="ok"))
    assert short.ticket is not None
    token = links.status_token(sqlite_rt.secret_key, short.ticket)
    page = web.get(f"/status/{token}", headers={"Accept-Language": "zh-TW,zh;q=0.8,en;q=0.5"})
    assert '<html lang="zh-Hant">' in page.text and "補充留言" in page.text
    assert "Add a message" in web.get(f"/status/{token}").text
    # An empty reply is refused in the page's language.
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    refused = web.post(
        f"/status/{links.status_token(sqlite_rt.secret_key, german.ticket)}/reply",
        data={"csrf": csrf.group(1), "text": "  "},
    )
    assert refused.status_code == 422 and "Ihre Nachricht ist leer." in refused.text


def test_every_language_of_the_customer_pages_has_every_word() -> None:
    english = set(render.variants("web/_customer_words.html"))
    assert english >= set(languages.BUNDLED)
    env = render.environment()
    keys = set(env.get_template("web/_customer_words.html").module.__dict__)
    for language, name in render.variants("web/_customer_words.html").items():
        module = env.get_template(name).module
        assert set(module.__dict__) == keys, language
        assert set(module.states) == {"new", "open", "pending", "on-hold", "solved", "closed"}  # type: ignore[attr-defined]


def test_an_admins_one_file_survey_of_earlier_versions_still_renders(tmp_path: Path) -> None:
    # Before the variants, csat_survey.txt.j2 switched on `language` and set no subject.
    rt = with_admins_template(
        tmp_path,
        "csat_survey.txt.j2",
        '{% if language == "de" %}Wie war es?{% else %}How was it?{% endif %} {{ link }}\n',
        csat={"enabled": True, "after": "1h"},
    )
    try:
        result = pipeline.ingest(rt, mail(subject="Bestellung", body=FIRST_MAILS["de"][1]))
        assert result.ticket is not None
        operations.post_reply(rt, result.ticket, ALICE, "Erledigt.", note=False, source="api")
        operations.run_commands(rt, result.ticket, "#status solved", ALICE, "cli")
        with rt.write_lock, session_scope(rt.engine) as session:
            clock.tick(rt, session, utcnow() + timedelta(hours=2))
        (survey,) = queued(rt, "csat")
        assert text_of(survey).startswith("Wie war es? ")
        assert str(survey["Subject"]).endswith("Bestellung")  # no subject set: the ticket's
    finally:
        rt.engine.dispose()
