"""Configuration: defaults that run anywhere, and errors that name the key and value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from inboxd import config
from inboxd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_embedded_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    cfg = config.load(None)
    assert cfg.inboxd.support_address == "support@example.com"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'data' / 'inboxd.db'}"
    assert cfg.source == "embedded defaults"


def test_sample_config_is_the_one_init_writes_and_is_valid() -> None:
    sample = (ROOT / "inboxd.toml").read_text(encoding="utf-8")
    assert sample == config.DEFAULT_TEXT_PATH.read_text(encoding="utf-8")
    cfg = config.from_dict(tomllib.loads(sample), base_dir=ROOT)
    assert cfg.agents[0].email == "alice@example.com"


def test_every_config_key_is_documented_in_the_sample() -> None:
    sample = config.DEFAULT_TEXT_PATH.read_text(encoding="utf-8")
    sections = {
        "inboxd": config.InboxdSection,
        "smtp": config.SmtpSection,
        "imap": config.ImapSection,
        "outbound": config.OutboundSection,
        "web": config.WebSection,
        "agents": config.AgentEntry,
        "trust": config.TrustSection,
        "calendars": config.CalendarEntry,
        "sla": config.SlaEntry,
        "rules": config.RuleEntry,
        "kb": config.KbSection,
        "csat": config.CsatSection,
        "teams": config.TeamEntry,
        "organizations": config.OrganizationEntry,
    }
    secret_variants = ("password", "password_file", "secret_key", "secret_key_env")
    for section, model in sections.items():
        assert f"[{section}]" in sample or f"[[{section}]]" in sample
        for key in model.model_fields:
            if key in secret_variants or (key == "team" and section == "agents"):
                # Variants of a documented secret key, explained in the sample's header.
                continue
            assert f"{key} =" in sample, f"[{section}] {key} is not in inboxd.toml"


def test_lookup_order_is_flag_then_environment_then_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, env, local = (tmp_path / n for n in ("flag.toml", "env.toml", "inboxd.toml"))
    for path, name in ((flag, "Flag"), (env, "Env"), (local, "Local")):
        path.write_text(f'[inboxd]\nsupport_name = "{name}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.ENV_VAR, str(env))
    assert config.load(flag).inboxd.support_name == "Flag"
    assert config.load(None).inboxd.support_name == "Env"
    monkeypatch.delenv(config.ENV_VAR)
    assert config.load(None).inboxd.support_name == "Local"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[smtp]\nport = "abc"', "[smtp] port = 'abc'"),
        ("[smtp]\nport = 70000", "[smtp] port = 70000"),
        ('[inboxd]\nsupport_adress = "x@y.z"', "unknown key [inboxd] support_adress"),
        ('[inboxd]\nsupport_address = "not an address"', "expected an email address"),
        ('[outbound]\nmode = "carrier-pigeon"', "[outbound] mode = 'carrier-pigeon'"),
        ('[inboxd]\nsubject_tag = "[#]"', "containing {id}"),
        ('[imap]\nafter_ingest = "burn"', '"seen", "delete" or "move:<folder>"'),
        ("[[agents]]\nname = 'No Email'", "[agents] 0.email"),
        ("[nonsense]\nx = 1", "unknown key nonsense"),
        ('[inboxd]\ndatabase_url = "mysql://x"', "postgresql+psycopg://"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_was_expected(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "inboxd.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[inboxd\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(broken)
    with pytest.raises(ConfigError, match="no such configuration file"):
        config.load(tmp_path / "missing.toml")


def test_config_is_frozen() -> None:
    cfg = config.Config()
    with pytest.raises(Exception, match="frozen"):
        cfg.inboxd.support_address = "x@y.z"  # type: ignore[misc]


def test_secrets_come_inline_from_env_or_from_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    monkeypatch.setenv("IMAP_PW", "from-env")
    cases = {
        "from-inline": {"password": "from-inline"},
        "from-env": {"password_env": "IMAP_PW"},
        "from-file": {"password_file": "pw"},
    }
    for expected, values in cases.items():
        cfg = config.from_dict({"imap": values}, base_dir=tmp_path)
        assert config.secret(cfg, cfg.imap, "password") == expected
    cfg = config.from_dict({"imap": {"password_env": "NOT_SET_ANYWHERE"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        config.secret(cfg, cfg.imap, "password")


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "inboxd.toml"
    path.write_text('[inboxd]\ndata_dir = "../var"\n')
    cfg = config.load(path)
    assert cfg.data_dir.resolve() == (tmp_path / "var").resolve()


def test_trusted_networks_must_be_networks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[smtp\] trusted_networks = .*'10.0.0.0/33'"):
        config.from_dict({"smtp": {"trusted_networks": ["10.0.0.0/33"]}}, base_dir=tmp_path)
    cfg = config.from_dict({"smtp": {"trusted_networks": ["10.0.0.0/8"]}}, base_dir=tmp_path)
    assert cfg.smtp.trusted_networks == ("10.0.0.0/8",)
