"""Automatic mail is recognised by what real responders send (issue 16.7), and a customer
whose words merely look alike is still a customer."""

from __future__ import annotations

import pytest
from mailbuilder import mail

from inboxd.mail.classify import classify
from inboxd.mail.parse import parse_message


def kind_of(subject: str = "Help needed", headers: dict[str, str] | None = None) -> str:
    return classify(parse_message(mail(subject=subject, headers=headers or {})), frozenset()).kind


@pytest.mark.parametrize(
    "header",
    [
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"X-Mailer": "vacation 1.2.7"},
        {"X-Mailer": "Autoresponder (cPanel)"},
    ],
)
def test_a_responder_that_sets_only_its_own_header_is_automatic(header: dict[str, str]) -> None:
    assert kind_of("Away", header) == "auto"


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Order 1042 not delivered",
        "Out of Office AutoReply: Invoice",
        "Out of office",
        "Automatische Antwort: Rechnung",
        "Abwesenheitsnotiz: Ihre Anfrage",
        "Réponse automatique : Facture",
        "Respuesta automática: Pedido",
        "自动回复：发票抬头错误",
        "自動回覆: 訂單",
        "自動応答: ご注文",
    ],
)
def test_the_subjects_of_common_clients_out_of_office_replies_are_automatic(subject: str) -> None:
    assert kind_of(subject) == "auto"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of office hours support?",
        "Re: Automatic reply: Order 1042",  # the customer answering one is a customer
        "My automatic reply rule is broken",
        "关于自动回复功能的问题",
    ],
)
def test_a_customer_whose_subject_only_mentions_it_is_a_customer(subject: str) -> None:
    assert kind_of(subject) == "customer"


def test_an_ordinary_mailer_is_not_a_responder() -> None:
    assert kind_of(headers={"X-Mailer": "Microsoft Outlook 16.0"}) == "customer"
