"""Where the configuration is found (SPEC §3) and why a read command never creates a
helpdesk: run in the wrong folder, it says where it looked and exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from inboxd import __version__
from inboxd import config as config_mod

MAIL = Path(__file__).resolve().parent / "data" / "mail"


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no config in it, in HOME, in $INBOXD_CONFIG or in the
    (stand-in) system folder. Returns the working folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv(config_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(config_mod, "SYSTEM_DIR", tmp_path / "etc" / "inboxd")
    return work


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write_config(path: Path, marker: str) -> Path:
    """A config whose support name tells which file was read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[inboxd]\nsupport_name = "{marker}"\n', encoding="utf-8")
    return path


READ_COMMANDS = [
    ["tickets"],
    ["tickets", "--json"],
    ["show", "1"],
    ["search", "invoice"],
    ["report"],
    ["sla", "1"],
    ["rules", "list"],
    ["rules", "test"],
    ["kb", "list"],
    ["kb", "search", "password"],
    ["agents", "list"],
    ["outbox"],
    ["quarantine"],
    ["run", "1", "#status open"],
    ["status"],
    ["backup", "backup-folder"],
]


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_a_read_command_without_config_or_database_names_where_it_looked_and_creates_nothing(
    nowhere: Path, argv: list[str]
) -> None:
    code, out, err = run(*argv)
    assert code == 2, (out, err)
    assert out == ""
    assert "no configuration found" in err
    for place in (
        str(nowhere / "inboxd.toml"),
        str(Path.home() / ".config" / "inboxd" / "inboxd.toml"),
        str(config_mod.SYSTEM_DIR / "inboxd.toml"),
        "$INBOXD_CONFIG",
    ):
        assert place in err
    assert "Traceback" not in err
    assert list(nowhere.iterdir()) == []


def test_a_config_without_its_database_is_refused_too_and_nothing_is_created(
    nowhere: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "site" / "inboxd.toml", "Site")
    code, _, err = run("tickets", "--config", str(cfg))
    assert code == 2
    assert "no database at" in err and "inboxd init" in err
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["inboxd.toml"]


def test_config_before_or_after_the_verb(nowhere: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "site" / "inboxd.toml"
    assert run("--config", str(cfg), "init")[0] == 0
    assert (cfg.parent / "data" / "inboxd.db").exists()
    assert run("--config", str(cfg), "ingest", str(MAIL / "new_ticket_plain.eml"))[0] == 0
    before = run("--config", str(cfg), "tickets", "--json")
    after = run("tickets", "--json", "--config", str(cfg))
    short = run("-c", str(cfg), "show", "1", "--json")
    assert before[0] == after[0] == short[0] == 0
    assert before[1] == after[1] and '"id": 1' in before[1]
    assert list(nowhere.iterdir()) == []


def test_the_verbs_own_config_wins_over_the_one_before_it(nowhere: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "inboxd.toml", tmp_path / "b" / "inboxd.toml"
    for cfg in (first, second):
        run("init", "--config", str(cfg))
    run("ingest", "--config", str(second), str(MAIL / "new_ticket_plain.eml"))
    code, out, _ = run("--config", str(first), "tickets", "--json", "--config", str(second))
    assert code == 0 and '"id": 1' in out


def test_discovery_order_env_then_here_then_user_then_system(
    nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = write_config(config_mod.SYSTEM_DIR / "inboxd.toml", "System")
    assert config_mod.load().source == str(system)
    user = write_config(Path.home() / ".config" / "inboxd" / "inboxd.toml", "User")
    assert config_mod.load().inboxd.support_name == "User"
    here = write_config(nowhere / "inboxd.toml", "Here")
    assert config_mod.load().inboxd.support_name == "Here"
    env = write_config(tmp_path / "env.toml", "Env")
    monkeypatch.setenv(config_mod.ENV_VAR, str(env))
    assert config_mod.load().inboxd.support_name == "Env"
    assert config_mod.load(user).inboxd.support_name == "User"
    assert here.exists() and system.exists()


def test_xdg_config_home_is_the_users_config_folder(
    nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    write_config(tmp_path / "xdg" / "inboxd" / "inboxd.toml", "Xdg")
    assert config_mod.load().inboxd.support_name == "Xdg"


def test_a_discovered_config_keeps_its_data_beside_it(nowhere: Path) -> None:
    user = Path.home() / ".config" / "inboxd" / "inboxd.toml"
    assert run("init", "--config", str(user))[0] == 0
    code, out, err = run("tickets", "--json")
    assert (code, out.strip()) == (0, "[]"), err
    assert (user.parent / "data" / "inboxd.db").exists()
    assert list(nowhere.iterdir()) == []


def test_init_without_any_config_still_sets_up_this_folder(nowhere: Path) -> None:
    assert run("init")[0] == 0
    assert (nowhere / "inboxd.toml").exists() and (nowhere / "data" / "inboxd.db").exists()
    assert run("tickets")[0] == 0


def test_version(nowhere: Path) -> None:
    code, out, _ = run("--version")
    assert (code, out.strip()) == (0, f"inboxd {__version__}")


def test_check_reports_a_missing_database_without_creating_one(nowhere: Path) -> None:
    (nowhere / "data").mkdir()
    code, out, _ = run("check")
    assert code == 1 and "FAIL  database: no database at" in out
    assert list((nowhere / "data").iterdir()) == []
