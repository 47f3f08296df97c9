"""`inboxd kb list|show|search|reindex` as an admin types them (SPEC §4, §10.6)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "kb"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A config whose data_dir holds a copy of the shipped sample articles."""
    shutil.copytree(SAMPLES, tmp_path / "data" / "kb")
    path = tmp_path / "inboxd.toml"
    path.write_text('[inboxd]\ndata_dir = "data"\n', encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_search_in_traditional_finds_the_password_article_first(cfg: Path) -> None:
    code, out, _ = run("kb", "search", "忘記密碼", "--json", "--config", str(cfg))
    assert code == 0
    hits = json.loads(out)
    assert {h["slug"] for h in hits[:2]} == {"reset-password"}
    assert hits[0]["score"] >= hits[-1]["score"]


def test_search_of_a_two_character_word_prints_a_table(cfg: Path) -> None:
    code, out, _ = run("kb", "search", "密码", "--config", str(cfg))
    assert code == 0
    assert out.splitlines()[0].split() == ["SCORE", "SLUG", "LANGUAGE", "TITLE"]
    assert "reset-password" in out.splitlines()[1]


def test_list_names_every_article_and_reports_a_broken_file(cfg: Path, tmp_path: Path) -> None:
    (tmp_path / "data" / "kb" / "en" / "broken.md").write_text("no front matter\n")
    code, out, err = run("kb", "list", "--json", "--config", str(cfg))
    assert code == 0
    rows = json.loads(out)
    assert {"reset-password", "download-invoice"} <= {r["slug"] for r in rows}
    assert "en/broken.md: no front matter" in err


def test_show_picks_the_translation_and_an_unknown_slug_exits_1(cfg: Path) -> None:
    code, out, _ = run("kb", "show", "reset-password", "--language", "zh-Hant", "--json",
                       "--config", str(cfg))  # fmt: skip
    assert code == 0
    shown = json.loads(out)
    assert shown["language"] == "zh-Hant" and shown["url"].endswith(
        "/kb/reset-password?lang=zh-Hant"
    )
    assert "zh-Hans" in shown["translations"]
    code, _, err = run("kb", "show", "no-such-article", "--config", str(cfg))
    assert code == 1 and "no article 'no-such-article'" in err


def test_reindex_counts_what_it_indexed(cfg: Path, tmp_path: Path) -> None:
    code, out, _ = run("kb", "reindex", "--json", "--config", str(cfg))
    assert code == 0
    summary = json.loads(out)
    assert summary["articles"] == len(list(SAMPLES.rglob("*.md"))) - 1  # README.md is no article
    assert summary["problems"] == []
    assert (tmp_path / "data" / "kb-index.json").exists()


def test_an_empty_knowledge_base_says_so(tmp_path: Path) -> None:
    path = tmp_path / "inboxd.toml"
    path.write_text("", encoding="utf-8")
    code, out, err = run("kb", "list", "--config", str(path))
    assert code == 0 and out == ""
    assert "no articles in" in err


def test_list_stats_counts_suggestions_and_self_service_solves(cfg: Path, tmp_path: Path) -> None:
    question = tmp_path / "question.eml"
    question.write_bytes(
        b"From: Carol <carol@example.org>\r\nTo: support@example.com\r\n"
        b"Subject: Forgot my password\r\nMessage-ID: <q1@example.org>\r\n\r\n"
        b"How do I reset my password?\r\n"
    )
    code, _, _ = run("ingest", str(question), "--config", str(cfg))
    assert code == 0
    code, out, _ = run("kb", "list", "--stats", "--json", "--config", str(cfg))
    assert code == 0
    rows = {(r["slug"], r["language"]): r for r in json.loads(out)}
    assert rows[("reset-password", "en")]["suggested"] == 1
    assert rows[("reset-password", "en")]["solved"] == 0
    assert rows[("track-order", "en")]["suggested"] == 0
    code, out, _ = run("kb", "list", "--stats", "--config", str(cfg))
    assert out.splitlines()[0].split()[-2:] == ["SUGGESTED", "SOLVED"]
