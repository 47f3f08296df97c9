"""Helpers every command shares: open the runtime, turn errors into exit codes, print.

Start-up is every command's fixed cost, so `cli/` imports at module level only what
every command needs (typer, the config, the error tree). A command imports the parts of
inboxd it uses inside its body: the mail parser (flanker), the knowledge base (jieba),
the web stack and alembic each cost a noticeable part of a second, and `inboxd
tickets` needs none of them. tests/test_startup.py reads the import graph to keep it so.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inboxd import config as config_mod
from inboxd.errors import InboxdError

if TYPE_CHECKING:
    from inboxd.runtime import Runtime

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $INBOXD_CONFIG, ./inboxd.toml, ~/.config/inboxd/inboxd.toml,"
        " /etc/inboxd/inboxd.toml). Also accepted before the command.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def err(message: str) -> None:
    typer.echo(f"inboxd: {message}", err=True)


@contextmanager
def errors() -> Iterator[None]:
    """Domain errors become one line on stderr and exit 1 (2 for config); bugs are logged."""
    try:
        yield
    except InboxdError as exc:
        err(str(exc))
        raise typer.Exit(exc.exit_code) from None


# The --config given before the verb (`inboxd --config F tickets`, as git and systemctl
# take it); the root callback (cli.main) sets it on every invocation, None when absent.
ROOT_CONFIG: ContextVar[Path | None] = ContextVar("root_config", default=None)


def config_path(explicit: Path | None) -> Path | None:
    """The command's own --config, else the one before the verb, else None (discovery,
    SPEC §3)."""
    return explicit if explicit is not None else ROOT_CONFIG.get()


def load_config(explicit: Path | None, *, reads_files: bool = False) -> config_mod.Config:
    """The configuration. With `reads_files` (commands that read data_dir's files, not
    the database, like `kb`), no config and no database here is an error (exit 2) that
    says where it looked: the embedded defaults would read an empty folder."""
    cfg = config_mod.load(config_path(explicit))
    if reads_files and cfg.source == config_mod.EMBEDDED:
        from inboxd.runtime import require_database

        require_database(cfg)
    return cfg


def open_rt(config: Path | None, *, create: bool = False) -> Runtime:
    """Open config, database and key. Only commands that bring state into being (`init`,
    `serve`, `ingest`, `agents add`, ...) pass `create=True`; every other command finds no
    database a config error instead of creating an empty one."""
    from inboxd.customers.organizations import check_organizations
    from inboxd.customers.profiles import sync_organizations
    from inboxd.daemon import logs
    from inboxd.db import session_scope
    from inboxd.runtime import open_runtime

    cfg = load_config(config)
    check_organizations(cfg)  # free-mail domains never map (SPEC §10.7): refuse to start
    # The composition root: `#kb` reaches the knowledge base through the runtime.
    rt = replace(open_runtime(cfg, create=create), kb_article_text=_kb_article_text(cfg))
    logs.configure(cfg)
    with rt.write_lock, session_scope(rt.engine) as session:
        sync_organizations(session, cfg.organizations)  # a no-op unless the list changed
    return rt


def _kb_article_text(cfg: config_mod.Config) -> Callable[[str, str | None, str], str | None]:
    """kb_suggest.article_text, imported when a `#kb` tag first needs it: the knowledge
    base's segmenters are the slowest import of all, and most commands never reach it."""

    def text(slug: str, language: str | None, subject: str) -> str | None:
        from inboxd.workflow import kb_suggest

        return kb_suggest.article_text(cfg)(slug, language, subject)

    return text


def log_to_terminal(rt: Runtime) -> None:
    """For `inboxd serve`: one line per event on stderr too (tracebacks stay in the file)."""
    from inboxd.daemon import logs

    logs.configure(rt.config, terminal=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=None))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[int]) -> None:
    """A plain fixed-width table; cells longer than their column are cut with an ellipsis."""

    def cell(value: Any, width: int) -> str:
        text = "" if value is None else str(value)
        text = text.replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["  ".join(cell(h, w).ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(cell(v, w).ljust(w) for v, w in zip(row, widths, strict=True)))
    typer.echo("\n".join(line.rstrip() for line in lines))


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
