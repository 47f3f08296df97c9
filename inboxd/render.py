"""render.py: the jinja2 environment for every mail inboxd sends (and, later, web pages).

Templates come from `[inboxd] templates_dir` when an admin sets one (a file there
overrides the bundled one of the same name), else from the bundled `templates/`.
StrictUndefined: a missing variable is an error, never a silently empty line. Autoescape
is on for .html and .html.j2 and off for .txt.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import inboxd_templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

BUNDLED = Path(inboxd_templates.__file__).resolve().parent


@lru_cache(maxsize=8)
def environment(override_dir: str = "") -> Environment:
    """One environment per template folder, built once."""
    loaders = [FileSystemLoader(override_dir)] if override_dir else []
    loaders.append(FileSystemLoader(str(BUNDLED)))
    return Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False
        ),
        keep_trailing_newline=True,
    )


def render(name: str, context: dict[str, Any], override_dir: str = "") -> str:
    """Render a template by name, e.g. "email/acknowledgement.txt.j2"."""
    return environment(override_dir).get_template(name).render(**context)


def when_text(at: datetime | None, zone: str) -> str:
    """An instant as an agent reads it in a mail: `Mon 2026-11-30 11:30 CST`, in `zone`."""
    if at is None:
        return "(paused)"
    local = at.astimezone(ZoneInfo(zone))
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"


def span_text(delta: timedelta) -> str:
    """A duration as an agent reads it: `1 h 10 m`, `3 d 2 h`, `-25 m` when overdue."""
    total = int(delta.total_seconds() // 60)
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else [])
    if mins and not days:
        parts.append(f"{mins} m")
    return sign + (" ".join(parts) or "0 m")


def size_text(size: int) -> str:
    """A file's size as people read it in a mail or a refusal: `8 KB`, `12.5 MB`."""
    return f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{max(1, size // 1024)} KB"
