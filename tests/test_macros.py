"""Macros with placeholders and language variants (SPEC §10.8, §6 "Atomic").

A macro's `{{ customer.first_name | default("there") }}` is checked against a fixed schema
before anything is sent; a misspelt or empty placeholder refuses the whole block as an
invalid command does. `refund.zh-Hans.txt` beside `refund.txt` is what a Chinese customer
gets. `inboxd macro preview` shows the result without running or sending anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_harness import write_toml
from mailbuilder import mail
from replyclients import gmail_reply
from test_agent_mail import ALICE, CAROL, SUPPORT, Desk, body_text, desks  # noqa: F401
from typer.testing import CliRunner

from cli.main import app
from inboxd.tickets import macros
from inboxd.tickets.blocks import CommandError
from inboxd.tickets.macro_files import MacroMissing, find, macro_names

Run = Callable[..., tuple[int, str, str]]


def values(**customer: str) -> dict[str, dict[str, str]]:
    name = customer.get("name", "Carol Customer")
    return {
        "customer": {
            "name": name,
            "first_name": macros.first_name(name),
            "email": CAROL,
            "organization": customer.get("organization", ""),
            "language": customer.get("language", ""),
        },
        "ticket": {
            "id": "42",
            "subject": "Refund",
            "status": "open",
            "priority": "normal",
            "team": "",
            "status_url": "http://127.0.0.1:8025/status/x",
        },
        "agent": {"name": "Alice Agent", "first_name": "Alice", "email": ALICE},
        "support": {"name": "Example Support", "address": SUPPORT},
    }


def refused(text: str, vals: dict[str, dict[str, str]] | None = None) -> str:
    with pytest.raises(CommandError) as caught:
        macros.render(text, vals or values())
    return str(caught.value)


# --- placeholders -------------------------------------------------------------------------


def test_placeholders_are_filled_in_from_the_ticket_the_customer_and_the_agent() -> None:
    text = (
        "Hi {{ customer.first_name }},\nticket #{{ ticket.id }} ({{ ticket.subject | upper }})"
        "\n{{ agent.name }}, {{ support.name }} <{{ support.address }}>\n"
    )
    assert macros.render(text, values()) == (
        "Hi Carol,\nticket #42 (REFUND)\nAlice Agent, Example Support <support@example.com>\n"
    )


@pytest.mark.parametrize(
    ("text", "named", "suggested"),
    [
        ("Hi {{ custmer.name }}", "custmer.name", "did you mean {{ customer.name }}"),
        ("Due {{ ticket.sla }}", "ticket.sla", "did you mean {{ ticket.status }}"),
        ("{{ agent.xyz }}", "agent.xyz", "agent has name, first_name, email"),
        ("{{ order.number }}", "order.number", "placeholders are customer.*, ticket.*"),
    ],
)
def test_an_unknown_placeholder_is_refused_with_a_suggestion(
    text: str, named: str, suggested: str
) -> None:
    message = refused(text)
    assert f"unknown placeholder {{{{ {named} }}}}" in message and suggested in message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{{ customer.name.upper() }}", "only placeholders like"),
        ("{{ customer.__class__ }}", "unknown placeholder"),
        ("{{ ticket.subject | safe }}", "filter | safe is not allowed"),
        ("{{ ticket.subject | replace('a', 'b') }}", "filter | replace is not allowed"),
        ("{% for x in customer %}x{% endfor %}", "{% for %} is not allowed"),
        ("{{ customer }}", "needs a field"),
        ("{{ customer.name | default(ticket.id) }}", 'default("a quoted text")'),
        ('{{ customer.name | upper | default("x") }}', "right after the placeholder"),
        ("Hi {{ customer.name", "line 1"),
    ],
)
def test_anything_but_a_field_with_the_plain_filters_is_refused(text: str, why: str) -> None:
    assert why in refused(text)


def test_an_empty_value_without_a_default_is_refused_never_rendered_as_hi_comma() -> None:
    message = refused("Hi {{ customer.first_name }},", values(name=""))
    assert "{{ customer.first_name }} is empty for this ticket" in message
    assert '| default("...")' in message


def test_a_default_fills_in_for_a_customer_without_a_name() -> None:
    text = '{{ customer.first_name | default("客户") }}，您好'
    assert macros.render(text, values(name="")) == "客户，您好"
    assert macros.render(text, values(name="王小明")) == "王小明，您好"


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Carol Customer", "Carol"),
        ("  Jean-Luc   Picard ", "Jean-Luc"),
        ("Doe, Jane", "Jane"),
        ("王小明", "王小明"),
        ("山田 太郎", "山田 太郎"),
        ("김민준", "김민준"),
        ("", ""),
    ],
)
def test_first_name_is_the_first_word_but_a_cjk_name_stays_whole(name: str, first: str) -> None:
    assert macros.first_name(name) == first


def test_an_error_names_the_line_of_the_macros_file() -> None:
    assert "line 5:" in refused("\n\nHi\n\n{{ ticket.sla }}")
    with pytest.raises(CommandError, match="line 7:"):
        macros.render("{{ ticket.sla }}", values(), line_offset=6)


# --- language variants --------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    macros_dir = tmp_path / "macros"
    macros_dir.mkdir()
    for filename in ("refund.txt", "refund.zh-Hans.txt", "refund.zh-Hant.txt", "refund.de.txt"):
        (macros_dir / filename).write_text(filename, encoding="utf-8")
    return macros_dir


@pytest.mark.parametrize(
    ("language", "filename"),
    [
        ("zh-TW", "refund.zh-Hant.txt"),
        ("zh_HK", "refund.zh-Hant.txt"),
        ("zh-CN", "refund.zh-Hans.txt"),
        ("zh", "refund.zh-Hans.txt"),
        ("de-AT", "refund.de.txt"),
        ("ko", "refund.txt"),
        ("not a tag", "refund.txt"),
        (None, "refund.txt"),
    ],
)
def test_the_customers_language_picks_the_variant(
    folder: Path, language: str | None, filename: str
) -> None:
    assert find(str(folder), "refund", language).source == filename


def test_macro_names_lists_each_macro_once_not_each_variant(folder: Path) -> None:
    names = macro_names(str(folder))
    assert names.count("refund") == 1 and "thanks" in names
    assert not [n for n in names if "." in n]


def test_the_admins_folder_wins_with_all_of_its_variants(folder: Path) -> None:
    """An admin's `refund.txt` replaces the bundled refund macro, its Chinese variants too:
    they would say what the admin's new wording no longer says."""
    for stale in ("refund.zh-Hans.txt", "refund.zh-Hant.txt", "refund.de.txt"):
        (folder / stale).unlink()
    found = find(str(folder), "refund", "zh-Hans")
    assert found.path.parent == folder and found.language == ""
    assert find("", "refund", "zh-Hans").filename == "refund.zh-Hans.txt"  # bundled


