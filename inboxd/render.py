"""render.py: the jinja2 environment for every mail inboxd sends (and, later, web pages).

Templates come from `[inboxd] templates_dir` when an admin sets one (a file there
overrides the bundled one of the same name), else from the bundled `templates/`.
StrictUndefined: a missing variable is an error, never a silently empty line. Autoescape
is on for .html and off for .txt.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

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
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=True,
    )


def render(name: str, context: dict[str, Any], override_dir: str = "") -> str:
    """Render a template by name, e.g. "email/acknowledgement.txt.j2"."""
    return environment(override_dir).get_template(name).render(**context)
