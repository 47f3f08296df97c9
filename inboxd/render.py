"""render.py: the jinja2 environment for every mail inboxd sends (and, later, web pages).

Templates come from `[inboxd] templates_dir` when an admin sets one (a file there
overrides the bundled one of the same name), else from the bundled `templates/`.
StrictUndefined: a missing variable is an error, never a silently empty line. Autoescape
is on for .html and .html.j2 and off for .txt.

Customer-facing mail comes in the customer's language (SPEC §10.8): a variant sits beside
its template, `email/acknowledgement.de.txt.j2` beside `email/acknowledgement.txt.j2` (the
English one), and `localized` picks it through languages.variant, so zh-TW finds zh-Hant
and de-AT finds de. A template names its subject line with `{% set subject = "..." %}`.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import inboxd_templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from inboxd import languages
from inboxd.errors import InvalidValue

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


@dataclass(frozen=True)
class Localized:
    """A rendered mail text, the subject its template set ("" if none), and its language."""

    text: str
    subject: str
    language: str


def localized(
    name: str, language: str | None, context: dict[str, Any], override_dir: str = ""
) -> Localized:
    """Render template `name` in its variant for `language` (see the module's docstring);
    the plain name is the English text, and the fallback for a language without one.
    The template sees the customer's bundled language as `language` (zh-TW -> zh-Hant), as
    an admin's one-file template of earlier versions, switching on it, expects."""
    chosen = variant_for(name, language, override_dir)
    template = environment(override_dir).get_template(variants(name, override_dir)[chosen])
    module = template.make_module({"language": languages.bundled(language), **context})
    return Localized(str(module), str(getattr(module, "subject", "")), chosen)


def variant_for(name: str, language: str | None, override_dir: str = "") -> str:
    """The language template `name` will be rendered in for `language`: a mail whose parts
    come from several templates (an acknowledgement and its suggestions) keeps to one."""
    return languages.variant(language, variants(name, override_dir), languages.DEFAULT)


@lru_cache(maxsize=64)
def variants(name: str, override_dir: str = "") -> dict[str, str]:
    """Template `name`'s languages, each with its file (English: the plain one). An admin's
    templates_dir that has any file of `name` has all of them: one who rewrote the English
    text does not want the bundled German of the old wording sent to German customers.
    Read once per process: a variant added to templates_dir is seen after a restart."""
    stem, _, suffix = name.partition(".")
    pattern = re.compile(rf"{re.escape(stem)}\.([A-Za-z0-9-]+)\.{re.escape(suffix)}")
    own = FileSystemLoader(override_dir).list_templates() if override_dir else []
    mine = [t for t in own if t == name or pattern.fullmatch(t)]
    found = {languages.DEFAULT: name}
    for template in mine or environment().list_templates():
        match = pattern.fullmatch(template)
        if match is not None:
            with suppress(InvalidValue):  # "acknowledgement.v2.txt.j2" is no variant
                found.setdefault(languages.normalized_tag(match.group(1)), template)
    return found


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