def test_variants_without_a_base_file_refuse_other_languages(tmp_path: Path) -> None:
    (tmp_path / "promo.ja.txt").write_text("...", encoding="utf-8")
    assert find(str(tmp_path), "promo", "ja").language == "ja"
    with pytest.raises(MacroMissing, match=r"no variant for fr and no promo\.txt"):
        find(str(tmp_path), "promo", "fr")


def test_the_bundled_refund_macro_has_a_chinese_variant_with_a_default() -> None:
    for language in ("en", "zh-Hans", "zh-Hant"):
        found = find("", "refund", language)
        placeholders = macros.check(found.source)
        assert any(p.name == "customer.first_name" and p.has_default for p in placeholders)
    assert find("", "refund", "zh-Hans").language == "zh-Hans"


# --- through the CLI: `inboxd macro preview` and `inboxd run` --------------------------------


def desk_toml(tmp_path: Path, **extra: object) -> Path:
    """A desk's config for the CLI, its templates_dir under `tmp_path`; `extra` adds tables."""
    return write_toml(
        tmp_path / "inboxd.toml",
        {
            "inboxd": {
                "support_address": SUPPORT,
                "support_name": "Example Support",
                "data_dir": str(tmp_path / "data"),
                "templates_dir": str(tmp_path / "templates"),
            },
            "smtp": {"enabled": False},
            "web": {"enabled": False},
            "agents": [{"email": ALICE, "name": "Alice Agent", "role": "admin"}],
            **extra,
        },
    )


@pytest.fixture
def cli(tmp_path: Path) -> tuple[Path, Run]:
    config = desk_toml(tmp_path)
    (tmp_path / "templates" / "macros").mkdir(parents=True)

    def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, [*args, "--config", str(config)], input=stdin)
        return result.exit_code, result.stdout, result.stderr

    return tmp_path / "templates" / "macros", run


def ticket_from(run: Run, sender: str) -> int:
    code, out, err = run("ingest", "--json", "-", stdin=mail(sender=sender, subject="Refund"))
    assert code == 0, err
    return int(json.loads(out.splitlines()[0])["ticket"])


def show(run: Run, ticket_id: int) -> dict[str, object]:
    code, out, err = run("show", str(ticket_id), "--json")
    assert code == 0, err
    return dict(json.loads(out))


def test_preview_prints_the_filled_in_text_and_the_commands_it_would_run(
    cli: tuple[Path, Run],
) -> None:
    _, run = cli
    ticket_id = ticket_from(run, f"Carol Customer <{CAROL}>")
    code, out, err = run("macro", "preview", "refund", "--ticket", str(ticket_id))
    assert code == 0, err
    assert f"macro refund (refund.txt) for ticket #{ticket_id}" in out
    assert "commands: #tag refund" in out
    assert "Hi Carol," in out and f"request #{ticket_id}" in out and "Example Support" in out
    assert show(run, ticket_id)["tags"] == []  # a preview runs nothing


def test_preview_json_and_the_language_of_a_zh_tw_customer(cli: tuple[Path, Run]) -> None:
    _, run = cli
    ticket_id = ticket_from(run, CAROL)  # no display name: no first name
    code, _, err = run("customers", "set", CAROL, "--language", "zh-TW")
    assert code == 0, err
    code, out, err = run("macro", "preview", "refund", "--ticket", str(ticket_id), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["file"] == "refund.zh-Hant.txt" and data["language"] == "zh-Hant"
    assert data["commands"] == ["#tag refund"]
    assert data["text"].startswith("客戶，您好")
    code, out, _ = run("macro", "preview", "refund", "--ticket", str(ticket_id), "--lang", "de")
    assert code == 0 and "Hi there," in out  # no German variant: the base file


def test_preview_of_a_misspelt_placeholder_is_one_line_and_a_refusal(
    cli: tuple[Path, Run],
) -> None:
    folder, run = cli
    (folder / "typo.txt").write_text("Hi {{ custmer.name }}\n", encoding="utf-8")
    ticket_id = ticket_from(run, CAROL)
    code, out, err = run("macro", "preview", "typo", "--ticket", str(ticket_id))
    assert code == 1 and out == ""
    assert "unknown placeholder {{ custmer.name }}; did you mean {{ customer.name }}?" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run("macro", "preview", "thanks", "--ticket", str(ticket_id), "--lang", "x!")
    assert code == 2 and "language" in err
    code, _, err = run("macro", "preview", "nope", "--ticket", str(ticket_id))
    assert code == 1 and "no macro 'nope'" in err


def test_macro_list_names_each_macro_once_with_its_variants(cli: tuple[Path, Run]) -> None:
    _, run = cli
    code, out, err = run("macro", "list", "--json")
    assert code == 0, err
    rows = {row["macro"]: row["variants"] for row in json.loads(out)}
    assert rows["refund"] == ["base", "zh-Hans", "zh-Hant"] and rows["thanks"] == ["base"]


def test_run_refuses_the_whole_block_for_an_empty_placeholder(cli: tuple[Path, Run]) -> None:
    folder, run = cli
    (folder / "greet.txt").write_text(
        "#status pending\n\nHi {{ customer.first_name }},\n", encoding="utf-8"
    )
    ticket_id = ticket_from(run, CAROL)
    before = show(run, ticket_id)
    code, _, err = run("run", str(ticket_id), "#priority high\n#macro greet")
    assert code == 1 and "is empty for this ticket" in err
    after = show(run, ticket_id)
    assert (after["status"], after["priority"]) == (before["status"], before["priority"])


def test_rules_test_checks_a_rules_macro_as_it_would_run(tmp_path: Path) -> None:
    """The dry run reads the admin's macros and fills {{ support.* }} as the real run does."""
    macros_dir = tmp_path / "templates" / "macros"
    macros_dir.mkdir(parents=True)
    (macros_dir / "welcome.txt").write_text("Hello from {{ support.name }}.\n", encoding="utf-8")
    (macros_dir / "typo.txt").write_text("Hello {{ custmer.name }}.\n", encoding="utf-8")
    config = desk_toml(
        tmp_path,
        rules=[
            {"name": "welcome", "on": "created", "run": "#macro welcome"},
            {"name": "typo", "on": "created", "run": "#macro typo"},
        ],
    )
    runner = CliRunner()
    ingested = runner.invoke(
        app, ["ingest", "-", "--config", str(config)], input=mail(sender=CAROL, subject="Hi")
    )
    assert ingested.exit_code == 0, ingested.output
    result = runner.invoke(app, ["rules", "test", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    outcomes = {w["rule"]: w["outcome"] for w in json.loads(result.stdout)}
    assert outcomes["welcome"] == "run"
    assert outcomes["typo"].startswith("refused: #macro typo:")
    assert "did you mean {{ customer.name }}" in outcomes["typo"]


# --- by mail: a misspelt placeholder refuses the block and the agent is told -------------


def test_a_misspelt_placeholder_by_mail_changes_nothing_and_mails_the_agent(
    desks: Callable[..., Desk],  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    templates = tmp_path / "tpl"
    (templates / "macros").mkdir(parents=True)
    (templates / "macros" / "shipped.txt").write_text(
        "#status pending\n\nHi {{ custmer.first_name }}, your order has shipped.\n",
        encoding="utf-8",
    )
    desk = desks(inboxd={"templates_dir": str(templates)})
    ticket_id, _ = desk.customer_writes()
    before = desk.ticket(ticket_id)
    desk.reply(gmail_reply, desk.notification(ticket_id), "#tag shipping\n#macro shipped\n")
    after = desk.ticket(ticket_id)
    assert (after["status"], after["tags"]) == (before["status"], before["tags"])
    assert desk.replies_to_customer() == []
    errors = [
        m for m in desk.mails_to(ALICE) if "Commands not applied" in str(m.message["Subject"])
    ]
    assert len(errors) == 1
    text = body_text(errors[0].message)
    assert "#macro shipped" in text and "did you mean {{ customer.first_name }}" in text


def test_a_placeholder_by_mail_reaches_the_customer_filled_in(
    desks: Callable[..., Desk],  # noqa: F811 (the fixture)
) -> None:
    desk = desks()
    ticket_id, _ = desk.customer_writes()
    desk.reply(gmail_reply, desk.notification(ticket_id), "#macro refund\n")
    (relayed,) = desk.replies_to_customer()
    text = body_text(relayed.message)
    assert "Hi Carol," in text and f"request #{ticket_id}" in text and "{{" not in text
    assert desk.ticket(ticket_id)["tags"] == ["refund"]


def test_literal_braces_are_written_in_a_raw_block() -> None:
    assert macros.render("{% raw %}{{ not a placeholder }}{% endraw %}", values()) == (
        "{{ not a placeholder }}"
    )


# --- the web's macro picker inserts the filled-in text ------------------------------------


def test_the_web_macro_picker_inserts_the_macro_filled_in(tmp_path: Path) -> None:
    from conftest import make_config
    from test_web import new_ticket, signed_in
    from test_web_tools import client

    from inboxd.runtime import open_runtime

    (tmp_path / "tpl" / "macros").mkdir(parents=True)
    (tmp_path / "tpl" / "macros" / "typo.txt").write_text("{{ ticket.sla }}", encoding="utf-8")
    rt = open_runtime(make_config(tmp_path, inboxd={"templates_dir": str(tmp_path / "tpl")}))
    web = client(rt)
    ticket = new_ticket(rt, sender=f"Carol Customer <{CAROL}>")
    token = signed_in(web, rt)
    path = f"/tickets/{ticket}/replies"
    draft = web.post(path, data={"csrf": token, "insert": "1", "macro": "refund", "text": ""})
    assert draft.status_code == 200
    assert "#tag refund\n\nHi Carol," in draft.text and "{{" not in draft.text
    wrong = web.post(path, data={"csrf": token, "insert": "1", "macro": "typo", "text": "kept"})
    assert wrong.status_code == 422 and "did you mean {{ ticket.status }}" in wrong.text
    assert ">kept</textarea>" in wrong.text
    rt.engine.dispose()


def test_a_value_that_reads_as_a_command_never_starts_the_text() -> None:
    """A customer who calls themself "#close" cannot close the ticket through the reply
    box, where the filled-in text is read again under the block."""
    message = refused("{{ customer.name }}, thanks for writing", values(name="#close"))
    assert "'#close, thanks for writing'" in message
    assert macros.render("Hi {{ customer.name }}", values(name="#close")) == "Hi #close"
